//! F5 NGINX Ingress Controller end to end, against the cluster of `KUBECONFIG`, without NIC: the
//! test installs the two CRDs it needs (VirtualServer, VirtualServerRoute) from a minimal schema
//! of its own when the cluster does not have them, then
//!
//! 1. runs the controller binary limited to a namespace of its own, applies a VirtualServer whose
//!    route `location-snippets` repeat X-Forwarded-Proto, and waits for the Warning Event on the
//!    VirtualServer; fixes it with `requestHeaders.set` and waits for the Normal Event;
//! 2. runs the webhook binary (enforce mode) behind a ValidatingWebhookConfiguration for
//!    `k8s.nginx.org` resources in that namespace: the same VirtualServer is denied with NIC's
//!    wording, the fixed one is admitted.
//!
//! The namespace and the webhook configuration are deleted at the end, also when a step fails;
//! the CRDs too when this test installed them. Every wait is bounded.
//!
//! `KUBECONFIG=~/.kube/config cargo test --test e2e nic -- --ignored --nocapture`

use std::time::{Duration, Instant};

use k8s_openapi::api::admissionregistration::v1::{
    RuleWithOperations, ValidatingWebhook, ValidatingWebhookConfiguration,
};
use k8s_openapi::api::core::v1::Namespace;
use k8s_openapi::api::events::v1::Event;
use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::LabelSelector;
use kube::api::{DeleteParams, GroupVersionKind, ListParams, Patch, PatchParams, PostParams};
use kube::{Api, Client};

use super::controller::Controller;
use super::webhook::Webhook;

const FIELD_MANAGER: &str = "snippet-guard-e2e";
const WAIT: Duration = Duration::from_secs(120);
const WEBHOOK_NAME: &str = "nginx-org.e2e.snippet-guard.io";
const VS: &str = "django-api";

/// A CRD of `k8s.nginx.org/v1` with an open schema: enough for the API server to store the
/// objects (NIC's own CRDs validate far more).
fn crd(kind: &str, plural: &str) -> serde_json::Value {
    serde_json::json!({
        "apiVersion": "apiextensions.k8s.io/v1",
        "kind": "CustomResourceDefinition",
        "metadata": {"name": format!("{plural}.k8s.nginx.org")},
        "spec": {
            "group": "k8s.nginx.org",
            "scope": "Namespaced",
            "names": {
                "kind": kind,
                "listKind": format!("{kind}List"),
                "plural": plural,
                "singular": kind.to_ascii_lowercase(),
            },
            "versions": [{
                "name": "v1", "served": true, "storage": true,
                "schema": {"openAPIV3Schema": {"type": "object", "properties": {
                    "spec": {"type": "object", "x-kubernetes-preserve-unknown-fields": true},
                    "status": {"type": "object", "x-kubernetes-preserve-unknown-fields": true},
                }}},
            }],
        },
    })
}

