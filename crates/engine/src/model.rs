//! The engine's view of its inputs: just the fields the rules need, each string value with the place
//! it was read from. `input::manifests` builds these from YAML/JSON files; the Kubernetes layer
//! builds them from API objects.

use std::fmt;

use serde::Serialize;

use crate::source::{FileId, Location, SourceDb, SourceFile, SourceMap, Span};

/// The Kubernetes object a finding belongs to.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
pub struct ObjectRef {
    #[serde(rename = "apiVersion")]
    pub api_version: String,
    pub kind: String,
    pub namespace: Option<String>,
    pub name: String,
}

impl fmt::Display for ObjectRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.namespace {
            Some(ns) => write!(f, "{} {}/{}", self.kind, ns, self.name),
            None => write!(f, "{} {}", self.kind, self.name),
        }
    }
}

/// Where a snippet or a header line was written, in the user's terms: the typed origin of a
/// finding. Events build their `action` from it and the webhook compares findings by it; its
/// `Display` is the wording of every report (`annotation nginx.ingress.kubernetes.io/...`).
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Provenance {
    /// An annotation of the object, by its full key.
    Annotation(String),
    /// A key of a ConfigMap.
    ConfigMapKey(String),
    /// An entry of the ConfigMap (`namespace/name`) that a controller ConfigMap's
    /// `proxy-set-headers` names.
    HeaderMap(String),
    /// A whole rendered `nginx.conf`.
    NginxConf,
    /// One `location` of a rendered `nginx.conf`.
    ConfLocation {
        path: String,
        server: Option<String>,
    },
}

impl Provenance {
    /// The place without prefixes: `configuration-snippet`, `location-snippet`,
    /// `proxy-set-headers`, `nginx.conf`.
    #[must_use]
    pub fn short_key(&self) -> &str {
        match self {
            Provenance::Annotation(key) => key.rsplit('/').next().unwrap_or(key),
            Provenance::ConfigMapKey(key) => key,
            Provenance::HeaderMap(_) => "proxy-set-headers",
            Provenance::NginxConf | Provenance::ConfLocation { .. } => "nginx.conf",
        }
    }
}

impl fmt::Display for Provenance {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Provenance::Annotation(key) => write!(f, "annotation {key}"),
            Provenance::ConfigMapKey(key) => write!(f, "ConfigMap key {key}"),
            Provenance::HeaderMap(configmap) => {
                write!(f, "proxy-set-headers ConfigMap {configmap}")
            }
            Provenance::NginxConf => f.write_str("nginx.conf"),
            Provenance::ConfLocation {
                path,
                server: Some(server),
            } => write!(f, "nginx.conf location {path} in server {server}"),
            Provenance::ConfLocation { path, server: None } => {
                write!(f, "nginx.conf location {path}")
            }
        }
    }
}

/// A string value and where each of its bytes came from.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Text {
    pub value: String,
    pub map: SourceMap,
}

impl Text {
    /// A value that is its own file (an object received from the API server): offsets map 1:1.
    pub fn standalone(
        db: &mut SourceDb,
        name: impl Into<String>,
        value: impl Into<String>,
    ) -> Self {
        let value = value.into();
        let len = value.len() as u32;
        let file = db.add(SourceFile::new(name, value.as_str()));
        Self {
            value,
            map: SourceMap::identity(file, 0, len),
        }
    }

    /// A value that points at no file (an object from the API server whose findings are never
    /// shown as code frames): offsets map 1:1 into [`FileId::DETACHED`].
    #[must_use]
    pub fn detached(value: impl Into<String>) -> Self {
        let value = value.into();
        let len = value.len() as u32;
        Self {
            value,
            map: SourceMap::identity(FileId::DETACHED, 0, len),
        }
    }

    /// Where the whole value sits.
    #[must_use]
    pub fn location(&self) -> Location {
        Location {
            file: self.map.file,
            span: self.map.value_span,
        }
    }
}

/// `metadata.annotations` / `data` entry.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Entry {
    pub key: String,
    pub key_location: Location,
    pub value: Text,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Meta {
    pub object: ObjectRef,
    pub annotations: Vec<Entry>,
    pub labels: Vec<(String, String)>,
    /// Where the object starts (its `kind` line), for findings about the object as a whole.
    pub location: Location,
}

