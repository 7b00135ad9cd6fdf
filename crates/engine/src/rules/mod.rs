//! The rule registry and the context every rule is called with.
//!
//! A rule file holds its documentation, metadata and check, like a clippy lint: the doc comment
//! on the `declare_rule!` item becomes [`RuleMeta::docs`] (with the fixed headings *What it
//! does*, *Why is this bad?*, *Example*, *Use instead*, *Fix*, *Known limits*). Rules never walk
//! files themselves: the engine builds a [`LocationModel`] for every location a snippet lands in
//! (the template's header lines followed by the user's, in nginx order) and a [`ParsedSnippet`] for
//! every snippet, and calls the checks with them.

use crate::diagnostic::{Applicability, Diagnostic, Fix, ObjectRef};
pub use crate::registry::RuleMeta;
pub(crate) use crate::registry::declare_rule;
use std::sync::OnceLock;

use crate::headers::{Family, TemplateHeader, Voice};
use crate::model::{Provenance, Text};
use crate::nginx::ast::{Config, Directive};
use crate::source::{Location, SourceFile, SourceMap, Span};

pub mod duplicate_controller_header;
pub mod duplicate_snippet_header;
pub mod ignored_snippet;
pub mod ineffective_empty_header;
pub mod ineffective_inherited_header;
pub mod invalid_snippet;
pub mod redundant_forwarded_proto;
pub mod unknown_suppression;

/// Every rule, in id order: the one registry that the CLI (`--select`, `--ignore`, `explain`,
/// `rules`), `docs/rules/`, the README table, SARIF's rule list and the chart's Event reasons are
/// made from (a test keeps the generated ones current).
pub static ALL: &[&RuleMeta] = &[
    &duplicate_controller_header::DUPLICATE_CONTROLLER_HEADER,
    &duplicate_snippet_header::DUPLICATE_SNIPPET_HEADER,
    &ignored_snippet::IGNORED_SNIPPET,
    &ineffective_empty_header::INEFFECTIVE_EMPTY_HEADER,
    &ineffective_inherited_header::INEFFECTIVE_INHERITED_HEADER,
    &invalid_snippet::INVALID_SNIPPET,
    &redundant_forwarded_proto::REDUNDANT_FORWARDED_PROTO,
    &unknown_suppression::UNKNOWN_SUPPRESSION,
];

/// Look a rule up by id.
#[must_use]
pub fn by_id(id: &str) -> Option<&'static RuleMeta> {
    ALL.iter().copied().find(|r| r.id == id)
}

/// The rules a run uses, from `--select` and `--ignore`: a rule that is not in the set is never
/// called.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct RuleSet(u64);

impl RuleSet {
    /// Every rule.
    #[must_use]
    pub fn all() -> Self {
        Self((1u64 << ALL.len()) - 1)
    }

    /// Only `select` (every rule when empty), minus `ignore`. Unknown ids select nothing (the CLI
    /// refuses them before).
    #[must_use]
    pub fn new(select: &[String], ignore: &[String]) -> Self {
        let bits = |ids: &[String]| {
            ids.iter()
                .filter_map(|id| ALL.iter().position(|r| r.id == id))
                .fold(0u64, |acc, i| acc | 1 << i)
        };
        let selected = if select.is_empty() {
            Self::all().0
        } else {
            bits(select)
        };
        Self(selected & !bits(ignore))
    }

    /// Whether `rule` runs.
    #[must_use]
    pub fn has(self, rule: &RuleMeta) -> bool {
        ALL.iter()
            .position(|r| r.id == rule.id)
            .is_some_and(|i| self.0 & (1 << i) != 0)
    }
}

/// The rules that judge the header lines of one location, those of them that `rules` enables.
pub fn run_location_rules(model: &LocationModel, rules: RuleSet, out: &mut Vec<Diagnostic>) {
    if rules.has(&redundant_forwarded_proto::REDUNDANT_FORWARDED_PROTO) {
        redundant_forwarded_proto::check(model, out);
    }
    if rules.has(&duplicate_controller_header::DUPLICATE_CONTROLLER_HEADER) {
        duplicate_controller_header::check(model, out);
    }
    if rules.has(&duplicate_snippet_header::DUPLICATE_SNIPPET_HEADER) {
        duplicate_snippet_header::check(model, out);
    }
    if rules.has(&ineffective_empty_header::INEFFECTIVE_EMPTY_HEADER) {
        ineffective_empty_header::check(model, out);
    }
}

