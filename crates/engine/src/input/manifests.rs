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
//!
//! A value reached through a YAML alias (`*snip`, or a `<<: *ann` merge key) is placed at the
//! anchored text it copies, so a finding in it points at the line the user wrote. A list or a
//! mapping where a string belongs is kept as a word ("a list"), never built: an alias can copy one
//! many times over.

use std::fmt;

use serde::Deserialize;
use serde::de::{self, IgnoredAny, MapAccess, SeqAccess, Visitor};
use serde_json::Value;
use serde_saphyr::Spanned;
use serde_saphyr::budget::BudgetBreach;

use crate::model::{
    Entry, Field, LoadError, Meta, Node, Object, ObjectRef, Text, Workspace, handled_kind,
};
use crate::source::{FileId, Location, SourceFile, SourceMap, Span};

/// A value with its place in the file.
type Sp = Spanned<Val>;

/// A value where the engine wants a string: a scalar as read, or just the kind of a collection.
enum Val {
    Scalar(Value),
    List,
    Map,
}

impl<'de> Deserialize<'de> for Val {
    fn deserialize<D: de::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = Val;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a value")
            }
            fn visit_str<E>(self, v: &str) -> Result<Val, E> {
                Ok(Val::Scalar(Value::String(v.to_owned())))
            }
            fn visit_string<E>(self, v: String) -> Result<Val, E> {
                Ok(Val::Scalar(Value::String(v)))
            }
            fn visit_bool<E>(self, v: bool) -> Result<Val, E> {
                Ok(Val::Scalar(Value::Bool(v)))
            }
            fn visit_i64<E>(self, v: i64) -> Result<Val, E> {
                Ok(Val::Scalar(Value::from(v)))
            }
            fn visit_u64<E>(self, v: u64) -> Result<Val, E> {
                Ok(Val::Scalar(Value::from(v)))
            }
            fn visit_f64<E>(self, v: f64) -> Result<Val, E> {
                Ok(Val::Scalar(Value::from(v)))
            }
            fn visit_unit<E>(self) -> Result<Val, E> {
                Ok(Val::Scalar(Value::Null))
            }
            fn visit_none<E>(self) -> Result<Val, E> {
                Ok(Val::Scalar(Value::Null))
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Val, A::Error> {
                while seq.next_element::<IgnoredAny>()?.is_some() {}
                Ok(Val::List)
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Val, A::Error> {
                while map.next_entry::<IgnoredAny, IgnoredAny>()?.is_some() {}
                Ok(Val::Map)
            }
        }
        d.deserialize_any(V)
    }
}

/// A mapping key: its text when it is a string. Other keys (numbers, `~`, lists) are kept out of
/// the way: a document that is not a Kubernetes object may have them.
struct Key(Option<String>);

impl<'de> Deserialize<'de> for Key {
    fn deserialize<D: de::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        Ok(Key(match Val::deserialize(d)? {
            Val::Scalar(Value::String(s)) => Some(s),
            _ => None,
        }))
    }
}

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
    spec: Option<Spanned<RawTree>>,
    items: Option<Vec<RawDoc>>,
}

#[derive(Default)]
struct RawMeta {
    name: Option<Sp>,
    namespace: Option<Sp>,
    annotations: Option<RawMap>,
    labels: Option<RawMap>,
}

