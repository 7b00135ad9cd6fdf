//! Controller end to end, against the cluster of `KUBECONFIG`: the controller binary runs here,
//! limited to a namespace of its own (Ingresses, its controller ConfigMap and its Lease all
//! live there). The original report's Ingress and a controller ConfigMap whose
//! `location-snippet` repeats X-Forwarded-Proto are applied; the test polls the
//! `events.k8s.io/v1` API (what `kubectl get events` shows) until both Warnings are there,
//! fixes both objects, waits for the two `Normal` Events, and deletes the namespace, also
//! when a step fails. Every wait is bounded.
//!
//! `KUBECONFIG=~/.kube/config cargo test --test e2e controller -- --ignored --nocapture`

use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use k8s_openapi::api::core::v1::Namespace;
use k8s_openapi::api::events::v1::Event;
use kube::api::{DeleteParams, ListParams, Patch, PatchParams, PostParams};
use kube::{Api, Client};

const FIELD_MANAGER: &str = "snippet-guard-e2e";
const WAIT: Duration = Duration::from_secs(90);

/// The controller binary, stopped when dropped.
pub(crate) struct Controller(Child);

impl Drop for Controller {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

impl Controller {
    pub(crate) fn start(namespace: &str) -> Controller {
        let mut command = Command::new(env!("CARGO_BIN_EXE_snippet-guard"));
        command
            .args([
                "controller",
                "--listen=127.0.0.1:0",
                &format!("--controller-configmap={namespace}/ingress-nginx-controller"),
                &format!("--namespace={namespace}"),
                &format!("--lease-namespace={namespace}"),
                "--lease-name=snippet-guard-e2e",
                "--identity=e2e",
            ])
            .env("RUST_LOG", "info,snippet_guard=debug")
            .stdout(Stdio::null());
        if std::env::var_os("SNIPPET_GUARD_E2E_QUIET").is_some() {
            command.stderr(Stdio::null());
        }
        Controller(command.spawn().expect("start the controller"))
    }
}

fn ingress(namespace: &str, snippet: &str) -> serde_json::Value {
    serde_json::json!({
        "apiVersion": "networking.k8s.io/v1",
        "kind": "Ingress",
        "metadata": {
            "name": "django-api",
            "namespace": namespace,
            "annotations": {
                "cert-manager.io/cluster-issuer": "letsencrypt",
                "nginx.ingress.kubernetes.io/configuration-snippet": snippet,
            },
        },
        "spec": {
            "ingressClassName": "nginx",
            "tls": [{"hosts": ["api.example.com"], "secretName": "api-tls"}],
            "rules": [{"host": "api.example.com", "http": {"paths": [{"path": "/", "pathType": "Prefix",
                "backend": {"service": {"name": "django", "port": {"number": 8000}}}}]}}],
        },
    })
}

fn configmap(namespace: &str, location_snippet: Option<&str>) -> serde_json::Value {
    let mut data = serde_json::json!({
        "allow-snippet-annotations": "true",
        "annotations-risk-level": "Critical",
    });
    if let Some(s) = location_snippet {
        data["location-snippet"] = s.into();
    }
    serde_json::json!({
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {"name": "ingress-nginx-controller", "namespace": namespace},
        "data": data,
    })
}

async fn apply(client: &Client, namespace: &str, object: serde_json::Value) {
    let params = PatchParams::apply(FIELD_MANAGER).force();
    let name = object["metadata"]["name"].as_str().unwrap().to_string();
    if object["kind"] == "Ingress" {
        let api: Api<k8s_openapi::api::networking::v1::Ingress> =
            Api::namespaced(client.clone(), namespace);
        api.patch(&name, &params, &Patch::Apply(object))
            .await
            .expect("apply the Ingress");
    } else {
        let api: Api<k8s_openapi::api::core::v1::ConfigMap> =
            Api::namespaced(client.clone(), namespace);
        api.patch(&name, &params, &Patch::Apply(object))
            .await
            .expect("apply the ConfigMap");
    }
}

/// One expected Event: type, reason, kind and name of the object it is about.
type Expected = (&'static str, &'static str, &'static str, &'static str);

/// Poll the Events of `namespace` until every expected one is there.
async fn wait_for_events(client: &Client, namespace: &str, expected: &[Expected]) -> Vec<Event> {
    let api: Api<Event> = Api::namespaced(client.clone(), namespace);
    let deadline = Instant::now() + WAIT;
    loop {
        let events = api
            .list(&ListParams::default())
            .await
            .expect("list Events")
            .items;
        let found = |(type_, reason, kind, name): &Expected| {
            events.iter().any(|e| {
                e.type_.as_deref() == Some(*type_)
                    && e.reason.as_deref() == Some(*reason)
                    && e.reporting_controller.as_deref() == Some("snippet-guard")
                    && e.regarding.as_ref().is_some_and(|r| {
                        r.kind.as_deref() == Some(*kind) && r.name.as_deref() == Some(*name)
                    })
            })
        };
        if expected.iter().all(found) {
            return events;
        }
        assert!(
            Instant::now() < deadline,
            "missing Events {:?} after {WAIT:?}; have: {:#?}",
            expected.iter().filter(|e| !found(e)).collect::<Vec<_>>(),
            events
                .iter()
                .map(|e| (&e.type_, &e.reason, &e.note))
                .collect::<Vec<_>>()
        );
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
}

async fn scenario(client: &Client, namespace: &str) {
    let controller = Controller::start(namespace);
    apply(
        client,
        namespace,
        configmap(
            namespace,
            Some("proxy_set_header X-Forwarded-Proto https;\n"),
        ),
    )
    .await;
    apply(
        client,
        namespace,
        ingress(
            namespace,
            "more_set_headers \"X-Frame-Options: DENY\";\nproxy_set_header X-Forwarded-Proto $scheme;\n",
        ),
    )
    .await;
    let events = wait_for_events(
        client,
        namespace,
        &[
            (
                "Warning",
                "RedundantForwardedProto",
                "Ingress",
                "django-api",
            ),
            (
                "Warning",
                "RedundantForwardedProto",
                "ConfigMap",
                "ingress-nginx-controller",
            ),
        ],
    )
    .await;
    let note = events
        .iter()
        .find(|e| e.regarding.as_ref().and_then(|r| r.kind.as_deref()) == Some("Ingress"))
        .and_then(|e| e.note.clone())
        .unwrap_or_default();
    assert!(
        note.starts_with(
            "redundant-forwarded-proto: X-Forwarded-Proto is already set by ingress-nginx here"
        ),
        "{note}"
    );

    // Fix both: the Normal Events follow.
    apply(
        client,
        namespace,
        ingress(namespace, "more_set_headers \"X-Frame-Options: DENY\";\n"),
    )
    .await;
    apply(client, namespace, configmap(namespace, None)).await;
    wait_for_events(
        client,
        namespace,
        &[
            ("Normal", "FindingsResolved", "Ingress", "django-api"),
            (
                "Normal",
                "FindingsResolved",
                "ConfigMap",
                "ingress-nginx-controller",
            ),
        ],
    )
    .await;
    drop(controller);
}

#[tokio::test]
#[ignore = "needs a cluster: set KUBECONFIG and run `cargo test --test e2e -- --ignored`"]
async fn controller_publishes_warnings_then_normal_events() {
    if std::env::var_os("KUBECONFIG").is_none() {
        eprintln!("skipped: KUBECONFIG is not set; this test needs a cluster");
        return;
    }
    let _ = rustls::crypto::ring::default_provider().install_default();
    let client = Client::try_default()
        .await
        .expect("a client from KUBECONFIG");
    let namespace = format!("snippet-guard-e2e-ctl-{:x}", std::process::id());
    let namespaces: Api<Namespace> = Api::all(client.clone());
    let mut ns = Namespace::default();
    ns.metadata.name = Some(namespace.clone());
    namespaces
        .create(&PostParams::default(), &ns)
        .await
        .expect("create the test namespace");

    // Run the scenario as a task so that cleanup happens even when it fails.
    let result = tokio::spawn({
        let (client, namespace) = (client.clone(), namespace.clone());
        async move { scenario(&client, &namespace).await }
    })
    .await;
    let _ = namespaces
        .delete(&namespace, &DeleteParams::default())
        .await;
    if let Err(e) = result {
        std::panic::resume_unwind(e.into_panic());
    }
}