/// A snippet (or a whole `nginx.conf`) parsed, with what is needed to point into its file.
#[derive(Debug)]
pub struct ParsedSnippet<'a> {
    /// Where the snippet was written.
    pub source: Provenance,
    src: &'a str,
    map: &'a SourceMap,
    pub config: Config,
    pub object: Option<ObjectRef>,
    /// Built on first use: most snippets (and most of a 16 MB `nginx.conf`) never need it.
    line_starts: OnceLock<Vec<u32>>,
    /// A whole file parsed as it is (an `nginx.conf`): its lines are the file's, whose index
    /// the report builds anyway.
    file: Option<&'a SourceFile>,
    /// Start offsets of the comments that hold `snippet-guard:`, built on first use, so that
    /// looking up a finding's inline suppressions costs a binary search, not a scan of its line
    /// (100,000 findings on one line were quadratic).
    marked_comments: OnceLock<Vec<u32>>,
}

impl<'a> ParsedSnippet<'a> {
    #[must_use]
    pub fn new(source: Provenance, text: &'a Text, object: Option<ObjectRef>) -> Self {
        Self::from_parts(source, &text.value, &text.map, object)
    }

    /// Parse `src`, whose bytes `map` places in their file.
    #[must_use]
    pub fn from_parts(
        source: Provenance,
        src: &'a str,
        map: &'a SourceMap,
        object: Option<ObjectRef>,
    ) -> Self {
        Self::parsed(source, src, map, object, crate::nginx::parser::parse(src))
    }

    /// Parse the whole text of `file` (a rendered `nginx.conf`: large, so on every core); its
    /// lines are the snippet's lines, so `map` must be the identity from offset 0.
    #[must_use]
    pub fn whole_file(
        source: Provenance,
        file: &'a SourceFile,
        map: &'a SourceMap,
        object: Option<ObjectRef>,
    ) -> Self {
        let config = crate::nginx::parser::parse_parallel(&file.text);
        let mut snippet = Self::parsed(source, &file.text, map, object, config);
        snippet.file = Some(file);
        snippet
    }

    fn parsed(
        source: Provenance,
        src: &'a str,
        map: &'a SourceMap,
        object: Option<ObjectRef>,
        config: Config,
    ) -> Self {
        Self {
            source,
            src,
            map,
            config,
            object,
            line_starts: OnceLock::new(),
            file: None,
            marked_comments: OnceLock::new(),
        }
    }

