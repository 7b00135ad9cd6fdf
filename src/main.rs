//! The `snippet-guard` binary: clap dispatch only.

use std::process::ExitCode;

use clap::Parser;
use snippet_guard::cli::{Cli, Command, ExitStatus};

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match &cli.command {
        Command::Lint(args) => snippet_guard::cli::lint::run(args),
        Command::Explain(args) => {
            snippet_guard::cli::explain::run(args).map(|()| ExitStatus::Success)
        }
        Command::Rules(args) => snippet_guard::cli::rules::run(args).map(|()| ExitStatus::Success),
    };
    match result {
        Ok(status) => ExitCode::from(status as u8),
        Err(e) => {
            eprintln!("snippet-guard: error: {e:#}");
            ExitCode::from(ExitStatus::Error as u8)
        }
    }
}
