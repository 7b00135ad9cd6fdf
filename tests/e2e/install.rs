//! Install-style end to end: the chart, rendered with the real Helm engine (helm-python-sdk in
//! the repository's `.venv`), is applied to the cluster of `KUBECONFIG`, where the ingress-nginx
//! namespace does not exist. Both binaries then run here with the tokens of the chart's own
//! ServiceAccounts (TokenRequest), so every API call goes through the chart's RBAC:
//!
//! - the webhook mints its certificate into the chart's empty Secret, sets the caBundle of the
//!   chart's ValidatingWebhookConfiguration and serves HTTPS with that certificate;
//! - the controller starts without its controller ConfigMap;
//! - the ingress-nginx namespace and controller ConfigMap are created afterwards; the controller
//!   publishes the Warnings that depend on it, and the webhook's answer for the same Ingress
//!   changes, without a restart.
//!
//! Everything is named `i12-…`, every wait is bounded, and the namespaces and cluster-scoped
//! objects are deleted at the end, also when a step fails.
//!
//! `KUBECONFIG=/work/kit/kubeconfig cargo test --test e2e install -- --ignored --nocapture`

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, mpsc};
use std::time::{Duration, Instant};

use k8s_openapi::api::admissionregistration::v1::ValidatingWebhookConfiguration;
use k8s_openapi::api::core::v1::{Namespace, Secret};
use k8s_openapi::api::events::v1::Event;
use kube::api::{
    ApiResource, DeleteParams, DynamicObject, GroupVersionKind, ListParams, Patch, PatchParams,
    PostParams,
};
use kube::discovery::Scope;
use kube::{Api, Client};

const RELEASE: &str = "i12-sg";
const NAMESPACE: &str = "i12-sg";
const APPS: &str = "i12-apps";
const NGINX: &str = "i12-nginx";
const WAIT: Duration = Duration::from_secs(90);
const XFP: &str = "proxy_set_header X-Forwarded-Proto $scheme;\n";

