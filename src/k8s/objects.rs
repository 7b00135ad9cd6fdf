//! Typed API objects -> engine objects: the one mapping the webhook, the controller and `audit`
//! share (`lint` reads files with positions through [`crate::input`]). No YAML is written or
//! read back: each annotation or `data` value goes to the engine as it is.

use std::collections::BTreeMap;

use k8s_openapi::api::core::v1::ConfigMap;
use k8s_openapi::api::networking::v1::{Ingress, IngressClass};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use serde_json::Value;

use crate::input::api::{ApiMeta, ApiObject, Values, to_object};
use crate::model::{LoadError, Object};

fn meta(m: &ObjectMeta) -> ApiMeta {
    ApiMeta {
        name: m.name.clone(),
        namespace: m.namespace.clone(),
        generate_name: m.generate_name.clone(),
        annotations: m.annotations.clone(),
        labels: m.labels.clone(),
    }
}

fn read(api: &ApiObject, values: Values<'_>) -> Object {
    let (object, errors) = to_object(api, values);
    debug_assert!(errors.is_empty(), "typed objects hold only strings");
    object.expect("the kinds mapped here are all kinds the engine reads")
}

/// The engine's Ingress.
#[must_use]
pub fn ingress(ing: &Ingress, values: Values<'_>) -> Object {
    let api = ApiObject {
        api_version: Some("networking.k8s.io/v1".into()),
        kind: Some("Ingress".into()),
        metadata: meta(&ing.metadata),
        // The class and the backends' Service names (gRPC and websocket services are chosen
        // by name); the rest of the spec is small.
        spec: ing.spec.as_ref().and_then(|s| serde_json::to_value(s).ok()),
        data: None,
    };
    read(&api, values)
}

/// The engine's ConfigMap.
#[must_use]
pub fn configmap(cm: &ConfigMap, values: Values<'_>) -> Object {
    let api = ApiObject {
        api_version: Some("v1".into()),
        kind: Some("ConfigMap".into()),
        metadata: meta(&cm.metadata),
        spec: None,
        data: cm.data.as_ref().map(data),
    };
    read(&api, values)
}

fn data(d: &BTreeMap<String, String>) -> Value {
    Value::Object(
        d.iter()
            .map(|(k, v)| (k.clone(), Value::String(v.clone())))
            .collect(),
    )
}

/// The engine's IngressClass.
#[must_use]
pub fn ingress_class(ic: &IngressClass, values: Values<'_>) -> Object {
    let api = ApiObject {
        api_version: Some("networking.k8s.io/v1".into()),
        kind: Some("IngressClass".into()),
        metadata: meta(&ic.metadata),
        spec: ic
            .spec
            .as_ref()
            .and_then(|s| s.controller.clone())
            .map(|c| serde_json::json!({ "controller": c })),
        data: None,
    };
    read(&api, values)
}

/// A custom resource of a kind the engine reads (VirtualServer...), as the API server sends it
/// (`DynamicObject` of the resource `ar`): `None` for other kinds.
#[must_use]
pub fn resource(
    obj: &kube::api::DynamicObject,
    ar: &kube::api::ApiResource,
    values: Values<'_>,
) -> Option<Object> {
    let api = ApiObject {
        api_version: Some(ar.api_version.clone()),
        kind: Some(ar.kind.clone()),
        metadata: meta(&obj.metadata),
        spec: obj.data.get("spec").cloned(),
        data: None,
    };
    to_object(&api, values).0
}

/// A decoded object of an `AdmissionReview` (already an [`ApiObject`]), detached from any file.
#[must_use]
pub fn reviewed(api: &ApiObject) -> (Option<Object>, Vec<LoadError>) {
    to_object(api, Values::Detached)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::input::{Format, add_text};
    use crate::model::Workspace;

    /// The typed mapping and the file reader agree on everything but positions.
    #[test]
    fn reads_what_lint_reads() {
        let yaml = "apiVersion: networking.k8s.io/v1\nkind: Ingress\nmetadata:\n  name: web\n  namespace: shop\n  annotations:\n    nginx.ingress.kubernetes.io/configuration-snippet: |\n      proxy_set_header X-Forwarded-Proto $scheme;\nspec:\n  ingressClassName: nginx\n";
        let mut ws = Workspace::new();
        add_text(&mut ws, "web.yaml", yaml, Format::Yaml);
        let typed: Ingress = serde_json::from_value(serde_json::json!({
            "metadata": {"name": "web", "namespace": "shop", "annotations": {
                "nginx.ingress.kubernetes.io/configuration-snippet":
                    "proxy_set_header X-Forwarded-Proto $scheme;\n"}},
            "spec": {"ingressClassName": "nginx"}
        }))
        .unwrap();
        let o = ingress(&typed, Values::Detached);
        let (Object::Ingress(a), Object::Ingress(b)) = (&ws.objects[0], &o) else {
            panic!("not Ingresses")
        };
        assert_eq!(a.meta.object, b.meta.object);
        assert_eq!(a.class, b.class);
        assert_eq!(
            a.meta.annotations[0].value.value,
            b.meta.annotations[0].value.value
        );
        let settings = crate::Settings::default();
        let lint: Vec<_> = crate::check(&ws, &settings)
            .iter()
            .map(|d| (d.rule.id, d.message.clone(), d.snippet_line))
            .collect();
        let ctx = crate::engine::Context::build(&[], &settings);
        let typed: Vec<_> = ctx
            .check(&o)
            .iter()
            .map(|d| (d.rule.id, d.message.clone(), d.snippet_line))
            .collect();
        assert_eq!(lint, typed);
        assert_eq!(typed.len(), 1);
    }
}
