//! Plain HTTP on `--listen`: `/healthz` (the process answers), `/readyz` (every watch has
//! listed once), `/metrics` (Prometheus text).

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use axum::Router;
use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::IntoResponse;
use axum::routing::get;
use tokio::sync::watch;

use super::{ConfigSnapshot, Excluded, Metrics};

/// What the probes look at.
#[derive(Debug, Clone)]
pub struct Health {
    pub metrics: Arc<Metrics>,
    pub config: watch::Receiver<Arc<ConfigSnapshot>>,
    pub excluded: watch::Receiver<Excluded>,
    /// One flag per Ingress watch, set once it has listed.
    pub ingress_synced: Vec<Arc<AtomicBool>>,
}

impl Health {
    /// What is not ready yet (empty when ready).
    #[must_use]
    pub fn pending(&self) -> Vec<&'static str> {
        let mut out = Vec::new();
        if !self.config.borrow().synced {
            out.push("controller ConfigMaps and IngressClasses");
        }
        if self.excluded.borrow().is_none() {
            out.push("excluded namespaces");
        }
        if !self.ingress_synced.iter().all(|f| f.load(Ordering::SeqCst)) {
            out.push("Ingresses");
        }
        out
    }
}

pub fn router(health: Health) -> Router {
    Router::new()
        .route("/healthz", get(|| async { "ok\n" }))
        .route("/readyz", get(readyz))
        .route("/metrics", get(metrics))
        .with_state(Arc::new(health))
}

async fn readyz(State(h): State<Arc<Health>>) -> (StatusCode, String) {
    let pending = h.pending();
    if pending.is_empty() {
        (StatusCode::OK, "ready\n".into())
    } else {
        (
            StatusCode::SERVICE_UNAVAILABLE,
            format!("waiting for the first list of: {}\n", pending.join(", ")),
        )
    }
}

async fn metrics(State(h): State<Arc<Health>>) -> impl IntoResponse {
    (
        [(
            header::CONTENT_TYPE,
            "application/openmetrics-text; version=1.0.0; charset=utf-8",
        )],
        h.metrics.encode(),
    )
}
