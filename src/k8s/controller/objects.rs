//! What the controller and the audit keep of an API object, and how it reaches the engine.
//!
//! The rules read only a few fields: `metadata.name`/`namespace`, the annotations under the
//! ingress-nginx prefix (plus `kubernetes.io/ingress.class` and the `snippet-guard.io/`
//! suppressions), two recognition labels of ConfigMaps, `spec.ingressClassName`, ConfigMap
//! `data` and IngressClass `spec.controller`. [`trim_ingress`] and friends drop everything else
//! (rules, TLS, status, managed fields, `last-applied-configuration`...) as objects arrive from a
//! watch, so the reflector store holds a few hundred bytes per Ingress.
//!
//! [`ingress_yaml`] and friends write the trimmed object as one YAML document (block scalars
//! for multi-line snippets, so code frames show the snippet line as in the file a user would
//! write). The engine reads that text with [`crate::input::add_text`], exactly as `lint` reads
//! a file: the same parser, the same wording. `audit` names each text [`file_name`], so
//! `lint` on the same texts saved under the same names prints the same report.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use k8s_openapi::api::core::v1::ConfigMap;
use k8s_openapi::api::networking::v1::{Ingress, IngressClass, IngressClassSpec, IngressSpec};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;

use crate::diagnostic::ObjectRef;
use crate::engine::SUPPRESSION_PREFIX;

/// The class annotation older Ingresses use instead of `spec.ingressClassName`.
pub const CLASS_ANNOTATION: &str = "kubernetes.io/ingress.class";

/// Labels the engine reads to recognise a controller ConfigMap.
const CONFIGMAP_LABELS: [&str; 2] = ["app.kubernetes.io/name", "app.kubernetes.io/component"];

