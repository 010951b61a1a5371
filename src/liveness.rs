//! Whether a process that a record names (a repository lock, a cron claim) still runs. A pid alone
//! is not enough: another container sharing the host name has its own pid table (the record then
//! carries the boot id and PID namespace it was written in), and a pid is reused once its process
//! is gone (the record then carries the process's start time). Where `/proc` cannot tell, the
//! answer is [`Liveness::Unknown`] and the caller falls back to the record's age.

use std::path::Path;

/// What this host can tell about a recorded process.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Liveness {
    Alive,
    Dead,
    /// No `/proc`, or the pid belongs to another pid table: only the record's age can decide.
    Unknown,
}

/// A process as a record names it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ProcessRef {
    pub pid: u32,
    /// Clock ticks after boot (field 22 of `/proc/PID/stat`), when the record keeps it.
    pub start: Option<u64>,
    /// The pid table the pid belongs to ([`pid_space`] of the writer), when the record keeps it.
    /// `None` means the caller vouches that the pid is from this host's table.
    pub space: Option<String>,
}

impl ProcessRef {
    /// This process, with everything a record may keep about it.
    pub fn this_process() -> Self {
        let pid = std::process::id();
        ProcessRef { pid, start: process_start(pid), space: pid_space() }
    }

    /// Whether the process still runs, as far as this host can tell.
    pub fn liveness(&self) -> Liveness {
        self.liveness_in(Path::new("/proc"), pid_space().as_deref())
    }

    fn liveness_in(&self, proc: &Path, own_space: Option<&str>) -> Liveness {
        if !proc.join("self").exists() {
            return Liveness::Unknown;
        }
        if let Some(space) = &self.space {
            if own_space != Some(space.as_str()) {
                return Liveness::Unknown;
            }
        }
        if !proc.join(self.pid.to_string()).exists() {
            return Liveness::Dead;
        }
        match (self.start, start_in(proc, self.pid)) {
            (Some(want), Some(got)) if want != got => Liveness::Dead,
            _ => Liveness::Alive,
        }
    }
}

/// This process's boot and PID namespace (`/proc/sys/kernel/random/boot_id` and the inode of
/// `/proc/self/ns/pid`), where `/proc` shows them: two records with the same value name pids of
/// one table.
pub fn pid_space() -> Option<String> {
    let boot = std::fs::read_to_string("/proc/sys/kernel/random/boot_id").ok()?;
    let ns = std::fs::read_link("/proc/self/ns/pid").ok()?;
    Some(format!("{}/{}", boot.trim(), ns.display()))
}

/// A process's start time in clock ticks after boot, where `/proc` shows it.
pub fn process_start(pid: u32) -> Option<u64> {
    start_in(Path::new("/proc"), pid)
}

/// Field 22 of `PROC/PID/stat`, counted after the command name, which is in parentheses and may
/// itself hold spaces and parentheses.
fn start_in(proc: &Path, pid: u32) -> Option<u64> {
    let stat = std::fs::read_to_string(proc.join(pid.to_string()).join("stat")).ok()?;
    let (_, rest) = stat.rsplit_once(')')?;
    rest.split_whitespace().nth(19)?.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A fake `/proc` holding one process `pid` that started at `start`.
    fn fake_proc(pid: u32, start: u64) -> tempfile::TempDir {
        let dir = tempfile::tempdir().expect("tempdir");
        std::fs::create_dir_all(dir.path().join("self")).expect("self");
        let p = dir.path().join(pid.to_string());
        std::fs::create_dir_all(&p).expect("pid dir");
        // The state (field 3), then fields 4..=21 as filler; the command name holds a space and
        // a parenthesis.
        let filler = vec!["0"; 18].join(" ");
        std::fs::write(p.join("stat"), format!("{pid} (odd) name) S {filler} {start} 0 0\n")).expect("stat");
        dir
    }

    fn proc_ref(pid: u32, start: Option<u64>, space: Option<&str>) -> ProcessRef {
        ProcessRef { pid, start, space: space.map(str::to_string) }
    }

    #[test]
    fn this_process_is_alive() {
        let me = ProcessRef::this_process();
        assert_eq!(me.liveness(), if Path::new("/proc/self").exists() { Liveness::Alive } else { Liveness::Unknown });
    }

    #[test]
    fn a_live_pid_with_its_start_time_is_alive() {
        let proc = fake_proc(4242, 777);
        assert_eq!(proc_ref(4242, Some(777), Some("b/ns")).liveness_in(proc.path(), Some("b/ns")), Liveness::Alive);
        // A record without a start time cannot see reuse: the pid's existence decides.
        assert_eq!(proc_ref(4242, None, None).liveness_in(proc.path(), Some("b/ns")), Liveness::Alive);
    }

    #[test]
    fn a_missing_pid_is_dead() {
        let proc = fake_proc(4242, 777);
        assert_eq!(proc_ref(4243, Some(777), Some("b/ns")).liveness_in(proc.path(), Some("b/ns")), Liveness::Dead);
        assert_eq!(proc_ref(4243, None, None).liveness_in(proc.path(), None), Liveness::Dead);
    }

    #[test]
    fn a_reused_pid_is_dead() {
        let proc = fake_proc(4242, 777);
        assert_eq!(proc_ref(4242, Some(778), Some("b/ns")).liveness_in(proc.path(), Some("b/ns")), Liveness::Dead);
    }

    #[test]
    fn a_pid_of_another_namespace_is_unknown() {
        let proc = fake_proc(4242, 777);
        // Whether or not the pid exists here, it names a process of another table.
        assert_eq!(
            proc_ref(4243, Some(777), Some("b/other-ns")).liveness_in(proc.path(), Some("b/ns")),
            Liveness::Unknown
        );
        assert_eq!(
            proc_ref(4242, Some(1), Some("b/other-ns")).liveness_in(proc.path(), Some("b/ns")),
            Liveness::Unknown
        );
        // Nor can a reader that does not know its own table judge a recorded one.
        assert_eq!(proc_ref(4243, None, Some("b/ns")).liveness_in(proc.path(), None), Liveness::Unknown);
    }

    #[test]
    fn without_proc_nothing_is_known() {
        let dir = tempfile::tempdir().expect("tempdir");
        assert_eq!(proc_ref(1, None, None).liveness_in(dir.path(), None), Liveness::Unknown);
    }

    #[test]
    fn the_real_start_time_of_this_process_is_read() {
        if Path::new("/proc/self/stat").exists() {
            let start = process_start(std::process::id()).expect("start time");
            assert_eq!(
                ProcessRef { pid: std::process::id(), start: Some(start), space: pid_space() }.liveness(),
                Liveness::Alive
            );
            assert_eq!(
                ProcessRef { pid: std::process::id(), start: Some(start + 1), space: pid_space() }.liveness(),
                Liveness::Dead
            );
        }
    }
}
