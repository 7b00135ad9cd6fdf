//! One renderer per output format; all take the same [`Report`].

use crate::diagnostic::{Diagnostic, Severity};
use crate::model::LoadError;
use crate::source::SourceDb;

pub mod json;
pub mod sarif;
pub mod text;

/// The findings of one run and what was read.
#[derive(Debug)]
pub struct Report<'a> {
    pub sources: &'a SourceDb,
    pub diagnostics: &'a [Diagnostic],
    /// Inputs that could not be read (reported before the findings).
    pub load_errors: &'a [LoadError],
    /// Input files read.
    pub files: usize,
    /// Kubernetes objects read (Ingresses, ConfigMaps, IngressClasses) plus nginx.conf files.
    pub objects: usize,
    /// Findings that `lint --fix` removed (the diagnostics are what remains).
    pub fixed: &'a [crate::fix::Fixed],
}

/// `help` with the fix's mark: `[fix available]`, or `[unsafe fix available]` for one that
/// `--unsafe-fixes` applies.
#[must_use]
pub fn help_with_fix(d: &Diagnostic) -> Option<String> {
    let mark = match d.fix.as_ref().map(|f| f.applicability) {
        Some(crate::diagnostic::Applicability::Safe) => " [fix available]",
        Some(crate::diagnostic::Applicability::Unsafe) => " [unsafe fix available]",
        None => "",
    };
    d.help.as_ref().map(|h| format!("{h}{mark}"))
}

/// Counts by severity.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq, serde::Serialize)]
pub struct Summary {
    /// Inputs that could not be read; `lint` exits 2 when there are any.
    #[serde(skip_serializing_if = "is_zero")]
    pub input_errors: usize,
    pub files: usize,
    pub objects: usize,
    pub errors: usize,
    pub warnings: usize,
    pub infos: usize,
}

impl Report<'_> {
    #[must_use]
    pub fn summary(&self) -> Summary {
        let count = |s| self.diagnostics.iter().filter(|d| d.severity == s).count();
        Summary {
            input_errors: self.load_errors.len(),
            files: self.files,
            objects: self.objects,
            errors: count(Severity::Error),
            warnings: count(Severity::Warning),
            infos: count(Severity::Info),
        }
    }
}

#[allow(clippy::trivially_copy_pass_by_ref)] // reason: serde's skip_serializing_if passes a reference
fn is_zero(n: &usize) -> bool {
    *n == 0
}
