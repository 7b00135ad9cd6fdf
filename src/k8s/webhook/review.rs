//! `AdmissionReview` -> engine -> `AdmissionResponse`, with no I/O: [`review`] is a function of the
//! request body, the [`Policy`] and the cached controller ConfigMaps, so it is tested on captured
//! JSON (`tests/webhook_review.rs`) and benchmarked without a server (`benches/admission.rs`).
//!
//! The engine is reused as is: the decoded object is read by [`crate::k8s::objects::reviewed`]
//! (the fields the rules read), the engine [`Context`] of the cached ConfigMaps (built once,
//! when the cache changed) checks it, and only the diagnostics about the reviewed object are
//! kept. Messages are
//! [`Diagnostic::one_line`], the wording of `snippet-guard lint`.

use std::collections::HashSet;
use std::fmt::Write as _;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::Arc;

use k8s_openapi::api::core::v1::ConfigMap as K8sConfigMap;
use kube::core::admission::{AdmissionResponse, AdmissionReview, Operation};
use kube::core::{DynamicObject, GroupVersionKind, Status, TypeMeta};
use serde::Deserialize;

use crate::diagnostic::{Diagnostic, Severity};
use crate::engine::{Context, SUPPRESSION_PREFIX, Settings};
use crate::input::api::{ApiObject, Values};
use crate::model::{LoadError, Object, Provenance};

use super::error::{Error, Result};

/// What a finding does to the request.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, clap::ValueEnum)]
pub enum Mode {
    /// Deny when a finding is an `error`; other findings become admission warnings.
    Enforce,
    /// Never deny; every finding becomes an admission warning (kubectl prints each).
    Warn,
    /// Admit silently; findings are only logged and counted.
    Audit,
}

impl Mode {
    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            Mode::Enforce => "enforce",
            Mode::Warn => "warn",
            Mode::Audit => "audit",
        }
    }
}

/// How the webhook judges: the mode, the engine settings (the `lint` flags) and
/// `--only-new-findings`.
#[derive(Debug, Clone)]
pub struct Policy {
    pub mode: Mode,
    pub settings: Settings,
    /// On UPDATE, findings the old object already had are downgraded to warnings.
    pub only_new_findings: bool,
}

/// A controller ConfigMap (or the ConfigMap its `proxy-set-headers` names) from the cache,
/// read once into an engine object when the cache changes, not on every review.
#[derive(Debug, Clone)]
pub struct ContextObject {
    pub namespace: String,
    pub name: String,
    /// The ConfigMap as JSON, without `managedFields` (what changed, for the cache's logs and
    /// tests; equality is decided on it).
    pub json: Arc<str>,
    /// The ConfigMap as the engine reads it.
    pub object: Object,
}

impl PartialEq for ContextObject {
    fn eq(&self, other: &Self) -> bool {
        self.namespace == other.namespace && self.name == other.name && self.json == other.json
    }
}

impl Eq for ContextObject {}

impl ContextObject {
    /// Read a ConfigMap (without `managedFields`, which the engine never reads).
    #[must_use]
    pub fn from_configmap(cm: &K8sConfigMap) -> Self {
        let mut cm = cm.clone();
        cm.metadata.managed_fields = None;
        let json = serde_json::to_string(&cm).expect("a ConfigMap always serializes to JSON");
        Self {
            namespace: cm.metadata.namespace.clone().unwrap_or_default(),
            name: cm.metadata.name.clone().unwrap_or_default(),
            json: json.into(),
            object: crate::k8s::objects::configmap(&cm, Values::Detached),
        }
    }
}

/// The engine context of the cached objects: built once per change of the cache, then every
/// review checks its one object against it.
#[must_use]
pub fn context(policy: &Policy, objects: &[ContextObject]) -> Context {
    let objects: Vec<Object> = objects.iter().map(|c| c.object.clone()).collect();
    Context::build(&objects, &policy.settings)
}

/// What the webhook did with one request (the `decision` label of the metrics and logs).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Decision {
    /// Judged, no finding.
    Allow,
    /// Judged, an error finding in enforce mode.
    Deny,
    /// Judged, admitted with admission warnings.
    Warn,
    /// Judged in audit mode with findings: admitted silently.
    Audit,
    /// Not judged: DELETE/CONNECT, a subresource, or a kind the webhook does not handle.
    Skip,
    /// The engine failed on this object: admitted with a warning (see [`review_with`]).
    Error,
}

