//! Objects received from the API server, already decoded, -> engine objects.
//!
//! The webhook gets each object as JSON inside an `AdmissionReview`; writing it out as text and
//! reading it back through [`super::manifests`] would spend most of a review in the YAML parser
//! (measured: ~60% of the handler). There is no file to point at either, so each annotation or
//! `data` value becomes a source of its own ([`Text::standalone`]): a finding's span is an offset
//! in the value, and its snippet line is the value's line, as `lint` counts it.

use std::collections::BTreeMap;

use serde::Deserialize;
use serde_json::Value;

use crate::input::manifests::not_a_string;
use crate::model::{
    Entry, Field, LoadError, Meta, Node, Object, ObjectRef, Text, Workspace, handled_kind,
};
use crate::source::{FileId, Location, SourceDb, SourceFile, Span};

/// An object as the API server sends it, decoded only as far as the rules read it: the rest of
/// the object (`managedFields`, `spec.rules`, `status`...) is skipped by the JSON parser without
/// building anything.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ApiObject {
    pub api_version: Option<String>,
    pub kind: Option<String>,
    #[serde(default)]
    pub metadata: ApiMeta,
    /// The `spec`, any JSON: each profile reads the fields it needs.
    pub spec: Option<Value>,
    /// A ConfigMap's `data`; any JSON, so that a value of the wrong type is a finding.
    pub data: Option<Value>,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ApiMeta {
    pub name: Option<String>,
    pub namespace: Option<String>,
    pub generate_name: Option<String>,
    pub annotations: Option<BTreeMap<String, String>>,
    pub labels: Option<BTreeMap<String, String>>,
}

/// Where the values of an object without a file go.
#[derive(Debug)]
pub enum Values<'a> {
    /// Each value becomes a source of its own in this database (`audit`: its reports show
    /// code frames of the values).
    Sources(&'a mut SourceDb),
    /// Values point at no file (the webhook and the controller: their messages quote the
    /// snippet line, never a frame).
    Detached,
}

/// Add `object` to `ws` if the engine reads its kind; returns its reference, or `None` when its
/// `apiVersion`/`kind` is not one the engine reads (or it has none).
///
/// Values of the wrong type in `data` (a hand-written review; the API server rejects them) become
/// the same load errors `lint` reports.
pub fn add_object(ws: &mut Workspace, object: &ApiObject) -> Option<ObjectRef> {
    let (read, errors) = to_object(object, Values::Sources(&mut ws.sources));
    ws.load_errors.extend(errors);
    let read = read?;
    ws.files += 1;
    let r = read.meta().object.clone();
    ws.objects.push(read);
    Some(r)
}

/// The engine object of an API object, and the values that could not be read; `None` when its
/// `apiVersion`/`kind` is not one the engine reads (or it has none).
#[must_use]
pub fn to_object(object: &ApiObject, mut values: Values<'_>) -> (Option<Object>, Vec<LoadError>) {
    let mut errors = Vec::new();
    let (Some(api_version), Some(kind)) = (&object.api_version, &object.kind) else {
        return (None, errors);
    };
    if !handled_kind(api_version, kind) {
        return (None, errors);
    }
    let meta = &object.metadata;
    let object_ref = ObjectRef {
        api_version: api_version.clone(),
        kind: kind.clone(),
        namespace: meta.namespace.clone(),
        name: meta.name.clone().unwrap_or_default(),
    };
    let title = match &object_ref.namespace {
        Some(ns) => format!("{kind} {ns}/{}", object_ref.name),
        None => format!("{kind} {}", object_ref.name),
    };
    let location = match &mut values {
        Values::Sources(db) => {
            let len = title.len();
            let whole = db.add(SourceFile::new(title.clone(), title.clone()));
            Location {
                file: whole,
                span: Span::new(0, len),
            }
        }
        Values::Detached => Location {
            file: FileId::DETACHED,
            span: Span::default(),
        },
    };
    let annotations = strings(&mut values, &title, "annotation", meta.annotations.as_ref());
    let labels = meta
        .labels
        .iter()
        .flatten()
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect();
    let spec = object
        .spec
        .as_ref()
        .map(|v| node(&mut values, &title, location, "spec", v));
    let data = if kind == "ConfigMap" {
        data_entries(
            &mut values,
            &title,
            location,
            object.data.as_ref(),
            &object_ref,
            &mut errors,
        )
    } else {
        Vec::new()
    };
    let meta = Meta {
        object: object_ref,
        annotations,
        labels,
        location,
    };
    (Some(Object::build(meta, spec, data)), errors)
}

