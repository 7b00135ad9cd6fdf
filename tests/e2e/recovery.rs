//! Recovery after an API server restart, on a real cluster: runs only when `KUBECONFIG` is set
//! and `SNIPPET_GUARD_E2E_RESTART_CMD` says how to restart the API server (a shell command that
//! returns once it serves again, e.g. with the local kit:
//! `/work/kit/stop.sh && sleep 45 && KEEP=1 /work/kit/start.sh`); skipped otherwise.
//!
//! The controller binary watches a namespace of its own; a bad Ingress gets its Warning; the
//! API server is restarted; right after the command returns a second bad Ingress is applied,
//! and its Warning must be there within 10 s. The first Ingress's Warning must not be
//! published again (no second Event, no series). Namespaces are named
//! `$SNIPPET_GUARD_E2E_NAMESPACE_PREFIX-rec-PID` (prefix `snippet-guard-e2e` by default).
//!
//! `KUBECONFIG=... SNIPPET_GUARD_E2E_RESTART_CMD='...' cargo test --test e2e recovery -- --ignored --nocapture`

use std::time::{Duration, Instant};

use k8s_openapi::api::core::v1::Namespace;
use k8s_openapi::api::events::v1::Event;
use k8s_openapi::api::networking::v1::Ingress;
use kube::api::{DeleteParams, ListParams, PostParams};
use kube::{Api, Client};

use crate::controller::Controller;

/// The recovery bound of the issue: a new object's Event within 10 s of the API server's return.
const BOUND: Duration = Duration::from_secs(10);

fn bad_ingress(namespace: &str, name: &str) -> Ingress {
    serde_json::from_value(serde_json::json!({
        "apiVersion": "networking.k8s.io/v1",
        "kind": "Ingress",
        "metadata": {
            "name": name,
            "namespace": namespace,
            "annotations": {
                "nginx.ingress.kubernetes.io/configuration-snippet":
                    "proxy_set_header X-Forwarded-Proto $scheme;\n",
            },
        },
        "spec": {
            "ingressClassName": "nginx",
            "rules": [{"host": "api.example.com", "http": {"paths": [{"path": "/", "pathType": "Prefix",
                "backend": {"service": {"name": "django", "port": {"number": 8000}}}}]}}],
        },
    }))
    .expect("an Ingress")
}

/// The snippet-guard Warnings about `name`, polled until there is one or `within` passes; the
/// time it took.
async fn warnings_about(
    client: &Client,
    namespace: &str,
    name: &str,
    within: Duration,
) -> (Vec<Event>, Duration) {
    let api: Api<Event> = Api::namespaced(client.clone(), namespace);
    let started = Instant::now();
    loop {
        // The API server may still be settling: a failed list is retried like an empty one.
        let events: Vec<Event> = api
            .list(&ListParams::default())
            .await
            .map(|l| l.items)
            .unwrap_or_default()
            .into_iter()
            .filter(|e| {
                e.type_.as_deref() == Some("Warning")
                    && e.reporting_controller.as_deref() == Some("snippet-guard")
                    && e.regarding.as_ref().and_then(|r| r.name.as_deref()) == Some(name)
            })
            .collect();
        if !events.is_empty() || started.elapsed() > within {
            return (events, started.elapsed());
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

async fn scenario(client: &Client, namespace: &str, restart: &str) {
    let controller = Controller::start(namespace);
    let ingresses: Api<Ingress> = Api::namespaced(client.clone(), namespace);
    ingresses
        .create(&PostParams::default(), &bad_ingress(namespace, "before"))
        .await
        .expect("create `before`");
    let (before, _) = warnings_about(client, namespace, "before", Duration::from_secs(90)).await;
    assert_eq!(before.len(), 1, "the Warning of `before`");

    let stopped = Instant::now();
    let status = std::process::Command::new("sh")
        .args(["-c", restart])
        .status()
        .expect("run SNIPPET_GUARD_E2E_RESTART_CMD");
    assert!(
        status.success(),
        "SNIPPET_GUARD_E2E_RESTART_CMD failed: {status}"
    );
    let outage = stopped.elapsed();
    let applied = Instant::now();
    // The API server answers again; the create itself may need a retry while it settles.
    let mut tries = 0;
    while let Err(e) = ingresses
        .create(&PostParams::default(), &bad_ingress(namespace, "after"))
        .await
    {
        tries += 1;
        assert!(tries < 50, "cannot create `after`: {e}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let (after, _) = warnings_about(client, namespace, "after", Duration::from_secs(120)).await;
    let recovery = applied.elapsed();
    eprintln!(
        "restart command took {:.1} s; the new Ingress's Warning came {:.1} s after the command returned",
        outage.as_secs_f64(),
        recovery.as_secs_f64()
    );
    assert_eq!(after.len(), 1, "the Warning of `after`");
    assert!(recovery <= BOUND, "recovery took {recovery:?}");
    // Give a republication a chance to show, then check there was none.
    tokio::time::sleep(Duration::from_secs(5)).await;
    let (before, _) = warnings_about(client, namespace, "before", Duration::ZERO).await;
    assert_eq!(before.len(), 1, "{before:#?}");
    assert!(before[0].series.is_none(), "published again: {before:#?}");
    drop(controller);
}

#[tokio::test]
#[ignore = "needs a cluster and SNIPPET_GUARD_E2E_RESTART_CMD"]
async fn controller_recovers_within_10_s_after_an_api_server_restart() {
    let (Some(_), Some(restart)) = (
        std::env::var_os("KUBECONFIG"),
        std::env::var("SNIPPET_GUARD_E2E_RESTART_CMD").ok(),
    ) else {
        eprintln!("skipped: needs KUBECONFIG and SNIPPET_GUARD_E2E_RESTART_CMD");
        return;
    };
    let _ = rustls::crypto::ring::default_provider().install_default();
    let client = Client::try_default()
        .await
        .expect("a client from KUBECONFIG");
    let prefix = std::env::var("SNIPPET_GUARD_E2E_NAMESPACE_PREFIX")
        .unwrap_or_else(|_| "snippet-guard-e2e".into());
    let namespace = format!("{prefix}-rec-{:x}", std::process::id());
    let namespaces: Api<Namespace> = Api::all(client.clone());
    let mut ns = Namespace::default();
    ns.metadata.name = Some(namespace.clone());
    namespaces
        .create(&PostParams::default(), &ns)
        .await
        .expect("create the test namespace");
    let result = tokio::spawn({
        let (client, namespace) = (client.clone(), namespace.clone());
        async move { scenario(&client, &namespace, &restart).await }
    })
    .await;
    let _ = namespaces
        .delete(&namespace, &DeleteParams::default())
        .await;
    if let Err(e) = result {
        std::panic::resume_unwind(e.into_panic());
    }
}
