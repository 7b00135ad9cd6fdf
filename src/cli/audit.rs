//! `snippet-guard audit` (being built; see the issue).

use anyhow::{Result, bail};
use clap::Args;

use crate::cli::ExitStatus;

#[derive(Debug, Args)]
pub struct AuditArgs {}

pub fn run(_args: &AuditArgs) -> Result<ExitStatus> {
    bail!("`snippet-guard audit` is not built yet")
}
