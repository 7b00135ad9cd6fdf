//! The HTTPS server: `POST /validate`, `GET /healthz`, `GET /readyz` on the TLS port, and
//! `GET /metrics` in plain HTTP on a second port.

use std::io;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use axum::Router;
use axum::body::Body;
use axum::extract::{Request, State as AxumState};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum_server::Handle;
use axum_server::tls_rustls::RustlsConfig;
use futures::StreamExt;
use kube::core::admission::AdmissionResponse;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

use super::error::Error;
use super::metrics::Metrics;
use super::review::{Decision, Outcome, Policy, review};
use crate::k8s::configmap_cache::ConfigMapCache;
use crate::k8s::tls::CertStore;

/// How long a client has to send its request head.
pub const HEADER_READ_TIMEOUT: Duration = Duration::from_secs(30);

/// Bodies larger than this are judged on the blocking pool, so that a huge review cannot hold
/// an async worker (and with it `/healthz`) for long; typical reviews (a few kB) stay inline.
pub const INLINE_REVIEW_MAX_BYTES: usize = 64 * 1024;

/// At most this many findings are spelt out in one decision log line (`findings` counts all).
const MAX_LOGGED_MESSAGES: usize = 20;

/// Everything a request needs.
#[derive(Debug)]
pub struct State {
    pub policy: Policy,
    pub cache: ConfigMapCache,
    pub certs: Arc<CertStore>,
    pub metrics: Arc<Metrics>,
    /// Larger bodies get HTTP 413.
    pub max_body_bytes: usize,
    /// A body that takes longer to arrive gets HTTP 400 ([`BODY_READ_TIMEOUT`]).
    pub body_read_timeout: Duration,
    /// Set when shutdown has begun: `/readyz` answers 503 so the pod leaves the Service's
    /// endpoints, while reviews are still served for the shutdown delay.
    pub draining: Arc<AtomicBool>,
}

type Shared = AxumState<Arc<State>>;

/// How long the body of one request may take to arrive, by default.
pub const BODY_READ_TIMEOUT: Duration = Duration::from_secs(10);

/// The routes of the TLS port.
pub fn router(state: Arc<State>) -> Router {
    Router::new()
        .route("/validate", post(validate))
        .route("/healthz", get(healthz))
        .route("/readyz", get(readyz))
        .with_state(state)
}

/// The routes of the metrics port.
pub fn metrics_router(state: Arc<State>) -> Router {
    Router::new()
        .route("/metrics", get(metrics))
        .with_state(state)
}

fn json(status: StatusCode, value: &impl serde::Serialize) -> Response {
    match serde_json::to_vec(value) {
        Ok(body) => (status, [(header::CONTENT_TYPE, "application/json")], body).into_response(),
        // Cannot happen for an AdmissionReview; answer something the API server can read.
        Err(e) => (StatusCode::INTERNAL_SERVER_ERROR, e.to_string()).into_response(),
    }
}

/// Refuse a request that is not a usable AdmissionReview: 400 (413 for size), with the reason
/// both as an `AdmissionReview` status and readable by a person.
fn refuse(state: &State, status: StatusCode, error: &Error) -> Response {
    state.metrics.error(error.metric_label());
    tracing::warn!(error = %error, status = status.as_u16(), "admission request refused");
    json(
        status,
        &AdmissionResponse::invalid(error.to_string()).into_review(),
    )
}

async fn validate(AxumState(state): Shared, request: Request) -> Response {
    let start = Instant::now();
    let limit = state.max_body_bytes;
    let too_large = || Error::BodyTooLarge { limit };
    let declared = request
        .headers()
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    if declared.is_some_and(|n| n > limit as u64) {
        // Refused from the header alone: the body is never read.
        return refuse(&state, StatusCode::PAYLOAD_TOO_LARGE, &too_large());
    }
    let mut chunks = request.into_body().into_data_stream();
    let mut body = Vec::with_capacity(declared.map_or(0, |n| n as usize));
    let read = async {
        while let Some(chunk) = chunks.next().await {
            match chunk {
                Ok(chunk) if body.len() + chunk.len() > limit => {
                    return Err((StatusCode::PAYLOAD_TOO_LARGE, too_large()));
                }
                Ok(chunk) => body.extend_from_slice(&chunk),
                Err(e) => return Err((StatusCode::BAD_REQUEST, Error::BodyRead(e.to_string()))),
            }
        }
        Ok(())
    };
    // The API server sends the whole body at once; a client that trickles it does not get to
    // hold a connection and a buffer for long.
    match tokio::time::timeout(state.body_read_timeout, read).await {
        Ok(Ok(())) => {}
        Ok(Err((status, error))) => return refuse(&state, status, &error),
        Err(_) => {
            let error =
                Error::BodyRead(format!("not received within {:?}", state.body_read_timeout));
            return refuse(&state, StatusCode::BAD_REQUEST, &error);
        }
    }
    let context = state.cache.snapshot().context(&state.policy);
    let judged = if body.len() > INLINE_REVIEW_MAX_BYTES {
        let state = state.clone();
        tokio::task::spawn_blocking(move || review(&state.policy, &context, &body))
            .await
            .unwrap_or_else(|e| Err(Error::Internal(e.to_string())))
    } else {
        review(&state.policy, &context, &body)
    };
    match judged {
        Ok(outcome) => {
            let elapsed = start.elapsed();
            log_decision(&outcome, state.policy.mode.as_str(), elapsed);
            state.metrics.observe(&outcome, elapsed.as_secs_f64());
            json(StatusCode::OK, &outcome.review)
        }
        Err(e) => refuse(&state, StatusCode::BAD_REQUEST, &e),
    }
}

