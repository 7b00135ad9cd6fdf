//! YAML and JSON manifests -> engine objects, keeping the file position of every value.
//!
//! `serde-saphyr` parses (it reports the byte span of each scalar, which `serde_yaml` never did
//! and which is deprecated anyway). A snippet is a *decoded* string — a `|` block without its
//! indentation, a JSON string without its escapes — so [`align`] walks the raw text and the decoded
//! value side by side and records where each run of bytes came from; the renderer can then point
//! at the exact YAML line and column of a snippet line.
//!
//! Documents are read through hand-written visitors rather than derived structs so that a document
//! that is not a Kubernetes object (a list, a scalar, a Helm values file) is skipped instead of
//! failing the file, and values of the wrong type become diagnostics.

use std::fmt;

use serde::Deserialize;
use serde::de::{self, IgnoredAny, MapAccess, SeqAccess, Visitor};
use serde_json::Value;
use serde_saphyr::Spanned;

use crate::model::{Entry, LoadError, Meta, Object, ObjectRef, Text, Workspace, handled_kind};
use crate::source::{FileId, Location, SourceMap, Span};

/// A value with its place in the file.
type Sp = Spanned<Value>;

/// One YAML document: a Kubernetes object, or something else that is skipped.
enum RawDoc {
    Object(Box<RawObject>),
    Other,
}

#[derive(Default)]
struct RawObject {
    api_version: Option<Sp>,
    kind: Option<Sp>,
    metadata: Option<RawMeta>,
    data: Option<RawMap>,
    spec: Option<RawSpec>,
    items: Option<Vec<RawDoc>>,
}

#[derive(Default)]
struct RawMeta {
    name: Option<Sp>,
    namespace: Option<Sp>,
    annotations: Option<RawMap>,
    labels: Option<RawMap>,
}

#[derive(Default)]
struct RawSpec {
    ingress_class_name: Option<Sp>,
    controller: Option<Sp>,
}

/// A mapping whose keys and values keep their spans, in document order.
#[derive(Default)]
struct RawMap(Vec<(Sp, Sp)>);

impl<'de> Deserialize<'de> for RawDoc {
    fn deserialize<D: de::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = RawDoc;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a YAML document")
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<RawDoc, A::Error> {
                let mut o = RawObject::default();
                while let Some(key) = map.next_key::<String>()? {
                    match key.as_str() {
                        "apiVersion" => o.api_version = Some(map.next_value()?),
                        "kind" => o.kind = Some(map.next_value()?),
                        "metadata" => o.metadata = Some(map.next_value()?),
                        "data" => o.data = Some(map.next_value()?),
                        "spec" => o.spec = Some(map.next_value()?),
                        "items" => o.items = Some(map.next_value()?),
                        _ => {
                            map.next_value::<IgnoredAny>()?;
                        }
                    }
                }
                Ok(RawDoc::Object(Box::new(o)))
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<RawDoc, A::Error> {
                while seq.next_element::<IgnoredAny>()?.is_some() {}
                Ok(RawDoc::Other)
            }
            fn visit_str<E>(self, _: &str) -> Result<RawDoc, E> {
                Ok(RawDoc::Other)
            }
            fn visit_bool<E>(self, _: bool) -> Result<RawDoc, E> {
                Ok(RawDoc::Other)
            }
            fn visit_i64<E>(self, _: i64) -> Result<RawDoc, E> {
                Ok(RawDoc::Other)
            }
            fn visit_u64<E>(self, _: u64) -> Result<RawDoc, E> {
                Ok(RawDoc::Other)
            }
            fn visit_f64<E>(self, _: f64) -> Result<RawDoc, E> {
                Ok(RawDoc::Other)
            }
            fn visit_unit<E>(self) -> Result<RawDoc, E> {
                Ok(RawDoc::Other)
            }
            fn visit_none<E>(self) -> Result<RawDoc, E> {
                Ok(RawDoc::Other)
            }
        }
        d.deserialize_any(V)
    }
}

