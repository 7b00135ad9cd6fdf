//! What a rule reports.

use std::fmt::Write as _;

pub use crate::model::{ObjectRef, Provenance};
pub use crate::registry::{RuleMeta, Severity};
use crate::source::{FileId, Location, Span};

/// A secondary place shown with the finding, such as the earlier line it repeats.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Related {
    pub location: Location,
    pub message: String,
}

/// Whether applying a fix can change what the backend receives.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Applicability {
    /// Changes nothing but the duplicate: the backend receives what it received before, once.
    Safe,
    /// Changes what some backends receive (the value differs from the controller's, or the text
    /// is copied into other objects by a YAML alias): applied only with `--unsafe-fixes`.
    Unsafe,
}

impl Applicability {
    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            Applicability::Safe => "safe",
            Applicability::Unsafe => "unsafe",
        }
    }
}

/// Replace the bytes `span` of `file` (the file as it was read) with `replacement`.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Edit {
    pub file: FileId,
    pub span: Span,
    pub replacement: String,
}

/// A remedy that a tool can apply: edits of the files the finding was read from.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Fix {
    pub applicability: Applicability,
    /// What the fix does, for reports (`remove this line`).
    pub description: String,
    pub edits: Vec<Edit>,
}

impl Fix {
    /// The fix that deletes the directive at `at` (in a snippet or an `nginx.conf`; for an entry
    /// of the `proxy-set-headers` ConfigMap, `at` is its key and the entry goes): the bytes
    /// the snippet's map places it at, which `edit::resolve` makes into exactly the
    /// edit a person would make (the whole line, its escaped line break...) or drops. None for a
    /// value that is not in a file.
    #[must_use]
    pub fn remove_directive(
        at: Location,
        applicability: Applicability,
        description: impl Into<String>,
    ) -> Option<Fix> {
        (at.file != FileId::DETACHED && !at.span.is_empty()).then(|| Fix {
            applicability,
            description: description.into(),
            edits: vec![Edit {
                file: at.file,
                span: at.span,
                replacement: String::new(),
            }],
        })
    }
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
    /// The edits that remove the problem, when a tool can make them byte for byte.
    pub fix: Option<Fix>,
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
            fix: None,
        }
    }

    /// Attach a fix, when there is one.
    #[must_use]
    pub fn fix_opt(mut self, fix: Option<Fix>) -> Self {
        self.fix = fix;
        self
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
