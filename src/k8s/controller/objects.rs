//! What the controller and the audit keep of an API object, and how it reaches the engine.
//!
//! The rules read only a few fields: `metadata.name`/`namespace`, the annotations under the
//! ingress-nginx prefix (plus `kubernetes.io/ingress.class` and the `snippet-guard.io/`
//! suppressions), two recognition labels of ConfigMaps, `spec.ingressClassName`, ConfigMap
//! `data` and IngressClass `spec.controller`. [`trim_ingress`] and friends drop everything else
//! (rules, TLS, status, managed fields, `last-applied-configuration`...) as objects arrive from a
//! watch, so the reflector store holds a few hundred bytes per Ingress.
//!
//! The trimmed objects reach the engine through [`crate::k8s::objects`], the mapping the
//! webhook and `audit` use too.

use std::collections::BTreeMap;

use k8s_openapi::api::core::v1::ConfigMap;
use k8s_openapi::api::networking::v1::{
    HTTPIngressPath, HTTPIngressRuleValue, Ingress, IngressBackend, IngressClass, IngressClassSpec,
    IngressRule, IngressServiceBackend, IngressSpec,
};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;

use crate::diagnostic::ObjectRef;
use crate::engine::SUPPRESSION_PREFIX;

/// The class annotation older Ingresses use instead of `spec.ingressClassName`.
pub const CLASS_ANNOTATION: &str = "kubernetes.io/ingress.class";

/// Labels the engine reads to recognise a controller ConfigMap.
const CONFIGMAP_LABELS: [&str; 2] = ["app.kubernetes.io/name", "app.kubernetes.io/component"];

/// Which annotations the rules read: those under `prefix/` (ingress-nginx's) and `nginx.org/`
/// (F5 NGINX Ingress Controller's), the class annotation and the `snippet-guard.io/ignore-*`
/// suppressions.
#[must_use]
pub fn keeps_annotation(key: &str, prefix: &str) -> bool {
    let under = |p: &str| {
        key.strip_prefix(p)
            .is_some_and(|rest| rest.starts_with('/'))
    };
    key == CLASS_ANNOTATION
        || key.starts_with(SUPPRESSION_PREFIX)
        || under(prefix)
        || under(crate::profile::nic::ANNOTATION_PREFIX)
}

/// The Services an Ingress sends to, in order, without repeats (F5 NGINX Ingress Controller
/// picks gRPC and websocket locations by Service name).
fn backend_services(spec: &IngressSpec) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    let backends = spec.default_backend.iter().chain(
        spec.rules
            .iter()
            .flatten()
            .filter_map(|r| r.http.as_ref())
            .flat_map(|h| h.paths.iter().map(|p| &p.backend)),
    );
    for b in backends {
        if let Some(svc) = &b.service
            && !out.contains(&svc.name)
        {
            out.push(svc.name.clone());
        }
    }
    out
}

/// Keep name, namespace, uid, resourceVersion and generation (Events refer to the object by
/// them), and the annotations `keep` accepts; labels only those in `labels`.
fn trim_meta(meta: &mut ObjectMeta, keep: impl Fn(&str) -> bool, labels: &[&str]) {
    let trimmed = ObjectMeta {
        name: meta.name.take(),
        namespace: meta.namespace.take(),
        uid: meta.uid.take(),
        resource_version: meta.resource_version.take(),
        annotations: meta
            .annotations
            .take()
            .map(|a| {
                a.into_iter()
                    .filter(|(k, _)| keep(k))
                    .collect::<BTreeMap<_, _>>()
            })
            .filter(|a| !a.is_empty()),
        labels: meta
            .labels
            .take()
            .map(|l| {
                l.into_iter()
                    .filter(|(k, _)| labels.contains(&k.as_str()))
                    .collect::<BTreeMap<_, _>>()
            })
            .filter(|l| !l.is_empty()),
        ..ObjectMeta::default()
    };
    *meta = trimmed;
}

/// Drop what the rules never read from an Ingress (in place, for `watcher(..).modify(..)`).
pub fn trim_ingress(ing: &mut Ingress, annotation_prefix: &str) {
    trim_meta(
        &mut ing.metadata,
        |k| keeps_annotation(k, annotation_prefix),
        &[],
    );
    let Some(spec) = ing.spec.take() else {
        return;
    };
    let services = backend_services(&spec);
    let rules = (!services.is_empty()).then(|| {
        vec![IngressRule {
            host: None,
            http: Some(HTTPIngressRuleValue {
                paths: services
                    .into_iter()
                    .map(|name| HTTPIngressPath {
                        backend: IngressBackend {
                            service: Some(IngressServiceBackend { name, port: None }),
                            resource: None,
                        },
                        path: None,
                        path_type: String::new(),
                    })
                    .collect(),
            }),
        }]
    });
    if spec.ingress_class_name.is_some() || rules.is_some() {
        ing.spec = Some(IngressSpec {
            ingress_class_name: spec.ingress_class_name,
            rules,
            ..IngressSpec::default()
        });
    }
    ing.status = None;
}