impl Meta {
    #[must_use]
    pub fn annotation(&self, key: &str) -> Option<&Entry> {
        self.annotations.iter().find(|e| e.key == key)
    }

    #[must_use]
    pub fn label(&self, key: &str) -> Option<&str> {
        self.labels
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
    }
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Ingress {
    pub meta: Meta,
    /// `spec.ingressClassName`, else the `kubernetes.io/ingress.class` annotation.
    pub class: Option<String>,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ConfigMap {
    pub meta: Meta,
    pub data: Vec<Entry>,
}

impl ConfigMap {
    #[must_use]
    pub fn get(&self, key: &str) -> Option<&Entry> {
        self.data.iter().find(|e| e.key == key)
    }
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct IngressClass {
    pub meta: Meta,
    pub controller: String,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Object {
    Ingress(Ingress),
    ConfigMap(ConfigMap),
    IngressClass(IngressClass),
}

/// Whether the engine reads objects of this `apiVersion` and `kind`; others are skipped.
#[must_use]
pub fn handled_kind(api_version: &str, kind: &str) -> bool {
    matches!(
        (kind, api_version),
        (
            "Ingress",
            "networking.k8s.io/v1" | "networking.k8s.io/v1beta1" | "extensions/v1beta1"
        ) | ("ConfigMap", "v1")
            | (
                "IngressClass",
                "networking.k8s.io/v1" | "networking.k8s.io/v1beta1"
            )
    )
}

impl Object {
    /// An object of a [`handled_kind`] (by `meta.object.kind`) from the fields the rules read,
    /// whoever read them (a manifest file or the API server).
    ///
    /// `ingress_class_name` and `controller` are `spec.ingressClassName` and `spec.controller`;
    /// an Ingress without the former falls back to the `kubernetes.io/ingress.class` annotation.
    #[must_use]
    pub fn build(
        meta: Meta,
        ingress_class_name: Option<String>,
        controller: Option<String>,
        data: Vec<Entry>,
    ) -> Self {
        match meta.object.kind.as_str() {
            "Ingress" => {
                let class = ingress_class_name.or_else(|| {
                    meta.annotation("kubernetes.io/ingress.class")
                        .map(|e| e.value.value.clone())
                });
                Object::Ingress(Ingress { meta, class })
            }
            "ConfigMap" => Object::ConfigMap(ConfigMap { meta, data }),
            _ => Object::IngressClass(IngressClass {
                controller: controller.unwrap_or_default(),
                meta,
            }),
        }
    }

    #[must_use]
    pub fn meta(&self) -> &Meta {
        match self {
            Object::Ingress(o) => &o.meta,
            Object::ConfigMap(o) => &o.meta,
            Object::IngressClass(o) => &o.meta,
        }
    }
}

/// An input that could not be read as what it claims to be. Not a finding: `--select`,
/// `--ignore` and `--fail-on` do not touch it, and `lint` exits 2.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LoadError {
    /// Where reading stopped, or the value that could not be read.
    pub location: Location,
    pub message: String,
    pub help: Option<String>,
    /// The object the value belongs to, when it got that far.
    pub object: Option<ObjectRef>,
}

/// Everything one run looks at.
#[derive(Debug, Default, Clone)]
pub struct Workspace {
    pub sources: SourceDb,
    pub objects: Vec<Object>,
    /// Files that hold a rendered `nginx.conf`.
    pub confs: Vec<FileId>,
    /// Inputs that could not be read (files that are not YAML, values of the wrong type...):
    /// not findings; always reported, and `lint` exits 2.
    pub load_errors: Vec<LoadError>,
    /// Number of input files read.
    pub files: usize,
}

impl Workspace {
    #[must_use]
    pub fn new() -> Self {
        Self::default()
    }

    /// A location covering nothing, at the start of a file.
    #[must_use]
    pub fn file_start(file: FileId) -> Location {
        Location {
            file,
            span: Span::new(0, 0),
        }
    }
}