impl Decision {
    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            Decision::Allow => "allow",
            Decision::Deny => "deny",
            Decision::Warn => "warn",
            Decision::Audit => "audit",
            Decision::Skip => "skip",
            Decision::Error => "error",
        }
    }
}

/// One finding about the reviewed object.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Finding {
    pub rule: &'static str,
    /// Severity from the engine.
    pub severity: Severity,
    /// Severity after `--only-new-findings` (a finding the old object had is a `warning`).
    pub effective: Severity,
    /// The old object had it too (UPDATE).
    pub preexisting: bool,
    /// [`Diagnostic::one_line`]: rule, message, annotation or key, snippet line, fix.
    pub text: String,
}

/// The answer to one request and what is needed to log and count it.
#[derive(Debug, Clone)]
pub struct Outcome {
    /// The `AdmissionReview` to send back.
    pub review: AdmissionReview<DynamicObject>,
    pub decision: Decision,
    pub findings: Vec<Finding>,
    pub uid: String,
    /// `CREATE`, `UPDATE`, `DELETE` or `CONNECT`.
    pub operation: &'static str,
    /// `request.kind.kind`.
    pub kind: String,
    pub namespace: Option<String>,
    pub name: String,
    pub dry_run: bool,
    /// Why the request was not judged ([`Decision::Skip`]).
    pub skip_reason: Option<&'static str>,
    /// The panic message when the engine failed ([`Decision::Error`]).
    pub internal_error: Option<String>,
}

impl Outcome {
    fn response(&self) -> &AdmissionResponse {
        self.review
            .response
            .as_ref()
            .expect("an outcome always carries a response")
    }

    #[must_use]
    pub fn allowed(&self) -> bool {
        self.response().allowed
    }

    /// The admission warnings (empty when none).
    #[must_use]
    pub fn warnings(&self) -> &[String] {
        self.response().warnings.as_deref().unwrap_or_default()
    }

    /// The denial message (empty when allowed).
    #[must_use]
    pub fn message(&self) -> &str {
        &self.response().result.message
    }
}

/// A warning longer than this is split into several (Kubernetes asks for 120 characters "if
/// possible" and truncates items over 256).
pub const MAX_WARNING_CHARS: usize = 120;
/// At most this many warnings per response (kubectl prints each as a `Warning:` line).
pub const MAX_WARNINGS: usize = 24;
/// At most this many characters of warnings per response; the API server truncates the warnings
/// of one response past 4096.
pub const MAX_WARNING_TOTAL_CHARS: usize = 3072;
/// At most this many findings are spelt out in a denial message.
pub const MAX_DENY_FINDINGS: usize = 10;

type Judge<'a> = &'a dyn Fn(&Context, &Object) -> Vec<Diagnostic>;

/// Judge one `AdmissionReview` body with the engine.
///
/// `Err` only for a request that is not a usable `AdmissionReview` (answer HTTP 400); every
/// policy outcome, including an internal failure of the engine, is an `Ok` response.
pub fn review(policy: &Policy, context: &Context, body: &[u8]) -> Result<Outcome> {
    review_with(policy, context, body, &|c, o| c.check(o))
}

/// [`review`] against a context built here from `objects` (tests, one-off reviews; the server
/// keeps its context and calls [`review`]).
pub fn review_in(policy: &Policy, objects: &[ContextObject], body: &[u8]) -> Result<Outcome> {
    review(policy, &context(policy, objects), body)
}

