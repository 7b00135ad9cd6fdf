//! The Kubernetes layer: the admission webhook, the controller and the cluster audit. Only this
//! module and `cli` use kube, tokio and axum; the engine stays pure.
//!
//! Objects reach the engine the same way files do: serialized to JSON and read by
//! [`crate::input::add_text`], so the webhook, the controller and `lint` share one code path and
//! one wording.

pub mod audit;
pub mod configmap_cache;
pub mod controller;
pub mod events;
#[cfg(test)]
pub mod fixtures;
pub mod leader;
pub mod refs;
pub mod tls;
pub mod webhook;
