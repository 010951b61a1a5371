//! A session: an open repository with the lock its operation needs and an index cache synced after
//! that lock was granted. Every operation that reads or writes snapshots and packs takes one, so
//! "prune never deletes what a reader uses" (format-spec/prune.md) holds for every caller, the CLI
//! and any other front end alike, without each of them remembering to lock and sync.

use std::sync::Arc;

use crate::error::{Error, Result};
use crate::format::snapshot::Snapshot;
use crate::id::SnapshotId;
use crate::repo::{LockGuard, LockMode, Repository, SnapshotListing};

/// An open repository with its lock held and its index cache in step. Clones share the one lock,
/// which is released when the last clone is dropped.
#[derive(Clone)]
pub struct Session {
    repo: Arc<Repository>,
    lock: Arc<LockGuard>,
    mode: LockMode,
}

impl std::fmt::Debug for Session {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Session({:?}, {})", self.repo, self.mode.name())
    }
}

impl Session {
    /// Lock `repo` for `operation`, then sync its index cache. The order matters: a prune that
    /// starts after the lock sees it and keeps every pack this session may find in the index it
    /// reads now; an index read before the lock could list packs a prune is deleting.
    pub fn open(repo: Arc<Repository>, mode: LockMode, operation: &str) -> Result<Self> {
        let lock = repo.lock(mode, operation)?;
        repo.sync_index(&mut |_| {})?;
        Ok(Session { repo, lock: Arc::new(lock), mode })
    }

    /// Backups, restores, exports, checks, forget, listings: any number side by side and beside
    /// one prune.
    pub fn shared(repo: Arc<Repository>, operation: &str) -> Result<Self> {
        Self::open(repo, LockMode::Shared, operation)
    }

    /// A prune: beside shared sessions, never beside another prune.
    pub fn prune(repo: Arc<Repository>) -> Result<Self> {
        Self::open(repo, LockMode::Prune, "prune")
    }

    /// Key changes and repairs: the repository to itself.
    pub fn exclusive(repo: Arc<Repository>, operation: &str) -> Result<Self> {
        Self::open(repo, LockMode::Exclusive, operation)
    }

    pub fn repo(&self) -> &Arc<Repository> {
        &self.repo
    }

    pub fn lock(&self) -> &LockGuard {
        &self.lock
    }

    pub fn mode(&self) -> LockMode {
        self.mode
    }

    /// See [`LockGuard::ensure_held`]: fails when the lock may have looked stale to others.
    pub fn ensure_held(&self) -> Result<()> {
        self.lock.ensure_held()
    }

    /// Fail unless this session's lock is at least as strong as `needed` (an exclusive lock
    /// covers everything, a prune lock covers what a shared one does).
    pub fn require(&self, needed: LockMode, operation: &str) -> Result<()> {
        if self.mode.rank() >= needed.rank() {
            return Ok(());
        }
        Err(Error::WrongSession {
            repo: self.repo.backend().location(),
            operation: operation.to_string(),
            needed: needed.name(),
            held: self.mode.name(),
        })
    }

    /// Every readable snapshot (oldest first) and the unreadable ones with why.
    pub fn list_snapshots(&self) -> Result<SnapshotListing> {
        self.repo.list_snapshots()
    }

    /// `latest`, `latest-readable`, a full id, or a unique prefix of at least 4 hex digits.
    /// `latest` is refused ([`Error::LatestUnreadable`]) while any snapshot cannot be read.
    pub fn resolve_snapshot(&self, spec: &str) -> Result<SnapshotId> {
        self.repo.resolve_snapshot(spec)
    }

    /// [`Session::resolve_snapshot`] with the unreadable snapshots `latest-readable` passed over.
    pub fn resolve_snapshot_noting(&self, spec: &str) -> Result<(SnapshotId, Vec<(SnapshotId, Error)>)> {
        self.repo.resolve_snapshot_noting(spec)
    }

    pub fn load_snapshot(&self, id: &SnapshotId) -> Result<Snapshot> {
        self.repo.load_snapshot(id)
    }

    /// Rebuild the index from the pack headers (see [`Repository::repair_index`]); needs an
    /// exclusive session, as it replaces every index segment.
    pub fn repair_index(&self, on_problem: &mut dyn FnMut(Error)) -> Result<crate::repo::RepairOutcome> {
        self.require(LockMode::Exclusive, "repair-index")?;
        self.repo.repair_index(on_problem)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::backend::open_url;
    use crate::crypto::Argon2Params;
    use crate::repo::InitOptions;

    fn repo(dir: &std::path::Path) -> Arc<Repository> {
        let backend = open_url(&dir.join("repo").to_string_lossy(), true).expect("backend");
        let opts = InitOptions {
            argon2: Argon2Params { memory_kib: 8 * 1024, iterations: 1, parallelism: 1 },
            ..InitOptions::default()
        };
        Arc::new(Repository::init(backend, b"pw", &opts, None).expect("init"))
    }

    #[test]
    fn a_weaker_session_is_refused_and_a_stronger_one_accepted() {
        let dir = tempfile::tempdir().expect("tempdir");
        let repo = repo(dir.path());
        let shared = Session::shared(Arc::clone(&repo), "test").expect("shared");
        assert!(matches!(
            shared.require(LockMode::Prune, "prune"),
            Err(Error::WrongSession { needed: "prune", held: "shared", .. })
        ));
        assert!(shared.require(LockMode::Shared, "restore").is_ok());
        assert!(matches!(shared.repair_index(&mut |_| {}), Err(Error::WrongSession { .. })));
        drop(shared);
        let exclusive = Session::exclusive(Arc::clone(&repo), "test").expect("exclusive");
        assert!(exclusive.require(LockMode::Prune, "prune").is_ok());
        assert!(exclusive.require(LockMode::Shared, "restore").is_ok());
    }

    #[test]
    fn the_lock_lives_as_long_as_the_last_clone() {
        let dir = tempfile::tempdir().expect("tempdir");
        let repo = repo(dir.path());
        let a = Session::shared(Arc::clone(&repo), "test").expect("shared");
        let b = a.clone();
        drop(a);
        assert_eq!(repo.live_locks(None).expect("locks").len(), 1);
        // An exclusive session cannot start beside it.
        assert!(matches!(Session::exclusive(Arc::clone(&repo), "x"), Err(Error::Locked { .. })));
        drop(b);
        assert!(repo.live_locks(None).expect("locks").is_empty());
    }
}
