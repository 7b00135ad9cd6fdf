//! NGINX Gateway Fabric end to end, against the cluster of `KUBECONFIG`, without NGF: the test
//! installs the CRDs it needs (SnippetsFilter, HTTPRoute) from a minimal schema of its own when
//! the cluster does not have them, then
//!
//! 1. runs the controller binary limited to a namespace of its own, applies a SnippetsFilter
//!    whose `http.server.location` snippet repeats X-Forwarded-Proto and an HTTPRoute that
//!    references it, and waits for the Warning Event on the SnippetsFilter; fixes the snippet and
//!    waits for the Normal Event;
//! 2. runs the webhook binary (enforce mode) behind a ValidatingWebhookConfiguration for
//!    SnippetsFilters in that namespace: the duplicate is denied with NGF's wording, the fixed
//!    filter is admitted.
//!
//! The namespace and the webhook configuration are deleted at the end, also when a step fails;
//! the CRDs too when this test installed them. Every wait is bounded.
//!
//! `KUBECONFIG=~/.kube/config cargo test --test e2e ngf -- --ignored --nocapture`

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
const WEBHOOK_NAME: &str = "gateway-nginx-org.e2e.snippet-guard.io";
const FILTER: &str = "proto";

/// A CRD with an open schema: enough for the API server to store the objects (the real CRDs
/// validate far more).
fn crd(group: &str, version: &str, kind: &str, plural: &str) -> serde_json::Value {
    serde_json::json!({
        "apiVersion": "apiextensions.k8s.io/v1",
        "kind": "CustomResourceDefinition",
        // The Gateway API's groups are under k8s.io, which the API server protects.
        "metadata": {"name": format!("{plural}.{group}"), "annotations": {
            "api-approved.kubernetes.io": "https://github.com/kubernetes-sigs/gateway-api/pull/2466"}},
        "spec": {
            "group": group,
            "scope": "Namespaced",
            "names": {
                "kind": kind,
                "listKind": format!("{kind}List"),
                "plural": plural,
                "singular": kind.to_ascii_lowercase(),
            },
            "versions": [{
                "name": version, "served": true, "storage": true,
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
    for (group, version, kind, plural) in [
        (
            "gateway.nginx.org",
            "v1alpha1",
            "SnippetsFilter",
            "snippetsfilters",
        ),
        ("gateway.networking.k8s.io", "v1", "HTTPRoute", "httproutes"),
    ] {
        let name = format!("{plural}.{group}");
        if api.get_opt(&name).await.expect("read CRDs").is_some() {
            continue;
        }
        let crd: CustomResourceDefinition =
            serde_json::from_value(crd(group, version, kind, plural)).expect("a CRD");
        api.create(&PostParams::default(), &crd)
            .await
            .expect("install the CRD");
        installed.push(name);
    }
    let deadline = Instant::now() + WAIT;
    for gvk in [
        GroupVersionKind::gvk("gateway.nginx.org", "v1alpha1", "SnippetsFilter"),
        GroupVersionKind::gvk("gateway.networking.k8s.io", "v1", "HTTPRoute"),
    ] {
        while kube::discovery::pinned_kind(client, &gvk).await.is_err() {
            assert!(Instant::now() < deadline, "{} was never served", gvk.kind);
            tokio::time::sleep(Duration::from_millis(500)).await;
        }
    }
    installed
}

fn snippets_filter(namespace: &str, fixed: bool) -> serde_json::Value {
    let value = if fixed {
        "proxy_set_header X-Tenant blue;\n"
    } else {
        "proxy_set_header X-Tenant blue;\nproxy_set_header X-Forwarded-Proto $scheme;\n"
    };
    serde_json::json!({
        "apiVersion": "gateway.nginx.org/v1alpha1",
        "kind": "SnippetsFilter",
        "metadata": {"name": FILTER, "namespace": namespace},
        "spec": {"snippets": [{"context": "http.server.location", "value": value}]},
    })
}

fn http_route(namespace: &str) -> serde_json::Value {
    serde_json::json!({
        "apiVersion": "gateway.networking.k8s.io/v1",
        "kind": "HTTPRoute",
        "metadata": {"name": "django-api", "namespace": namespace},
        "spec": {
            "parentRefs": [{"name": "gateway"}],
            "rules": [{
                "filters": [{"type": "ExtensionRef", "extensionRef":
                    {"group": "gateway.nginx.org", "kind": "SnippetsFilter", "name": FILTER}}],
                "backendRefs": [{"name": "django", "port": 8000}],
            }],
        },
    })
}

/// What the API server answered to an apply.
struct Answer {
    status: u16,
    body: String,
}

/// Server-side apply through the raw client, to see a denial's message.
async fn apply(client: &Client, url: &str, object: &serde_json::Value, dry_run: bool) -> Answer {
    let mut params = PatchParams::apply(FIELD_MANAGER).force();
    params.dry_run = dry_run;
    let name = object["metadata"]["name"].as_str().expect("a name");
    let request = kube::core::Request::new(url)
        .patch(name, &params, &Patch::Apply(object))
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

fn filters_url(namespace: &str) -> String {
    format!("/apis/gateway.nginx.org/v1alpha1/namespaces/{namespace}/snippetsfilters")
}

/// Poll the Events of `namespace` until one of `type_` and `reason` is about the SnippetsFilter.
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
                    r.kind.as_deref() == Some("SnippetsFilter") && r.name.as_deref() == Some(FILTER)
                })
        }) {
            return e.clone();
        }
        assert!(
            Instant::now() < deadline,
            "no {type_} {reason} Event on SnippetsFilter {FILTER} after {WAIT:?}; have: {:#?}",
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
            api_groups: Some(vec!["gateway.nginx.org".to_string()]),
            api_versions: Some(vec!["v1alpha1".to_string()]),
            operations: Some(vec!["CREATE".to_string(), "UPDATE".to_string()]),
            resources: Some(vec!["snippetsfilters".to_string()]),
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
    // The controller: a Warning on the SnippetsFilter, then the Normal Event once fixed.
    let controller = Controller::start(namespace);
    let url = filters_url(namespace);
    let routes = format!("/apis/gateway.networking.k8s.io/v1/namespaces/{namespace}/httproutes");
    let applied = apply(client, &routes, &http_route(namespace), false).await;
    assert!(applied.status < 300, "{} {}", applied.status, applied.body);
    let applied = apply(client, &url, &snippets_filter(namespace, false), false).await;
    assert!(applied.status < 300, "{} {}", applied.status, applied.body);
    let warning = wait_for_event(client, namespace, "Warning", "RedundantForwardedProto").await;
    let note = warning.note.unwrap_or_default();
    assert!(
        note.starts_with(
            "redundant-forwarded-proto: X-Forwarded-Proto is already set by NGINX Gateway Fabric here"
        ),
        "{note}"
    );
    assert!(
        note.contains("field spec.snippets[0].value, line 2"),
        "{note}"
    );
    // The controller knows the routes: the finding names the one that renders the filter.
    assert!(
        note.contains(&format!("(in HTTPRoute {namespace}/django-api rule 0)")),
        "{note}"
    );
    let fixed = apply(client, &url, &snippets_filter(namespace, true), false).await;
    assert!(fixed.status < 300, "{} {}", fixed.status, fixed.body);
    wait_for_event(client, namespace, "Normal", "FindingsResolved").await;
    drop(controller);

    // The webhook: the duplicate is denied with NGF's wording; the fix is admitted.
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
        let a = apply(client, &url, &snippets_filter(namespace, false), true).await;
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
        "admission webhook \"{WEBHOOK_NAME}\" denied the request: redundant-forwarded-proto: X-Forwarded-Proto is already set by NGINX Gateway Fabric here"
    );
    assert!(message.starts_with(&expected), "{message}");
    let clean = apply(client, &url, &snippets_filter(namespace, true), false).await;
    assert!(clean.status < 300, "{} {}", clean.status, clean.body);
    drop(webhook);
}

#[tokio::test]
#[ignore = "needs a cluster: set KUBECONFIG and run `cargo test --test e2e -- --ignored`"]
async fn snippets_filters_get_events_and_are_denied_without_ngf_installed() {
    if std::env::var_os("KUBECONFIG").is_none() {
        eprintln!("skipped: KUBECONFIG is not set; this test needs a cluster");
        return;
    }
    let _ = rustls::crypto::ring::default_provider().install_default();
    let client = Client::try_default()
        .await
        .expect("a client from KUBECONFIG");
    let suffix = format!("{:x}", std::process::id());
    let namespace = format!("snippet-guard-e2e-ngf-{suffix}");
    let vwc_name = format!("snippet-guard-e2e-ngf-{suffix}");
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
    // The SnippetsFilter and the route go with the namespace.
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
