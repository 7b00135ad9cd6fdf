//! Webhook end to end, against the cluster of `KUBECONFIG`: the webhook runs here with
//! `--self-signed`, a `ValidatingWebhookConfiguration` points the API server at
//! `clientConfig.url: https://<host>:<port>/validate`, and the original report's Ingress is
//! applied in a namespace of its own: denied in enforce mode, admitted with a warning in warn
//! mode. Only standard APIs are used (server-side apply, dry run, admissionregistration/v1),
//! so any conformant API server does.
//!
//! The API server must reach the webhook: by default at 127.0.0.1 (an API server on this
//! machine). Set `SNIPPET_GUARD_E2E_WEBHOOK_HOST` to an address of this machine the API server
//! can reach (a kind node reaches the host at the docker bridge gateway, e.g. 172.18.0.1); the
//! webhook then listens on 0.0.0.0 with that address in its certificate.
//!
//! `KUBECONFIG=~/.kube/config cargo test --test e2e webhook -- --ignored --nocapture`

use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use k8s_openapi::ByteString;
use k8s_openapi::api::admissionregistration::v1::{
    RuleWithOperations, ValidatingWebhook, ValidatingWebhookConfiguration, WebhookClientConfig,
};
use k8s_openapi::api::core::v1::Namespace;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::LabelSelector;
use kube::api::{DeleteParams, Patch, PatchParams, PostParams};
use kube::{Api, Client};

const WEBHOOK_NAME: &str = "ingresses.e2e.snippet-guard.io";
const FIELD_MANAGER: &str = "snippet-guard-e2e";

/// The webhook binary, stopped when dropped.
pub(crate) struct Webhook {
    child: Child,
    addr: SocketAddr,
    ca_pem: String,
}

impl Drop for Webhook {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Webhook {
    pub(crate) fn start(mode: &str, host: &str, dir: &Path) -> Webhook {
        let ca_file = dir.join(format!("ca-{mode}.crt"));
        let listen = if host == "127.0.0.1" {
            "127.0.0.1:0"
        } else {
            "0.0.0.0:0"
        };
        let mut child = Command::new(env!("CARGO_BIN_EXE_snippet-guard"))
            .args([
                "webhook",
                "--self-signed",
                "--san",
                host,
                "--san",
                "localhost",
            ])
            .args(["--listen", listen, "--metrics-listen", "127.0.0.1:0"])
            .args(["--mode", mode, "--log-format", "json"])
            .arg("--ca-bundle-out")
            .arg(&ca_file)
            .env("RUST_LOG", "info")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("start snippet-guard webhook");
        let stderr = child.stderr.take().expect("piped");
        let (tx, rx) = mpsc::channel::<String>();
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                eprintln!("webhook: {line}");
                let _ = tx.send(line);
            }
        });
        let deadline = Instant::now() + Duration::from_secs(30);
        let addr = loop {
            let left = deadline.saturating_duration_since(Instant::now());
            let line = rx
                .recv_timeout(left)
                .expect("the webhook did not start listening");
            let Ok(v) = serde_json::from_str::<serde_json::Value>(&line) else {
                continue;
            };
            if v["message"] == "webhook listening" {
                let bound: SocketAddr = v["addr"].as_str().expect("addr").parse().expect("addr");
                break SocketAddr::new(host.parse().expect("an IP address"), bound.port());
            }
        };
        let ca_pem = std::fs::read_to_string(&ca_file).expect("the CA bundle was written");
        Webhook {
            child,
            addr,
            ca_pem,
        }
    }

    pub(crate) fn client_config(&self) -> WebhookClientConfig {
        WebhookClientConfig {
            url: Some(format!("https://{}/validate", self.addr)),
            ca_bundle: Some(ByteString(self.ca_pem.clone().into_bytes())),
            service: None,
        }
    }
}

