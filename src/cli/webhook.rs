//! `snippet-guard webhook`: serve the validating admission webhook over HTTPS.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context as _, Result};
use clap::Args;

use crate::cli::ExitStatus;
use crate::cli::lint::CheckArgs;
use crate::k8s::configmap_cache::{ConfigMapCache, parse_ns_name};
use crate::k8s::managed_tls::ManagedTls;
use crate::k8s::tls::{self, CertStore, PemFiles};
use crate::k8s::webhook::metrics::Metrics;
use crate::k8s::webhook::{self, Mode, Policy, ServerOptions, State};
use crate::telemetry::LogFormat;

/// `kubectl apply` of an Ingress with a finding is denied (enforce), admitted with warnings
/// (warn) or admitted and only logged (audit).
#[derive(Debug, Args)]
#[command(
    mut_arg("controller_configmap", |a| a.help(
        "The ingress-nginx controller ConfigMap as NAMESPACE/NAME (repeatable), watched through \
the Kubernetes API (with the ConfigMap its `proxy-set-headers` key names) so that Ingresses are \
judged in its context; needs get/list/watch on ConfigMaps there. Without it, Ingresses are judged \
with ingress-nginx defaults and a reviewed ConfigMap is recognised by name, labels or keys"
    )),
    after_help = "Endpoints: POST /validate (admission.k8s.io/v1 AdmissionReview), GET /healthz and \
GET /readyz on the TLS port; GET /metrics (Prometheus) on the metrics port. Logs go to stderr, \
filtered by RUST_LOG (default: info). SIGTERM turns readiness off and keeps serving for \
--shutdown-delay, then stops accepting connections, lets requests in flight finish, and exits 0.\n\nDevelopment: `snippet-guard webhook --self-signed --listen \
127.0.0.1:8443 --ca-bundle-out ca.crt` serves a throwaway certificate; point a \
ValidatingWebhookConfiguration at `clientConfig.url: https://127.0.0.1:8443/validate` with \
`caBundle` = base64 of ca.crt."
)]
pub struct WebhookArgs {
    /// Address of the HTTPS port (`/validate`, `/healthz`, `/readyz`).
    #[arg(long, value_name = "ADDR", default_value = "0.0.0.0:8443")]
    pub listen: SocketAddr,
    /// Address of the plain-HTTP metrics port (`/metrics`).
    #[arg(long, value_name = "ADDR", default_value = "0.0.0.0:9090")]
    pub metrics_listen: SocketAddr,
    /// PEM certificate chain, leaf first. Reloaded without a restart when it changes (a
    /// mounted Secret swapping its `..data` symlink included).
    #[arg(
        long,
        value_name = "PATH",
        required_unless_present_any = ["self_signed", "tls_secret"],
        conflicts_with_all = ["self_signed", "tls_secret"],
        requires = "tls_key_file"
    )]
    pub tls_cert_file: Option<PathBuf>,
    /// PEM private key of the certificate (PKCS#8, PKCS#1 or SEC1).
    #[arg(
        long,
        value_name = "PATH",
        required_unless_present_any = ["self_signed", "tls_secret"],
        conflicts_with_all = ["self_signed", "tls_secret"],
        requires = "tls_cert_file"
    )]
    pub tls_key_file: Option<PathBuf>,
    /// Seconds between looks at the certificate files for a renewal; a broken new pair is
    /// logged and the old one kept.
    #[arg(long, value_name = "SECONDS", default_value = "10", value_parser = parse_seconds)]
    pub tls_reload_interval: Duration,
    /// Manage the serving certificate in this Secret (NAMESPACE/NAME, which must exist; the
    /// chart renders it empty): the first replica mints a CA and a certificate for the --san
    /// names into it, every replica serves it, keeps the `caBundle` of
    /// --webhook-configuration equal to its CA and renews it before expiry. Needs get and
    /// update on that Secret and that ValidatingWebhookConfiguration.
    #[arg(
        long,
        value_name = "NAMESPACE/NAME",
        conflicts_with = "self_signed",
        requires = "webhook_configuration"
    )]
    pub tls_secret: Option<String>,
    /// The ValidatingWebhookConfiguration whose `caBundle` --tls-secret keeps current.
    #[arg(long, value_name = "NAME", requires = "tls_secret")]
    pub webhook_configuration: Option<String>,
    /// Days a certificate minted for --tls-secret lasts.
    #[arg(long, value_name = "DAYS", default_value_t = 365, value_parser = clap::value_parser!(u64).range(1..=36_500))]
    pub tls_cert_validity_days: u64,
    /// Days the CA minted for --tls-secret lasts (renewed once it would expire before a new
    /// certificate).
    #[arg(long, value_name = "DAYS", default_value_t = 3650, value_parser = clap::value_parser!(u64).range(1..=36_500))]
    pub tls_ca_validity_days: u64,
    /// Days before expiry at which a --tls-secret certificate is renewed.
    #[arg(long, value_name = "DAYS", default_value_t = 30, value_parser = clap::value_parser!(u64).range(0..=36_500))]
    pub tls_renew_before_days: u64,
    /// Seconds between reads of the --tls-secret Secret (to serve a certificate another replica
    /// renewed, and to renew).
    #[arg(long, value_name = "SECONDS", default_value = "60", value_parser = parse_seconds)]
    pub tls_check_interval: Duration,
    /// Serve a throwaway certificate signed by a throwaway CA, made at start (development and
    /// tests), instead of --tls-cert-file/--tls-key-file.
    #[arg(long)]
    pub self_signed: bool,
    /// Subject alternative name of the --self-signed or --tls-secret certificate: DNS name or
    /// IP address (repeatable).
    #[arg(long, value_name = "NAME", default_values = ["localhost", "127.0.0.1"])]
    pub san: Vec<String>,
    /// With --self-signed, write the CA certificate (PEM) here: base64 of it is the
    /// `caBundle` of a ValidatingWebhookConfiguration.
    #[arg(long, value_name = "PATH", requires = "self_signed")]
    pub ca_bundle_out: Option<PathBuf>,
    /// What a finding does.
    #[arg(long, value_enum, default_value_t = Mode::Enforce)]
    pub mode: Mode,
    /// On UPDATE, a finding the old object already had is a warning, not a denial, so old
    /// debt does not block unrelated edits.
    #[arg(long)]
    pub only_new_findings: bool,
    /// Largest request body accepted, in bytes; larger ones get HTTP 413.
    #[arg(long, value_name = "BYTES", default_value_t = 3 * 1024 * 1024)]
    pub max_body_bytes: usize,
    /// Seconds to keep serving after SIGTERM before closing the listener, with `/readyz` failing,
    /// so that reviews the API server sends while the pod leaves the Service's endpoints are
    /// still answered. Set the pod's `terminationGracePeriodSeconds` above this delay plus
    /// `--shutdown-timeout`.
    #[arg(long, value_name = "SECONDS", default_value = "0", value_parser = parse_delay)]
    pub shutdown_delay: Duration,
    /// Seconds requests in flight get to finish after SIGTERM.
    #[arg(long, value_name = "SECONDS", default_value = "25", value_parser = parse_seconds)]
    pub shutdown_timeout: Duration,
    /// Log format on stderr.
    #[arg(long, value_enum, default_value_t = LogFormat::Text)]
    pub log_format: LogFormat,
    #[command(flatten)]
    pub check: CheckArgs,
}