impl<'de> Deserialize<'de> for RawMeta {
    fn deserialize<D: de::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = RawMeta;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("object metadata (a mapping)")
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<RawMeta, A::Error> {
                let mut m = RawMeta::default();
                while let Some(key) = map.next_key::<String>()? {
                    match key.as_str() {
                        "name" => m.name = Some(map.next_value()?),
                        "namespace" => m.namespace = Some(map.next_value()?),
                        "annotations" => m.annotations = Some(map.next_value()?),
                        "labels" => m.labels = Some(map.next_value()?),
                        _ => {
                            map.next_value::<IgnoredAny>()?;
                        }
                    }
                }
                Ok(m)
            }
            fn visit_unit<E>(self) -> Result<RawMeta, E> {
                Ok(RawMeta::default())
            }
        }
        d.deserialize_any(V)
    }
}

impl<'de> Deserialize<'de> for RawSpec {
    fn deserialize<D: de::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = RawSpec;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a spec (a mapping)")
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<RawSpec, A::Error> {
                let mut s = RawSpec::default();
                while let Some(key) = map.next_key::<String>()? {
                    match key.as_str() {
                        "ingressClassName" => s.ingress_class_name = Some(map.next_value()?),
                        "controller" => s.controller = Some(map.next_value()?),
                        _ => {
                            map.next_value::<IgnoredAny>()?;
                        }
                    }
                }
                Ok(s)
            }
            fn visit_unit<E>(self) -> Result<RawSpec, E> {
                Ok(RawSpec::default())
            }
        }
        d.deserialize_any(V)
    }
}

impl<'de> Deserialize<'de> for RawMap {
    fn deserialize<D: de::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = RawMap;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a mapping of strings to strings")
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<RawMap, A::Error> {
                let mut out = Vec::new();
                while let Some(k) = map.next_key::<Sp>()? {
                    let v = map.next_value::<Sp>()?;
                    out.push((k, v));
                }
                Ok(RawMap(out))
            }
            fn visit_unit<E>(self) -> Result<RawMap, E> {
                Ok(RawMap::default())
            }
        }
        d.deserialize_any(V)
    }
}

/// Limits that keep hostile YAML bounded: aliases are capped (no billion laughs), and streams of
/// many documents are allowed.
fn options() -> serde_saphyr::Options {
    let mut budget = serde_saphyr::Budget::default();
    budget.max_documents = 100_000;
    budget.max_nodes = 10_000_000;
    budget.max_events = 20_000_000;
    let mut options = serde_saphyr::Options::default();
    options.budget = Some(budget);
    options
}

/// The byte span of a value in the file, if known.
fn byte_span(sp: &Sp) -> Option<Span> {
    let s = sp.referenced.span();
    let start = s.byte_offset()? as usize;
    let len = s.byte_len()? as usize;
    Some(Span::new(start, start + len))
}

/// Anchors from decoded-value offsets to raw-text offsets; see the module docs.
fn align(raw: &str, raw_start: u32, decoded: &str, double_quoted: bool) -> Vec<(u32, u32)> {
    let rb = raw.as_bytes();
    let db = decoded.as_bytes();
    let mut anchors: Vec<(u32, u32)> = Vec::new();
    let mut record = |d: usize, r: usize| {
        // Both offsets are below 4 GiB (spans are u32), so the difference fits an i64.
        let delta = i64::from(r as u32) - i64::from(d as u32);
        let same = anchors
            .last()
            .is_some_and(|&(ld, lr)| i64::from(lr) - i64::from(raw_start) - i64::from(ld) == delta);
        if !same {
            anchors.push((d as u32, raw_start + r as u32));
        }
    };
    let (mut r, mut d) = (0usize, 0usize);
    while d < db.len() && r < rb.len() {
        if rb[r] == db[d] {
            record(d, r);
            r += 1;
            d += 1;
            continue;
        }
        if double_quoted && rb[r] == b'\\' && r + 1 < rb.len() {
            let consumed = match rb[r + 1] {
                b'x' => 4,
                b'u' => 6,
                b'U' => 10,
                b'\n' | b'\r' => {
                    // An escaped line break produces nothing.
                    r += 2;
                    continue;
                }
                _ => 2,
            };
            record(d, r);
            let ch_len = decoded[d..].chars().next().map_or(1, char::len_utf8);
            d += ch_len;
            r = (r + consumed).min(rb.len());
            continue;
        }
        r += 1;
    }
    anchors
}

