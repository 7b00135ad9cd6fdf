//! The command line: clap definitions and one module per subcommand.

use clap::{Parser, Subcommand};

pub mod audit;
pub mod controller;
pub mod explain;
pub mod lint;
pub mod rules;
pub mod webhook;

/// Finds nginx snippets that make ingress-nginx send a forwarding header twice.
#[derive(Debug, Parser)]
#[command(name = "snippet-guard", version, about, long_about = None)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Lint manifests (YAML/JSON files, directories, `-` for stdin) or a rendered nginx.conf.
    Lint(lint::LintArgs),
    /// Print the documentation of one rule.
    Explain(explain::ExplainArgs),
    /// List the rules, or write their Markdown documentation.
    Rules(rules::RulesArgs),
    /// Serve the validating admission webhook (HTTPS).
    Webhook(webhook::WebhookArgs),
    /// Watch Ingresses and controller ConfigMaps and publish findings as Events.
    Controller(controller::ControllerArgs),
    /// Lint every Ingress and controller ConfigMap of the current cluster once.
    Audit(audit::AuditArgs),
}

/// Exit status, as ruff uses it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ExitStatus {
    /// Nothing at or above `--fail-on`.
    Success = 0,
    /// Findings at or above `--fail-on`.
    Failure = 1,
    /// Usage, I/O or internal error.
    Error = 2,
}