fn configuration(name: &str, namespace: &str, webhook: &Webhook) -> ValidatingWebhookConfiguration {
    let mut vwc = ValidatingWebhookConfiguration::default();
    vwc.metadata.name = Some(name.to_string());
    vwc.webhooks = Some(vec![ValidatingWebhook {
        name: WEBHOOK_NAME.to_string(),
        admission_review_versions: vec!["v1".to_string()],
        side_effects: "None".to_string(),
        // Fail, so that an unreachable webhook fails the test instead of admitting quietly.
        failure_policy: Some("Fail".to_string()),
        timeout_seconds: Some(10),
        client_config: webhook.client_config(),
        rules: Some(vec![RuleWithOperations {
            api_groups: Some(vec!["networking.k8s.io".to_string()]),
            api_versions: Some(vec!["v1".to_string()]),
            operations: Some(vec!["CREATE".to_string(), "UPDATE".to_string()]),
            resources: Some(vec!["ingresses".to_string()]),
            scope: Some("Namespaced".to_string()),
        }]),
        // Only the test's own namespace: nothing else in the cluster is affected.
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

/// The original report's Ingress (examples/original-report.yaml), in `namespace`.
fn original_report(namespace: &str) -> serde_json::Value {
    serde_json::json!({
        "apiVersion": "networking.k8s.io/v1",
        "kind": "Ingress",
        "metadata": {
            "name": "django-api",
            "namespace": namespace,
            "annotations": {
                "cert-manager.io/cluster-issuer": "letsencrypt",
                "nginx.ingress.kubernetes.io/configuration-snippet":
                    "more_set_headers \"X-Frame-Options: DENY\";\nproxy_set_header X-Forwarded-Proto $scheme;\n",
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

/// What the API server answered to an apply: status, `Warning` headers, body.
struct Answer {
    status: u16,
    warnings: Vec<String>,
    body: String,
}

/// Server-side apply of the Ingress, through the raw client so the warnings are visible.
async fn apply(client: &Client, namespace: &str, dry_run: bool) -> Answer {
    let url = format!("/apis/networking.k8s.io/v1/namespaces/{namespace}/ingresses");
    let mut params = PatchParams::apply(FIELD_MANAGER).force();
    params.dry_run = dry_run;
    let request = kube::core::Request::new(url)
        .patch(
            "django-api",
            &params,
            &Patch::Apply(original_report(namespace)),
        )
        .expect("build the apply request")
        .map(kube::client::Body::from);
    let response = client.send(request).await.expect("the API server answers");
    let status = response.status().as_u16();
    let warnings = response
        .headers()
        .get_all("warning")
        .iter()
        .filter_map(|v| v.to_str().ok())
        // `299 - "text"`
        .map(|v| {
            v.split_once(" - ")
                .map_or(v, |(_, t)| t)
                .trim_matches('"')
                .replace("\\\"", "\"")
        })
        .collect();
    let body = response
        .into_body()
        .collect_bytes()
        .await
        .expect("read the answer");
    Answer {
        status,
        warnings,
        body: String::from_utf8_lossy(&body).into_owned(),
    }
}

/// Dry-run applies until `done` (the webhook configuration takes effect asynchronously).
async fn wait_until(client: &Client, namespace: &str, what: &str, done: impl Fn(&Answer) -> bool) {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let answer = apply(client, namespace, true).await;
        if done(&answer) {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "{what}: last answer {} {}",
            answer.status,
            answer.body
        );
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
}

async fn scenario(client: &Client, namespace: &str, vwc_name: &str, dir: &Path, host: &str) {
    let vwcs: Api<ValidatingWebhookConfiguration> = Api::all(client.clone());

    // Enforce: denied, with the rule, the annotation, the snippet line and the fix.
    let enforce = Webhook::start("enforce", host, dir);
    vwcs.create(
        &PostParams::default(),
        &configuration(vwc_name, namespace, &enforce),
    )
    .await
    .expect("register the webhook");
    wait_until(client, namespace, "the webhook never denied", |a| {
        a.body.contains("denied the request")
    })
    .await;
    let denied = apply(client, namespace, false).await;
    assert!(denied.status >= 400, "{} {}", denied.status, denied.body);
    let status: serde_json::Value = serde_json::from_str(&denied.body).expect("a Status");
    let message = status["message"].as_str().expect("a message");
    let expected = format!(
        "admission webhook \"{WEBHOOK_NAME}\" denied the request: redundant-forwarded-proto: X-Forwarded-Proto is already set by ingress-nginx here"
    );
    assert!(message.starts_with(&expected), "{message}");
    for part in [
        "(annotation nginx.ingress.kubernetes.io/configuration-snippet, line 2)",
        ". Fix: remove this line",
    ] {
        assert!(message.contains(part), "{part:?} missing from {message}");
    }

    // Warn: admitted, and the API server passes the warning on.
    let warn = Webhook::start("warn", host, dir);
    let mut vwc = vwcs
        .get(vwc_name)
        .await
        .expect("read the configuration back");
    vwc.webhooks.as_mut().expect("webhooks")[0].client_config = warn.client_config();
    vwcs.replace(vwc_name, &PostParams::default(), &vwc)
        .await
        .expect("point the webhook at warn mode");
    drop(enforce);
    wait_until(client, namespace, "warn mode never took effect", |a| {
        a.status < 300
    })
    .await;
    let admitted = apply(client, namespace, false).await;
    assert!(
        admitted.status < 300,
        "{} {}",
        admitted.status,
        admitted.body
    );
    assert!(
        admitted
            .warnings
            .iter()
            .any(|w| w.starts_with("redundant-forwarded-proto: X-Forwarded-Proto is already set")),
        "{:?}",
        admitted.warnings
    );
    drop(warn);
}

#[tokio::test]
#[ignore = "needs a cluster: set KUBECONFIG and run `cargo test --test e2e -- --ignored`"]
async fn webhook_denies_in_enforce_mode_and_warns_in_warn_mode() {
    if std::env::var_os("KUBECONFIG").is_none() {
        eprintln!("skipped: KUBECONFIG is not set; this test needs a cluster");
        return;
    }
    let _ = rustls::crypto::ring::default_provider().install_default();
    let client = Client::try_default()
        .await
        .expect("a client from KUBECONFIG");
    let host =
        std::env::var("SNIPPET_GUARD_E2E_WEBHOOK_HOST").unwrap_or_else(|_| "127.0.0.1".into());
    let suffix = format!("{:x}", std::process::id());
    let namespace = format!("snippet-guard-e2e-{suffix}");
    let vwc_name = format!("snippet-guard-e2e-{suffix}");
    let dir = tempfile::tempdir().expect("a temporary directory");

    let namespaces: Api<Namespace> = Api::all(client.clone());
    let mut ns = Namespace::default();
    ns.metadata.name = Some(namespace.clone());
    namespaces
        .create(&PostParams::default(), &ns)
        .await
        .expect("create the test namespace");

    // Run the scenario as a task so that cleanup happens even when it fails.
    let result = tokio::spawn({
        let (client, namespace, vwc_name, host) = (
            client.clone(),
            namespace.clone(),
            vwc_name.clone(),
            host.clone(),
        );
        let dir = dir.path().to_path_buf();
        async move { scenario(&client, &namespace, &vwc_name, &dir, &host).await }
    })
    .await;

    let vwcs: Api<ValidatingWebhookConfiguration> = Api::all(client.clone());
    let _ = vwcs.delete(&vwc_name, &DeleteParams::default()).await;
    let _ = namespaces
        .delete(&namespace, &DeleteParams::default())
        .await;
    if let Err(e) = result {
        std::panic::resume_unwind(e.into_panic());
    }
}