/// [`review`] with another judge than [`Context::check`] (tests use one that panics).
///
/// When the judge panics, the object is **admitted with a warning in every mode**, and the
/// failure is logged and counted by the caller (`decision="error"`). Why not deny in enforce
/// mode: the chart's default `failurePolicy: Ignore` says that an unavailable lint webhook must
/// not block the cluster, and a panic is worse than unavailability for this one object: it is
/// deterministic, so a denial would block that object on every retry until snippet-guard is
/// fixed, and no suppression annotation could help (suppressions run after the engine). With
/// `failurePolicy: Fail` an operator asks to block when the webhook cannot be *reached*; a bug
/// in the linter is not evidence against the object. Answering HTTP 500 instead would let the
/// API server apply `failurePolicy`, but with `Ignore` it admits silently and the user never
/// learns the object went unchecked; the warning tells them.
pub fn review_with(
    policy: &Policy,
    context: &Context,
    body: &[u8],
    judge: Judge<'_>,
) -> Result<Outcome> {
    let review: WireReview = serde_json::from_slice(body).map_err(Error::InvalidReview)?;
    if review.kind != "AdmissionReview"
        || !matches!(
            review.api_version.as_str(),
            "admission.k8s.io/v1" | "admission.k8s.io/v1beta1"
        )
    {
        return Err(Error::NotAdmissionReview {
            api_version: review.api_version,
            kind: review.kind,
        });
    }
    let types = TypeMeta {
        api_version: review.api_version,
        kind: review.kind,
    };
    let mut req = review.request.ok_or(Error::MissingRequest)?;
    if req.uid.is_empty() {
        return Err(Error::MissingUid);
    }
    let operation = match req.operation {
        Operation::Create => "CREATE",
        Operation::Update => "UPDATE",
        Operation::Delete => "DELETE",
        Operation::Connect => "CONNECT",
    };
    let admit = || {
        // The only constructor that needs no `AdmissionRequest`; every field it sets is reset.
        let mut r = AdmissionResponse::invalid("");
        r.types = types.clone();
        r.uid.clone_from(&req.uid);
        r.allowed = true;
        r.result = Status::default();
        r
    };
    let mut outcome = Outcome {
        review: admit().into_review(),
        decision: Decision::Skip,
        findings: Vec::new(),
        uid: req.uid.clone(),
        operation,
        kind: req.kind.kind.clone(),
        namespace: req.namespace.clone(),
        name: req.name.clone(),
        dry_run: req.dry_run.unwrap_or(false),
        skip_reason: None,
        internal_error: None,
    };
    if matches!(req.operation, Operation::Delete | Operation::Connect) {
        outcome.skip_reason = Some("operation");
        return Ok(outcome);
    }
    if req.sub_resource.as_deref().is_some_and(|s| !s.is_empty()) {
        outcome.skip_reason = Some("subresource");
        return Ok(outcome);
    }
    if !handled(&req.kind) {
        outcome.skip_reason = Some("kind");
        return Ok(outcome);
    }
    let object = req.object.take().ok_or_else(|| Error::MissingObject {
        operation: operation.to_string(),
    })?;
    if outcome.name.is_empty() {
        // CREATE with generateName: no name yet.
        outcome.name = object
            .metadata
            .generate_name
            .clone()
            .map(|g| format!("{g}<generated>"))
            .unwrap_or_default();
    }
    let old = if policy.only_new_findings && req.operation == Operation::Update {
        req.old_object.take()
    } else {
        None
    };
    let namespace = req.namespace.clone();
    let judged = catch_unwind(AssertUnwindSafe(|| {
        let new = findings_on(context, object, namespace.as_deref(), &req.kind, judge);
        let old = old.map(|o| findings_on(context, o, namespace.as_deref(), &req.kind, judge));
        (new, old)
    }));
    let mut response = admit();
    let (new, old) = match judged {
        Ok(r) => r,
        Err(panic) => {
            let what = panic
                .downcast_ref::<&str>()
                .map(ToString::to_string)
                .or_else(|| panic.downcast_ref::<String>().cloned())
                .unwrap_or_else(|| "panic".to_string());
            response.warnings = Some(vec![format!(
                "snippet-guard could not check this {} (internal error); it was admitted unchecked",
                outcome.kind
            )]);
            outcome.review = response.into_review();
            outcome.decision = Decision::Error;
            outcome.internal_error = Some(what);
            return Ok(outcome);
        }
    };
    let (new, unreadable) = new;
    let old_keys: HashSet<FindingKey> = old
        .iter()
        .flat_map(|(diags, _)| diags)
        .map(FindingKey::of)
        .collect();
    outcome.findings = unreadable
        .iter()
        .map(|e| Finding {
            rule: "invalid-object",
            severity: Severity::Error,
            effective: Severity::Error,
            preexisting: false,
            text: match &e.help {
                Some(help) => format!("invalid-object: {}. Fix: {help}", e.message),
                None => format!("invalid-object: {}", e.message),
            },
        })
        .collect();
    outcome.findings.extend(new.iter().map(|d| {
        let preexisting = old.is_some() && old_keys.contains(&FindingKey::of(d));
        Finding {
            rule: d.rule.id,
            severity: d.severity,
            effective: if preexisting {
                d.severity.min(Severity::Warning)
            } else {
                d.severity
            },
            preexisting,
            text: d.one_line(),
        }
    }));
    let (decision, response) = respond(policy, &outcome.findings, response);
    outcome.decision = decision;
    outcome.review = response.into_review();
    Ok(outcome)
}

