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
    /// A field of a custom resource's `spec`, by its path:
    /// `spec.routes[0].location-snippets`.
    Field(String),
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
            Provenance::Field(path) => path
                .rsplit('.')
                .next()
                .map_or(path.as_str(), |last| last.split('[').next().unwrap_or(last)),
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
            Provenance::Field(path) => write!(f, "field {path}"),
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
    /// The Services its paths (and default backend) send to, in order, without repeats.
    pub services: Vec<String>,
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

/// A value of a custom resource's `spec`, each scalar with its place: the profiles of
/// controllers configured by custom resources (VirtualServer, SnippetsFilter...) read the fields
/// they need from it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Node {
    /// A string, with where each of its bytes came from.
    Str(Text),
    /// A number, boolean or null, as text (`8080`, `true`, ``).
    Scalar(String, Location),
    List(Vec<Node>, Location),
    Map(Vec<Field>, Location),
}

/// One entry of a [`Node::Map`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Field {
    pub key: String,
    pub key_location: Location,
    pub value: Node,
}

impl Node {
    /// An empty mapping (a resource without `spec`).
    #[must_use]
    pub fn empty(location: Location) -> Self {
        Node::Map(Vec::new(), location)
    }

    /// The value of `key` in a mapping.
    #[must_use]
    pub fn get(&self, key: &str) -> Option<&Node> {
        match self {
            Node::Map(fields, _) => fields.iter().find(|f| f.key == key).map(|f| &f.value),
            _ => None,
        }
    }

    /// The value at a path of mapping keys.
    #[must_use]
    pub fn at(&self, path: &[&str]) -> Option<&Node> {
        path.iter().try_fold(self, |node, key| node.get(key))
    }

    /// The string, with positions, when this is a string.
    #[must_use]
    pub fn text(&self) -> Option<&Text> {
        match self {
            Node::Str(t) => Some(t),
            _ => None,
        }
    }

    /// The value as text when it is a scalar (a number or boolean written where a string is
    /// meant reads as its text, as the API server's string fields would not accept it anyway).
    #[must_use]
    pub fn string(&self) -> Option<&str> {
        match self {
            Node::Str(t) => Some(&t.value),
            Node::Scalar(s, _) => Some(s),
            _ => None,
        }
    }

    /// The items of a list; nothing for any other value.
    #[must_use]
    pub fn items(&self) -> &[Node] {
        match self {
            Node::List(items, _) => items,
            _ => &[],
        }
    }

    /// The fields of a mapping; nothing for any other value.
    #[must_use]
    pub fn fields(&self) -> &[Field] {
        match self {
            Node::Map(fields, _) => fields,
            _ => &[],
        }
    }

    /// Where the value is.
    #[must_use]
    pub fn location(&self) -> Location {
        match self {
            Node::Str(t) => t.location(),
            Node::Scalar(_, l) | Node::List(_, l) | Node::Map(_, l) => *l,
        }
    }

    /// The string at `key` of a mapping.
    #[must_use]
    pub fn str_at(&self, key: &str) -> Option<&str> {
        self.get(key).and_then(Node::string)
    }
}

/// A custom resource of a kind some profile reads (VirtualServer...): its metadata and `spec`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Resource {
    pub meta: Meta,
    pub spec: Node,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Object {
    Ingress(Ingress),
    ConfigMap(ConfigMap),
    IngressClass(IngressClass),
    Resource(Resource),
}

/// API groups and kinds of custom resources the engine reads (`group/version`, kind).
pub const RESOURCE_KINDS: &[(&str, &str)] = &[
    ("k8s.nginx.org/v1", "VirtualServer"),
    ("k8s.nginx.org/v1", "VirtualServerRoute"),
    ("k8s.nginx.org/v1", "Policy"),
    ("gateway.nginx.org/v1alpha1", "SnippetsFilter"),
    ("gateway.nginx.org/v1alpha1", "SnippetsPolicy"),
    ("gateway.networking.k8s.io/v1", "HTTPRoute"),
    ("gateway.networking.k8s.io/v1", "GRPCRoute"),
];

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
    ) || RESOURCE_KINDS.contains(&(api_version, kind))
}

/// The Services an Ingress `spec` sends to: `defaultBackend` (`backend` before v1) and every
/// path's backend, in order, without repeats.
fn ingress_services(spec: Option<&Node>) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    let mut add = |backend: Option<&Node>| {
        let Some(b) = backend else { return };
        let name = b
            .at(&["service", "name"])
            .or_else(|| b.get("serviceName"))
            .and_then(Node::string);
        if let Some(name) = name
            && !out.iter().any(|s| s == name)
        {
            out.push(name.to_string());
        }
    };
    let Some(spec) = spec else { return out };
    add(spec.get("defaultBackend").or_else(|| spec.get("backend")));
    for rule in spec.get("rules").map(Node::items).unwrap_or_default() {
        for path in rule
            .at(&["http", "paths"])
            .map(Node::items)
            .unwrap_or_default()
        {
            add(path.get("backend"));
        }
    }
    out
}

impl Object {
    /// An object of a [`handled_kind`] (by `meta.object.kind`) from the fields the rules read,
    /// whoever read them (a manifest file or the API server).
    ///
    /// `spec` is the object's `spec` as read; an Ingress without `spec.ingressClassName` falls
    /// back to the `kubernetes.io/ingress.class` annotation.
    #[must_use]
    pub fn build(meta: Meta, spec: Option<Node>, data: Vec<Entry>) -> Self {
        let spec_str = |key: &str| {
            spec.as_ref()
                .and_then(|s| s.str_at(key))
                .map(str::to_string)
        };
        match meta.object.kind.as_str() {
            "Ingress" => {
                let class = spec_str("ingressClassName").or_else(|| {
                    meta.annotation("kubernetes.io/ingress.class")
                        .map(|e| e.value.value.clone())
                });
                let services = ingress_services(spec.as_ref());
                Object::Ingress(Ingress {
                    meta,
                    class,
                    services,
                })
            }
            "ConfigMap" => Object::ConfigMap(ConfigMap { meta, data }),
            "IngressClass" => Object::IngressClass(IngressClass {
                controller: spec_str("controller").unwrap_or_default(),
                meta,
            }),
            _ => {
                let location = meta.location;
                Object::Resource(Resource {
                    meta,
                    spec: spec.unwrap_or(Node::empty(location)),
                })
            }
        }
    }

    #[must_use]
    pub fn meta(&self) -> &Meta {
        match self {
            Object::Ingress(o) => &o.meta,
            Object::ConfigMap(o) => &o.meta,
            Object::IngressClass(o) => &o.meta,
            Object::Resource(o) => &o.meta,
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