/// Which annotations the rules read: those under `prefix/`, the class annotation and the
/// `snippet-guard.io/ignore-*` suppressions.
#[must_use]
pub fn keeps_annotation(key: &str, prefix: &str) -> bool {
    key == CLASS_ANNOTATION
        || key.starts_with(SUPPRESSION_PREFIX)
        || key
            .strip_prefix(prefix)
            .is_some_and(|rest| rest.starts_with('/'))
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
    let class = ing.spec.take().and_then(|s| s.ingress_class_name);
    ing.spec = class.map(|c| IngressSpec {
        ingress_class_name: Some(c),
        ..IngressSpec::default()
    });
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

/// The name an object's text goes by in reports: `ingress/<ns>/<name>.yaml`,
/// `configmap/<ns>/<name>.yaml`, `ingressclass/<name>.yaml`.
#[must_use]
pub fn file_name(kind: &str, namespace: Option<&str>, name: &str) -> String {
    let kind = kind.to_ascii_lowercase();
    match namespace {
        Some(ns) => format!("{kind}/{ns}/{name}.yaml"),
        None => format!("{kind}/{name}.yaml"),
    }
}

/// [`file_name`] of an Ingress.
#[must_use]
pub fn ingress_file_name(ing: &Ingress) -> String {
    file_name(
        "Ingress",
        ing.metadata.namespace.as_deref(),
        ing.metadata.name.as_deref().unwrap_or_default(),
    )
}

/// [`file_name`] of a ConfigMap.
#[must_use]
pub fn configmap_file_name(cm: &ConfigMap) -> String {
    file_name(
        "ConfigMap",
        cm.metadata.namespace.as_deref(),
        cm.metadata.name.as_deref().unwrap_or_default(),
    )
}

/// [`file_name`] of an IngressClass.
#[must_use]
pub fn ingress_class_file_name(ic: &IngressClass) -> String {
    file_name(
        "IngressClass",
        None,
        ic.metadata.name.as_deref().unwrap_or_default(),
    )
}

/// The trimmed Ingress as YAML (call on an object already trimmed, or pass the prefix).
#[must_use]
pub fn ingress_yaml(ing: &Ingress, annotation_prefix: &str) -> String {
    let mut y = Yaml::document("networking.k8s.io/v1", "Ingress");
    y.metadata(
        &ing.metadata,
        |k| keeps_annotation(k, annotation_prefix),
        &[],
    );
    if let Some(class) = ing
        .spec
        .as_ref()
        .and_then(|s| s.ingress_class_name.as_deref())
    {
        y.line(0, "spec:");
        y.entry(2, "ingressClassName", class);
    }
    y.out
}

/// The trimmed ConfigMap as YAML.
#[must_use]
pub fn configmap_yaml(cm: &ConfigMap) -> String {
    let mut y = Yaml::document("v1", "ConfigMap");
    y.metadata(
        &cm.metadata,
        |k| k.starts_with(SUPPRESSION_PREFIX),
        &CONFIGMAP_LABELS,
    );
    if let Some(data) = cm.data.as_ref().filter(|d| !d.is_empty()) {
        y.line(0, "data:");
        for (k, v) in data {
            y.entry(2, k, v);
        }
    }
    y.out
}

/// The trimmed IngressClass as YAML.
#[must_use]
pub fn ingress_class_yaml(ic: &IngressClass) -> String {
    let mut y = Yaml::document("networking.k8s.io/v1", "IngressClass");
    y.metadata(&ic.metadata, |k| k.starts_with(SUPPRESSION_PREFIX), &[]);
    if let Some(controller) = ic.spec.as_ref().and_then(|s| s.controller.as_deref()) {
        y.line(0, "spec:");
        y.entry(2, "controller", controller);
    }
    y.out
}

/// A tiny writer for the one shape we emit: nested mappings of strings.
struct Yaml {
    out: String,
}

impl Yaml {
    fn document(api_version: &str, kind: &str) -> Self {
        let mut y = Self { out: String::new() };
        y.entry(0, "apiVersion", api_version);
        y.entry(0, "kind", kind);
        y
    }

    fn line(&mut self, indent: usize, text: &str) {
        let _ = writeln!(self.out, "{:indent$}{text}", "");
    }

    fn metadata(&mut self, meta: &ObjectMeta, keep: impl Fn(&str) -> bool, labels: &[&str]) {
        self.line(0, "metadata:");
        self.entry(2, "name", meta.name.as_deref().unwrap_or_default());
        if let Some(ns) = &meta.namespace {
            self.entry(2, "namespace", ns);
        }
        let labels: Vec<_> = meta
            .labels
            .iter()
            .flatten()
            .filter(|(k, _)| labels.contains(&k.as_str()))
            .collect();
        if !labels.is_empty() {
            self.line(2, "labels:");
            for (k, v) in labels {
                self.entry(4, k, v);
            }
        }
        let annotations: Vec<_> = meta
            .annotations
            .iter()
            .flatten()
            .filter(|(k, _)| keep(k))
            .collect();
        if !annotations.is_empty() {
            self.line(2, "annotations:");
            for (k, v) in annotations {
                self.entry(4, k, v);
            }
        }
    }

    /// `key: value`, the value plain, double-quoted or as a literal block.
    fn entry(&mut self, indent: usize, key: &str, value: &str) {
        let _ = write!(self.out, "{:indent$}{}:", "", scalar_key(key));
        if let Some(chomp) = block_chomping(value) {
            let _ = writeln!(self.out, " |{chomp}");
            let body = value.strip_suffix('\n').unwrap_or(value);
            for line in body.split('\n') {
                if line.is_empty() {
                    self.out.push('\n');
                } else {
                    let _ = writeln!(self.out, "{:width$}{line}", "", width = indent + 2);
                }
            }
        } else {
            self.out.push(' ');
            if is_plain(value) {
                self.out.push_str(value);
            } else {
                self.out.push_str(&quoted(value));
            }
            self.out.push('\n');
        }
    }
}

fn scalar_key(key: &str) -> String {
    if is_plain(key) {
        key.to_string()
    } else {
        quoted(key)
    }
}

/// A JSON string is a valid YAML double-quoted scalar.
fn quoted(s: &str) -> String {
    serde_json::to_string(s).expect("a string always serializes")
}

/// Words that a YAML 1.1 or 1.2 reader could take for something other than a string.
const RESERVED: [&str; 11] = [
    "true", "false", "null", "yes", "no", "on", "off", "y", "n", "~", "",
];

/// A plain scalar that every YAML reader takes for this very string: starts with a letter, then
/// letters, digits and `.-_/`, and is no reserved word.
fn is_plain(s: &str) -> bool {
    let mut chars = s.chars();
    chars.next().is_some_and(|c| c.is_ascii_alphabetic())
        && chars.all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | '_' | '/'))
        && !RESERVED.contains(&s.to_ascii_lowercase().as_str())
}