/// One value, named after the object and the key.
fn entry(values: &mut Values<'_>, title: &str, what: &str, key: &str, value: &str) -> Entry {
    let value = match values {
        Values::Sources(db) => Text::standalone(db, format!("{title} {what} {key}"), value),
        Values::Detached => Text::detached(value),
    };
    Entry {
        key: key.to_string(),
        key_location: Location {
            file: value.map.file,
            span: Span::new(0, 0),
        },
        value,
    }
}

/// A JSON value as the engine keeps a `spec`: each string a value of its own (named after its
/// path, as `lint` would show it), collections placed at the object.
fn node(values: &mut Values<'_>, title: &str, whole: Location, path: &str, v: &Value) -> Node {
    match v {
        Value::String(s) => Node::Str(match values {
            Values::Sources(db) => Text::standalone(db, format!("{title} {path}"), s.as_str()),
            Values::Detached => Text::detached(s.as_str()),
        }),
        Value::Null => Node::Scalar(String::new(), whole),
        Value::Bool(_) | Value::Number(_) => Node::Scalar(v.to_string(), whole),
        Value::Array(items) => Node::List(
            items
                .iter()
                .enumerate()
                .map(|(i, item)| node(values, title, whole, &format!("{path}[{i}]"), item))
                .collect(),
            whole,
        ),
        Value::Object(map) => Node::Map(
            map.iter()
                .map(|(k, item)| Field {
                    key: k.clone(),
                    key_location: whole,
                    value: node(values, title, whole, &format!("{path}.{k}"), item),
                })
                .collect(),
            whole,
        ),
    }
}

fn strings(
    values: &mut Values<'_>,
    title: &str,
    what: &str,
    map: Option<&BTreeMap<String, String>>,
) -> Vec<Entry> {
    map.into_iter()
        .flatten()
        .map(|(k, v)| entry(values, title, what, k, v))
        .collect()
}

