//! Repository locks (format-spec/repository.md §12): taking them, refreshing them while held,
//! telling live ones from those of dead processes, and releasing them.
//!
//! A lock keeps its writer's pid and pid table (`pid_space`) but not the process's start time:
//! `Lock` is decoded with unknown fields refused, so a lock carrying one would look damaged to
//! earlier clients, which would then ignore it and let a prune delete what its holder reads. A
//! reused pid therefore keeps a dead lock alive until it goes stale, which only delays others.

use std::collections::HashSet;
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

use super::{host, now_rfc3339, Repository};
use crate::error::{Error, Result};
use crate::format::config::{Lock, LockHolder, LOCK_VERSION};
use crate::format::envelope::ObjectKind;
use crate::id::LockId;
use crate::liveness::{self, Liveness, ProcessRef};

/// A lock not refreshed for this long belongs to a dead process and is ignored.
pub const LOCK_STALE_AFTER: Duration = Duration::from_secs(30 * 60);
const LOCK_REFRESH_EVERY: Duration = Duration::from_secs(5 * 60);

/// A lock taken on this host by a process that no longer exists (killed, crashed) is stale at once.
/// Only decidable where `/proc` shows processes and the lock names the same pid table; elsewhere
/// the age rule alone applies.
fn holder_is_dead(lock: &Lock) -> bool {
    let Some(space) = &lock.pid_space else {
        return false;
    };
    lock.hostname == host()
        && lock.pid != std::process::id()
        && ProcessRef { pid: lock.pid, start: None, space: Some(space.clone()) }.liveness() == Liveness::Dead
}

impl Repository {
    fn write_lock(&self, mode: LockMode, operation: &str, created: &str) -> Result<LockId> {
        let lock = Lock {
            version: LOCK_VERSION,
            exclusive: mode == LockMode::Exclusive,
            prune: mode == LockMode::Prune,
            pid_space: liveness::pid_space(),
            hostname: host(),
            pid: std::process::id(),
            operation: operation.to_string(),
            created: created.to_string(),
            refreshed: now_rfc3339(),
        };
        Ok(LockId(self.save_object(ObjectKind::Lock, &lock.encode()?)?))
    }

    /// Live locks other than `mine`. Unreadable or stale locks are ignored (a dead process's lock
    /// must not block the repository forever).
    pub fn live_locks(&self, mine: Option<&LockId>) -> Result<Vec<(LockId, Lock)>> {
        let mut out: Vec<(LockId, Lock)> = Vec::new();
        // A lock that vanished between the listing and the read was released, or refreshed: a
        // refresh writes the new lock before deleting the old one, so listing again finds it.
        for _attempt in 0..4 {
            let mut vanished = false;
            for id in self.list_ids("locks")? {
                let id = LockId(id);
                if Some(&id) == mine || out.iter().any(|(seen, _)| *seen == id) {
                    continue;
                }
                let read =
                    self.load_object(ObjectKind::Lock, &id.0).and_then(|p| Lock::decode(&p, &format!("lock {id}")));
                let lock = match read {
                    Ok(l) => l,
                    Err(Error::NotFound(_)) => {
                        vanished = true;
                        continue;
                    }
                    // A newer client's lock: this build cannot tell what it protects.
                    Err(Error::UnsupportedVersion { .. }) => Lock {
                        version: 0,
                        exclusive: true,
                        hostname: "?".into(),
                        pid: 0,
                        operation: "a newer sophon".into(),
                        created: id.to_hex(),
                        refreshed: now_rfc3339(),
                        prune: false,
                        pid_space: None,
                    },
                    // Damaged: nobody can be holding it.
                    Err(e) if e.is_damage() => continue,
                    Err(e) => return Err(e),
                };
                let refreshed =
                    chrono::DateTime::parse_from_rfc3339(&lock.refreshed).map(|t| t.with_timezone(&chrono::Utc));
                let age = refreshed.map(|t| chrono::Utc::now() - t).unwrap_or(chrono::TimeDelta::MAX);
                let fresh = age.to_std().map(|a| a < LOCK_STALE_AFTER).unwrap_or(true);
                if fresh && !holder_is_dead(&lock) {
                    out.push((id, lock));
                }
            }
            if !vanished {
                break;
            }
        }
        Ok(out)
    }

    /// Who holds the live locks other than `mine`.
    pub fn live_holders(&self, mine: Option<&LockGuard>) -> Result<HashSet<LockHolder>> {
        let mine = mine.map(|g| g.holder.clone());
        Ok(self.live_locks(None)?.into_iter().map(|(_, l)| l.holder()).filter(|h| Some(h) != mine.as_ref()).collect())
    }