/// One log line per decision: `warn` for a denial, `error` for an internal failure, else `info`.
fn log_decision(o: &Outcome, mode: &str, elapsed: Duration) {
    let rules: Vec<&str> = o
        .findings
        .iter()
        .take(MAX_LOGGED_MESSAGES)
        .map(|f| f.rule)
        .collect();
    let texts: Vec<&str> = o
        .findings
        .iter()
        .take(MAX_LOGGED_MESSAGES)
        .map(|f| f.text.as_str())
        .collect();
    let micros = u64::try_from(elapsed.as_micros()).unwrap_or(u64::MAX);
    macro_rules! decision {
        ($level:ident) => {
            tracing::$level!(
                uid = %o.uid,
                operation = o.operation,
                kind = %o.kind,
                namespace = o.namespace.as_deref().unwrap_or(""),
                name = %o.name,
                dry_run = o.dry_run,
                mode,
                decision = o.decision.as_str(),
                skip_reason = o.skip_reason.unwrap_or(""),
                findings = o.findings.len(),
                rules = ?rules,
                messages = ?texts,
                internal_error = o.internal_error.as_deref().unwrap_or(""),
                latency_us = micros,
                "admission decision"
            )
        };
    }
    match o.decision {
        Decision::Deny => decision!(warn),
        Decision::Error => decision!(error),
        _ => decision!(info),
    }
}

async fn healthz() -> &'static str {
    "ok\n"
}

async fn readyz(AxumState(state): Shared) -> (StatusCode, String) {
    if state.draining.load(Ordering::Relaxed) {
        return (
            StatusCode::SERVICE_UNAVAILABLE,
            "not ready: shutting down\n".into(),
        );
    }
    let cert = state.certs.is_loaded();
    let cache = state.cache.is_synced();
    if cert && cache {
        (StatusCode::OK, "ok\n".into())
    } else {
        let mut why = Vec::new();
        if !cert {
            why.push("no serving certificate loaded");
        }
        if !cache {
            why.push("ConfigMap cache not synced");
        }
        (
            StatusCode::SERVICE_UNAVAILABLE,
            format!("not ready: {}\n", why.join(", ")),
        )
    }
}

async fn metrics(AxumState(state): Shared) -> Response {
    state
        .metrics
        .set_configmaps(state.cache.snapshot().objects.len());
    (
        [(
            header::CONTENT_TYPE,
            "application/openmetrics-text; version=1.0.0; charset=utf-8",
        )],
        Body::from(state.metrics.encode()),
    )
        .into_response()
}

/// Where to listen, and how long in-flight requests get at shutdown.
#[derive(Debug, Clone)]
pub struct ServerOptions {
    pub listen: SocketAddr,
    /// `None`: no metrics port.
    pub metrics_listen: Option<SocketAddr>,
    pub shutdown_timeout: Duration,
}

/// A started server.
#[derive(Debug)]
pub struct Running {
    /// The bound TLS address (port 0 resolved).
    pub addr: SocketAddr,
    pub metrics_addr: Option<SocketAddr>,
    handle: Handle<SocketAddr>,
    shutdown_timeout: Duration,
    metrics_stop: Option<oneshot::Sender<()>>,
    https: JoinHandle<io::Result<()>>,
    metrics: Option<JoinHandle<io::Result<()>>>,
}

/// Bind both ports and serve; returns once listening.
pub async fn start(state: Arc<State>, options: &ServerOptions) -> io::Result<Running> {
    let listener = std::net::TcpListener::bind(options.listen)?;
    listener.set_nonblocking(true)?;
    let addr = listener.local_addr()?;
    let tls = RustlsConfig::from_config(state.certs.server_config());
    let handle = Handle::new();
    let mut server = axum_server::from_tcp_rustls(listener, tls)?
        .handle(handle.clone())
        .http1_only();
    // Without a timer hyper has no header timeout at all: a client that completes TLS and then
    // sends half a request head would keep its connection forever. (It also closes keep-alive
    // connections idle for this long; the API server reconnects.)
    server
        .http_builder()
        .http1()
        .timer(hyper_util::rt::TokioTimer::new())
        .header_read_timeout(HEADER_READ_TIMEOUT);
    let app = router(state.clone());
    let https = tokio::spawn(async move { server.serve(app.into_make_service()).await });

    let (metrics_addr, metrics_stop, metrics) = match options.metrics_listen {
        Some(m) => {
            let listener = tokio::net::TcpListener::bind(m).await?;
            let bound = listener.local_addr()?;
            let (tx, rx) = oneshot::channel::<()>();
            let app = metrics_router(state);
            let task = tokio::spawn(async move {
                axum::serve(listener, app)
                    .with_graceful_shutdown(async move {
                        let _ = rx.await;
                    })
                    .await
            });
            (Some(bound), Some(tx), Some(task))
        }
        None => (None, None, None),
    };
    Ok(Running {
        addr,
        metrics_addr,
        handle,
        shutdown_timeout: options.shutdown_timeout,
        metrics_stop,
        https,
        metrics,
    })
}

impl Running {
    /// Stop accepting connections; requests in flight finish (for at most the shutdown
    /// timeout), idle keep-alive connections are closed.
    pub fn shutdown(&mut self) {
        self.handle.graceful_shutdown(Some(self.shutdown_timeout));
        if let Some(tx) = self.metrics_stop.take() {
            let _ = tx.send(());
        }
    }

    /// Wait until both servers have stopped.
    pub async fn wait(self) -> io::Result<()> {
        let join = |r: Result<io::Result<()>, tokio::task::JoinError>| {
            r.map_err(io::Error::other).and_then(|r| r)
        };
        join(self.https.await)?;
        if let Some(m) = self.metrics {
            join(m.await)?;
        }
        Ok(())
    }
}