/// Any value with its place, kept whole: an object's `spec`, which profiles read field by field.
enum RawTree {
    Scalar(Value),
    List(Vec<Spanned<RawTree>>),
    Map(Vec<(Sp, Spanned<RawTree>)>),
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
                while let Some(Key(key)) = map.next_key::<Key>()? {
                    match key.as_deref().unwrap_or_default() {
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
                while let Some(Key(key)) = map.next_key::<Key>()? {
                    match key.as_deref().unwrap_or_default() {
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

/// Levels of a `spec` kept as a tree: the deepest field a profile reads (a VirtualServer's
/// `spec.routes[].matches[].action.proxy.requestHeaders.set[].name`) is 11 down. Deeper values
/// are skipped without building anything, which also keeps the reader's stack small on hostile
/// input (each kept level costs several frames; `MAX_DEPTH` bounds the skipped ones).
const MAX_TREE_DEPTH: usize = 16;

thread_local! {
    static TREE_DEPTH: std::cell::Cell<usize> = const { std::cell::Cell::new(0) };
}

/// One more level of [`RawTree`] while alive.
struct TreeLevel;

impl TreeLevel {
    fn enter() -> (Self, usize) {
        let depth = TREE_DEPTH.with(|d| {
            d.set(d.get() + 1);
            d.get()
        });
        (TreeLevel, depth)
    }
}

impl Drop for TreeLevel {
    fn drop(&mut self) {
        TREE_DEPTH.with(|d| d.set(d.get().saturating_sub(1)));
    }
}

impl<'de> Deserialize<'de> for RawTree {
    fn deserialize<D: de::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = RawTree;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a value")
            }
            fn visit_str<E>(self, v: &str) -> Result<RawTree, E> {
                Ok(RawTree::Scalar(Value::String(v.to_owned())))
            }
            fn visit_string<E>(self, v: String) -> Result<RawTree, E> {
                Ok(RawTree::Scalar(Value::String(v)))
            }
            fn visit_bool<E>(self, v: bool) -> Result<RawTree, E> {
                Ok(RawTree::Scalar(Value::Bool(v)))
            }
            fn visit_i64<E>(self, v: i64) -> Result<RawTree, E> {
                Ok(RawTree::Scalar(Value::from(v)))
            }
            fn visit_u64<E>(self, v: u64) -> Result<RawTree, E> {
                Ok(RawTree::Scalar(Value::from(v)))
            }
            fn visit_f64<E>(self, v: f64) -> Result<RawTree, E> {
                Ok(RawTree::Scalar(Value::from(v)))
            }
            fn visit_unit<E>(self) -> Result<RawTree, E> {
                Ok(RawTree::Scalar(Value::Null))
            }
            fn visit_none<E>(self) -> Result<RawTree, E> {
                Ok(RawTree::Scalar(Value::Null))
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<RawTree, A::Error> {
                let mut out = Vec::new();
                while let Some(v) = seq.next_element()? {
                    out.push(v);
                }
                Ok(RawTree::List(out))
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<RawTree, A::Error> {
                let mut out = Vec::new();
                while let Some(k) = map.next_key::<Sp>()? {
                    let v = map.next_value()?;
                    out.push((k, v));
                }
                Ok(RawTree::Map(out))
            }
        }
        let (_level, depth) = TreeLevel::enter();
        if depth > MAX_TREE_DEPTH {
            IgnoredAny::deserialize(d)?;
            return Ok(RawTree::Scalar(Value::Null));
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

/// Deepest nesting of lists and mappings read; no Kubernetes object comes near it.
const MAX_DEPTH: usize = 64;
/// Documents in one file.
const MAX_DOCUMENTS: usize = 100_000;
/// Lists, mappings and scalars in one file (a value copied by an alias counts each time).
const MAX_NODES: usize = 10_000_000;
const MAX_EVENTS: usize = 20_000_000;
/// Values copied by aliases in one file, in all: each `*alias` copies the value its `&anchor`
/// names. Hundreds of aliases of even large anchored blocks stay far below; a billion-laughs
/// bomb passes it within its first lines.
const MAX_ALIAS_COPIES: usize = 250_000;
/// Values held in memory because an anchor names them (counted again when they are themselves
/// copies, or inside more than one anchored value): about 200 bytes each.
const MAX_ANCHORED_VALUES: usize = 50_000;
/// Bytes of decoded text held for anchored values.
const MAX_ANCHORED_BYTES: usize = 16 << 20;
/// Bytes of text that aliases may copy, beyond the file's own. Decoded values are no longer than
/// the text they are written in (but for a few escapes such as `\L`, and tags such as `!!str`,
/// counted spelled out), so only copies take them much past the file's size.
const MAX_ALIAS_TEXT_BYTES: usize = 16 << 20;

/// Limits that keep hostile YAML bounded in time and memory (no billion laughs), and let streams
/// of many documents through. `len` is the size of the file.
fn options(len: usize) -> serde_saphyr::Options {
    let mut budget = serde_saphyr::Budget::default();
    budget.max_total_scalar_bytes = len.saturating_add(MAX_ALIAS_TEXT_BYTES);
    budget.max_documents = MAX_DOCUMENTS;
    budget.max_nodes = MAX_NODES;
    budget.max_events = MAX_EVENTS;
    budget.max_depth = MAX_DEPTH;
    // Flow collections (`[[[...`, JSON) stop at the same depth as block ones, with the same error.
    budget.flow_nesting_limit = MAX_DEPTH;
    budget.max_recorded_anchor_events = MAX_ANCHORED_VALUES;
    budget.max_recorded_anchor_bytes = MAX_ANCHORED_BYTES;
    // One anchor used by hundreds of aliases (shared labels) is ordinary, and the limits above
    // already bound what aliases cost: the aliases-per-anchor heuristic would refuse real files.
    budget.enforce_alias_anchor_ratio = false;
    let mut options = serde_saphyr::Options::default();
    options.budget = Some(budget);
    options.alias_limits.max_total_replayed_events = MAX_ALIAS_COPIES;
    // Comments are never read: a block of more than a few dozen comment lines would otherwise
    // overflow the parser's comment look-ahead and fail the file.
    options.emit_comments = false;
    options
}

/// The byte span of a place the YAML reader reports: its byte span when it has one, else from
/// its line and column (a syntax error has only those), as many characters long as it says.
fn place(file: &SourceFile, at: &serde_saphyr::Location) -> Option<Span> {
    let text = file.text.as_str();
    let span = at.span();
    if let (Some(start), Some(len)) = (span.byte_offset(), span.byte_len()) {
        let start = usize::try_from(start).map_or(text.len(), |s| s.min(text.len()));
        let end =
            usize::try_from(len).map_or(text.len(), |l| start.saturating_add(l).min(text.len()));
        return Some(Span::new(start, end));
    }
    if at.line() == 0 {
        return None;
    }
    let line = file.line_range(usize::try_from(at.line()).unwrap_or(usize::MAX));
    let column = usize::try_from(at.column().saturating_sub(1)).unwrap_or(usize::MAX);
    let start = text[line.clone()]
        .char_indices()
        .nth(column)
        .map_or(line.end, |(i, _)| line.start + i);
    // A span of unknown length (or longer than the text) is one character.
    let chars = match span.len() {
        0 => 0,
        n if n > text.len() as u64 => 1,
        n => usize::try_from(n).unwrap_or(1),
    };
    let end = text[start..]
        .char_indices()
        .nth(chars)
        .map_or(text.len(), |(i, _)| start + i);
    Some(Span::new(start, end))
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
    wrong_type(location, what, key, kind, object)
}

fn wrong_type(
    location: Location,
    what: &str,
    key: &str,
    kind: &str,
    object: &ObjectRef,
) -> LoadError {
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

/// What the items of a `List` take from it when they do not say: an `IngressList` from the API
/// server (`kubectl get --raw`, `curl`) leaves `kind` and `apiVersion` out of its items.
struct ListDefaults {
    /// `Ingress` for an `IngressList`; none for kubectl's `kind: List`.
    kind: Option<String>,
    api_version: Option<String>,
    /// The list's `kind`, where an item without `kind` or name is placed.
    location: Location,
}

struct Loader<'w> {
    ws: &'w mut Workspace,
    file: FileId,
    text: std::sync::Arc<String>,
}

impl Loader<'_> {
    /// Where a value sits. A value reached through an alias (`*snip`, or a `<<: *ann` merge) is
    /// placed at the anchored text it copies, so that a line inside it is found; a list or
    /// mapping copied that way (no text of its own to point into) at the alias.
    fn span<T>(&self, sp: &Spanned<T>) -> Option<Span> {
        let file = self.ws.sources.get(self.file);
        let defined = place(file, &sp.defined);
        if sp.defined != sp.referenced
            && let Some(d) = defined.filter(|d| !d.is_empty())
        {
            return Some(d);
        }
        place(file, &sp.referenced).or(defined)
    }

    fn location<T>(&self, sp: &Spanned<T>) -> Location {
        Location {
            file: self.file,
            span: self.span(sp).unwrap_or_default(),
        }
    }

    fn string(sp: &Sp) -> Option<String> {
        match &sp.value {
            Val::Scalar(Value::String(s)) => Some(s.clone()),
            Val::Scalar(Value::Number(n)) => Some(n.to_string()),
            Val::Scalar(Value::Bool(b)) => Some(b.to_string()),
            _ => None,
        }
    }

    fn text<T>(&self, sp: &Spanned<T>, value: String) -> Text {
        let Some(span) = self.span(sp) else {
            return Text {
                value,
                map: SourceMap::identity(self.file, 0, 0),
            };
        };
        let raw = &self.text[span.range()];
        // A block scalar is placed at its first line of content: the empty lines before it are
        // in the value only.
        let lead = if raw.starts_with(['"', '\'']) {
            0
        } else {
            value.len() - value.trim_start_matches('\n').len()
        };
        let mut anchors = align(raw, span.start, &value[lead..], raw.starts_with('"'));
        for a in &mut anchors {
            a.0 += lead as u32;
        }
        Text {
            map: SourceMap::from_anchors(self.file, anchors, span),
            value,
        }
    }

    /// A `spec` as the engine keeps it: strings with their positions, everything else as text.
    fn node(&self, tree: Spanned<RawTree>) -> Node {
        let location = self.location(&tree);
        if let RawTree::Scalar(Value::String(s)) = &tree.value {
            return Node::Str(self.text(&tree, s.clone()));
        }
        match tree.value {
            RawTree::Scalar(Value::Null) => Node::Scalar(String::new(), location),
            RawTree::Scalar(v) => Node::Scalar(v.to_string(), location),
            RawTree::List(items) => {
                Node::List(items.into_iter().map(|i| self.node(i)).collect(), location)
            }
            RawTree::Map(fields) => Node::Map(
                fields
                    .into_iter()
                    .filter_map(|(k, v)| {
                        let key = Self::string(&k)?;
                        Some(Field {
                            key,
                            key_location: self.location(&k),
                            value: self.node(v),
                        })
                    })
                    .collect(),
                location,
            ),
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
            let kind = match &v.value {
                Val::Scalar(Value::String(s)) => {
                    let value = self.text(&v, s.clone());
                    out.push(Entry {
                        key,
                        key_location: self.location(&k),
                        value,
                    });
                    continue;
                }
                Val::Scalar(Value::Null) => continue,
                Val::Scalar(Value::Number(_)) => "a number",
                Val::Scalar(Value::Bool(_)) => "a boolean",
                Val::List => "a list",
                Val::Map => "a mapping",
                Val::Scalar(_) => "not a string",
            };
            let loc = self.location(&v);
            self.ws
                .load_errors
                .push(wrong_type(loc, what, &key, kind, object));
        }
        out
    }

    fn add(&mut self, doc: RawDoc, list: Option<&ListDefaults>) {
        let RawDoc::Object(o) = doc else { return };
        let RawObject {
            api_version,
            kind: kind_sp,
            metadata,
            data,
            spec,
            items,
        } = *o;
        let own_kind = kind_sp.as_ref().and_then(Self::string);
        let own_api_version = api_version.as_ref().and_then(Self::string);
        let metadata = metadata.unwrap_or_default();
        // An object is placed at its `kind`; an item of an API list, which has none, at its name
        // or else at the list's `kind`.
        let location = kind_sp
            .as_ref()
            .or(metadata.name.as_ref())
            .map(|sp| self.location(sp))
            .or(list.map(|l| l.location))
            .unwrap_or(Workspace::file_start(self.file));
        if let Some(items) = items {
            let defaults = ListDefaults {
                kind: own_kind
                    .as_deref()
                    .and_then(|k| k.strip_suffix("List"))
                    .filter(|k| !k.is_empty())
                    .map(str::to_owned),
                api_version: own_api_version.clone(),
                location,
            };
            for item in items {
                self.add(item, Some(&defaults));
            }
        }
        let Some(kind) = own_kind.or_else(|| list.and_then(|l| l.kind.clone())) else {
            return;
        };
        let api_version = own_api_version
            .or_else(|| list.and_then(|l| l.api_version.clone()))
            .unwrap_or_default();
        if !handled_kind(&api_version, &kind) {
            return;
        }
        let object = ObjectRef {
            api_version,
            kind,
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
        let data = if object.kind == "ConfigMap" {
            self.entries(data, "ConfigMap key", &object)
        } else {
            Vec::new()
        };
        let meta = Meta {
            object,
            annotations,
            labels,
            location,
        };
        let spec = spec.map(|t| self.node(t));
        let obj = Object::build(meta, spec, data);
        self.ws.objects.push(obj);
    }
}

const NOT_CHECKED: &str = "nothing in this file was checked";

/// Why a file could not be read and what to do about it, in the user's terms. `text` is the file
/// and `at` where reading stopped.
fn explain(e: &serde_saphyr::Error, text: &str, at: usize) -> (String, String) {
    use serde_saphyr::Error as E;
    use serde_saphyr::MessageFormatter as _;
    let syntax = || format!("fix the YAML syntax; {NOT_CHECKED}");
    match e.without_snippet() {
        E::AliasError { error, .. } => explain(error, text, at),
        E::ExternalMessage { source, msg, .. } => match source.as_ref() {
            serde_saphyr::ExternalMessageSource::Parser(scan)
                if matches!(
                    scan.kind(),
                    serde_saphyr::granit_parser::ErrorKind::RecursionLimitExceeded
                ) =>
            {
                too_deep()
            }
            _ => (msg.clone(), syntax()),
        },
        E::UnknownAnchor { .. } => match alias_name(text, at) {
            Some(name) => (
                format!(
                    "alias `*{name}` names no anchor: no `&{name}` comes before it in this document"
                ),
                format!(
                    "write `&{name}` on the value to copy, before its first alias and in the same document (anchors do not carry over `---`); {NOT_CHECKED}"
                ),
            ),
            None => (
                "an alias names no anchor before it in this document".into(),
                format!("anchors do not carry over `---`; {NOT_CHECKED}"),
            ),
        },
        E::DuplicateMappingKey { key, .. } => (
            key.as_ref().map_or_else(
                || "duplicate key in a mapping".into(),
                |k| format!("duplicate key `{k}`"),
            ),
            format!("a key may appear once in a mapping: keep one of them; {NOT_CHECKED}"),
        ),
        E::Eof { .. } => ("the file ends in the middle of a value".into(), syntax()),
        E::Budget { breach, .. } => over_budget(breach),
        E::AliasReplayLimitExceeded { .. }
        | E::AliasExpansionLimitExceeded { .. }
        | E::AliasReplayStackDepthExceeded { .. }
        | E::AliasReplayCounterOverflow { .. } => alias_bomb(),
        E::SerdeInvalidType {
            unexpected,
            expected,
            ..
        } => (
            format!("{unexpected} where {expected} belongs"),
            format!("fix this value; {NOT_CHECKED}"),
        ),
        other => (
            serde_saphyr::UserMessageFormatter
                .format_message(other)
                .into_owned(),
            syntax(),
        ),
    }
}

fn too_deep() -> (String, String) {
    (
        format!("lists and mappings nested deeper than {MAX_DEPTH} levels"),
        format!("no Kubernetes object nests this deep: is this the file you meant? {NOT_CHECKED}"),
    )
}

fn alias_bomb() -> (String, String) {
    (
        "too many alias expansions (a YAML alias bomb?)".into(),
        format!(
            "each `*alias` copies the value its `&anchor` names, and here the copies add up past \
             what snippet-guard reads; write the values out or use fewer aliases; {NOT_CHECKED}"
        ),
    )
}

fn over_budget(breach: &BudgetBreach) -> (String, String) {
    let split = || format!("split the file; {NOT_CHECKED}");
    match breach {
        BudgetBreach::Depth { .. } => too_deep(),
        BudgetBreach::AliasAnchorRatio { .. }
        | BudgetBreach::RecordedAnchorEvents { .. }
        | BudgetBreach::RecordedAnchorBytes { .. } => alias_bomb(),
        BudgetBreach::Aliases { .. } => ("too many aliases (`*name`)".into(), alias_bomb().1),
        BudgetBreach::Anchors { .. } => ("too many anchors (`&name`)".into(), split()),
        BudgetBreach::MergeKeys { .. } => (
            "too many merge keys (`<<`)".into(),
            format!("write the merged values out; {NOT_CHECKED}"),
        ),
        BudgetBreach::Documents { .. } => (
            format!("more than {MAX_DOCUMENTS} documents in one file"),
            split(),
        ),
        BudgetBreach::Nodes { .. } => (
            format!(
                "more than {MAX_NODES} values in one file (a value an alias copies counts each time)"
            ),
            split(),
        ),
        BudgetBreach::Events { .. } => ("too many values in one file".into(), split()),
        BudgetBreach::ScalarBytes { .. } => (
            format!(
                "aliases copy more than {} MiB of text (a YAML alias bomb?)",
                MAX_ALIAS_TEXT_BYTES >> 20
            ),
            alias_bomb().1,
        ),
        BudgetBreach::SequenceUnbalanced => (
            "a list or mapping ends that never started".into(),
            format!("fix the YAML syntax; {NOT_CHECKED}"),
        ),
        _ => (
            "the file is too large or too complex to read".into(),
            split(),
        ),
    }
}

/// The name of the alias written at `at` (`*name`), if there is one.
fn alias_name(text: &str, at: usize) -> Option<&str> {
    let rest = text.get(at..)?.strip_prefix('*')?;
    let end = rest
        .find(|c: char| c.is_whitespace() || matches!(c, ',' | '[' | ']' | '{' | '}'))
        .unwrap_or(rest.len());
    (end > 0).then(|| &rest[..end])
}

/// Read every document of a YAML or JSON file already added to `ws.sources` as `file`.
pub fn load(ws: &mut Workspace, file: FileId) {
    let text = ws.sources.get(file).text.clone();
    match serde_saphyr::from_multiple_with_options::<RawDoc>(&text, options(text.len())) {
        Ok(docs) => {
            let mut loader = Loader { ws, file, text };
            for doc in docs {
                loader.add(doc, None);
            }
        }
        Err(e) => {
            let span = e
                .location()
                .and_then(|l| place(ws.sources.get(file), &l))
                .unwrap_or_default();
            let (reason, help) = explain(&e, &text, span.start as usize);
            ws.load_errors.push(LoadError {
                location: Location { file, span },
                message: format!("cannot read this file as YAML or JSON: {reason}"),
                help: Some(help),
                object: None,
            });
        }
    }
}

#[cfg(test)]
mod tests {
    use std::fmt::Write as _;

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

    /// The file text a location covers, and its 1-based line and column.
    fn at(ws: &Workspace, loc: Location) -> (String, usize, usize) {
        let f = ws.sources.get(loc.file);
        let lc = f.line_col(loc.span.start);
        (f.text[loc.span.range()].to_string(), lc.line, lc.column)
    }

    #[test]
    fn items_of_an_api_list_take_kind_and_api_version_from_it() {
        let src = r#"{"kind":"IngressList","apiVersion":"networking.k8s.io/v1","metadata":{},"items":[{"metadata":{"name":"web","namespace":"a"},"spec":{"ingressClassName":"nginx"}},{"kind":"Ingress","apiVersion":"extensions/v1beta1","metadata":{"name":"old"}}]}
---
kind: ConfigMapList
apiVersion: v1
items:
- metadata: {name: cm}
  data: {a: b}
---
kind: IngressClassList
apiVersion: networking.k8s.io/v1
items:
- metadata: {name: nginx}
  spec: {controller: k8s.io/ingress-nginx}
---
kind: List
apiVersion: v1
items:
- metadata: {name: no-kind}
- {apiVersion: v1, kind: ConfigMap, metadata: {name: typed}}
"#;
        let ws = load_str(src);
        assert!(ws.load_errors.is_empty(), "{:?}", ws.load_errors);
        let got: Vec<_> = ws
            .objects
            .iter()
            .map(|o| {
                let r = &o.meta().object;
                format!("{} {} {}", r.api_version, r.kind, r.name)
            })
            .collect();
        assert_eq!(
            got,
            [
                "networking.k8s.io/v1 Ingress web",
                "extensions/v1beta1 Ingress old",
                "v1 ConfigMap cm",
                "networking.k8s.io/v1 IngressClass nginx",
                "v1 ConfigMap typed",
            ]
        );
        // An item without `kind` is placed at its name.
        assert_eq!(at(&ws, ws.objects[0].meta().location).0, "\"web\"");
        let Object::IngressClass(class) = &ws.objects[3] else {
            panic!("{:?}", ws.objects[3])
        };
        assert_eq!(class.controller, "k8s.io/ingress-nginx");
        let Object::ConfigMap(cm) = &ws.objects[2] else {
            panic!()
        };
        assert_eq!(cm.data[0].value.value, "b");
    }

    #[test]
    fn read_errors_point_at_their_line_and_column() {
        // (text, line, column, text at the place): syntax errors carry no byte offset, only a
        // line and a column in characters (the `é`s before the error are two bytes each).
        for (src, line, column, text) in [
            ("a: b\nc: d\n   e: [f\n", 3, 5, ":"),
            ("a: b\nc: \"éé\": x\n", 2, 8, ":"),
            ("kind: ConfigMap\ndata:\n  a: \"b\n", 3, 6, "\""),
            ("kind: ConfigMap\ndata:\n  e: *nope\n", 3, 6, "*"),
            (&format!("x: {}", "[".repeat(100)), 1, 4 + MAX_DEPTH, "["),
            ("kind: ConfigMap\nkind: Ingress\n", 2, 1, "kind"),
        ] {
            let ws = load_str(src);
            assert_eq!(ws.load_errors.len(), 1, "{src}");
            let e = &ws.load_errors[0];
            assert_eq!(
                at(&ws, e.location),
                (text.to_string(), line, column),
                "{src}: {e:?}"
            );
            assert!(!e.message.contains("line"), "{}", e.message);
        }
    }

    #[test]
    fn a_value_through_an_alias_maps_into_the_anchored_text() {
        let src = "apiVersion: v1\nkind: List\nitems:\n- apiVersion: v1\n  kind: ConfigMap\n  metadata:\n    name: a\n    annotations: &ann\n      x: \"y\"\n  data:\n    location-snippet: &snip |\n      more_set_headers \"A: b\";\n      proxy_set_header X-Forwarded-Proto $scheme;\n- apiVersion: v1\n  kind: ConfigMap\n  metadata:\n    name: b\n    annotations:\n      <<: *ann\n  data:\n    location-snippet: *snip\n";
        let ws = load_str(src);
        assert!(ws.load_errors.is_empty(), "{:?}", ws.load_errors);
        let Object::ConfigMap(b) = &ws.objects[1] else {
            panic!()
        };
        let v = &b.data[0].value;
        let from = v.value.find("proxy_set_header").unwrap();
        let loc = v.map.map_span(Span::new(from, from + 16));
        assert_eq!(at(&ws, loc), ("proxy_set_header".into(), 13, 7));
        assert_eq!(at(&ws, v.location()).1, 12);
        // A merged annotation: its key and value are the anchored ones.
        let e = &b.meta.annotations[0];
        assert_eq!(at(&ws, e.key_location), ("x".into(), 9, 7));
        assert_eq!(at(&ws, e.value.location()), ("\"y\"".into(), 9, 10));
    }

    #[test]
    fn keys_that_are_not_strings_do_not_fail_the_file() {
        let ws = load_str(
            "~: x\n1: [a]\n? [a, b]\n: c\n---\napiVersion: v1\nkind: ConfigMap\nmetadata: {name: x, 7: y}\ndata: {a: b}\n",
        );
        assert!(ws.load_errors.is_empty(), "{:?}", ws.load_errors);
        assert_eq!(ws.objects.len(), 1);
    }

    #[test]
    fn a_long_block_of_comments_is_read() {
        let comments = (0..100).fold(String::new(), |mut s, i| {
            let _ = writeln!(s, "  # note {i}");
            s
        });
        let ws = load_str(&format!(
            "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: x\ndata:\n{comments}  a: b\n"
        ));
        assert!(ws.load_errors.is_empty(), "{:?}", ws.load_errors);
        assert_eq!(ws.objects.len(), 1);
    }

    #[test]
    fn alias_names() {
        assert_eq!(alias_name("a: *snip\n", 3), Some("snip"));
        assert_eq!(alias_name("[*a,*b]", 1), Some("a"));
        assert_eq!(alias_name("a: b", 3), None);
        assert_eq!(alias_name("*", 0), None);
        assert_eq!(alias_name("x", 9), None);
    }
}