/// The error for a value of another type where Kubernetes stores a string (`what` is
/// "annotation", "label" or "ConfigMap key").
pub(crate) fn not_a_string(
    location: Location,
    what: &str,
    key: &str,
    value: &Value,
    object: &ObjectRef,
) -> LoadError {
    let kind = match value {
        Value::Number(_) => "a number",
        Value::Bool(_) => "a boolean",
        Value::Array(_) => "a list",
        Value::Object(_) => "a mapping",
        _ => "not a string",
    };
    LoadError {
        location,
        message: format!(
            "{what} `{key}` is {kind}, not a string; the API server rejects this object"
        ),
        help: Some(STRINGS_HELP.into()),
        object: Some(object.clone()),
    }
}

const STRINGS_HELP: &str =
    "Kubernetes stores annotation and ConfigMap values as strings: quote the value";

struct Loader<'w> {
    ws: &'w mut Workspace,
    file: FileId,
    text: std::sync::Arc<String>,
}

impl Loader<'_> {
    fn location(&self, sp: &Sp) -> Location {
        Location {
            file: self.file,
            span: byte_span(sp).unwrap_or_default(),
        }
    }

    fn string(sp: &Sp) -> Option<String> {
        match &sp.value {
            Value::String(s) => Some(s.clone()),
            Value::Number(n) => Some(n.to_string()),
            Value::Bool(b) => Some(b.to_string()),
            _ => None,
        }
    }

    fn text(&self, sp: &Sp, value: String) -> Text {
        let Some(span) = byte_span(sp) else {
            return Text {
                value,
                map: SourceMap::identity(self.file, 0, 0),
            };
        };
        let raw = &self.text[span.range()];
        let anchors = align(raw, span.start, &value, raw.starts_with('"'));
        Text {
            map: SourceMap::from_anchors(self.file, anchors, span),
            value,
        }
    }

    fn problem(&mut self, location: Location, message: String, object: Option<&ObjectRef>) {
        self.ws.load_errors.push(LoadError {
            location,
            message,
            help: Some(STRINGS_HELP.into()),
            object: object.cloned(),
        });
    }

    fn entries(&mut self, map: Option<RawMap>, what: &str, object: &ObjectRef) -> Vec<Entry> {
        let mut out = Vec::new();
        for (k, v) in map.map(|m| m.0).unwrap_or_default() {
            let Some(key) = Self::string(&k) else {
                let loc = self.location(&k);
                self.problem(loc, format!("{what} key is not a string"), Some(object));
                continue;
            };
            match &v.value {
                Value::String(s) => {
                    let value = self.text(&v, s.clone());
                    out.push(Entry {
                        key,
                        key_location: self.location(&k),
                        value,
                    });
                }
                Value::Null => {}
                other => {
                    let loc = self.location(&v);
                    self.ws
                        .load_errors
                        .push(not_a_string(loc, what, &key, other, object));
                }
            }
        }
        out
    }

    fn add(&mut self, doc: RawDoc) {
        let RawDoc::Object(o) = doc else { return };
        let RawObject {
            api_version,
            kind,
            metadata,
            data,
            spec,
            items,
        } = *o;
        if let Some(items) = items {
            for item in items {
                self.add(item);
            }
        }
        let Some(kind_sp) = kind else { return };
        let kind = Self::string(&kind_sp).unwrap_or_default();
        let api_version = api_version
            .as_ref()
            .and_then(Self::string)
            .unwrap_or_default();
        let handled = handled_kind(&api_version, &kind);
        if !handled {
            return;
        }
        let metadata = metadata.unwrap_or_default();
        let object = ObjectRef {
            api_version,
            kind: kind.clone(),
            namespace: metadata.namespace.as_ref().and_then(Self::string),
            name: metadata
                .name
                .as_ref()
                .and_then(Self::string)
                .unwrap_or_default(),
        };
        let annotations = self.entries(metadata.annotations, "annotation", &object);
        let labels = self
            .entries(metadata.labels, "label", &object)
            .into_iter()
            .map(|e| (e.key, e.value.value))
            .collect();
        let meta = Meta {
            object,
            annotations,
            labels,
            location: self.location(&kind_sp),
        };
        let spec = spec.unwrap_or_default();
        let data = if kind == "ConfigMap" {
            self.entries(data, "ConfigMap key", &meta.object)
        } else {
            Vec::new()
        };
        let obj = Object::build(
            meta,
            spec.ingress_class_name.as_ref().and_then(Self::string),
            spec.controller.as_ref().and_then(Self::string),
            data,
        );
        self.ws.objects.push(obj);
    }
}

