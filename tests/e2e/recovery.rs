//! Recovery after an API server restart, on a real cluster: runs only when `KUBECONFIG` is set
//! and `SNIPPET_GUARD_E2E_RESTART_CMD` says how to restart the API server (a shell command that
//! returns once it serves again, e.g. with the local kit:
//! `/work/kit/stop.sh && sleep 45 && KEEP=1 /work/kit/start.sh`); skipped otherwise.
//!
//! The controller binary watches a namespace of its own; a bad Ingress gets its Warning; the
//! restart command runs; once the API server is gone, the test tries to create a second bad
//! Ingress every 0.2 s until the API server takes it, and its Warning must be there within
//! 10 s of that. The first Ingress's Warning must not be
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

    let started = Instant::now();
    let mut restart = std::process::Command::new("sh")
        .args(["-c", restart])
        .spawn()
        .expect("run SNIPPET_GUARD_E2E_RESTART_CMD");
    // Wait until the API server is gone, then create `after` the moment it takes writes again.
    let namespaces: Api<Namespace> = Api::all(client.clone());
    let short = Duration::from_secs(2);
    loop {
        let up = tokio::time::timeout(short, namespaces.get(namespace)).await;
        if !matches!(up, Ok(Ok(_))) {
            break;
        }
        assert!(
            started.elapsed() < Duration::from_secs(120),
            "the API server never went down"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let down = Instant::now();
    loop {
        let created = tokio::time::timeout(
            short,
            ingresses.create(&PostParams::default(), &bad_ingress(namespace, "after")),
        )
        .await;
        if matches!(created, Ok(Ok(_))) {
            break;
        }
        assert!(
            started.elapsed() < Duration::from_secs(900),
            "the API server never came back"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let applied = Instant::now();
    let outage = applied - down;
    let (after, _) = warnings_about(client, namespace, "after", Duration::from_secs(120)).await;
    let recovery = applied.elapsed();
    let status = restart.wait().expect("the restart command ends");
    assert!(
        status.success(),
        "SNIPPET_GUARD_E2E_RESTART_CMD failed: {status}"
    );
    eprintln!(
        "API server unreachable for {:.1} s; the Ingress created the moment it took writes again got its Warning {:.1} s later (the restart command took {:.1} s)",
        outage.as_secs_f64(),
        recovery.as_secs_f64(),
        started.elapsed().as_secs_f64(),
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
