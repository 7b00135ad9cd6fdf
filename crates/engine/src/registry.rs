//! What is known about a rule without running it: its metadata, its severity scale, and the
//! `declare_rule!` macro each rule file uses. A leaf module: diagnostics point at a
//! [`RuleMeta`], the rules declare them, and neither needs the other to say what a rule is.

use std::fmt;

use serde::Serialize;

/// How bad a finding is. Ordered: `Info < Warning < Error`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    Info,
    Warning,
    Error,
}

impl Severity {
    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            Severity::Info => "info",
            Severity::Warning => "warning",
            Severity::Error => "error",
        }
    }
}

impl fmt::Display for Severity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Everything known about a rule without running it.
#[derive(Debug, PartialEq, Eq)]
pub struct RuleMeta {
    /// kebab-case id, never reused.
    pub id: &'static str,
    /// PascalCase form of the id: the Kubernetes Event `reason`.
    pub name: &'static str,
    /// One line.
    pub summary: &'static str,
    pub default_severity: Severity,
    /// First snippet-guard version with the rule.
    pub since: &'static str,
    /// Markdown documentation (the rule's doc comment).
    pub docs: &'static str,
    pub file: &'static str,
    pub line: u32,
}

impl RuleMeta {
    /// The documentation with the one leading space of each doc-comment line removed.
    #[must_use]
    pub fn docs(&self) -> String {
        let mut out = String::with_capacity(self.docs.len());
        for line in self.docs.lines() {
            out.push_str(line.strip_prefix(' ').unwrap_or(line));
            out.push('\n');
        }
        out
    }
}

/// Declare a rule: doc comment, id, Event reason, severity, summary, first version.
macro_rules! declare_rule {
    (
        $(#[doc = $doc:literal])*
        pub static $ident:ident = {
            id: $id:literal,
            name: $name:literal,
            severity: $sev:ident,
            summary: $summary:literal,
            since: $since:literal $(,)?
        }
    ) => {
        $(#[doc = $doc])*
        pub static $ident: $crate::registry::RuleMeta = $crate::registry::RuleMeta {
            id: $id,
            name: $name,
            summary: $summary,
            default_severity: $crate::registry::Severity::$sev,
            since: $since,
            docs: concat!($($doc, "\n"),*),
            file: file!(),
            line: line!(),
        };
    };
}
pub(crate) use declare_rule;