    #[must_use]
    pub fn src(&self) -> &'a str {
        self.src
    }

    /// 1-based line inside the snippet.
    #[must_use]
    pub fn line_of(&self, offset: u32) -> usize {
        if let Some(file) = self.file {
            return file.line_of(offset);
        }
        let starts = self
            .line_starts
            .get_or_init(|| crate::source::line_starts(self.src.as_bytes()));
        crate::source::line_of(starts, offset)
    }

    /// The file location of a span of the snippet.
    #[must_use]
    pub fn locate(&self, span: Span) -> Location {
        self.map.map_span(span)
    }

    /// Start offsets of the comments that hold `snippet-guard:`.
    fn marked(&self) -> &[u32] {
        self.marked_comments.get_or_init(|| {
            self.config
                .comments
                .iter()
                .filter(|c| self.src[c.span.range()].contains("snippet-guard:"))
                .map(|c| c.span.start)
                .collect()
        })
    }

    /// Rule ids named by `# snippet-guard: ignore <id>...` comments on any line of `span` (a
    /// directive written over several lines can carry the comment on any of them).
    /// `ignore` with no id, or `all`, silences every rule.
    #[must_use]
    pub fn inline_ignores(&self, span: Span) -> Vec<String> {
        let marked = self.marked();
        // A comment runs to the end of its line, so only one after `span.start` can share a line
        // with the directive.
        let first = marked.partition_point(|&start| start < span.start);
        let Some(&start) = marked.get(first) else {
            return Vec::new();
        };
        let last_line = self.line_of(span.end.saturating_sub(1).max(span.start));
        if self.line_of(start) > last_line {
            return Vec::new();
        }
        let mut out = Vec::new();
        for &c in &marked[first..] {
            if self.line_of(c) > last_line {
                break;
            }
            if let Some(ids) = self.ignore_comment(c) {
                out.extend(ids);
            }
        }
        out
    }

    /// The ids of the `snippet-guard: ignore` comment starting at `start` (`all` for none), or
    /// `None` when the comment is something else.
    fn ignore_comment(&self, start: u32) -> Option<Vec<String>> {
        let at = self
            .config
            .comments
            .partition_point(|c| c.span.start < start);
        let c = self.config.comments.get(at)?;
        let text = self.src[c.span.range()].trim_start_matches('#').trim();
        let ids = text
            .strip_prefix("snippet-guard:")?
            .trim()
            .strip_prefix("ignore")?;
        let ids: Vec<String> = ids
            .split(|c: char| c == ',' || c.is_whitespace())
            .filter(|s| !s.is_empty())
            .map(str::to_string)
            .collect();
        Some(if ids.is_empty() {
            vec!["all".to_string()]
        } else {
            ids
        })
    }

    /// Every `# snippet-guard: ignore` comment of the snippet: its span and the ids it names.
    #[must_use]
    pub fn ignore_comments(&self) -> Vec<(Span, Vec<String>)> {
        self.marked()
            .iter()
            .filter_map(|&start| {
                let ids = self.ignore_comment(start)?;
                let at = self
                    .config
                    .comments
                    .partition_point(|c| c.span.start < start);
                Some((self.config.comments[at].span, ids))
            })
            .collect()
    }

    /// The `proxy_set_header`/`grpc_set_header` lines among `dirs` (directives of this
    /// snippet), as user lines of a location; `specificity` orders two user sources.
    #[must_use]
    pub fn header_lines(&self, dirs: &[Directive], specificity: u8) -> Vec<HeaderLine> {
        let src = self.src;
        dirs.iter()
            .filter(|d| d.block.is_none() && d.args.len() == 2)
            .filter_map(|d| {
                let family = Family::of_directive(d.name(src))?;
                Some(HeaderLine {
                    name: d.args[0].value(src).into_owned(),
                    value: d.args[1].value(src).into_owned(),
                    family,
                    origin: Origin::User(UserLine {
                        location: self.locate(d.span),
                        source: self.source.clone(),
                        object: self.object.clone(),
                        snippet_line: Some(self.line_of(d.span.start)),
                        inline_ignores: self.inline_ignores(d.span),
                        specificity,
                        from_header_map: false,
                    }),
                })
            })
            .collect()
    }

    /// A diagnostic on `span` of this snippet, with object, source and snippet line filled in.
    #[must_use]
    pub fn diagnostic(
        &self,
        rule: &'static RuleMeta,
        span: Span,
        message: impl Into<String>,
    ) -> Diagnostic {
        let mut d = Diagnostic::new(rule, self.locate(span), message);
        d.object.clone_from(&self.object);
        d.source = Some(self.source.clone());
        d.snippet_line = Some(self.line_of(span.start));
        d.inline_ignores = self.inline_ignores(span);
        d
    }
}

/// Which location a model describes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LocationKind {
    /// A `location` generated for an Ingress path.
    Proxied,
    /// The internal `/_external-auth-*` location.
    Auth,
}

/// A header line a user source adds to a location.
#[derive(Clone, Debug)]
pub struct UserLine {
    /// The whole directive (or the ConfigMap entry).
    pub location: Location,
    pub source: Provenance,
    pub object: Option<ObjectRef>,
    pub snippet_line: Option<usize>,
    pub inline_ignores: Vec<String>,
    /// 2 for an Ingress annotation, 1 for a controller ConfigMap snippet, 0 for an entry of the
    /// `proxy-set-headers` ConfigMap. A finding between two user lines goes to the more specific.
    pub specificity: u8,
    /// The line is an entry of the `proxy-set-headers` ConfigMap, not a snippet directive.
    pub from_header_map: bool,
}

#[derive(Clone, Debug)]
pub enum Origin {
    Template(TemplateHeader),
    User(UserLine),
}

/// One request-header line of a location, as nginx will see it.
#[derive(Clone, Debug)]
pub struct HeaderLine {
    /// As written, quotes removed.
    pub name: String,
    /// The value, quotes removed; empty means nginx sends nothing for this line.
    pub value: String,
    pub family: Family,
    pub origin: Origin,
}

impl HeaderLine {
    #[must_use]
    pub fn user(&self) -> Option<&UserLine> {
        match &self.origin {
            Origin::User(u) => Some(u),
            Origin::Template(_) => None,
        }
    }

    #[must_use]
    pub fn template(&self) -> Option<&TemplateHeader> {
        match &self.origin {
            Origin::Template(t) => Some(t),
            Origin::User(_) => None,
        }
    }