/// Drop what the rules never read from a ConfigMap: `binaryData`, most metadata.
pub fn trim_configmap(cm: &mut ConfigMap) {
    trim_meta(
        &mut cm.metadata,
        |k| k.starts_with(SUPPRESSION_PREFIX),
        &CONFIGMAP_LABELS,
    );
    cm.binary_data = None;
    cm.immutable = None;
}

/// Keep an IngressClass's name and `spec.controller`.
pub fn trim_ingress_class(ic: &mut IngressClass) {
    trim_meta(&mut ic.metadata, |k| k.starts_with(SUPPRESSION_PREFIX), &[]);
    let controller = ic.spec.take().and_then(|s| s.controller);
    ic.spec = Some(IngressClassSpec {
        controller,
        ..IngressClassSpec::default()
    });
}

/// The engine's reference to an Ingress.
#[must_use]
pub fn ingress_ref(ing: &Ingress) -> ObjectRef {
    object_ref("networking.k8s.io/v1", "Ingress", &ing.metadata)
}

/// The engine's reference to a ConfigMap.
#[must_use]
pub fn configmap_ref(cm: &ConfigMap) -> ObjectRef {
    object_ref("v1", "ConfigMap", &cm.metadata)
}

fn object_ref(api_version: &str, kind: &str, meta: &ObjectMeta) -> ObjectRef {
    ObjectRef {
        api_version: api_version.to_string(),
        kind: kind.to_string(),
        namespace: meta.namespace.clone(),
        name: meta.name.clone().unwrap_or_default(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::input::api::Values;
    use crate::model::Object;

    #[test]
    fn trims_an_ingress_to_what_the_rules_read() {
        let mut ing: Ingress = serde_json::from_value(serde_json::json!({
            "apiVersion": "networking.k8s.io/v1",
            "kind": "Ingress",
            "metadata": {
                "name": "web", "namespace": "shop", "uid": "u1",
                "labels": {"app": "web"},
                "annotations": {
                    "kubectl.kubernetes.io/last-applied-configuration": "{...}",
                    "nginx.ingress.kubernetes.io/configuration-snippet": "proxy_set_header X-Forwarded-Proto $scheme;\n",
                    "nginx.ingress.kubernetes.io-other/x": "y",
                    "snippet-guard.io/ignore-invalid-snippet": "reason"
                }
            },
            "spec": {"ingressClassName": "nginx", "rules": [{"host": "a.example"}]}
        }))
        .unwrap();
        trim_ingress(&mut ing, "nginx.ingress.kubernetes.io");
        let ann = ing.metadata.annotations.as_ref().unwrap();
        assert_eq!(
            ann.keys().collect::<Vec<_>>(),
            [
                "nginx.ingress.kubernetes.io/configuration-snippet",
                "snippet-guard.io/ignore-invalid-snippet"
            ]
        );
        assert!(ing.metadata.labels.is_none());
        assert_eq!(ing.metadata.uid.as_deref(), Some("u1"));
        let spec = ing.spec.as_ref().unwrap();
        assert!(
            spec.rules.is_none(),
            "no backend: nothing of the rules is kept"
        );
        assert_eq!(spec.ingress_class_name.as_deref(), Some("nginx"));
    }

    #[test]
    fn keeps_the_backend_services_and_nginx_org_annotations() {
        let mut ing: Ingress = serde_json::from_value(serde_json::json!({
            "metadata": {"name": "web", "annotations": {
                "nginx.org/grpc-services": "api", "nginx.orgx/y": "z"}},
            "spec": {"rules": [{"host": "a.example", "http": {"paths": [
                {"path": "/", "pathType": "Prefix",
                 "backend": {"service": {"name": "web", "port": {"number": 80}}}},
                {"path": "/api", "pathType": "Prefix",
                 "backend": {"service": {"name": "api", "port": {"number": 50051}}}},
                {"path": "/b", "pathType": "Prefix",
                 "backend": {"service": {"name": "web", "port": {"number": 80}}}}]}}]}
        }))
        .unwrap();
        trim_ingress(&mut ing, "nginx.ingress.kubernetes.io");
        assert_eq!(
            ing.metadata
                .annotations
                .as_ref()
                .unwrap()
                .keys()
                .collect::<Vec<_>>(),
            ["nginx.org/grpc-services"]
        );
        let Object::Ingress(engine) = crate::k8s::objects::ingress(&ing, Values::Detached) else {
            panic!("an Ingress")
        };
        assert_eq!(engine.services, ["web", "api"]);
    }

    #[test]
    fn ingress_class_keeps_its_controller() {
        let mut ic = IngressClass::default();
        ic.metadata.name = Some("public".into());
        ic.spec = Some(IngressClassSpec {
            controller: Some("k8s.io/ingress-nginx".into()),
            ..IngressClassSpec::default()
        });
        trim_ingress_class(&mut ic);
        assert_eq!(
            ic.spec.unwrap().controller.as_deref(),
            Some("k8s.io/ingress-nginx")
        );
    }
}
