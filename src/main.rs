//! The `snippet-guard` binary: clap dispatch only.

use std::process::ExitCode;

/// mimalloc: a linter allocates hundreds of thousands of small nodes per large `nginx.conf`;
/// the system allocator spent a fifth of a run in malloc/free.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

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
        Command::Webhook(args) => snippet_guard::cli::webhook::run(args),
        Command::Controller(args) => snippet_guard::cli::controller::run(args),
        Command::Audit(args) => snippet_guard::cli::audit::run(args),
    };
    match result {
        Ok(status) => ExitCode::from(status as u8),
        Err(e) => {
            eprintln!("snippet-guard: error: {e:#}");
            ExitCode::from(ExitStatus::Error as u8)
        }
    }
}