    /// Same header for the backend: names compare case-insensitively, and a trailing `:` (as in
    /// `proxy_set_header X-Forwarded-Proto: https;`) is what backends strip when they parse
    /// `X-Forwarded-Proto:: https`.
    #[must_use]
    pub fn same_name(&self, other: &HeaderLine) -> bool {
        self.is(other.name.trim_end_matches(':'))
    }

    /// The header is `name` (case-insensitive, trailing `:` ignored).
    #[must_use]
    pub fn is(&self, name: &str) -> bool {
        self.name.trim_end_matches(':').eq_ignore_ascii_case(name)
    }

    /// A note for a name written with a trailing colon.
    #[must_use]
    pub fn colon_note(&self) -> Option<String> {
        self.name.ends_with(':').then(|| {
            format!(
                "`{}` is not a separate header: nginx writes `{}: {}` and the backend reads it as `{}` with the value `: {}`",
                self.name,
                self.name,
                self.value,
                self.name.trim_end_matches(':'),
                self.value
            )
        })
    }

    /// The fix that deletes this (user) line of a snippet or an `nginx.conf`, or this entry of
    /// the `proxy-set-headers` ConfigMap.
    #[must_use]
    pub fn removal(&self, applicability: Applicability) -> Option<Fix> {
        let u = self.user()?;
        // An entry of a list in a field or an annotation (`nginx.org/proxy-set-headers`,
        // `requestHeaders.set`): deleting it is an edit of that list, not of a line.
        if u.snippet_line.is_none()
            && matches!(u.source, Provenance::Annotation(_) | Provenance::Field(_))
        {
            return None;
        }
        let what = if u.from_header_map {
            "remove this key"
        } else {
            "remove this line"
        };
        Fix::remove_directive(u.location, applicability, what)
    }

    /// The diagnostic skeleton for a finding on this (user) line.
    #[must_use]
    pub fn diagnostic(&self, rule: &'static RuleMeta, message: impl Into<String>) -> Diagnostic {
        let u = self.user().expect("findings are only made on user lines");
        let mut d = Diagnostic::new(rule, u.location, message);
        d.object.clone_from(&u.object);
        d.source = Some(u.source.clone());
        d.snippet_line = u.snippet_line;
        d.inline_ignores.clone_from(&u.inline_ignores);
        d.header = Some(self.name.trim_end_matches(':').to_string());
        d
    }
}

/// The controller's lines of a location, as header lines of `family`.
pub fn template_lines<'a>(
    headers: impl IntoIterator<Item = &'a TemplateHeader>,
    family: Family,
) -> Vec<HeaderLine> {
    headers
        .into_iter()
        .map(|t| HeaderLine {
            name: t.name.clone(),
            value: t.value.clone(),
            family,
            origin: Origin::Template(t.clone()),
        })
        .collect()
}

/// The checks every snippet gets wherever it lands, those of them that `rules` enables:
/// nginx's grammar and contexts for `ctx`, `include` lines, suppression comments naming no
/// rule, duplicates inside blocks it writes itself, and, at server, http or main level, header
/// lines that never reach the controller's locations (`owned`: the lowercase names it sets).
pub fn check_snippet<S: std::hash::BuildHasher>(
    snippet: &ParsedSnippet<'_>,
    ctx: crate::nginx::context::Ctx,
    voice: Voice,
    owned: &std::collections::HashSet<String, S>,
    rules: RuleSet,
    out: &mut Vec<Diagnostic>,
) {
    use crate::nginx::context::Ctx;
    if rules.has(&invalid_snippet::INVALID_SNIPPET) {
        invalid_snippet::check(snippet, ctx, &voice, out);
    }
    if rules.has(&ignored_snippet::IGNORED_SNIPPET) {
        ignored_snippet::includes(snippet, out);
    }
    if rules.has(&unknown_suppression::UNKNOWN_SUPPRESSION) {
        unknown_suppression::comments(snippet, out);
    }
    if rules.has(&duplicate_snippet_header::DUPLICATE_SNIPPET_HEADER) {
        let root_is_block = ctx == Ctx::SERVER || ctx == Ctx::HTTP;
        duplicate_snippet_header::check_blocks(snippet, root_is_block, voice, out);
    }
    if (ctx == Ctx::SERVER || ctx == Ctx::HTTP || ctx == Ctx::MAIN)
        && rules.has(&ineffective_inherited_header::INEFFECTIVE_INHERITED_HEADER)
    {
        ineffective_inherited_header::check(
            snippet,
            ctx,
            &|h: &str| owned.contains(&h.to_ascii_lowercase()),
            &voice,
            out,
        );
    }
}