/// The chomping indicator when `value` can be a literal block scalar (`""` clip, `-` strip),
/// `None` when it must be quoted: one line without a newline, trailing blank lines, a first line starting
/// with a space, whitespace-only lines, or characters a block cannot carry.
fn block_chomping(value: &str) -> Option<&'static str> {
    let body = value.strip_suffix('\n');
    let chomp = if body.is_some() { "" } else { "-" };
    let body = body.unwrap_or(value);
    if body.is_empty()
        || (chomp == "-" && !body.contains('\n'))
        || body.ends_with('\n')
        || body.starts_with([' ', '\t'])
        || body
            .split('\n')
            .any(|l| !l.is_empty() && l.trim_matches([' ', '\t']).is_empty())
        || body.starts_with('#')
        || body
            .chars()
            .any(|c| (c.is_control() && c != '\n' && c != '\t') || c == '\u{feff}')
    {
        return None;
    }
    Some(chomp)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::input::{self, Format};
    use crate::model::{Object, Workspace};

    fn read_back(text: &str) -> Workspace {
        let mut ws = Workspace::new();
        input::add_text(&mut ws, "x.yaml", text, Format::Yaml);
        assert!(ws.load_diagnostics.is_empty(), "{text}");
        ws
    }

    #[test]
    fn values_survive_the_round_trip() {
        let values = [
            "proxy_set_header X-Forwarded-Proto $scheme;\n",
            "a;\n\nb;",
            "  leading space;\nb;\n",
            "trailing blank\n\n",
            "tab\tinside;\nx;\n",
            "true",
            "123",
            "",
            "# comment\nx;\n",
            "ws line\n   \nx;\n",
            "ünïcode \"q\" \\ ;\n",
            "cr\r\nlf\n",
            "one line;\n",
            "\n",
        ];
        for v in values {
            let mut cm = ConfigMap::default();
            cm.metadata.name = Some("ingress-nginx-controller".into());
            cm.metadata.namespace = Some("ingress-nginx".into());
            cm.data = Some([("location-snippet".to_string(), v.to_string())].into());
            let text = configmap_yaml(&cm);
            let ws = read_back(&text);
            let Object::ConfigMap(read) = &ws.objects[0] else {
                panic!("not a ConfigMap: {text}")
            };
            assert_eq!(read.data[0].value.value, v, "{text}");
        }
    }

    #[test]
    fn trims_and_reads_an_ingress() {
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
        assert!(spec.rules.is_none());
        let text = ingress_yaml(&ing, "nginx.ingress.kubernetes.io");
        assert_eq!(
            text,
            "apiVersion: networking.k8s.io/v1\nkind: Ingress\nmetadata:\n  name: web\n  namespace: shop\n  annotations:\n    nginx.ingress.kubernetes.io/configuration-snippet: |\n      proxy_set_header X-Forwarded-Proto $scheme;\n    snippet-guard.io/ignore-invalid-snippet: reason\nspec:\n  ingressClassName: nginx\n"
        );
        let ws = read_back(&text);
        let Object::Ingress(read) = &ws.objects[0] else {
            panic!()
        };
        assert_eq!(read.class.as_deref(), Some("nginx"));
        assert_eq!(read.meta.object, ingress_ref(&ing));
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
        let ws = read_back(&ingress_class_yaml(&ic));
        let Object::IngressClass(read) = &ws.objects[0] else {
            panic!()
        };
        assert_eq!(read.controller, "k8s.io/ingress-nginx");
        assert_eq!(ingress_class_file_name(&ic), "ingressclass/public.yaml");
    }
}
