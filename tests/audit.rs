//! `snippet-guard audit` against a mocked API server (plain HTTP on 127.0.0.1): it must report
//! what `snippet-guard lint` reports on the same objects saved as files (the same findings in the
//! same words; its frames show the values as the cluster holds them).

use std::path::Path;
use std::process::{Command, Output};
use std::sync::{Arc, Mutex};

use axum::Router;
use axum::extract::{Request, State};
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};

const BIN: &str = env!("CARGO_BIN_EXE_snippet-guard");

fn ingresses() -> Vec<Value> {
    vec![
        json!({
            "apiVersion": "networking.k8s.io/v1", "kind": "Ingress",
            "metadata": {"name": "django-api", "namespace": "shop", "uid": "u1", "resourceVersion": "7",
                "annotations": {
                    "cert-manager.io/cluster-issuer": "letsencrypt",
                    "nginx.ingress.kubernetes.io/configuration-snippet":
                        "more_set_headers \"X-Frame-Options: DENY\";\nproxy_set_header X-Forwarded-Proto $scheme;\n"
                }},
            "spec": {"ingressClassName": "nginx", "rules": [{"host": "api.example.com"}]}
        }),
        json!({
            "apiVersion": "networking.k8s.io/v1", "kind": "Ingress",
            "metadata": {"name": "web", "namespace": "blog", "uid": "u2",
                "annotations": {"nginx.ingress.kubernetes.io/configuration-snippet": "proxy_set_header X-Real-IP $remote_addr;\n"}},
            "spec": {"ingressClassName": "public"}
        }),
        json!({
            "apiVersion": "networking.k8s.io/v1", "kind": "Ingress",
            "metadata": {"name": "other", "namespace": "blog", "uid": "u3",
                "annotations": {"nginx.ingress.kubernetes.io/configuration-snippet": "proxy_set_header X-Forwarded-Proto $scheme;\n"}},
            "spec": {"ingressClassName": "traefik-public"}
        }),
    ]
}

fn classes() -> Vec<Value> {
    vec![
        json!({"apiVersion": "networking.k8s.io/v1", "kind": "IngressClass",
            "metadata": {"name": "public"}, "spec": {"controller": "k8s.io/ingress-nginx"}}),
        json!({"apiVersion": "networking.k8s.io/v1", "kind": "IngressClass",
            "metadata": {"name": "traefik-public"}, "spec": {"controller": "traefik.io/ingress-controller"}}),
    ]
}

fn configmaps() -> Vec<Value> {
    vec![
        json!({"apiVersion": "v1", "kind": "ConfigMap",
        "metadata": {"name": "ingress-nginx-controller", "namespace": "ingress-nginx"},
        "data": {
            "allow-snippet-annotations": "true",
            "annotations-risk-level": "Critical",
            "proxy-set-headers": "ingress-nginx/custom-headers",
            "location-snippet": "proxy_set_header X-Forwarded-Proto https;\n"
        }}),
        json!({"apiVersion": "v1", "kind": "ConfigMap",
            "metadata": {"name": "custom-headers", "namespace": "ingress-nginx"},
            "data": {"X-Team": "blue"}}),
        json!({"apiVersion": "v1", "kind": "ConfigMap",
            "metadata": {"name": "unrelated", "namespace": "shop"},
            "data": {"settings.py": "DEBUG = False"}}),
    ]
}

fn list(kind: &str, api_version: &str, items: &[Value]) -> Value {
    json!({"kind": kind, "apiVersion": api_version, "metadata": {"resourceVersion": "1"}, "items": items})
}

#[derive(Clone, Default)]
struct Seen(Arc<Mutex<Vec<String>>>);

