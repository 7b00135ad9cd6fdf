//! Generated Ingresses shaped like a real cluster's, shared by `benches/controller.rs` and
//! `examples/controller_10k.rs`: rules, TLS, labels, managedFields, status, a
//! `last-applied-configuration` annotation; one in ten has a `configuration-snippet` that sets
//! X-Forwarded-Proto again.

use std::collections::BTreeMap;

use k8s_openapi::api::networking::v1::Ingress;

/// Ingress number `i` (namespace `team-{i % 200}`, name `app-{i}`).
#[must_use]
pub fn ingress(i: usize) -> Ingress {
    let ns = format!("team-{}", i % 200);
    let name = format!("app-{i}");
    let host = format!("{name}.{ns}.example.com");
    let mut annotations = BTreeMap::new();
    annotations.insert(
        "cert-manager.io/cluster-issuer".to_string(),
        "letsencrypt".to_string(),
    );
    annotations.insert(
        "nginx.ingress.kubernetes.io/proxy-body-size".to_string(),
        "16m".to_string(),
    );
    let snippet = if i.is_multiple_of(10) {
        "more_set_headers \"X-Frame-Options: DENY\";\nproxy_set_header X-Forwarded-Proto $scheme;\n"
    } else {
        "more_set_headers \"X-Frame-Options: DENY\";\n"
    };
    annotations.insert(
        "nginx.ingress.kubernetes.io/configuration-snippet".to_string(),
        snippet.to_string(),
    );
    let spec = serde_json::json!({
        "ingressClassName": "nginx",
        "tls": [{"hosts": [host], "secretName": format!("{name}-tls")}],
        "rules": [{"host": host, "http": {"paths": [
            {"path": "/", "pathType": "Prefix", "backend": {"service": {"name": name, "port": {"number": 8080}}}},
            {"path": "/api", "pathType": "Prefix", "backend": {"service": {"name": format!("{name}-api"), "port": {"number": 8000}}}}
        ]}}]
    });
    let last_applied = serde_json::json!({
        "apiVersion": "networking.k8s.io/v1", "kind": "Ingress",
        "metadata": {"name": name, "namespace": ns, "annotations": annotations},
        "spec": spec,
    });
    annotations.insert(
        "kubectl.kubernetes.io/last-applied-configuration".to_string(),
        last_applied.to_string(),
    );
    serde_json::from_value(serde_json::json!({
        "apiVersion": "networking.k8s.io/v1", "kind": "Ingress",
        "metadata": {
            "name": name, "namespace": ns, "uid": format!("00000000-0000-0000-0000-{i:012}"),
            "resourceVersion": (1000 + i).to_string(), "generation": 1,
            "creationTimestamp": "2026-01-01T00:00:00Z",
            "labels": {"app.kubernetes.io/name": name, "app.kubernetes.io/part-of": ns},
            "annotations": annotations,
            "managedFields": [{"manager": "kubectl-client-side-apply", "operation": "Update",
                "apiVersion": "networking.k8s.io/v1", "time": "2026-01-01T00:00:00Z",
                "fieldsType": "FieldsV1", "fieldsV1": {"f:metadata": {"f:annotations": {}}, "f:spec": {"f:rules": {}, "f:tls": {}}}}]
        },
        "spec": spec,
        "status": {"loadBalancer": {"ingress": [{"ip": "203.0.113.10"}]}}
    }))
    .expect("a valid Ingress")
}
