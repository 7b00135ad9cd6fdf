//! `snippet-guard audit`: lint the Ingresses and controller ConfigMaps of a cluster once, and
//! print the same report as `lint` (see [`crate::k8s::audit`]).

use std::path::PathBuf;

use anyhow::{Context as _, Result};
use clap::Args;

use crate::cli::ExitStatus;
use crate::cli::lint::{CheckArgs, OutputArgs, report};
use crate::k8s::audit::{self, Scope};

#[derive(Debug, Args)]
pub struct AuditArgs {
    /// Kubeconfig file (default: KUBECONFIG or ~/.kube/config, else in-cluster).
    #[arg(long, value_name = "FILE")]
    pub kubeconfig: Option<PathBuf>,
    /// Kubeconfig context (default: the current one).
    #[arg(long, value_name = "NAME")]
    pub context: Option<String>,
    /// Audit the Ingresses of this namespace (default: the context's namespace).
    #[arg(short = 'n', long, value_name = "NS")]
    pub namespace: Option<String>,
    /// Audit the Ingresses of every namespace.
    #[arg(short = 'A', long, conflicts_with = "namespace")]
    pub all_namespaces: bool,
    #[command(flatten)]
    pub check: CheckArgs,
    #[command(flatten)]
    pub output: OutputArgs,
}

pub fn run(args: &AuditArgs) -> Result<ExitStatus> {
    crate::telemetry::init(crate::telemetry::LogFormat::Text, "warn");
    let settings = args.check.settings()?;
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("starting the async runtime")?;
    let texts = runtime.block_on(async {
        let client =
            crate::cli::controller::client(args.kubeconfig.as_ref(), args.context.as_deref())
                .await?;
        let scope = if args.all_namespaces {
            Scope::AllNamespaces
        } else {
            Scope::Namespace(
                args.namespace
                    .clone()
                    .unwrap_or_else(|| client.default_namespace().to_string()),
            )
        };
        audit::collect(&client, &scope, &settings)
            .await
            .context("reading the cluster")
    })?;
    let ws = audit::workspace(&texts);
    let diags = crate::check(&ws, &settings);
    report(&ws, &diags, &args.output)
}
