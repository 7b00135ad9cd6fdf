//! `snippet-guard explain <rule-id>`.

use anyhow::{Result, bail};
use clap::Args;

#[derive(Debug, Args)]
pub struct ExplainArgs {
    /// A rule id, e.g. redundant-forwarded-proto.
    pub rule: String,
}

/// The documentation of one rule, as Markdown.
pub fn text(id: &str) -> Result<String> {
    let Some(rule) = crate::rules::by_id(id) else {
        let ids: Vec<&str> = crate::rules::ALL.iter().map(|r| r.id).collect();
        bail!("unknown rule `{id}`; rules are: {}", ids.join(", "));
    };
    Ok(super::rules::markdown_page(rule))
}

pub fn run(args: &ExplainArgs) -> Result<()> {
    print!("{}", text(&args.rule)?);
    Ok(())
}