    /// Take a lock: shared ones coexist, and coexist with one prune; an exclusive one needs the
    /// repository to itself. Outside the library locks are taken through a `Session`, which also
    /// re-syncs the index after the lock is granted.
    pub(crate) fn lock(self: &Arc<Self>, mode: LockMode, operation: &str) -> Result<LockGuard> {
        let created = now_rfc3339();
        let conflict = |locks: &[(LockId, Lock)]| {
            locks.iter().find(|(_, l)| LockMode::of(l).conflicts_with(mode)).map(|(id, l)| {
                format!(
                    "{} lock {} held by pid {} on {} ({}) since {}",
                    LockMode::of(l).name(),
                    id.short(),
                    l.pid,
                    l.hostname,
                    l.operation,
                    l.created
                )
            })
        };
        if let Some(detail) = conflict(&self.live_locks(None)?) {
            return Err(Error::Locked { repo: self.backend.location(), detail });
        }
        let id = self.write_lock(mode, operation, &created)?;
        // Check again: two clients may have raced between the check and the write.
        if let Some(detail) = conflict(&self.live_locks(Some(&id))?) {
            let _ = self.backend.delete(&Self::object_path(ObjectKind::Lock, &id.0));
            return Err(Error::Locked { repo: self.backend.location(), detail });
        }
        let holder = LockHolder { hostname: host(), pid: std::process::id(), created: created.clone() };
        let current = Arc::new(Mutex::new(id));
        // Dropping the sender wakes the refresher at once (a polling sleep would hold every
        // command's exit back by up to its period).
        let (stop, stopped) = std::sync::mpsc::channel::<()>();
        let refreshed = Arc::new(Mutex::new(SystemTime::now()));
        let refresher = {
            let repo = Arc::clone(self);
            let current = Arc::clone(&current);
            let refreshed = Arc::clone(&refreshed);
            let operation = operation.to_string();
            std::thread::Builder::new()
                .name("sophon-lock".into())
                .spawn(move || {
                    while let Err(std::sync::mpsc::RecvTimeoutError::Timeout) = stopped.recv_timeout(LOCK_REFRESH_EVERY)
                    {
                        if let Ok(new_id) = repo.write_lock(mode, &operation, &created) {
                            *refreshed.lock().unwrap_or_else(|p| p.into_inner()) = SystemTime::now();
                            let mut cur = current.lock().unwrap_or_else(|p| p.into_inner());
                            let old = std::mem::replace(&mut *cur, new_id);
                            let _ = repo.backend.delete(&Self::object_path(ObjectKind::Lock, &old.0));
                        }
                    }
                })
                .map_err(|e| Error::io("lock refresher thread", e))?
        };
        Ok(LockGuard {
            repo: Arc::clone(self),
            holder,
            current,
            stop: Some(stop),
            refreshed,
            refresher: Some(refresher),
        })
    }
}

/// What a lock allows beside it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LockMode {
    /// Backups, restores, exports, checks, forget: any number side by side, and beside one prune.
    Shared,
    /// Prune: beside shared locks (its two-phase delete protects them), never beside another prune.
    Prune,
    /// Key changes and repairs: the repository to itself.
    Exclusive,
}

impl LockMode {
    fn of(l: &Lock) -> LockMode {
        if l.exclusive {
            LockMode::Exclusive
        } else if l.prune {
            LockMode::Prune
        } else {
            LockMode::Shared
        }
    }

    /// How much a lock covers: an exclusive lock covers what a prune lock does, which covers what
    /// a shared one does.
    pub(crate) fn rank(self) -> u8 {
        match self {
            LockMode::Shared => 0,
            LockMode::Prune => 1,
            LockMode::Exclusive => 2,
        }
    }

    fn conflicts_with(self, other: LockMode) -> bool {
        use LockMode::*;
        matches!((self, other), (Exclusive, _) | (_, Exclusive) | (Prune, Prune))
    }

    pub fn name(self) -> &'static str {
        match self {
            LockMode::Shared => "shared",
            LockMode::Prune => "prune",
            LockMode::Exclusive => "exclusive",
        }
    }
}

/// Holds a lock and refreshes it; dropping it removes the lock.
pub struct LockGuard {
    repo: Arc<Repository>,
    holder: LockHolder,
    current: Arc<Mutex<LockId>>,
    stop: Option<std::sync::mpsc::Sender<()>>,
    refreshed: Arc<Mutex<SystemTime>>,
    refresher: Option<std::thread::JoinHandle<()>>,
}

impl LockGuard {
    /// Fail if the lock may have looked stale to other clients (it was not refreshed for most of
    /// the stale age: the process was suspended, or the repository unreachable). A prune may then
    /// have deleted data this client relies on, so it must not write a snapshot.
    pub fn ensure_held(&self) -> Result<()> {
        // Wall-clock time, as other clients judge staleness by it (a monotonic clock stops while
        // the machine sleeps, and would call a lock fresh that everyone else took for stale).
        let last = *self.refreshed.lock().unwrap_or_else(|p| p.into_inner());
        let since = SystemTime::now().duration_since(last).unwrap_or(Duration::ZERO);
        if since + LOCK_REFRESH_EVERY >= LOCK_STALE_AFTER {
            return Err(Error::Locked {
                repo: self.repo.backend.location(),
                detail: format!(
                    "this client's lock was last refreshed {} s ago and may have been taken for stale; \
                     nothing was saved, run the operation again",
                    since.as_secs()
                ),
            });
        }
        Ok(())
    }
}

impl Drop for LockGuard {
    fn drop(&mut self) {
        drop(self.stop.take());
        if let Some(t) = self.refresher.take() {
            let _ = t.join();
        }
        let id = *self.current.lock().unwrap_or_else(|p| p.into_inner());
        let _ = self.repo.backend.delete(&Repository::object_path(ObjectKind::Lock, &id.0));
    }
}
