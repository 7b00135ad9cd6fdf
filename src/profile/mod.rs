//! What each controller renders around user snippets.
pub mod ingress_nginx;