fn parse_seconds(s: &str) -> Result<Duration, String> {
    let secs: f64 = s
        .parse()
        .map_err(|_| format!("`{s}` is not a number of seconds"))?;
    if !(0.01..=86_400.0).contains(&secs) {
        return Err(format!("`{s}` is not between 0.01 and 86400 seconds"));
    }
    Ok(Duration::from_secs_f64(secs))
}

/// [`parse_seconds`], or 0 (no delay).
fn parse_delay(s: &str) -> Result<Duration, String> {
    if s.parse::<f64>().is_ok_and(|v| v == 0.0) {
        return Ok(Duration::ZERO);
    }
    parse_seconds(s).map_err(|e| e.replace("between 0.01", "0 or between 0.01"))
}

pub fn run(args: &WebhookArgs) -> Result<ExitStatus> {
    crate::telemetry::init(args.log_format, "info");
    let settings = args.check.settings()?;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("cannot start the tokio runtime")?;
    runtime.block_on(serve(
        args,
        Policy {
            mode: args.mode,
            settings,
            only_new_findings: args.only_new_findings,
        },
    ))?;
    Ok(ExitStatus::Success)
}

async fn serve(args: &WebhookArgs, policy: Policy) -> Result<()> {
    // kube's client and the server both use ring; make it the process default too.
    let _ = rustls::crypto::ring::default_provider().install_default();
    let metrics = Arc::new(Metrics::new());
    let certs = CertStore::new();
    let _reloader = if args.self_signed {
        let minted = tls::self_signed(&args.san)?;
        certs.load_pem(minted.cert_pem.as_bytes(), minted.key_pem.as_bytes())?;
        if let Some(path) = &args.ca_bundle_out {
            std::fs::write(path, &minted.ca_pem)
                .with_context(|| format!("cannot write the CA bundle to {}", path.display()))?;
            tracing::info!(path = %path.display(), sans = ?args.san, "wrote the CA bundle of the self-signed certificate");
        }
        None
    } else if let Some(secret) = &args.tls_secret {
        let (namespace, name) = parse_ns_name(secret)
            .with_context(|| format!("--tls-secret takes NAMESPACE/NAME, got `{secret}`"))?;
        if args.tls_renew_before_days >= args.tls_cert_validity_days {
            anyhow::bail!("--tls-renew-before-days must be less than --tls-cert-validity-days");
        }
        let day = Duration::from_secs(86_400);
        let managed = ManagedTls {
            namespace,
            secret: name,
            webhook_configuration: args
                .webhook_configuration
                .clone()
                .context("--webhook-configuration is required with --tls-secret")?,
            sans: args.san.clone(),
            cert_validity: day * u32::try_from(args.tls_cert_validity_days)?,
            ca_validity: day * u32::try_from(args.tls_ca_validity_days)?,
            renew_before: day * u32::try_from(args.tls_renew_before_days)?,
        };
        let client = crate::cli::controller::client(None, None).await?;
        let m = metrics.clone();
        Some(AbortOnDrop(tokio::spawn(managed.run(
            client,
            certs.clone(),
            args.tls_check_interval,
            move |ok| m.tls_reload(ok),
        ))))
    } else {
        let files = PemFiles {
            cert: args
                .tls_cert_file
                .clone()
                .context("--tls-cert-file is required")?,
            key: args
                .tls_key_file
                .clone()
                .context("--tls-key-file is required")?,
            interval: args.tls_reload_interval,
        };
        let m = metrics.clone();
        Some(AbortOnDrop(tokio::spawn(tls::watch_files(
            certs.clone(),
            files,
            move |r| m.tls_reload(r.is_ok()),
        ))))
    };
    let controllers = args
        .check
        .controller_configmap
        .iter()
        .map(|c| (c, "--controller-configmap"))
        .chain(
            args.check
                .nic_configmap
                .iter()
                .map(|c| (c, "--nic-configmap")),
        )
        .map(|(c, flag)| {
            parse_ns_name(c).with_context(|| format!("{flag} takes NAMESPACE/NAME, got `{c}`"))
        })
        .collect::<Result<Vec<_>>>()?;
    let cache = if controllers.is_empty() {
        ConfigMapCache::empty()
    } else {
        let config = kube::Config::infer().await.context(
            "cannot configure a Kubernetes client (needed to watch --controller-configmap)",
        )?;
        // The reflectors retry on their own bounded backoff (crate::k8s::backoff).
        let client =
            kube::Client::try_from(crate::cli::controller::without_client_retries(config))?;
        ConfigMapCache::watch(client, controllers)
    };
    let mode = policy.mode.as_str();
    let state = Arc::new(State {
        policy,
        cache,
        certs,
        metrics,
        max_body_bytes: args.max_body_bytes,
        body_read_timeout: webhook::BODY_READ_TIMEOUT,
        draining: Arc::default(),
    });
    let options = ServerOptions {
        listen: args.listen,
        metrics_listen: Some(args.metrics_listen),
        shutdown_timeout: args.shutdown_timeout,
    };
    let mut running = webhook::start(state.clone(), &options)
        .await
        .with_context(|| {
            format!(
                "cannot listen on {} and {}",
                args.listen, args.metrics_listen
            )
        })?;
    tracing::info!(
        addr = %running.addr,
        metrics_addr = %running.metrics_addr.map(|a| a.to_string()).unwrap_or_default(),
        mode,
        "webhook listening"
    );
    shutdown_signal().await?;
    if !args.shutdown_delay.is_zero() {
        // The API server keeps sending reviews to this pod until its endpoint is removed, which
        // takes a few seconds after the pod starts terminating: keep serving them, and leave the
        // endpoints (readiness off) meanwhile. A second signal skips the wait.
        state
            .draining
            .store(true, std::sync::atomic::Ordering::Relaxed);
        tracing::info!(
            delay_seconds = args.shutdown_delay.as_secs_f64(),
            "shutdown delay: not ready, still serving reviews"
        );
        tokio::select! {
            () = tokio::time::sleep(args.shutdown_delay) => {}
            r = shutdown_signal() => r?,
        }
    }
    tracing::info!("shutting down: no new connections, finishing requests in flight");
    running.shutdown();
    running.wait().await.context("server failed")?;
    tracing::info!("stopped");
    Ok(())
}

/// SIGTERM (Kubernetes) or SIGINT (a terminal).
async fn shutdown_signal() -> Result<()> {
    let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
        .context("cannot listen for SIGTERM")?;
    tokio::select! {
        _ = term.recv() => {}
        r = tokio::signal::ctrl_c() => r.context("cannot listen for SIGINT")?,
    }
    Ok(())
}

/// Stops the certificate reloader with the server.
struct AbortOnDrop(tokio::task::JoinHandle<()>);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}
