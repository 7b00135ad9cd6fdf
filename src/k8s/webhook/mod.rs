//! `snippet-guard webhook`: a validating admission webhook that judges Ingresses and the
//! ingress-nginx ConfigMaps with the same engine, rules and wording as `snippet-guard lint`.
//!
//! - [`review`]: `AdmissionReview` JSON -> engine -> `AdmissionResponse` (pure, tested on
//!   captured reviews);
//! - [`server`]: axum over rustls, health, readiness and metrics, graceful shutdown;
//! - [`crate::k8s::configmap_cache`]: the controller ConfigMaps an Ingress is judged against;
//! - [`crate::k8s::tls`]: the serving certificate, reloaded when the mounted Secret changes.

mod error;
pub mod metrics;
pub mod review;
pub mod server;

pub use error::{Error, Result};
pub use review::{
    ContextObject, Decision, Finding, Mode, Outcome, Policy, context, review, review_in,
};
pub use server::{BODY_READ_TIMEOUT, Running, ServerOptions, State, start};
