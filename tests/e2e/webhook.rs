//! Webhook end to end (being built).