/// Read every document of a YAML or JSON file already added to `ws.sources` as `file`.
pub fn load(ws: &mut Workspace, file: FileId) {
    let text = ws.sources.get(file).text.clone();
    match serde_saphyr::from_multiple_with_options::<RawDoc>(&text, options()) {
        Ok(docs) => {
            let mut loader = Loader { ws, file, text };
            for doc in docs {
                loader.add(doc);
            }
        }
        Err(e) => {
            let span = e
                .location()
                .and_then(|l| {
                    let s = l.span();
                    s.byte_offset()
                        .map(|o| Span::new(o as usize, (o as usize + 1).min(text.len())))
                })
                .unwrap_or_default();
            let message = e.to_string();
            let first = message.lines().next().unwrap_or("invalid YAML").trim();
            ws.load_errors.push(LoadError {
                location: Location { file, span },
                message: format!("cannot read this file as YAML or JSON: {first}"),
                help: Some("fix the YAML syntax; nothing in this file was checked".into()),
                object: None,
            });
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::source::SourceFile;

    fn load_str(src: &str) -> Workspace {
        let mut ws = Workspace::new();
        let f = ws.sources.add(SourceFile::new("t.yaml", src));
        load(&mut ws, f);
        ws
    }

    #[test]
    fn block_scalar_lines_map_to_file_lines() {
        let src = "apiVersion: networking.k8s.io/v1\nkind: Ingress\nmetadata:\n  name: a\n  annotations:\n    nginx.ingress.kubernetes.io/configuration-snippet: |\n      more_set_headers \"A: b\";\n      proxy_set_header X-Forwarded-Proto $scheme;\n";
        let ws = load_str(src);
        let Object::Ingress(ing) = &ws.objects[0] else {
            panic!()
        };
        let e = &ing.meta.annotations[0];
        let at = e.value.value.find("proxy_set_header").unwrap() as u32;
        let loc = e
            .value
            .map
            .map_span(Span::new(at as usize, at as usize + 16));
        let f = ws.sources.get(loc.file);
        assert_eq!(&f.text[loc.span.range()], "proxy_set_header");
        assert_eq!(f.line_col(loc.span.start).line, 8);
        assert_eq!(f.line_col(loc.span.start).column, 7);
    }

    #[test]
    fn json_escapes_map_back() {
        let src = r#"{"apiVersion":"v1","kind":"ConfigMap","metadata":{"name":"ingress-nginx-controller"},"data":{"location-snippet":"a 1;\n\tproxy_set_header X-Real-IP \"x\";"}}"#;
        let ws = load_str(src);
        let Object::ConfigMap(cm) = &ws.objects[0] else {
            panic!()
        };
        let v = &cm.data[0].value;
        let at = v.value.find("X-Real-IP").unwrap();
        let loc = v.map.map_span(Span::new(at, at + 9));
        assert_eq!(
            &ws.sources.get(loc.file).text[loc.span.range()],
            "X-Real-IP"
        );
    }

    #[test]
    fn lists_recurse_and_other_documents_are_skipped() {
        let src = "- 1\n---\napiVersion: v1\nkind: List\nitems:\n- apiVersion: v1\n  kind: ConfigMap\n  metadata: {name: x}\n  data: {a: b}\n---\nfoo: bar\n";
        let ws = load_str(src);
        assert_eq!(ws.objects.len(), 1);
        assert!(ws.load_errors.is_empty());
    }

    #[test]
    fn wrong_types_are_diagnostics() {
        let src = "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: x\ndata:\n  use-forwarded-headers: true\n";
        let ws = load_str(src);
        assert_eq!(ws.load_errors.len(), 1);
        assert!(ws.load_errors[0].message.contains("a boolean"));
    }

    #[test]
    fn broken_yaml_is_one_diagnostic() {
        let ws = load_str("kind: [\n");
        assert_eq!(ws.load_errors.len(), 1);
    }
}
