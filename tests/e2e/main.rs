//! End-to-end tests against a real cluster. They run only when `KUBECONFIG` is set and are
//! `#[ignore]`d otherwise: `KUBECONFIG=~/.kube/config cargo test --test e2e -- --ignored`.

mod controller;
mod install;
mod ngf;
mod nic;
mod recovery;
mod webhook;
