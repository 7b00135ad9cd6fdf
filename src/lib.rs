//! snippet-guard: finds nginx snippets that make an nginx-based ingress controller send a
//! forwarding header twice.
//!
//! The analysis engine is the `snippet-guard-engine` crate (re-exported here module by module);
//! this crate adds the command line ([`cli`]) and the Kubernetes layer ([`k8s`]: webhook,
//! controller, audit), which read typed API objects and hand them to the engine.

pub use snippet_guard_engine::{
    Diagnostic, ObjectRef, Settings, Severity, check, diagnostic, edit, engine, fix, input, model,
    nginx, profile, render, rules, settings, source, threads,
};

pub mod cli;
pub mod k8s;
pub mod telemetry;