/// The chart rendered with the real Helm engine: its objects.
fn render() -> Vec<serde_json::Value> {
    let root = env!("CARGO_MANIFEST_DIR");
    let python = format!("{root}/.venv/bin/python");
    let values = serde_json::json!({
        "ingressNginx": {"namespace": NGINX},
        "controller": {"namespaces": [APPS]},
        // Only this test's namespace: the cluster is shared.
        "webhook": {"namespaceSelector": {"extraMatchExpressions": [
            {"key": "kubernetes.io/metadata.name", "operator": "In", "values": [APPS]}
        ]}},
    });
    let script = format!(
        "import json, sys, helm_python, yaml\n\
         sys.path.insert(0, '{root}/scripts')\n\
         with helm_python.Chart.load('{root}/charts/snippet-guard') as c:\n    \
             r = c.render(json.loads(sys.argv[1]), name='{RELEASE}', namespace='{NAMESPACE}')\n\
         docs = [d for k in sorted(r) if not k.endswith('NOTES.txt') for d in yaml.safe_load_all(r[k]) if d]\n\
         print(json.dumps(docs))\n"
    );
    let out = Command::new(&python)
        .args(["-c", &script, &values.to_string()])
        .output()
        .unwrap_or_else(|e| panic!("{python}: {e} (the chart tools' venv, see README)"));
    assert!(
        out.status.success(),
        "rendering failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).expect("rendered JSON")
}

async fn api_for(client: &Client, object: &serde_json::Value) -> Api<DynamicObject> {
    let (group, version) = match object["apiVersion"].as_str().unwrap().split_once('/') {
        Some((g, v)) => (g.to_string(), v.to_string()),
        None => (
            String::new(),
            object["apiVersion"].as_str().unwrap().to_string(),
        ),
    };
    let gvk = GroupVersionKind::gvk(&group, &version, object["kind"].as_str().unwrap());
    let (resource, caps): (ApiResource, _) = kube::discovery::pinned_kind(client, &gvk)
        .await
        .expect("a kind the cluster serves");
    match (caps.scope, object["metadata"]["namespace"].as_str()) {
        (Scope::Namespaced, Some(ns)) => Api::namespaced_with(client.clone(), ns, &resource),
        _ => Api::all_with(client.clone(), &resource),
    }
}

async fn apply(client: &Client, object: &serde_json::Value) {
    let name = object["metadata"]["name"].as_str().unwrap();
    api_for(client, object)
        .await
        .patch(
            name,
            &PatchParams::apply("i12-e2e").force(),
            &Patch::Apply(object),
        )
        .await
        .unwrap_or_else(|e| panic!("apply {} {name}: {e}", object["kind"]));
}

async fn create_namespace(client: &Client, name: &str) {
    apply(
        client,
        &serde_json::json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": name}}),
    )
    .await;
}

/// A kubeconfig for the ServiceAccount `name` of the release: the admin kubeconfig's server
/// and CA, and a token from the TokenRequest API.
async fn service_account_kubeconfig(client: &Client, name: &str, dir: &std::path::Path) -> String {
    let api: Api<k8s_openapi::api::core::v1::ServiceAccount> =
        Api::namespaced(client.clone(), NAMESPACE);
    let request = serde_json::json!({
        "apiVersion": "authentication.k8s.io/v1", "kind": "TokenRequest",
        "spec": {"expirationSeconds": 3600}
    });
    let answer: serde_json::Value = api
        .create_subresource("token", name, &PostParams::default(), &request)
        .await
        .unwrap_or_else(|e| panic!("TokenRequest for {name}: {e}"));
    let token = answer["status"]["token"].as_str().unwrap();
    let admin = kube::config::Kubeconfig::read().expect("the admin kubeconfig");
    let context = admin.current_context.clone().unwrap();
    let cluster_name = admin
        .contexts
        .iter()
        .find(|c| c.name == context)
        .and_then(|c| c.context.as_ref())
        .map(|c| c.cluster.clone())
        .unwrap();
    let cluster = admin
        .clusters
        .iter()
        .find(|c| c.name == cluster_name)
        .and_then(|c| c.cluster.clone())
        .unwrap();
    let kubeconfig = serde_json::json!({
        "apiVersion": "v1", "kind": "Config", "current-context": "sa",
        "clusters": [{"name": "c", "cluster": {
            "server": cluster.server,
            "certificate-authority-data": cluster.certificate_authority_data,
        }}],
        "users": [{"name": name, "user": {"token": token}}],
        "contexts": [{"name": "sa", "context": {"cluster": "c", "user": name}}],
    });
    let path = dir.join(format!("{name}.kubeconfig"));
    std::fs::write(&path, kubeconfig.to_string()).unwrap();
    path.to_str().unwrap().to_string()
}

/// A binary run with the rendered container's arguments, `replace`d by prefix; killed on drop.
struct Running {
    child: Child,
    lines: mpsc::Receiver<String>,
}

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Running {
    fn start(args: &[String], kubeconfig: &str) -> Self {
        let mut child = Command::new(env!("CARGO_BIN_EXE_snippet-guard"))
            .args(args)
            .env("KUBECONFIG", kubeconfig)
            .env("RUST_LOG", "info")
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("start the binary");
        let stderr = child.stderr.take().unwrap();
        let (tx, lines) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                eprintln!("  | {line}");
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        Self { child, lines }
    }

    /// The next JSON log line with this message (bounded).
    fn wait_log(&self, message: &str) -> serde_json::Value {
        let deadline = Instant::now() + WAIT;
        while let Some(left) = deadline.checked_duration_since(Instant::now()) {
            let Ok(line) = self.lines.recv_timeout(left) else {
                break;
            };
            if let Ok(v) = serde_json::from_str::<serde_json::Value>(&line)
                && v["message"] == message
            {
                return v;
            }
        }
        panic!("no log line `{message}` within {WAIT:?}");
    }
}

fn container_args(objects: &[serde_json::Value], component: &str) -> Vec<String> {
    let deployment = objects
        .iter()
        .find(|o| {
            o["kind"] == "Deployment"
                && o["metadata"]["name"] == format!("{RELEASE}-snippet-guard-{component}")
        })
        .or_else(|| {
            objects.iter().find(|o| {
                o["kind"] == "Deployment"
                    && o["metadata"]["name"].as_str().unwrap().ends_with(component)
            })
        })
        .unwrap_or_else(|| panic!("no {component} Deployment"));
    deployment["spec"]["template"]["spec"]["containers"][0]["args"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a.as_str().unwrap().to_string())
        .collect()
}

fn replaced(args: Vec<String>, replace: &[(&str, &str)]) -> Vec<String> {
    args.into_iter()
        .map(|a| {
            replace
                .iter()
                .find(|(prefix, _)| a.starts_with(prefix))
                .map_or(a, |(_, with)| (*with).to_string())
        })
        .collect()
}

async fn until<T, F: Future<Output = Option<T>>>(what: &str, mut f: impl FnMut() -> F) -> T {
    let deadline = Instant::now() + WAIT;
    loop {
        if let Some(v) = f().await {
            return v;
        }
        assert!(
            Instant::now() < deadline,
            "timed out after {WAIT:?}: {what}"
        );
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
}

/// POST a body over HTTPS, trusting only `ca_pem`, verifying the certificate for `host`.
fn https_post(addr: SocketAddr, host: &str, ca_pem: &str, path: &str, body: &str) -> (u16, String) {
    use rustls::pki_types::pem::PemObject;
    let mut roots = rustls::RootCertStore::empty();
    for cert in rustls::pki_types::CertificateDer::pem_slice_iter(ca_pem.as_bytes()) {
        roots.add(cert.unwrap()).unwrap();
    }
    let config = rustls::ClientConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .unwrap()
    .with_root_certificates(roots)
    .with_no_client_auth();
    let server_name = rustls::pki_types::ServerName::try_from(host.to_string()).unwrap();
    let conn = rustls::ClientConnection::new(Arc::new(config), server_name).unwrap();
    let tcp = TcpStream::connect(addr).unwrap();
    tcp.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    let mut tls = rustls::StreamOwned::new(conn, tcp);
    let request = format!(
        "POST {path} HTTP/1.1\r\nHost: {host}\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    );
    tls.write_all(request.as_bytes())
        .expect("TLS handshake and request");
    let mut response = String::new();
    let _ = tls.read_to_string(&mut response);
    let status = response
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    let body = response
        .split_once("\r\n\r\n")
        .map(|(_, b)| b.to_string())
        .unwrap_or_default();
    (status, body)
}

fn ingress() -> serde_json::Value {
    serde_json::json!({
        "apiVersion": "networking.k8s.io/v1", "kind": "Ingress",
        "metadata": {"name": "api", "namespace": APPS, "annotations": {
            "nginx.ingress.kubernetes.io/configuration-snippet": XFP}},
        "spec": {"ingressClassName": "nginx", "rules": [{"host": "api.example.com", "http": {"paths": [
            {"path": "/", "pathType": "Prefix",
             "backend": {"service": {"name": "api", "port": {"number": 80}}}}]}}]},
    })
}

fn review() -> String {
    serde_json::json!({
        "apiVersion": "admission.k8s.io/v1", "kind": "AdmissionReview",
        "request": {
            "uid": "i12", "operation": "CREATE", "namespace": APPS, "name": "api",
            "kind": {"group": "networking.k8s.io", "version": "v1", "kind": "Ingress"},
            "resource": {"group": "networking.k8s.io", "version": "v1", "resource": "ingresses"},
            "userInfo": {"username": "i12"}, "object": ingress(),
        }
    })
    .to_string()
}

async fn events(client: &Client, namespace: &str) -> Vec<(String, String, String)> {
    Api::<Event>::namespaced(client.clone(), namespace)
        .list(&ListParams::default())
        .await
        .map(|l| {
            l.items
                .into_iter()
                .map(|e| {
                    let r = e.regarding.unwrap_or_default();
                    (
                        e.type_.unwrap_or_default(),
                        e.reason.unwrap_or_default(),
                        format!(
                            "{}/{}",
                            r.kind.unwrap_or_default(),
                            r.name.unwrap_or_default()
                        ),
                    )
                })
                .collect()
        })
        .unwrap_or_default()
}

async fn scenario(client: &Client, objects: &[serde_json::Value], dir: &std::path::Path) {
    let namespaces: Api<Namespace> = Api::all(client.clone());
    assert!(
        namespaces.get_opt(NGINX).await.unwrap().is_none(),
        "{NGINX} must not exist before the install"
    );
    // The release namespace (Helm's --create-namespace), then the chart as rendered.
    create_namespace(client, NAMESPACE).await;
    create_namespace(client, APPS).await;
    for o in objects {
        apply(client, o).await;
    }
    assert!(
        namespaces.get_opt(NGINX).await.unwrap().is_none(),
        "the chart created {NGINX}"
    );

    let webhook_sa = format!("{RELEASE}-snippet-guard-webhook");
    let controller_sa = format!("{RELEASE}-snippet-guard-controller");
    let webhook_kc = service_account_kubeconfig(client, &webhook_sa, dir).await;
    let controller_kc = service_account_kubeconfig(client, &controller_sa, dir).await;

    // The webhook, with the chart's arguments (local ports only).
    let webhook = Running::start(
        &replaced(
            container_args(objects, "webhook"),
            &[
                ("--listen=", "--listen=127.0.0.1:0"),
                ("--metrics-listen=", "--metrics-listen=127.0.0.1:0"),
            ],
        ),
        &webhook_kc,
    );
    let listening = webhook.wait_log("webhook listening");
    let addr: SocketAddr = listening["addr"].as_str().unwrap().parse().unwrap();
    let secret_name = format!("{RELEASE}-snippet-guard-webhook-managed-tls");
    let secrets: Api<Secret> = Api::namespaced(client.clone(), NAMESPACE);
    let (secrets, secret_name) = (&secrets, &secret_name);
    let ca = until(
        "the webhook writes its certificate into the chart's Secret",
        || async move {
            let s = secrets.get(secret_name).await.ok()?;
            let ca = s.data?.get("ca.crt")?.0.clone();
            Some(String::from_utf8(ca).unwrap())
        },
    )
    .await;
    let vwcs: Api<ValidatingWebhookConfiguration> = Api::all(client.clone());
    let vwc_name = format!("{RELEASE}-snippet-guard");
    let (vwcs, vwc_name, ca) = (&vwcs, &vwc_name, &ca);
    until("the caBundle of both webhooks is the CA", || async move {
        let v = vwcs.get(vwc_name).await.ok()?;
        v.webhooks?
            .iter()
            .all(|w| {
                w.client_config.ca_bundle.as_ref().map(|b| b.0.as_slice()) == Some(ca.as_bytes())
            })
            .then_some(())
    })
    .await;
    let host = format!("{RELEASE}-snippet-guard-webhook.{NAMESPACE}.svc");
    let host = &host;
    let before = until(
        "the webhook answers over HTTPS with its certificate",
        || async move {
            let (status, body) = https_post(addr, host, ca, "/validate", &review());
            (status == 200).then(|| serde_json::from_str::<serde_json::Value>(&body).unwrap())
        },
    )
    .await;
    eprintln!(
        "webhook without the controller ConfigMap: {}",
        before["response"]
    );

    // The controller, with the chart's arguments.
    let _controller = Running::start(
        &replaced(
            container_args(objects, "controller"),
            &[("--listen=", "--listen=127.0.0.1:0")],
        ),
        &controller_kc,
    );
    apply(client, &ingress()).await;
    let early = until("the controller checks the Ingress", || async move {
        let e = events(client, APPS).await;
        (!e.is_empty()).then_some(e)
    })
    .await;
    eprintln!("controller without the controller ConfigMap: {early:?}");
    // Without the ConfigMap the gates are unknown and the snippet is judged as rendered.
    assert!(
        early.iter().any(|e| e.1 == "RedundantForwardedProto"),
        "{early:?}"
    );

    // ingress-nginx arrives: its namespace and controller ConfigMap, which keeps annotation
    // snippets out (its default since v1.9) and repeats the header in its own location-snippet.
    create_namespace(client, NGINX).await;
    apply(
        client,
        &serde_json::json!({
            "apiVersion": "v1", "kind": "ConfigMap",
            "metadata": {"name": "ingress-nginx-controller", "namespace": NGINX},
            "data": {"allow-snippet-annotations": "false", "location-snippet": XFP},
        }),
    )
    .await;
    until(
        "the controller judges the Ingress with the new ConfigMap",
        || async move {
            events(client, APPS)
                .await
                .contains(&(
                    "Warning".into(),
                    "IgnoredSnippet".into(),
                    "Ingress/api".into(),
                ))
                .then_some(())
        },
    )
    .await;
    until(
        "the controller checks the new ConfigMap itself",
        || async move {
            events(client, NGINX)
                .await
                .iter()
                .any(|e| e.0 == "Warning" && e.2 == "ConfigMap/ingress-nginx-controller")
                .then_some(())
        },
    )
    .await;
    let before_response = &before["response"];
    let after = until("the webhook judges with the new ConfigMap", || async move {
        let (_, body) = https_post(addr, host, ca, "/validate", &review());
        let v: serde_json::Value = serde_json::from_str(&body).ok()?;
        (&v["response"] != before_response).then_some(v)
    })
    .await;
    eprintln!(
        "webhook with the controller ConfigMap: {}",
        after["response"]
    );
    // Before: the duplicate (an error) is denied. After: the snippet is not rendered, a
    // warning, admitted with the warning.
    assert_eq!(
        before["response"]["allowed"], false,
        "enforce mode denies the duplicate"
    );
    assert_eq!(after["response"]["allowed"], true);
    assert!(
        after["response"]["warnings"].as_array().is_some_and(|w| w
            .iter()
            .any(|w| w.as_str().is_some_and(|w| w.starts_with("ignored-snippet")))),
        "{}",
        after["response"]
    );
}

#[tokio::test]
#[ignore = "needs a cluster: set KUBECONFIG and run `cargo test --test e2e -- --ignored`"]
async fn the_rendered_chart_installs_without_ingress_nginx_and_its_service_accounts_suffice() {
    if std::env::var_os("KUBECONFIG").is_none() {
        eprintln!("skipped: KUBECONFIG is not set; this test needs a cluster");
        return;
    }
    let _ = rustls::crypto::ring::default_provider().install_default();
    let client = Client::try_default()
        .await
        .expect("a client from KUBECONFIG");
    let objects = render();
    let dir = tempfile::tempdir().unwrap();
    let result = tokio::spawn({
        let (client, objects, path) = (client.clone(), objects.clone(), dir.path().to_path_buf());
        async move { scenario(&client, &objects, &path).await }
    })
    .await;
    // Clean up: the namespaces, then what the chart made cluster-wide.
    let namespaces: Api<Namespace> = Api::all(client.clone());
    for ns in [APPS, NGINX, NAMESPACE] {
        let _ = namespaces.delete(ns, &DeleteParams::default()).await;
    }
    for o in objects
        .iter()
        .filter(|o| o["metadata"]["namespace"].is_null())
    {
        let name = o["metadata"]["name"].as_str().unwrap();
        let _ = api_for(&client, o)
            .await
            .delete(name, &DeleteParams::default())
            .await;
    }
    if let Err(e) = result {
        std::panic::resume_unwind(e.into_panic());
    }
}
