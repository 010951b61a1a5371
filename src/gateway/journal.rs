//! The restore journal and its stage, which make a restore all or nothing.
//!
//! Files are first staged under `HOME/.sophon-restore/<id>/`; the restore's database transaction
//! also records them in `sophon_restore_journal`, and after it commits they are moved into place and
//! the journal cleared. A crash before the commit leaves the gateway untouched (the stage is
//! discarded by [`recover`]); a crash after it is rolled forward by [`recover`], which every later
//! restore and backup runs first.

use std::path::{Path, PathBuf};

use rusqlite::{Connection, Transaction};

use super::{open_home, GatewayError, GatewayResult, DB_FILE};

const STAGE_DIR: &str = ".sophon-restore";

const JOURNAL_DDL: &str =
    "CREATE TABLE IF NOT EXISTS sophon_restore_journal (restore_id TEXT NOT NULL, rel_path TEXT NOT NULL, PRIMARY KEY (restore_id, rel_path))";

/// Finish an interrupted restore: roll a committed one forward, discard an uncommitted stage.
pub fn recover(home: &Path) -> GatewayResult<()> {
    let stage_root = home.join(STAGE_DIR);
    if !stage_root.exists() {
        return Ok(());
    }
    let conn = open_home(home)?;
    let db = home.join(DB_FILE);
    conn.execute_batch(JOURNAL_DDL).map_err(|e| GatewayError::sql(&db, e))?;
    let mut pending: Vec<(String, String)> = Vec::new();
    {
        let mut st = conn
            .prepare("SELECT restore_id, rel_path FROM sophon_restore_journal")
            .map_err(|e| GatewayError::sql(&db, e))?;
        let rows = st.query_map([], |r| Ok((r.get(0)?, r.get(1)?))).map_err(|e| GatewayError::sql(&db, e))?;
        for r in rows {
            pending.push(r.map_err(|e| GatewayError::sql(&db, e))?);
        }
    }
    move_into_place(home, &pending)?;
    conn.execute("DELETE FROM sophon_restore_journal", []).map_err(|e| GatewayError::sql(&db, e))?;
    std::fs::remove_dir_all(&stage_root).map_err(|e| GatewayError::io(&stage_root, e))?;
    Ok(())
}

fn move_into_place(home: &Path, staged: &[(String, String)]) -> GatewayResult<()> {
    for (id, rel) in staged {
        let from = home.join(STAGE_DIR).join(id).join(rel);
        let to = home.join(rel);
        if !from.exists() {
            continue; // moved before a crash
        }
        if let Some(d) = to.parent() {
            std::fs::create_dir_all(d).map_err(|e| GatewayError::io(d, e))?;
        }
        std::fs::rename(&from, &to).map_err(|e| GatewayError::io(&to, e))?;
    }
    Ok(())
}

/// Where a restore's files wait until its transaction commits. A dry run's stager writes nothing:
/// a dry run must not change a byte of the home.
pub struct Stager<'a> {
    home: &'a Path,
    id: String,
    writes: bool,
    staged: Vec<String>,
}

impl<'a> Stager<'a> {
    pub fn new(home: &'a Path, restore_id: &str, writes: bool) -> Self {
        Stager { home, id: restore_id.to_string(), writes, staged: Vec::new() }
    }

    fn path(&self, rel: &str) -> GatewayResult<PathBuf> {
        let p = self.home.join(STAGE_DIR).join(&self.id).join(rel);
        if let Some(d) = p.parent() {
            std::fs::create_dir_all(d).map_err(|e| GatewayError::io(d, e))?;
        }
        Ok(p)
    }

    /// Stage `data` to go to `rel` in the home.
    pub fn put(&mut self, rel: &str, data: &[u8]) -> GatewayResult<()> {
        if self.writes {
            let p = self.path(rel)?;
            std::fs::write(&p, data).map_err(|e| GatewayError::io(&p, e))?;
            self.staged.push(rel.to_string());
        }
        Ok(())
    }

    /// Stage a file that `write` creates at the path it is given (a backup's file copied without
    /// being held in memory) to go to `rel` in the home.
    pub fn copy(&mut self, rel: &str, write: impl FnOnce(&Path) -> GatewayResult<()>) -> GatewayResult<()> {
        if self.writes {
            let p = self.path(rel)?;
            write(&p)?;
            self.staged.push(rel.to_string());
        }
        Ok(())
    }

    /// Record the staged files in the restore's transaction: once it commits, they are the
    /// restore's to finish, even after a crash.
    pub fn record(&self, tx: &Transaction<'_>) -> rusqlite::Result<()> {
        tx.execute_batch(JOURNAL_DDL)?;
        for rel in &self.staged {
            tx.execute(
                "INSERT INTO sophon_restore_journal (restore_id, rel_path) VALUES (?1, ?2)",
                rusqlite::params![self.id, rel],
            )?;
        }
        Ok(())
    }

    /// Before a commit that will not happen: remove what this restore staged.
    pub fn discard(self) {
        let stage = self.home.join(STAGE_DIR);
        let _ = std::fs::remove_dir_all(stage.join(&self.id));
        let _ = std::fs::remove_dir(&stage);
    }

    /// After the commit: move the staged files into place, then forget them.
    pub fn finish(self, conn: &Connection) -> GatewayResult<()> {
        let staged: Vec<(String, String)> = self.staged.iter().map(|r| (self.id.clone(), r.clone())).collect();
        move_into_place(self.home, &staged)?;
        conn.execute("DELETE FROM sophon_restore_journal WHERE restore_id = ?1", [&self.id])
            .map_err(|e| GatewayError::sql(self.home.join(DB_FILE), e))?;
        let stage = self.home.join(STAGE_DIR);
        let _ = std::fs::remove_dir_all(stage.join(&self.id));
        let _ = std::fs::remove_dir(&stage);
        Ok(())
    }
}
