use crate::diagnostic::Diagnostic;
use crate::model::{Meta, Provenance};
use crate::rules::{ALL, ParsedSnippet, declare_rule};

declare_rule! {
    /// ## What it does
    /// Finds suppressions that name no rule: a `snippet-guard.io/ignore-<rule-id>` annotation or
    /// a `# snippet-guard: ignore <rule-id>` comment whose id is misspelled or unknown.
    ///
    /// ## Why is this bad?
    /// The suppression silences nothing, so the finding it was written for still fires; or,
    /// worse, the author believes a rule is silenced on purpose when it is not, and the reason
    /// given in the annotation is lost.
    ///
    /// ## Example
    /// ```nginx
    /// proxy_set_header X-Forwarded-Proto $scheme; # snippet-guard: ignore redundant-forwarded-prot
    /// ```
    ///
    /// ## Use instead
    /// ```nginx
    /// proxy_set_header X-Forwarded-Proto $scheme; # snippet-guard: ignore redundant-forwarded-proto
    /// ```
    ///
    /// ## Fix
    /// Correct the id (`snippet-guard rules` lists them), or use `all`.
    ///
    /// ## Known limits
    /// Only the ids are checked, not whether the suppression still silences a finding.
    pub static UNKNOWN_SUPPRESSION = {
        id: "unknown-suppression",
        name: "UnknownSuppression",
        severity: Warning,
        summary: "a snippet-guard suppression names a rule that does not exist",
        since: "0.2.0",
    }
}

/// Whether `id` is a rule id or `all`.
fn known(id: &str) -> bool {
    id == "all" || ALL.iter().any(|r| r.id == id)
}

/// The closest rule id, for the help.
fn closest(id: &str) -> Option<&'static str> {
    ALL.iter()
        .map(|r| r.id)
        .filter(|r| r.starts_with(id) || id.starts_with(r) || edit_distance(r, id) <= 3)
        .min_by_key(|r| edit_distance(r, id))
}

fn edit_distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut row: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut prev = row[0];
        row[0] = i + 1;
        for (j, &cb) in b.iter().enumerate() {
            let cur = row[j + 1];
            row[j + 1] = (prev + usize::from(ca != cb)).min(row[j] + 1).min(cur + 1);
            prev = cur;
        }
    }
    row[b.len()]
}

fn help(id: &str) -> String {
    match closest(id) {
        Some(r) => format!("did you mean `{r}`? `snippet-guard rules` lists the rule ids"),
        None => "use a rule id (`snippet-guard rules` lists them) or `all`".to_string(),
    }
}

/// `snippet-guard.io/ignore-<id>` annotations of an object with an unknown id.
pub fn annotations(meta: &Meta, prefix: &str, out: &mut Vec<Diagnostic>) {
    for a in &meta.annotations {
        let Some(id) = a.key.strip_prefix(prefix) else {
            continue;
        };
        if known(id) {
            continue;
        }
        let mut d = Diagnostic::new(
            &UNKNOWN_SUPPRESSION,
            a.key_location,
            format!("`{}` silences nothing: there is no rule `{id}`", a.key),
        )
        .help(help(id))
        .label("unknown rule");
        d.object = Some(meta.object.clone());
        d.source = Some(Provenance::Annotation(a.key.clone()));
        out.push(d);
    }
}

/// `# snippet-guard: ignore <id>` comments of a snippet with an unknown id.
pub fn comments(snippet: &ParsedSnippet<'_>, out: &mut Vec<Diagnostic>) {
    for (span, ids) in snippet.ignore_comments() {
        for id in ids.iter().filter(|id| !known(id)) {
            let mut d = snippet
                .diagnostic(
                    &UNKNOWN_SUPPRESSION,
                    span,
                    format!("this `snippet-guard: ignore` comment silences nothing: there is no rule `{id}`"),
                )
                .help(help(id))
                .label("unknown rule");
            // The comment itself must not silence this finding.
            d.inline_ignores.clear();
            out.push(d);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn suggests_the_closest_id() {
        assert_eq!(
            closest("redundant-forwarded-prot"),
            Some("redundant-forwarded-proto")
        );
        assert_eq!(closest("invalid-snipet"), Some("invalid-snippet"));
        assert_eq!(closest("something-else-entirely"), None);
        assert!(known("all") && known("invalid-snippet") && !known("nope"));
    }
}