/// An `AdmissionReview` as the API server sends it, decoded only as far as the webhook reads it.
#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct WireReview {
    #[serde(default)]
    api_version: String,
    #[serde(default)]
    kind: String,
    request: Option<WireRequest>,
}

/// `AdmissionReview.request`: what the response echoes, what is logged, and the objects.
#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct WireRequest {
    #[serde(default)]
    uid: String,
    kind: GroupVersionKind,
    sub_resource: Option<String>,
    operation: Operation,
    namespace: Option<String>,
    #[serde(default)]
    name: String,
    object: Option<ApiObject>,
    old_object: Option<ApiObject>,
    dry_run: Option<bool>,
}

/// Kinds the webhook judges; anything else is admitted untouched.
fn handled(gvk: &GroupVersionKind) -> bool {
    matches!(
        (gvk.group.as_str(), gvk.kind.as_str()),
        ("networking.k8s.io" | "extensions", "Ingress") | ("", "ConfigMap")
    ) || crate::model::RESOURCE_KINDS
        .iter()
        .any(|(api_version, kind)| {
            *kind == gvk.kind && api_version.split('/').next() == Some(gvk.group.as_str())
        })
}

/// What makes two findings "the same" across the old and the new object: the rule, where the
/// line is written and the header, not the position or the wording.
#[derive(Debug, PartialEq, Eq, Hash)]
struct FindingKey {
    rule: &'static str,
    source: Option<Provenance>,
    header: Option<String>,
}

impl FindingKey {
    fn of(d: &Diagnostic) -> Self {
        Self {
            rule: d.rule.id,
            source: d.source.clone(),
            header: d.header.as_ref().map(|h| h.to_ascii_lowercase()),
        }
    }
}

/// Check `object` against the context and keep the diagnostics about `object`; also the
/// values of it that could not be read.
fn findings_on(
    context: &Context,
    mut object: ApiObject,
    request_namespace: Option<&str>,
    gvk: &GroupVersionKind,
    judge: Judge<'_>,
) -> (Vec<Diagnostic>, Vec<LoadError>) {
    // The API server fills all three in; a hand-made review may not.
    if object.metadata.namespace.is_none() {
        object.metadata.namespace = request_namespace.map(str::to_string);
    }
    if object.api_version.is_none() {
        object.api_version = Some(gvk.api_version());
    }
    if object.kind.is_none() {
        object.kind = Some(gvk.kind.clone());
    }
    let (reviewed, unreadable) = crate::k8s::objects::reviewed(&object);
    let Some(reviewed) = reviewed else {
        return (Vec::new(), unreadable);
    };
    let me = &reviewed.meta().object;
    let diags = judge(context, &reviewed)
        .into_iter()
        .filter(|d| d.object.as_ref() == Some(me))
        .collect();
    (diags, unreadable)
}

/// Turn findings into the response for the mode.
fn respond(
    policy: &Policy,
    findings: &[Finding],
    mut response: AdmissionResponse,
) -> (Decision, AdmissionResponse) {
    if findings.is_empty() {
        return (Decision::Allow, response);
    }
    let (errors, rest): (Vec<&Finding>, Vec<&Finding>) = match policy.mode {
        Mode::Audit => return (Decision::Audit, response),
        Mode::Warn => (Vec::new(), findings.iter().collect()),
        Mode::Enforce => findings
            .iter()
            .partition(|f| f.effective == Severity::Error),
    };
    let warnings = warnings(&rest);
    if !warnings.is_empty() {
        response.warnings = Some(warnings);
    }
    if errors.is_empty() {
        (Decision::Warn, response)
    } else {
        let message = deny_message(&errors, policy.settings.annotation_suppressions);
        let mut response = response.deny(message);
        // Without a code the API server answers 400 (BadRequest); the object is well-formed
        // and refused by policy, which is 403 (kubectl: "Error from server (Forbidden)").
        response.result.code = 403;
        response.result.reason = "Forbidden".into();
        (Decision::Deny, response)
    }
}

/// The denial: one [`Diagnostic::one_line`] per error finding, as `lint` words them.
#[must_use]
pub fn deny_message(errors: &[&Finding], suppressions: bool) -> String {
    let mut message = String::new();
    for f in errors.iter().take(MAX_DENY_FINDINGS) {
        if !message.is_empty() {
            message.push('\n');
        }
        message.push_str(&f.text);
    }
    if errors.len() > MAX_DENY_FINDINGS {
        let _ = write!(
            message,
            "\n... and {} more; run `snippet-guard lint` on the object to see all",
            errors.len() - MAX_DENY_FINDINGS
        );
    }
    if suppressions {
        let _ = write!(
            message,
            "\nTo accept a finding, annotate the object with `{SUPPRESSION_PREFIX}<rule-id>: <reason>`."
        );
    }
    message
}

