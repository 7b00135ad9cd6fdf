//! `snippet-guard controller`: watch Ingresses and the ingress-nginx configuration, publish
//! findings as Events (see [`crate::k8s::controller`]).

use std::net::SocketAddr;
use std::path::PathBuf;

use anyhow::{Context as _, Result, bail};
use clap::Args;

use crate::cli::ExitStatus;
use crate::cli::lint::CheckArgs;
use crate::k8s::controller::config::parse_ns_name;
use crate::k8s::controller::run::{self, Options};
use crate::k8s::leader::LeaseConfig;
use crate::telemetry::{self, LogFormat};

/// The chart's default controller ConfigMap, used when none is named.
pub const DEFAULT_CONTROLLER_CONFIGMAP: &str = "ingress-nginx/ingress-nginx-controller";

/// F5 NGINX Ingress Controller's ConfigMap in its static manifests, used when none is named.
pub const DEFAULT_NIC_CONFIGMAP: &str = "nginx-ingress/nginx-config";

#[derive(Debug, Args)]
pub struct ControllerArgs {
    /// Serve /healthz, /readyz and /metrics (plain HTTP) here.
    #[arg(long, value_name = "ADDR", default_value = "0.0.0.0:8080")]
    pub listen: SocketAddr,
    /// Watch Ingresses only in this namespace (repeatable; default: all namespaces).
    #[arg(long = "namespace", value_name = "NS")]
    pub namespaces: Vec<String>,
    /// Skip Ingresses in namespaces matching this label selector, e.g.
    /// `snippet-guard.io/ignore=true` (needs list/watch on namespaces).
    #[arg(long, value_name = "SELECTOR")]
    pub exclude_namespace_selector: Option<String>,
    /// Namespace of the leader-election Lease (default: POD_NAMESPACE, else `default`).
    #[arg(long, value_name = "NS", env = "POD_NAMESPACE")]
    pub lease_namespace: Option<String>,
    /// Name of the leader-election Lease.
    #[arg(long, value_name = "NAME", default_value = "snippet-guard-controller")]
    pub lease_name: String,
    /// ConfigMap in the Lease's namespace where the leader keeps what it has published, so
    /// that the next leader neither publishes it again nor misses a fix made meanwhile (the
    /// chart creates it; without it a new leader publishes every finding again).
    #[arg(long, value_name = "NAME")]
    pub state_configmap: Option<String>,
    /// Identity of this replica in the Lease and in the Events' `reportingInstance`
    /// (default: POD_NAME, else the host name and process id).
    #[arg(long, value_name = "ID", env = "POD_NAME")]
    pub identity: Option<String>,
    /// Seconds a Lease lasts without renewal: the longest a failed leader is not replaced.
    #[arg(long, value_name = "SECONDS", default_value_t = 15)]
    pub lease_duration: u64,
    /// Seconds before expiry at which the leader renews (less than --lease-duration).
    #[arg(long, value_name = "SECONDS", default_value_t = 5)]
    pub lease_grace: u64,
    /// Log format on stderr (`RUST_LOG` filters).
    #[arg(long, value_enum, default_value_t = LogFormat::Text)]
    pub log_format: LogFormat,
    /// Kubeconfig file (default: in-cluster, then KUBECONFIG or ~/.kube/config).
    #[arg(long, value_name = "FILE")]
    pub kubeconfig: Option<PathBuf>,
    /// Kubeconfig context (default: the current one).
    #[arg(long, value_name = "NAME")]
    pub context: Option<String>,
    #[command(flatten)]
    pub check: CheckArgs,
}

fn default_identity() -> String {
    let host = std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map_or_else(|_| "snippet-guard".into(), |h| h.trim().to_string());
    format!("{host}-{}", std::process::id())
}

