//! `snippet-guard webhook` (being built; see the issue).

use anyhow::{Result, bail};
use clap::Args;

use crate::cli::ExitStatus;

#[derive(Debug, Args)]
pub struct WebhookArgs {}

pub fn run(_args: &WebhookArgs) -> Result<ExitStatus> {
    bail!("`snippet-guard webhook` is not built yet")
}