async fn api(State(seen): State<Seen>, request: Request) -> Response {
    let uri = request.uri().clone();
    seen.0.lock().unwrap().push(uri.to_string());
    let path = uri.path();
    let net = "networking.k8s.io/v1";
    let body = match path {
        "/apis/networking.k8s.io/v1/ingresses" => list("IngressList", net, &ingresses()),
        "/apis/networking.k8s.io/v1/namespaces/shop/ingresses" => list(
            "IngressList",
            net,
            &ingresses()
                .into_iter()
                .filter(|i| i["metadata"]["namespace"] == "shop")
                .collect::<Vec<_>>(),
        ),
        "/apis/networking.k8s.io/v1/ingressclasses" => list("IngressClassList", net, &classes()),
        "/api/v1/configmaps" => list("ConfigMapList", "v1", &configmaps()),
        "/api/v1/namespaces/ingress-nginx/configmaps/ingress-nginx-controller" => {
            configmaps()[0].clone()
        }
        "/api/v1/namespaces/ingress-nginx/configmaps/custom-headers" => configmaps()[1].clone(),
        _ => {
            return (
                axum::http::StatusCode::NOT_FOUND,
                axum::Json(json!({"kind": "Status", "apiVersion": "v1", "metadata": {},
                    "status": "Failure", "reason": "NotFound", "code": 404, "message": "not found"})),
            )
                .into_response();
        }
    };
    axum::Json(body).into_response()
}

/// Serve the mocked API on 127.0.0.1; write a kubeconfig whose `fake` context points at it
/// (the current context points nowhere, so `--context` must be honoured).
fn serve(dir: &Path) -> (Seen, tokio::runtime::Runtime) {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .unwrap();
    let seen = Seen::default();
    let listener = runtime
        .block_on(tokio::net::TcpListener::bind("127.0.0.1:0"))
        .unwrap();
    let port = listener.local_addr().unwrap().port();
    let app = Router::new().fallback(api).with_state(seen.clone());
    runtime.spawn(async move { axum::serve(listener, app).await });
    let kubeconfig = format!(
        "apiVersion: v1\nkind: Config\ncurrent-context: nowhere\nclusters:\n- name: fake\n  cluster:\n    server: http://127.0.0.1:{port}\n- name: nowhere\n  cluster:\n    server: http://127.0.0.1:1\ncontexts:\n- name: fake\n  context: {{cluster: fake, user: nobody, namespace: shop}}\n- name: nowhere\n  context: {{cluster: nowhere, user: nobody}}\nusers:\n- name: nobody\n  user: {{token: test}}\n"
    );
    std::fs::write(dir.join("kubeconfig"), kubeconfig).unwrap();
    (seen, runtime)
}

fn run(dir: &Path, args: &[&str]) -> Output {
    Command::new(BIN)
        .args(args)
        .current_dir(dir)
        .env_remove("KUBECONFIG")
        .env("NO_COLOR", "1")
        .output()
        .unwrap()
}

/// The objects the audit should have judged, as JSON files (`<kind>/<ns>/<name>.json`).
fn expected_objects(namespace: Option<&str>) -> Vec<(String, Value)> {
    let mut out = Vec::new();
    for v in ingresses() {
        if namespace.is_some_and(|ns| v["metadata"]["namespace"] != ns) {
            continue;
        }
        let name = format!(
            "ingress/{}/{}.json",
            v["metadata"]["namespace"].as_str().unwrap(),
            v["metadata"]["name"].as_str().unwrap()
        );
        out.push((name, v));
    }
    for v in classes() {
        out.push((
            format!(
                "ingressclass/{}.json",
                v["metadata"]["name"].as_str().unwrap()
            ),
            v,
        ));
    }
    for v in configmaps().into_iter().take(2) {
        let name = format!(
            "configmap/{}/{}.json",
            v["metadata"]["namespace"].as_str().unwrap(),
            v["metadata"]["name"].as_str().unwrap()
        );
        out.push((name, v));
    }
    out
}

fn write_files(dir: &Path, objects: &[(String, Value)]) -> Vec<String> {
    let mut tops = std::collections::BTreeSet::new();
    for (name, v) in objects {
        let path = dir.join(name);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(path, serde_json::to_string_pretty(v).unwrap()).unwrap();
        tops.insert(name.split('/').next().unwrap().to_string());
    }
    tops.into_iter().collect()
}

/// What a finding says, wherever its frame points (audit's values have no file).
fn findings(json_report: &[u8]) -> (Vec<Value>, Value) {
    let v: Value = serde_json::from_slice(json_report).unwrap();
    let diags = v["diagnostics"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| {
            json!({"rule": d["rule"], "severity": d["severity"], "message": d["message"],
                "help": d["help"], "object": d["object"], "source": d["source"]})
        })
        .collect();
    (diags, v["summary"].clone())
}