/// Admission warnings for findings: each finding's one-line text split at spaces into pieces of
/// at most [`MAX_WARNING_CHARS`], within [`MAX_WARNINGS`] and [`MAX_WARNING_TOTAL_CHARS`]; the
/// last warning says how many findings did not fit.
#[must_use]
pub fn warnings(findings: &[&Finding]) -> Vec<String> {
    const MORE_RESERVE: usize = 100;
    let mut out: Vec<String> = Vec::new();
    let mut total = 0;
    let mut shown = 0;
    for f in findings {
        let text = if f.preexisting {
            format!("(not new) {}", f.text)
        } else {
            f.text.clone()
        };
        let pieces = wrap(&text, MAX_WARNING_CHARS);
        let size: usize = pieces.iter().map(|p| p.chars().count()).sum();
        if out.len() + pieces.len() > MAX_WARNINGS - 1
            || total + size > MAX_WARNING_TOTAL_CHARS - MORE_RESERVE
        {
            break;
        }
        total += size;
        out.extend(pieces);
        shown += 1;
    }
    if shown < findings.len() {
        out.push(format!(
            "{} more finding(s) not shown; run `snippet-guard lint` on the object to see all",
            findings.len() - shown
        ));
    }
    out
}

/// Split `text` at spaces into lines of at most `width` characters (`width` > 2); continuation
/// lines start with two spaces; a word longer than a line is cut.
#[must_use]
pub fn wrap(text: &str, width: usize) -> Vec<String> {
    const INDENT: &str = "  ";
    assert!(width > INDENT.len(), "a line holds more than the indent");
    let mut lines = Vec::new();
    let mut line = String::new();
    let mut len = 0;
    let mut has_word = false;
    for word in text.split(' ').filter(|w| !w.is_empty()) {
        let mut rest: Vec<char> = word.chars().collect();
        while !rest.is_empty() {
            let sep = usize::from(has_word);
            if len + sep + rest.len() <= width {
                if has_word {
                    line.push(' ');
                }
                len += sep + rest.len();
                line.extend(rest.drain(..));
                has_word = true;
            } else {
                if !has_word {
                    // Alone on its line and still too long: cut it.
                    let room = width - len;
                    line.extend(rest.drain(..room));
                }
                lines.push(std::mem::replace(&mut line, INDENT.to_string()));
                len = INDENT.len();
                has_word = false;
            }
        }
    }
    if has_word {
        lines.push(line);
    }
    lines
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wrap_keeps_short_text_and_splits_long_text_at_spaces() {
        assert_eq!(wrap("a b c", 120), vec!["a b c"]);
        let text = "word ".repeat(60);
        let lines = wrap(text.trim_end(), 30);
        assert!(lines.iter().all(|l| l.chars().count() <= 30), "{lines:?}");
        assert!(lines[1].starts_with("  word"));
        let joined: Vec<&str> = lines.iter().flat_map(|l| l.split_whitespace()).collect();
        assert_eq!(joined.len(), 60);
    }

    #[test]
    fn wrap_cuts_a_word_longer_than_a_line() {
        let long = "x".repeat(250);
        let lines = wrap(&format!("start {long} end"), 100);
        assert!(lines.iter().all(|l| l.chars().count() <= 100), "{lines:?}");
        let xs: usize = lines.iter().map(|l| l.matches('x').count()).sum();
        assert_eq!(xs, 250);
        assert!(lines.last().unwrap().ends_with("end"));
    }

    #[test]
    fn warnings_are_bounded_in_count_and_size() {
        let f = Finding {
            rule: "duplicate-snippet-header",
            severity: Severity::Warning,
            effective: Severity::Warning,
            preexisting: false,
            text: "y ".repeat(200),
        };
        let many: Vec<&Finding> = std::iter::repeat_n(&f, 50).collect();
        let w = warnings(&many);
        assert!(w.len() <= MAX_WARNINGS);
        assert!(w.iter().map(|s| s.chars().count()).sum::<usize>() <= MAX_WARNING_TOTAL_CHARS);
        assert!(w.iter().all(|s| s.chars().count() <= MAX_WARNING_CHARS));
        assert!(w.last().unwrap().contains("more finding(s) not shown"));
    }
}
