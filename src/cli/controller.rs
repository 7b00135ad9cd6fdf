//! `snippet-guard controller` (being built; see the issue).

use anyhow::{Result, bail};
use clap::Args;

use crate::cli::ExitStatus;

#[derive(Debug, Args)]
pub struct ControllerArgs {}

pub fn run(_args: &ControllerArgs) -> Result<ExitStatus> {
    bail!("`snippet-guard controller` is not built yet")
}
