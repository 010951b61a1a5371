//! The `sophon` binary: parse, run, map the outcome to an exit code. Everything else is in the library.
#![forbid(unsafe_code)]

mod cli;
mod web;

use std::process::ExitCode;

use clap::Parser;

fn main() -> ExitCode {
    cli::edge::forget_empty_variables();
    let args = match cli::Cli::try_parse() {
        Ok(a) => a,
        Err(e) => {
            let code = if e.use_stderr() { cli::exit::USAGE } else { cli::exit::OK };
            let _ = e.print();
            return ExitCode::from(code);
        }
    };
    // `cli::run` has returned, so every lock guard and temporary folder of the command is dropped
    // before the exit code is chosen.
    let verbose = args.verbose;
    let outcome = cli::run(args);
    sophon::backend::shutdown();
    match outcome {
        Ok(code) => ExitCode::from(code),
        // The reader of standard output went away (`sophon … | head`): what it wanted it has.
        Err(e) if cli::output::is_broken_pipe(&e) => ExitCode::from(cli::exit::OK),
        Err(e) => {
            eprintln!("error: {}", cli::edge::error_text(&e));
            if let Some(detail) = cli::edge::store_detail(&e) {
                if verbose {
                    eprintln!("the store answered: {detail}");
                } else if !cli::edge::is_no_space(&e) {
                    // A full disk is said in full in the line above.
                    eprintln!("(--verbose shows what the store answered)");
                }
            }
            ExitCode::from(cli::edge::exit_code(&e))
        }
    }
}