/// Install the CRDs the cluster lacks; returns the names of those installed here.
async fn install_crds(client: &Client) -> Vec<String> {
    let api: Api<CustomResourceDefinition> = Api::all(client.clone());
    let mut installed = Vec::new();
    for (kind, plural) in [
        ("VirtualServer", "virtualservers"),
        ("VirtualServerRoute", "virtualserverroutes"),
    ] {
        let name = format!("{plural}.k8s.nginx.org");
        if api.get_opt(&name).await.expect("read CRDs").is_some() {
            continue;
        }
        let crd: CustomResourceDefinition =
            serde_json::from_value(crd(kind, plural)).expect("a CRD");
        api.create(&PostParams::default(), &crd)
            .await
            .expect("install the CRD");
        installed.push(name);
    }
    // Served once discovery lists it.
    let deadline = Instant::now() + WAIT;
    let gvk = GroupVersionKind::gvk("k8s.nginx.org", "v1", "VirtualServer");
    while kube::discovery::pinned_kind(client, &gvk).await.is_err() {
        assert!(Instant::now() < deadline, "VirtualServer was never served");
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    installed
}

fn virtual_server(namespace: &str, fixed: bool) -> serde_json::Value {
    let route = if fixed {
        serde_json::json!({"path": "/", "action": {"proxy": {"upstream": "django",
            "requestHeaders": {"set": [{"name": "X-Forwarded-Proto", "value": "https"}]}}}})
    } else {
        serde_json::json!({"path": "/",
            "location-snippets": "proxy_set_header X-Forwarded-Proto $scheme;\n",
            "action": {"pass": "django"}})
    };
    serde_json::json!({
        "apiVersion": "k8s.nginx.org/v1",
        "kind": "VirtualServer",
        "metadata": {"name": VS, "namespace": namespace},
        "spec": {
            "host": "api.example.com",
            "upstreams": [{"name": "django", "service": "django", "port": 8000}],
            "routes": [route],
        },
    })
}

/// What the API server answered to an apply.
struct Answer {
    status: u16,
    body: String,
}

/// Server-side apply of the VirtualServer through the raw client, to see a denial's message.
async fn apply(client: &Client, namespace: &str, fixed: bool, dry_run: bool) -> Answer {
    let url = format!("/apis/k8s.nginx.org/v1/namespaces/{namespace}/virtualservers");
    let mut params = PatchParams::apply(FIELD_MANAGER).force();
    params.dry_run = dry_run;
    let request = kube::core::Request::new(url)
        .patch(VS, &params, &Patch::Apply(virtual_server(namespace, fixed)))
        .expect("build the apply request")
        .map(kube::client::Body::from);
    let response = client.send(request).await.expect("the API server answers");
    let status = response.status().as_u16();
    let body = response
        .into_body()
        .collect_bytes()
        .await
        .expect("read the answer");
    Answer {
        status,
        body: String::from_utf8_lossy(&body).into_owned(),
    }
}

/// Poll the Events of `namespace` until one of `type_` and `reason` is about the VirtualServer.
async fn wait_for_event(client: &Client, namespace: &str, type_: &str, reason: &str) -> Event {
    let api: Api<Event> = Api::namespaced(client.clone(), namespace);
    let deadline = Instant::now() + WAIT;
    loop {
        let events = api
            .list(&ListParams::default())
            .await
            .expect("list Events")
            .items;
        if let Some(e) = events.iter().find(|e| {
            e.type_.as_deref() == Some(type_)
                && e.reason.as_deref() == Some(reason)
                && e.reporting_controller.as_deref() == Some("snippet-guard")
                && e.regarding.as_ref().is_some_and(|r| {
                    r.kind.as_deref() == Some("VirtualServer") && r.name.as_deref() == Some(VS)
                })
        }) {
            return e.clone();
        }
        assert!(
            Instant::now() < deadline,
            "no {type_} {reason} Event on VirtualServer {VS} after {WAIT:?}; have: {:#?}",
            events
                .iter()
                .map(|e| (&e.type_, &e.reason, &e.note))
                .collect::<Vec<_>>()
        );
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
}

fn configuration(name: &str, namespace: &str, webhook: &Webhook) -> ValidatingWebhookConfiguration {
    let mut vwc = ValidatingWebhookConfiguration::default();
    vwc.metadata.name = Some(name.to_string());
    vwc.webhooks = Some(vec![ValidatingWebhook {
        name: WEBHOOK_NAME.to_string(),
        admission_review_versions: vec!["v1".to_string()],
        side_effects: "None".to_string(),
        failure_policy: Some("Fail".to_string()),
        timeout_seconds: Some(10),
        client_config: webhook.client_config(),
        rules: Some(vec![RuleWithOperations {
            api_groups: Some(vec!["k8s.nginx.org".to_string()]),
            api_versions: Some(vec!["v1".to_string()]),
            operations: Some(vec!["CREATE".to_string(), "UPDATE".to_string()]),
            resources: Some(vec![
                "virtualservers".to_string(),
                "virtualserverroutes".to_string(),
            ]),
            scope: Some("Namespaced".to_string()),
        }]),
        namespace_selector: Some(LabelSelector {
            match_labels: Some(
                [(
                    "kubernetes.io/metadata.name".to_string(),
                    namespace.to_string(),
                )]
                .into(),
            ),
            match_expressions: None,
        }),
        ..ValidatingWebhook::default()
    }]);
    vwc
}

async fn scenario(client: &Client, namespace: &str, vwc_name: &str, dir: &std::path::Path) {
    // The controller: a Warning on the VirtualServer, then the Normal Event once fixed.
    let controller = Controller::start(namespace);
    let applied = apply(client, namespace, false, false).await;
    assert!(applied.status < 300, "{} {}", applied.status, applied.body);
    let warning = wait_for_event(client, namespace, "Warning", "RedundantForwardedProto").await;
    let note = warning.note.unwrap_or_default();
    assert!(
        note.starts_with(
            "redundant-forwarded-proto: X-Forwarded-Proto is already set by F5 NGINX Ingress Controller here"
        ),
        "{note}"
    );
    assert!(
        note.contains("field spec.routes[0].location-snippets, line 1"),
        "{note}"
    );
    let fixed = apply(client, namespace, true, false).await;
    assert!(fixed.status < 300, "{} {}", fixed.status, fixed.body);
    wait_for_event(client, namespace, "Normal", "FindingsResolved").await;
    drop(controller);

    // The webhook: the duplicate is denied with NIC's wording; the fix is admitted.
    let webhook = Webhook::start("enforce", "127.0.0.1", dir);
    let vwcs: Api<ValidatingWebhookConfiguration> = Api::all(client.clone());
    vwcs.create(
        &PostParams::default(),
        &configuration(vwc_name, namespace, &webhook),
    )
    .await
    .expect("register the webhook");
    let deadline = Instant::now() + WAIT;
    let denied = loop {
        let a = apply(client, namespace, false, true).await;
        if a.body.contains("denied the request") {
            break a;
        }
        assert!(
            Instant::now() < deadline,
            "the webhook never denied: {} {}",
            a.status,
            a.body
        );
        tokio::time::sleep(Duration::from_millis(500)).await;
    };
    assert!(denied.status >= 400, "{} {}", denied.status, denied.body);
    let status: serde_json::Value = serde_json::from_str(&denied.body).expect("a Status");
    let message = status["message"].as_str().expect("a message");
    let expected = format!(
        "admission webhook \"{WEBHOOK_NAME}\" denied the request: redundant-forwarded-proto: X-Forwarded-Proto is already set by F5 NGINX Ingress Controller here"
    );
    assert!(message.starts_with(&expected), "{message}");
    assert!(message.contains("requestHeaders.set"), "{message}");
    let clean = apply(client, namespace, true, false).await;
    assert!(clean.status < 300, "{} {}", clean.status, clean.body);
    drop(webhook);
}

#[tokio::test]
#[ignore = "needs a cluster: set KUBECONFIG and run `cargo test --test e2e -- --ignored`"]
async fn virtual_servers_get_events_and_are_denied_without_nic_installed() {
    if std::env::var_os("KUBECONFIG").is_none() {
        eprintln!("skipped: KUBECONFIG is not set; this test needs a cluster");
        return;
    }
    let _ = rustls::crypto::ring::default_provider().install_default();
    let client = Client::try_default()
        .await
        .expect("a client from KUBECONFIG");
    let suffix = format!("{:x}", std::process::id());
    let namespace = format!("snippet-guard-e2e-nic-{suffix}");
    let vwc_name = format!("snippet-guard-e2e-nic-{suffix}");
    let dir = tempfile::tempdir().expect("a temporary directory");
    let installed = install_crds(&client).await;

    let namespaces: Api<Namespace> = Api::all(client.clone());
    let mut ns = Namespace::default();
    ns.metadata.name = Some(namespace.clone());
    namespaces
        .create(&PostParams::default(), &ns)
        .await
        .expect("create the test namespace");

    let result = tokio::spawn({
        let (client, namespace, vwc_name) = (client.clone(), namespace.clone(), vwc_name.clone());
        let dir = dir.path().to_path_buf();
        async move { scenario(&client, &namespace, &vwc_name, &dir).await }
    })
    .await;

    let vwcs: Api<ValidatingWebhookConfiguration> = Api::all(client.clone());
    let _ = vwcs.delete(&vwc_name, &DeleteParams::default()).await;
    // The VirtualServer goes with the namespace.
    let _ = namespaces
        .delete(&namespace, &DeleteParams::default())
        .await;
    let crds: Api<CustomResourceDefinition> = Api::all(client.clone());
    for name in installed {
        let _ = crds.delete(&name, &DeleteParams::default()).await;
    }
    if let Err(e) = result {
        std::panic::resume_unwind(e.into_panic());
    }
}