fn data_entries(
    values: &mut Values<'_>,
    title: &str,
    whole: Location,
    data: Option<&Value>,
    object: &ObjectRef,
    errors: &mut Vec<LoadError>,
) -> Vec<Entry> {
    let Some(Value::Object(map)) = data else {
        return Vec::new();
    };
    let mut out = Vec::with_capacity(map.len());
    for (k, v) in map {
        match v {
            Value::String(s) => out.push(entry(values, title, "data", k, s)),
            Value::Null => {}
            other => errors.push(not_a_string(whole, "ConfigMap key", k, other, object)),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::input::{Format, add_text};

    /// The same object read from its JSON text and from the API gives the same objects, but for
    /// positions (a text has them, an API object has none).
    fn without_positions(o: &Object) -> (ObjectRef, Vec<(String, String)>, Option<String>) {
        let meta = o.meta();
        let mut kv: Vec<(String, String)> = meta
            .annotations
            .iter()
            .map(|e| (e.key.clone(), e.value.value.clone()))
            .collect();
        kv.extend(meta.labels.iter().cloned());
        let extra = match o {
            Object::Ingress(i) => Some(format!("{:?} {:?}", i.class, i.services)),
            Object::Resource(r) => Some(plain(&r.spec).to_string()),
            Object::ConfigMap(c) => Some(
                c.data
                    .iter()
                    .map(|e| format!("{}={}", e.key, e.value.value))
                    .collect::<Vec<_>>()
                    .join(";"),
            ),
            Object::IngressClass(c) => Some(c.controller.clone()),
        };
        (meta.object.clone(), kv, extra)
    }

    fn plain(n: &Node) -> Value {
        match n {
            Node::Str(t) => Value::String(t.value.clone()),
            Node::Scalar(s, _) => Value::String(s.clone()),
            Node::List(items, _) => Value::Array(items.iter().map(plain).collect()),
            Node::Map(fields, _) => Value::Object(
                fields
                    .iter()
                    .map(|f| (f.key.clone(), plain(&f.value)))
                    .collect(),
            ),
        }
    }

    fn both(json: &Value) -> (Workspace, Workspace) {
        let mut from_text = Workspace::new();
        add_text(&mut from_text, "o.json", &json.to_string(), Format::Yaml);
        let mut from_api = Workspace::new();
        let object: ApiObject = serde_json::from_value(json.clone()).unwrap();
        add_object(&mut from_api, &object);
        (from_text, from_api)
    }

    #[test]
    fn reads_what_the_manifest_reader_reads() {
        let cases = [
            serde_json::json!({
                "apiVersion": "networking.k8s.io/v1", "kind": "Ingress",
                "metadata": {"name": "a", "namespace": "shop", "labels": {"app": "x"},
                    "annotations": {
                        "nginx.ingress.kubernetes.io/configuration-snippet":
                            "proxy_set_header X-Forwarded-Proto $scheme;\n",
                        "kubernetes.io/ingress.class": "legacy"}},
                "spec": {"rules": []}}),
            serde_json::json!({
                "apiVersion": "networking.k8s.io/v1", "kind": "Ingress",
                "metadata": {"name": "b", "annotations": {"kubernetes.io/ingress.class": "legacy"}},
                "spec": {"ingressClassName": "nginx"}}),
            serde_json::json!({
                "apiVersion": "networking.k8s.io/v1", "kind": "Ingress",
                "metadata": {"name": "c"},
                "spec": {"defaultBackend": {"service": {"name": "d", "port": {"number": 80}}},
                    "rules": [{"http": {"paths": [
                        {"path": "/", "backend": {"service": {"name": "web"}}},
                        {"path": "/g", "backend": {"service": {"name": "grpc"}}},
                        {"path": "/x", "backend": {"service": {"name": "web"}}}]}}]}}),
            serde_json::json!({
                "apiVersion": "k8s.nginx.org/v1", "kind": "VirtualServer",
                "metadata": {"name": "vs", "namespace": "shop"},
                "spec": {"host": "a.example.com", "ingressClassName": "nginx",
                    "upstreams": [{"name": "web", "service": "web", "port": 80, "type": "grpc"}],
                    "routes": [{"path": "/", "location-snippets": "proxy_set_header A b;\n",
                        "action": {"proxy": {"upstream": "web", "requestHeaders": {
                            "set": [{"name": "X-Forwarded-Proto", "value": "https"}]}}}}]}}),
            serde_json::json!({
                "apiVersion": "v1", "kind": "ConfigMap",
                "metadata": {"name": "ingress-nginx-controller", "namespace": "ingress-nginx"},
                "data": {"allow-snippet-annotations": "true", "use-forwarded-headers": "true"}}),
            serde_json::json!({
                "apiVersion": "networking.k8s.io/v1", "kind": "IngressClass",
                "metadata": {"name": "nginx"},
                "spec": {"controller": "k8s.io/ingress-nginx"}}),
        ];
        for json in &cases {
            let (text, api) = both(json);
            assert_eq!(text.objects.len(), 1, "{json}");
            assert_eq!(api.objects.len(), 1, "{json}");
            assert_eq!(
                without_positions(&text.objects[0]),
                without_positions(&api.objects[0]),
                "{json}"
            );
        }
    }

    #[test]
    fn skips_kinds_the_engine_does_not_read() {
        let (text, api) = both(&serde_json::json!({
            "apiVersion": "v1", "kind": "Pod", "metadata": {"name": "p"}}));
        assert!(text.objects.is_empty());
        assert!(api.objects.is_empty());
    }

    #[test]
    fn wrong_types_in_data_are_the_findings_lint_reports() {
        let (text, api) = both(&serde_json::json!({
            "apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "c"},
            "data": {"a": 1, "b": ["x"], "c": "ok"}}));
        let messages = |ws: &Workspace| {
            ws.load_errors
                .iter()
                .map(|d| (d.message.clone(), d.object.clone()))
                .collect::<Vec<_>>()
        };
        assert_eq!(messages(&api).len(), 2);
        assert_eq!(messages(&text), messages(&api));
    }

    #[test]
    fn values_are_their_own_sources() {
        let (_, api) = both(&serde_json::json!({
            "apiVersion": "networking.k8s.io/v1", "kind": "Ingress",
            "metadata": {"name": "a", "namespace": "shop", "annotations": {
                "nginx.ingress.kubernetes.io/server-snippet": "a;\nb;\n"}}}));
        let entry = &api.objects[0].meta().annotations[0];
        let file = api.sources.get(entry.value.map.file);
        assert_eq!(file.text.as_str(), "a;\nb;\n");
        assert_eq!(
            file.name,
            "Ingress shop/a annotation nginx.ingress.kubernetes.io/server-snippet"
        );
        assert_eq!(entry.value.map.map_offset(3), 3);
    }
}
