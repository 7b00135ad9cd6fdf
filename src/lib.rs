//! snippet-guard: finds nginx snippets that make ingress-nginx send a forwarding header twice.
//!
//! The engine is pure: [`input`] turns files or API objects into a [`model::Workspace`],
//! [`check`] runs the rules, [`render`] prints the findings. Nothing here uses a Kubernetes
//! client, tokio or HTTP.
//!
//! ```
//! use snippet_guard::{check, input, Settings};
//! let mut ws = snippet_guard::model::Workspace::new();
//! let yaml = "apiVersion: networking.k8s.io/v1\nkind: Ingress\nmetadata:\n  name: web\n  annotations:\n    nginx.ingress.kubernetes.io/configuration-snippet: |\n      proxy_set_header X-Forwarded-Proto $scheme;\n";
//! input::add_text(&mut ws, "web.yaml", yaml, input::Format::Auto);
//! let findings = check(&ws, &Settings::default());
//! assert_eq!(findings[0].rule.id, "redundant-forwarded-proto");
//! ```

pub mod cli;
pub mod diagnostic;
pub mod engine;
pub mod input;
pub mod k8s;
pub mod model;
pub mod nginx;
pub mod profile;
pub mod render;
pub mod rules;
pub mod source;
pub mod telemetry;
pub mod threads;

pub use diagnostic::{Diagnostic, ObjectRef, Severity};
pub use engine::{Settings, check};