/// The request headers of one location, in the order nginx sends them.
#[derive(Clone, Debug)]
pub struct LocationModel {
    pub kind: LocationKind,
    /// The directive the controller uses in this location.
    pub family: Family,
    /// The controller whose lines these are, for messages.
    pub voice: Voice,
    pub lines: Vec<HeaderLine>,
    /// Indices of the template lines with a value (a few dozen at most), so that looking one up
    /// does not scan every user line: snippets can hold tens of thousands.
    templates: Vec<usize>,
}

impl LocationModel {
    #[must_use]
    pub fn new(kind: LocationKind, family: Family, voice: Voice, lines: Vec<HeaderLine>) -> Self {
        let templates = lines
            .iter()
            .enumerate()
            .filter(|(_, l)| l.template().is_some_and(|t| !t.is_empty()))
            .map(|(i, _)| i)
            .collect();
        Self {
            kind,
            family,
            voice,
            lines,
            templates,
        }
    }

    /// The template line that a user line repeats: same family, same name, non-empty.
    #[must_use]
    pub fn template_for(&self, line: &HeaderLine) -> Option<&TemplateHeader> {
        self.templates
            .iter()
            .map(|&i| &self.lines[i])
            .filter(|l| l.family == line.family && l.same_name(line))
            .find_map(HeaderLine::template)
    }

    /// User lines that nginx applies here (the directive family the location uses).
    pub fn effective_user_lines(&self) -> impl Iterator<Item = (usize, &HeaderLine)> {
        self.lines
            .iter()
            .enumerate()
            .filter(move |(_, l)| l.family == self.family && l.user().is_some())
    }

    /// Where the controller's line comes from, in words, for notes.
    #[must_use]
    pub fn template_note(&self, t: &TemplateHeader) -> String {
        let place = match self.kind {
            LocationKind::Proxied => "this location",
            LocationKind::Auth => "the external-auth location",
        };
        let when = if t.reason == "always" {
            String::new()
        } else {
            format!(" (because of {})", t.reason)
        };
        let order = if t.after_snippets {
            "after the snippets"
        } else {
            "before the snippets"
        };
        format!(
            "{} renders `{}` in {place}, {order}{when}",
            self.voice.release(),
            t.render(self.family)
        )
    }
}

/// A header name as the backend compares it: lowercase, trailing `:` removed.
#[must_use]
pub fn normalized_name(name: &str) -> String {
    name.trim_end_matches(':').to_ascii_lowercase()
}

/// Whether deleting a user line whose value is `user` leaves the backend what it received, given
/// that the controller's line for the same header sends `controller` (or an earlier user line
/// does): the same value, or `$scheme` against ingress-nginx's `$pass_access_scheme`, which is
/// `$scheme` unless `use-forwarded-headers` is on (and then the controller's value is the one the
/// setting asks for). Anything else changes what a backend that reads the last copy sees.
#[must_use]
pub fn removal_applicability(controller: &str, user: &str) -> Applicability {
    let (c, u) = (unbraced(controller), unbraced(user));
    let same = c == u || (c == "$pass_access_scheme" && u == "$scheme");
    if same {
        Applicability::Safe
    } else {
        Applicability::Unsafe
    }
}

/// " (when `$a` is not empty)" for the values of two lines that may be empty at run time.
#[must_use]
pub fn when_both_sent(first: &str, second: &str) -> String {
    let mut conds: Vec<String> = [first, second]
        .iter()
        .filter_map(|v| runtime_condition(v))
        .collect();
    conds.dedup();
    if conds.is_empty() {
        String::new()
    } else {
        format!(" ({})", conds.join(" and "))
    }
}

/// Two values nginx reads the same (`${host}` and `$host`).
#[must_use]
pub fn unbraced_eq(a: &str, b: &str) -> bool {
    unbraced(a) == unbraced(b)
}

/// `${name}` -> `$name`: nginx reads both the same.
fn unbraced(value: &str) -> String {
    let v = value.trim();
    match v.strip_prefix("${").and_then(|r| r.strip_suffix('}')) {
        Some(name) if !name.contains(['{', '}', '$']) => format!("${name}"),
        _ => v.to_string(),
    }
}

