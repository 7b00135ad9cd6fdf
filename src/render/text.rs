//! `--format text`: rustc-style code frames (annotate-snippets) pointing at the YAML or conf line.

use std::fmt::Write as _;

use annotate_snippets::{AnnotationKind, Group, Level, Renderer, Snippet};

use crate::diagnostic::{Diagnostic, Severity};
use crate::render::Report;
use crate::source::SourceDb;

fn level(s: Severity) -> Level<'static> {
    match s {
        Severity::Error => Level::ERROR,
        Severity::Warning => Level::WARNING,
        Severity::Info => Level::INFO,
    }
}

/// Render one diagnostic as a code frame (no trailing newline).
#[must_use]
pub fn render_one(sources: &SourceDb, d: &Diagnostic, color: bool) -> String {
    let file = sources.get(d.primary.file);
    let title = d.message.as_str();
    let mut snippet = Snippet::source(file.text.as_ref())
        .path(file.name.as_str())
        .fold(true)
        .annotation(
            AnnotationKind::Primary
                .span(d.primary.span.range())
                .label(d.label.as_deref()),
        );
    let mut other_files = Vec::new();
    for r in &d.related {
        if r.location.file == d.primary.file {
            snippet = snippet.annotation(
                AnnotationKind::Context
                    .span(r.location.span.range())
                    .label(r.message.as_str()),
            );
        } else {
            other_files.push(r);
        }
    }
    let mut group =
        Group::with_title(level(d.severity).primary_title(title).id(d.rule.id)).element(snippet);
    for r in other_files {
        let f = sources.get(r.location.file);
        group = group.element(
            Snippet::source(f.text.as_ref())
                .path(f.name.as_str())
                .fold(true)
                .annotation(
                    AnnotationKind::Context
                        .span(r.location.span.range())
                        .label(r.message.as_str()),
                ),
        );
    }
    if let Some(o) = &d.object {
        let src = d
            .source
            .as_deref()
            .map(|s| format!(", {s}"))
            .unwrap_or_default();
        group = group.element(Level::NOTE.message(format!("in {o}{src}")));
    }
    for n in &d.notes {
        group = group.element(Level::NOTE.message(n.as_str()));
    }
    if let Some(h) = &d.help {
        group = group.element(Level::HELP.message(h.as_str()));
    }
    let renderer = if color {
        Renderer::styled()
    } else {
        Renderer::plain()
    };
    renderer.render(&[group])
}

/// Render every diagnostic and a closing summary line.
#[must_use]
pub fn render(report: &Report<'_>, color: bool) -> String {
    let mut out = String::new();
    for d in report.diagnostics {
        out.push_str(&render_one(report.sources, d, color));
        out.push_str("\n\n");
    }
    let s = report.summary();
    let plural = |n: usize, w: &str| format!("{n} {w}{}", if n == 1 { "" } else { "s" });
    let _ = writeln!(
        out,
        "{}, {}, {} in {} ({})",
        plural(s.errors, "error"),
        plural(s.warnings, "warning"),
        plural(s.infos, "info"),
        plural(s.files, "file"),
        plural(s.objects, "object"),
    );
    out
}
