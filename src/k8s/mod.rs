//! The Kubernetes layer: the admission webhook, the controller and the cluster audit. Only this
//! module and `cli` use kube, tokio and axum; the engine stays pure.
//!
//! Objects reach the engine as the rules' model ([`crate::model`]), the same objects `lint`
//! builds from files, so every path shares one wording: the controller and `audit` write each
//! trimmed object as a small YAML text read by [`crate::input::add_text`] (findings point at a
//! line), the webhook reads the decoded review directly with [`crate::input::api::add_object`]
//! (it prints no frames, and a review is on the API server's write path).

pub mod audit;
pub mod configmap_cache;
pub mod controller;
pub mod events;
#[cfg(test)]
pub mod fixtures;
pub mod leader;
pub mod reflected;
pub mod refs;
pub mod tls;
pub mod webhook;