/// What the backend sees for one header line, for messages: the value on a typical HTTPS
/// request. A variable without a typical value is shown as a placeholder, never by its name.
#[must_use]
pub fn example_value(value: &str) -> String {
    let v = unbraced(value);
    match v.as_str() {
        "$pass_access_scheme" | "$scheme" | "$http_x_forwarded_proto" => "https".into(),
        "$remote_addr"
        | "$proxy_add_x_forwarded_for"
        | "$full_x_forwarded_for"
        | "$realip_remote_addr"
        | "$binary_remote_addr" => "203.0.113.7".into(),
        "$best_http_host" | "$host" | "$http_host" | "$server_name" | "$gw_api_compliant_host" => {
            "example.com".into()
        }
        "$pass_port" | "$server_port" | "$pass_server_port" => "443".into(),
        "$req_id" | "$request_id" | "$http_x_request_id" => "<request id>".into(),
        "$request_uri" => "/path?query".into(),
        "$ssl_client_verify" => "SUCCESS".into(),
        "$http_upgrade" => "websocket".into(),
        "$connection_upgrade" => "upgrade".into(),
        _ => {
            if let Some(header) = v.strip_prefix("$http_")
                && !header.is_empty()
                && header
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'_')
            {
                let name: Vec<String> = header
                    .split('_')
                    .map(|w| {
                        let mut c = w.chars();
                        c.next()
                            .map(|f| f.to_ascii_uppercase().to_string() + c.as_str())
                            .unwrap_or_default()
                    })
                    .collect();
                format!("<the client's {}>", name.join("-"))
            } else if v.starts_with('$') && v.len() > 1 && !v[1..].contains(['$', ' ']) {
                format!("<{v}>")
            } else {
                v
            }
        }
    }
}

/// `"Name: a,b"` as the backend sees two lines joined (gunicorn and most frameworks join with a comma).
#[must_use]
pub fn joined(first: &str, second: &str) -> String {
    format!("{},{}", example_value(first), example_value(second))
}

/// A value that is a single variable may be empty at run time, and nginx then sends no line.
#[must_use]
pub fn runtime_condition(value: &str) -> Option<String> {
    let v = unbraced(value);
    let v = v.as_str();
    let is_single_var = v.starts_with('$')
        && v.len() > 1
        && v[1..]
            .trim_start_matches('{')
            .trim_end_matches('}')
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_');
    let always_set = matches!(
        v,
        "$scheme"
            | "$host"
            | "$remote_addr"
            | "$server_port"
            | "$request_uri"
            | "$request_id"
            | "$proxy_add_x_forwarded_for"
            | "$full_x_forwarded_for"
            | "$realip_remote_addr"
            | "$binary_remote_addr"
            | "$pass_server_port"
            | "$uri"
            | "$request_method"
            | "$pass_access_scheme"
            | "$best_http_host"
            | "$pass_port"
            | "$server_name"
            | "$req_id"
            | "$ssl_client_verify"
            | "$gw_api_compliant_host"
    );
    (is_single_var && !always_set).then(|| format!("when `{v}` is not empty"))
}

/// The "remove this" wording for a user line, depending on where it is written.
#[must_use]
pub fn remove_advice(line: &HeaderLine) -> String {
    match line.user() {
        Some(u) if u.from_header_map => format!("remove key `{}` from this ConfigMap", line.name),
        // An entry of a list (`nginx.org/proxy-set-headers`, `requestHeaders.set`).
        Some(u)
            if u.snippet_line.is_none()
                && matches!(u.source, Provenance::Annotation(_) | Provenance::Field(_)) =>
        {
            format!("remove the `{}` entry", line.name)
        }
        _ => "remove this line".to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn variables_that_are_always_set_are_not_maybe_empty() {
        for v in [
            "$host",
            "${host}",
            "${server_port}",
            "$full_x_forwarded_for",
            "$scheme",
        ] {
            assert_eq!(runtime_condition(v), None, "{v}");
        }
        assert_eq!(
            runtime_condition("${http_x_real_ip}").as_deref(),
            Some("when `$http_x_real_ip` is not empty")
        );
        assert_eq!(
            when_both_sent("$remote_addr", "$http_x_real_ip"),
            " (when `$http_x_real_ip` is not empty)"
        );
    }

    #[test]
    fn example_values_never_show_a_variable_name() {
        assert_eq!(
            joined("$http_upgrade", "$http_upgrade"),
            "websocket,websocket"
        );
        assert_eq!(example_value("${host}"), "example.com");
        assert_eq!(example_value("$http_x_tenant"), "<the client's X-Tenant>");
        assert_eq!(example_value("$upstream_addr"), "<$upstream_addr>");
        assert_eq!(example_value("blue"), "blue");
        assert_eq!(example_value("a $b"), "a $b");
    }
}
