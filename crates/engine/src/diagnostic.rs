//! What a rule reports.

use std::fmt::Write as _;

pub use crate::model::{ObjectRef, Provenance};
pub use crate::registry::{RuleMeta, Severity};
use crate::source::Location;

/// A secondary place shown with the finding, such as the earlier line it repeats.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Related {
    pub location: Location,
    pub message: String,
}

/// One finding.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Diagnostic {
    pub rule: &'static RuleMeta,
    pub severity: Severity,
    /// What is wrong, including what nginx will send.
    pub message: String,
    /// What to do instead.
    pub help: Option<String>,
    /// The offending line, or the object when there is no line.
    pub primary: Location,
    /// Short text under the primary span.
    pub label: Option<String>,
    pub related: Vec<Related>,
    /// Extra facts, e.g. the line the controller renders.
    pub notes: Vec<String>,
    pub object: Option<ObjectRef>,
    /// The annotation or ConfigMap key the snippet came from.
    pub source: Option<Provenance>,
    /// 1-based line inside the snippet value, when the finding is inside a snippet.
    pub snippet_line: Option<usize>,
    /// The header the finding is about, as written by the user.
    pub header: Option<String>,
    /// Rule ids silenced by a `# snippet-guard: ignore` comment on the offending line.
    pub inline_ignores: Vec<String>,
}

impl Diagnostic {
    #[must_use]
    pub fn new(rule: &'static RuleMeta, primary: Location, message: impl Into<String>) -> Self {
        Self {
            rule,
            severity: rule.default_severity,
            message: message.into(),
            help: None,
            primary,
            label: None,
            related: Vec::new(),
            notes: Vec::new(),
            object: None,
            source: None,
            snippet_line: None,
            header: None,
            inline_ignores: Vec::new(),
        }
    }

    #[must_use]
    pub fn help(mut self, help: impl Into<String>) -> Self {
        self.help = Some(help.into());
        self
    }

    #[must_use]
    pub fn label(mut self, label: impl Into<String>) -> Self {
        self.label = Some(label.into());
        self
    }

    #[must_use]
    pub fn note(mut self, note: impl Into<String>) -> Self {
        self.notes.push(note.into());
        self
    }

    #[must_use]
    pub fn related(mut self, location: Location, message: impl Into<String>) -> Self {
        self.related.push(Related {
            location,
            message: message.into(),
        });
        self
    }

    /// Add a note when there is one.
    #[must_use]
    pub fn note_opt(self, note: Option<String>) -> Self {
        match note {
            Some(n) => self.note(n),
            None => self,
        }
    }

    /// Add a related place when there is one.
    #[must_use]
    pub fn related_opt(self, location: Option<Location>, message: &str) -> Self {
        match location {
            Some(l) => self.related(l, message),
            None => self,
        }
    }

    /// One line for logs, Events and admission messages:
    /// `<rule>: <message> [<source> line <n>] help: <help>`.
    #[must_use]
    pub fn one_line(&self) -> String {
        let mut s = format!("{}: {}", self.rule.id, self.message);
        if let Some(src) = &self.source {
            let _ = write!(s, " ({src}");
            if let Some(line) = self.snippet_line {
                let _ = write!(s, ", line {line}");
            }
            s.push(')');
        }
        if let Some(help) = &self.help {
            s.push_str(". Fix: ");
            s.push_str(help);
        }
        s
    }
}
