//! A finding as a Kubernetes Event (`events.k8s.io/v1`, published by kube-runtime's
//! [`Recorder`](kube::runtime::events::Recorder)).
//!
//! - `type`: `Warning` for a finding (`Normal` for an info finding), `Normal` for "the findings
//!   are gone".
//! - `reason`: the rule id in PascalCase ([`RuleMeta::name`](crate::rules::RuleMeta)), so
//!   `kubectl get events --field-selector reason=RedundantForwardedProto` finds them.
//! - `note`: [`Diagnostic::one_line`], the wording of `lint` and of the webhook, cut to the API's
//!   1 kB.
//! - `action`: names the check and the place: `Lint` + the annotation or ConfigMap key + the
//!   snippet line + the header (`LintConfigurationSnippetLine2XForwardedProto`). The Recorder
//!   merges repeats into an event series by (type, reason, action, object), not by note: two
//!   different findings on one object must differ in `reason` or `action` to stay two Events,
//!   and the same finding reported again must keep both to join its series.

use std::fmt::Write as _;

use kube::runtime::events::{Event, EventType};

use crate::diagnostic::Diagnostic;

/// The API rejects a `note` over 1 kB.
pub const MAX_NOTE_BYTES: usize = 1024;
/// The API rejects a `reason` or `action` over 128 characters.
pub const MAX_ACTION_CHARS: usize = 128;
/// `reason` of the Event that says an object's findings are gone.
pub const RESOLVED_REASON: &str = "FindingsResolved";
/// `action` of every snippet-guard Event that is not about one place.
pub const LINT_ACTION: &str = "Lint";

/// `s` cut to at most `max` bytes on a character boundary, marked with `…` when cut.
#[must_use]
pub fn truncate_bytes(s: &str, max: usize) -> String {
    if s.len() <= max {
        return s.to_string();
    }
    let ellipsis = "…";
    let mut end = max - ellipsis.len();
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}{ellipsis}", &s[..end])
}

/// `configuration-snippet line 2` -> `ConfigurationSnippetLine2`.
#[must_use]
pub fn pascal_case(s: &str) -> String {
    s.split(|c: char| !c.is_ascii_alphanumeric())
        .filter(|w| !w.is_empty())
        .map(|w| {
            let mut chars = w.chars();
            let first = chars.next().expect("non-empty").to_ascii_uppercase();
            std::iter::once(first).chain(chars).collect::<String>()
        })
        .collect()
}

/// FNV-1a: a stable short digest (the same action on every replica and every run).
fn fnv1a(s: &str) -> u32 {
    s.bytes().fold(0x811c_9dc5_u32, |h, b| {
        (h ^ u32::from(b)).wrapping_mul(0x0100_0193)
    })
}

/// The Event `action` of a finding: unique per (source, snippet line, header) on one object,
/// stable across runs, at most 128 characters.
#[must_use]
pub fn action(d: &Diagnostic) -> String {
    let mut words = String::from("lint");
    if let Some(source) = &d.source {
        words.push(' ');
        words.push_str(source.short_key());
    }
    if let Some(line) = d.snippet_line {
        let _ = write!(words, " line {line}");
    }
    if let Some(header) = &d.header {
        words.push(' ');
        words.push_str(header);
    }
    let action = pascal_case(&words);
    if action.len() <= MAX_ACTION_CHARS {
        action
    } else {
        let hash = format!("{:08x}", fnv1a(&action));
        format!("{}{hash}", &action[..MAX_ACTION_CHARS - hash.len()])
    }
}

/// The `Warning` Event of one finding.
#[must_use]
pub fn finding_event(d: &Diagnostic) -> Event {
    // An info finding (a snippet the controller ignores) is worth knowing, not a warning.
    let type_ = if d.severity == crate::diagnostic::Severity::Info {
        EventType::Normal
    } else {
        EventType::Warning
    };
    Event {
        type_,
        reason: d.rule.name.to_string(),
        note: Some(truncate_bytes(&d.one_line(), MAX_NOTE_BYTES)),
        action: action(d),
        secondary: None,
    }
}

/// The `Normal` Event published once when an object that had findings has none left.
/// `previous` are the rule ids it had.
#[must_use]
pub fn resolved_event(previous: &[&str]) -> Event {
    let mut rules: Vec<&str> = previous.to_vec();
    rules.sort_unstable();
    rules.dedup();
    let note = format!(
        "snippet-guard: no findings left (previously: {})",
        rules.join(", ")
    );
    Event {
        type_: EventType::Normal,
        reason: RESOLVED_REASON.to_string(),
        note: Some(truncate_bytes(&note, MAX_NOTE_BYTES)),
        action: LINT_ACTION.to_string(),
        secondary: None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::input::{self, Format};
    use crate::model::Workspace;

    fn findings(yaml: &str) -> Vec<Diagnostic> {
        let mut ws = Workspace::new();
        input::add_text(&mut ws, "x.yaml", yaml, Format::Yaml);
        crate::check(&ws, &crate::Settings::default())
    }

    const TWO: &str = "apiVersion: networking.k8s.io/v1\nkind: Ingress\nmetadata:\n  name: web\n  namespace: shop\n  annotations:\n    nginx.ingress.kubernetes.io/configuration-snippet: |\n      proxy_set_header X-Forwarded-Proto $scheme;\n      proxy_set_header X-Real-IP $remote_addr;\n";

    #[test]
    fn findings_on_one_object_get_distinct_keys() {
        let diags = findings(TWO);
        assert_eq!(diags.len(), 2, "{diags:#?}");
        let events: Vec<Event> = diags.iter().map(finding_event).collect();
        assert_eq!(events[0].reason, "RedundantForwardedProto");
        assert_eq!(
            events[0].action,
            "LintConfigurationSnippetLine1XForwardedProto"
        );
        assert_eq!(events[1].action, "LintConfigurationSnippetLine2XRealIP");
        assert!(matches!(events[0].type_, EventType::Warning));
        assert_eq!(
            events[0].note.as_deref(),
            Some(diags[0].one_line().as_str())
        );
    }

    #[test]
    fn limits() {
        let long = "é".repeat(800);
        let cut = truncate_bytes(&long, MAX_NOTE_BYTES);
        assert!(cut.len() <= MAX_NOTE_BYTES && cut.ends_with('…'));
        let mut d = findings(TWO).remove(0);
        d.header = Some("x".repeat(300));
        let a = action(&d);
        assert_eq!(a.len(), MAX_ACTION_CHARS);
        assert_eq!(a, action(&d), "stable");
        d.header = Some(format!("{}y", "x".repeat(299)));
        assert_ne!(a, action(&d), "distinct when only the cut tail differs");
    }

    #[test]
    fn resolved_lists_rules_once() {
        let e = resolved_event(&["b-rule", "a-rule", "b-rule"]);
        assert_eq!(e.reason, RESOLVED_REASON);
        assert!(matches!(e.type_, EventType::Normal));
        assert_eq!(
            e.note.as_deref(),
            Some("snippet-guard: no findings left (previously: a-rule, b-rule)")
        );
    }
}