/// A kube client from `--kubeconfig`/`--context`, else the usual inference (in-cluster
/// service account, then KUBECONFIG or ~/.kube/config).
pub async fn client(kubeconfig: Option<&PathBuf>, context: Option<&str>) -> Result<kube::Client> {
    // One TLS provider for the whole process, whatever else links rustls.
    let _ = rustls::crypto::ring::default_provider().install_default();
    let options = kube::config::KubeConfigOptions {
        context: context.map(str::to_string),
        ..Default::default()
    };
    let config = match kubeconfig {
        Some(path) => {
            let kc = kube::config::Kubeconfig::read_from(path)
                .with_context(|| format!("reading {}", path.display()))?;
            kube::Config::from_custom_kubeconfig(kc, &options).await?
        }
        None if context.is_some() => kube::Config::from_kubeconfig(&options).await?,
        None => kube::Config::infer()
            .await
            .context("no Kubernetes configuration (in-cluster or kubeconfig)")?,
    };
    Ok(kube::Client::try_from(without_client_retries(config))?)
}

/// No retries inside the kube client: every caller retries on its own terms, visibly (the
/// watches with [`crate::k8s::backoff`], Event writes in the queue, which counts them
/// and honours `Retry-After`, the Lease on its renewal period). kube's built-in layer would
/// retry a 429, 503 or 504 up to 15 times for minutes, unseen, before any of them knew.
#[must_use]
pub fn without_client_retries(mut config: kube::Config) -> kube::Config {
    config.default_retry = false;
    config
}

pub fn run(args: &ControllerArgs) -> Result<ExitStatus> {
    telemetry::init(args.log_format, "info");
    let mut check = args.check.clone();
    if check.controller_configmap.is_empty() {
        check
            .controller_configmap
            .push(DEFAULT_CONTROLLER_CONFIGMAP.to_string());
    }
    let nic =
        check.controllers.is_empty() || check.controllers.iter().any(|c| c == "f5-nginx-ingress");
    if nic && check.nic_configmap.is_empty() {
        check.nic_configmap.push(DEFAULT_NIC_CONFIGMAP.to_string());
    }
    let settings = check.settings()?;
    let controllers = check
        .controller_configmap
        .iter()
        .map(|s| (s, "--controller-configmap"))
        .chain(check.nic_configmap.iter().map(|s| (s, "--nic-configmap")))
        .map(|(s, flag)| parse_ns_name(s).with_context(|| format!("{flag} `{s}`")))
        .collect::<Result<Vec<_>>>()?;
    if args.lease_grace == 0 || args.lease_grace >= args.lease_duration {
        bail!("--lease-grace must be at least 1 and less than --lease-duration");
    }
    if let Some(sel) = &args.exclude_namespace_selector
        && sel.trim().is_empty()
    {
        bail!("--exclude-namespace-selector is empty");
    }
    let identity = args.identity.clone().unwrap_or_else(default_identity);
    let options = Options {
        settings,
        controllers,
        namespaces: args.namespaces.clone(),
        exclude_namespace_selector: args.exclude_namespace_selector.clone(),
        lease: LeaseConfig {
            namespace: args
                .lease_namespace
                .clone()
                .unwrap_or_else(|| "default".into()),
            name: args.lease_name.clone(),
            identity,
            duration: args.lease_duration,
            grace: args.lease_grace,
        },
        state_configmap: args.state_configmap.clone(),
        listen: args.listen,
        reporter: "snippet-guard".into(),
    };
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .context("starting the async runtime")?;
    runtime.block_on(async {
        let client = client(args.kubeconfig.as_ref(), args.context.as_deref()).await?;
        tracing::info!(
            namespaces = ?options.namespaces,
            controller_configmaps = ?options.controllers,
            lease = %format!("{}/{}", options.lease.namespace, options.lease.name),
            identity = %options.lease.identity,
            "starting the controller"
        );
        run::run(client, options, run::os_signal()).await?;
        Ok::<_, anyhow::Error>(())
    })?;
    Ok(ExitStatus::Success)
}
