//! The Kubernetes layer: the admission webhook, the controller and the cluster audit. Only this
//! module and `cli` use kube, tokio and axum; the engine stays pure.
//!
//! Objects reach the engine as the rules' model ([`crate::model`]), the same objects `lint`
//! builds from files, so every path shares one wording. Typed API objects (k8s-openapi for the
//! controller and `audit`, the decoded review for the webhook) go through one mapping,
//! [`objects`]; no YAML is written or read back. The webhook and the controller keep an engine
//! [`crate::engine::Context`] per configuration change and check one object per request or
//! event.

pub mod audit;
pub mod backoff;
pub mod configmap_cache;
pub mod controller;
pub mod events;
#[cfg(test)]
pub mod fixtures;
pub mod leader;
pub mod managed_tls;
pub mod objects;
pub mod reflected;
pub mod refs;
pub mod tls;
pub mod webhook;