/// Audit the mocked cluster and lint the same objects saved as files: the same findings, in
/// the same words and order, and the same exit code.
fn compare(audit_args: &[&str], namespace: Option<&str>, extra: &[&str]) -> Vec<String> {
    let cluster = tempfile::tempdir().unwrap();
    let (seen, runtime) = serve(cluster.path());
    let files = tempfile::tempdir().unwrap();
    let tops = write_files(files.path(), &expected_objects(namespace));
    let mut args = vec!["audit", "--kubeconfig", "kubeconfig", "--context", "fake"];
    args.extend_from_slice(audit_args);
    args.extend_from_slice(&["--format", "json"]);
    args.extend_from_slice(extra);
    let audit = run(cluster.path(), &args);
    let mut lint_args = vec!["lint"];
    lint_args.extend(tops.iter().map(String::as_str));
    lint_args.extend_from_slice(&["--format", "json"]);
    lint_args.extend_from_slice(extra);
    let lint = run(files.path(), &lint_args);
    assert!(
        !audit.stdout.is_empty(),
        "audit printed nothing; stderr: {}",
        String::from_utf8_lossy(&audit.stderr)
    );
    let (audit_findings, audit_summary) = findings(&audit.stdout);
    let (lint_findings, lint_summary) = findings(&lint.stdout);
    assert_eq!(audit_findings, lint_findings);
    assert!(!audit_findings.is_empty());
    assert_eq!(audit_summary, lint_summary);
    assert_eq!(audit.status.code(), lint.status.code());
    assert_eq!(audit.status.code(), Some(1), "findings exit 1");
    for format in ["text", "sarif"] {
        let mut args = args.clone();
        let at = args.iter().position(|a| *a == "json").unwrap();
        args[at] = format;
        let out = run(cluster.path(), &args);
        assert_eq!(out.status.code(), Some(1), "{format}");
        assert!(!out.stdout.is_empty(), "{format}");
    }
    drop(runtime);
    seen.0.lock().unwrap().clone()
}

#[test]
fn audit_all_namespaces_prints_what_lint_prints() {
    let seen = compare(&["-A"], None, &[]);
    assert!(
        seen.iter()
            .any(|u| u.starts_with("/apis/networking.k8s.io/v1/ingresses?")
                && u.contains("limit=500")),
        "{seen:?}"
    );
    assert!(
        seen.iter().any(|u| u.starts_with("/api/v1/configmaps?")),
        "{seen:?}"
    );
    assert!(
        seen.iter()
            .any(|u| u.starts_with("/api/v1/namespaces/ingress-nginx/configmaps/custom-headers")),
        "{seen:?}"
    );
}

#[test]
fn audit_one_namespace_with_a_named_controller_configmap() {
    let seen = compare(
        &["-n", "shop"],
        Some("shop"),
        &[
            "--controller-configmap",
            "ingress-nginx/ingress-nginx-controller",
        ],
    );
    assert!(
        seen.iter()
            .all(|u| !u.starts_with("/apis/networking.k8s.io/v1/ingresses")),
        "{seen:?}"
    );
    assert!(
        seen.iter()
            .any(|u| u.starts_with("/apis/networking.k8s.io/v1/namespaces/shop/ingresses")),
        "{seen:?}"
    );
    assert!(
        !seen.iter().any(|u| u.starts_with("/api/v1/configmaps")),
        "{seen:?}"
    );
}

#[test]
fn audit_reports_the_snippet_line() {
    let cluster = tempfile::tempdir().unwrap();
    let (_seen, _runtime) = serve(cluster.path());
    let out = run(
        cluster.path(),
        &[
            "audit",
            "--kubeconfig",
            "kubeconfig",
            "--context",
            "fake",
            "--color",
            "never",
        ],
    );
    let text = String::from_utf8_lossy(&out.stdout);
    println!("{text}");
    assert!(
        text.contains(
            "--> Ingress shop/django-api annotation nginx.ingress.kubernetes.io/configuration-snippet:2:1"
        ),
        "{text}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        text.contains("proxy_set_header X-Forwarded-Proto $scheme;"),
        "{text}"
    );
}
