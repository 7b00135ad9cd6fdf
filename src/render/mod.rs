//! One renderer per output format; all take the same [`Report`].

use crate::diagnostic::{Diagnostic, Severity};
use crate::source::SourceDb;

pub mod json;
pub mod sarif;
pub mod text;

/// The findings of one run and what was read.
#[derive(Debug)]
pub struct Report<'a> {
    pub sources: &'a SourceDb,
    pub diagnostics: &'a [Diagnostic],
    /// Input files read.
    pub files: usize,
    /// Kubernetes objects read (Ingresses, ConfigMaps, IngressClasses) plus nginx.conf files.
    pub objects: usize,
}

/// Counts by severity.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq, serde::Serialize)]
pub struct Summary {
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
            files: self.files,
            objects: self.objects,
            errors: count(Severity::Error),
            warnings: count(Severity::Warning),
            infos: count(Severity::Info),
        }
    }
}
