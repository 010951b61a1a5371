//! The binary's edge: the environment it is started in and the text of the error it ends with.

use clap::CommandFactory;

/// Variables the command line reads (`--home` from `SOPHON_HOME`, …) that are set but empty are
/// treated as unset, as shells and most tools do: `SOPHON_HOME= sophon …` must not read as "a value
/// is required for '--home'". Call before parsing, while the process has one thread.
pub fn forget_empty_variables() {
    let mut names = Vec::new();
    collect_env_names(&super::Cli::command(), &mut names);
    for name in names {
        if std::env::var_os(&name).is_some_and(|v| v.is_empty()) {
            std::env::remove_var(&name);
        }
    }
}

fn collect_env_names(cmd: &clap::Command, names: &mut Vec<std::ffi::OsString>) {
    for arg in cmd.get_arguments() {
        if let Some(env) = arg.get_env() {
            if !names.iter().any(|n| n == env) {
                names.push(env.to_os_string());
            }
        }
    }
    for sub in cmd.get_subcommands() {
        collect_env_names(sub, names);
    }
}

/// The error's chain on one line, each cause once: a message that already ends with (or holds) its
/// cause's text does not repeat it (`x.zip: No such file or directory (os error 2)`, not that
/// followed by the same cause again).
pub fn error_text(e: &anyhow::Error) -> String {
    let mut text = String::new();
    for cause in e.chain() {
        let part = cause.to_string();
        if part.is_empty() || text.contains(&part) {
            continue;
        }
        if !text.is_empty() {
            text.push_str(": ");
        }
        text.push_str(&part);
    }
    text
}

/// The exit code of a command that ended in `e`: a usage mistake, damage that stops the command
/// before it does anything (`latest` while a snapshot cannot be read), or a plain failure.
pub fn exit_code(e: &anyhow::Error) -> u8 {
    if e.downcast_ref::<super::UsageError>().is_some() {
        return super::exit::USAGE;
    }
    let damage =
        e.chain().any(|c| matches!(c.downcast_ref::<sophon::Error>(), Some(sophon::Error::LatestUnreadable { .. })));
    if damage {
        super::exit::DAMAGE
    } else {
        super::exit::FAILURE
    }
}

/// A failure after which something was kept (a snapshot whose export failed): the message says
/// what failed and what is left, the cause stays reachable for `--verbose`.
#[derive(Debug)]
pub struct Kept {
    pub message: String,
    pub cause: anyhow::Error,
}

impl std::fmt::Display for Kept {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for Kept {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        Some(self.cause.as_ref())
    }
}

/// The storage service's whole answer behind the error, when one is there.
pub fn store_detail(e: &anyhow::Error) -> Option<&str> {
    e.chain().find_map(|c| {
        let backend = match c.downcast_ref::<sophon::Error>() {
            Some(sophon::Error::Backend(b)) => Some(b),
            _ => c.downcast_ref::<sophon::backend::BackendError>(),
        }?;
        Some(backend.detail.as_str()).filter(|d| !d.is_empty())
    })
}

/// True when the store refused a write because its disk is full: the error line says all there is
/// to say (no hint at `--verbose`, which still shows the store's answer).
pub fn is_no_space(e: &anyhow::Error) -> bool {
    e.chain().any(|c| {
        let backend = match c.downcast_ref::<sophon::Error>() {
            Some(sophon::Error::Backend(b)) => Some(b),
            _ => c.downcast_ref::<sophon::backend::BackendError>(),
        };
        backend.is_some_and(|b| b.kind == sophon::backend::BackendErrorKind::NoSpace)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_cause_already_in_the_message_is_not_repeated() {
        let io = std::io::Error::new(std::io::ErrorKind::NotFound, "No such file or directory (os error 2)");
        let e = anyhow::Error::new(io).context("nope.zip: No such file or directory (os error 2)");
        assert_eq!(error_text(&e), "nope.zip: No such file or directory (os error 2)");
        let e = anyhow::anyhow!("disk full").context("writing x.zip");
        assert_eq!(error_text(&e), "writing x.zip: disk full");
    }

    #[test]
    fn every_variable_the_command_line_reads_is_found() {
        let mut names = Vec::new();
        collect_env_names(&crate::cli::Cli::command(), &mut names);
        for n in ["SOPHON_HOME", "SOPHON_REPOSITORY"] {
            assert!(names.iter().any(|x| x == n), "{n} not among {names:?}");
        }
    }
}
