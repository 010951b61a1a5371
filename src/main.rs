//! The `sophon` binary: parse, run, map the outcome to an exit code. Everything else is in the library.
#![forbid(unsafe_code)]

mod cli;

use std::process::ExitCode;

use clap::Parser;

fn main() -> ExitCode {
    let args = match cli::Cli::try_parse() {
        Ok(a) => a,
        Err(e) => {
            let code = if e.use_stderr() { cli::exit::USAGE } else { cli::exit::OK };
            let _ = e.print();
            return ExitCode::from(code);
        }
    };
    match cli::run(args) {
        Ok(code) => ExitCode::from(code),
        Err(e) => {
            eprintln!("error: {e:#}");
            let usage = e.downcast_ref::<cli::UsageError>().is_some();
            ExitCode::from(if usage { cli::exit::USAGE } else { cli::exit::FAILURE })
        }
    }
}
