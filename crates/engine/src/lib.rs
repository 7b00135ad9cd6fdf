//! The analysis engine of snippet-guard: finds nginx snippets that make an nginx-based ingress
//! controller send a forwarding header twice.
//!
//! Nothing here uses a Kubernetes client, tokio, HTTP or a command-line parser; the crate's
//! dependencies keep it that way. [`input`] turns files (with positions) or API objects (without)
//! into a [`model::Workspace`], [`check`] runs the rules, [`render`] prints the findings.
//!
//! ```
//! use snippet_guard_engine::{check, input, Settings};
//! let mut ws = snippet_guard_engine::model::Workspace::new();
//! let yaml = "apiVersion: networking.k8s.io/v1\nkind: Ingress\nmetadata:\n  name: web\n  annotations:\n    nginx.ingress.kubernetes.io/configuration-snippet: |\n      proxy_set_header X-Forwarded-Proto $scheme;\n";
//! input::add_text(&mut ws, "web.yaml", yaml, input::Format::Auto);
//! let findings = check(&ws, &Settings::default());
//! assert_eq!(findings[0].rule.id, "redundant-forwarded-proto");
//! ```

pub mod diagnostic;
pub mod edit;
pub mod engine;
pub mod fix;
pub mod headers;
pub mod input;
pub mod model;
pub mod nginx;
pub mod profile;
pub mod registry;
pub mod render;
pub mod rules;
pub mod settings;
pub mod source;
pub mod threads;

pub use diagnostic::{Diagnostic, ObjectRef, Severity};
pub use engine::{Context, Settings, check};
