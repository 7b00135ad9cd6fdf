//! `--format text`: rustc-style code frames (annotate-snippets) pointing at the YAML or conf line.

use std::fmt::Write as _;

use annotate_snippets::{AnnotationKind, Group, Level, Origin, Renderer, Snippet};

use crate::diagnostic::{Diagnostic, Severity};
use crate::model::LoadError;
use crate::render::Report;
use crate::source::{SourceDb, SourceFile, Span};

fn level(s: Severity) -> Level<'static> {
    match s {
        Severity::Error => Level::ERROR,
        Severity::Warning => Level::WARNING,
        Severity::Info => Level::INFO,
    }
}

/// The lines covering `spans` (all in `file`): the excerpt, its first line number and its offset.
/// annotate-snippets scans the whole source it is given, so giving it only these lines keeps
/// rendering linear in the number of findings, however large the file.
fn excerpt(file: &SourceFile, spans: &[Span]) -> (usize, usize, usize) {
    let lo = spans.iter().map(|s| s.start).min().unwrap_or(0);
    let hi = spans.iter().map(|s| s.end).max().unwrap_or(0);
    let first = file.line_col(lo).line;
    let last = file.line_col(hi.saturating_sub(1).max(lo)).line;
    let start = file.line_start(first);
    let end = file.line_range(last).end.max(start);
    (first, start, end)
}

/// Excerpts longer than this (a snippet inside a one-line JSON document) are shown as a
/// `file:line:column` origin without a frame.
const MAX_FRAME_BYTES: usize = 16 * 1024;

fn frame<'a>(
    file: &'a SourceFile,
    annotations: &[(Span, Option<&'a str>, bool)],
) -> annotate_snippets::Element<'a> {
    let spans: Vec<Span> = annotations.iter().map(|a| a.0).collect();
    let (first_line, start, end) = excerpt(file, &spans);
    if end - start > MAX_FRAME_BYTES {
        let at = file.line_col(annotations[0].0.start);
        return Origin::path(file.name.as_str())
            .line(at.line)
            .char_column(at.column)
            .into();
    }
    let text = &file.text[start..end];
    let mut snippet = Snippet::source(text)
        .path(file.name.as_str())
        .line_start(first_line)
        .fold(true);
    for &(span, label, primary) in annotations {
        // Spans from decoded values may end inside a multi-byte character: widen to boundaries.
        let mut lo = (span.start as usize).saturating_sub(start).min(text.len());
        let mut hi = (span.end as usize)
            .saturating_sub(start)
            .min(text.len())
            .max(lo);
        while !text.is_char_boundary(lo) {
            lo -= 1;
        }
        while !text.is_char_boundary(hi) {
            hi += 1;
        }
        let range = lo..hi;
        let kind = if primary {
            AnnotationKind::Primary
        } else {
            AnnotationKind::Context
        };
        snippet = snippet.annotation(kind.span(range).label(label));
    }
    snippet.into()
}

/// Related places this close to the primary line share its frame.
const SAME_FRAME_LINES: usize = 12;

/// Render one diagnostic as a code frame (no trailing newline).
#[must_use]
pub fn render_one(sources: &SourceDb, d: &Diagnostic, color: bool) -> String {
    let file = sources.get(d.primary.file);
    let primary_line = file.line_col(d.primary.span.start).line;
    let mut same: Vec<(Span, Option<&str>, bool)> =
        vec![(d.primary.span, d.label.as_deref(), true)];
    let mut separate = Vec::new();
    for r in &d.related {
        let near = r.location.file == d.primary.file
            && file
                .line_col(r.location.span.start)
                .line
                .abs_diff(primary_line)
                <= SAME_FRAME_LINES;
        if near {
            same.push((r.location.span, Some(r.message.as_str()), false));
        } else {
            separate.push(r);
        }
    }
    let mut group = Group::with_title(
        level(d.severity)
            .primary_title(d.message.as_str())
            .id(d.rule.id),
    )
    .element(frame(file, &same));
    for r in separate {
        let f = sources.get(r.location.file);
        group = group.element(frame(
            f,
            &[(r.location.span, Some(r.message.as_str()), false)],
        ));
    }
    if let Some(o) = &d.object {
        let src = d
            .source
            .as_ref()
            .map(|s| format!(", {s}"))
            .unwrap_or_default();
        group = group.element(Level::NOTE.message(format!("in {o}{src}")));
    }
    for n in &d.notes {
        group = group.element(Level::NOTE.message(n.as_str()));
    }
    let help = super::help_with_fix(d);
    finish(group, help.as_deref(), color)
}

/// Add the help line and render the group (plain, or styled for a terminal).
fn finish<'a>(mut group: Group<'a>, help: Option<&'a str>, color: bool) -> String {
    if let Some(h) = help {
        group = group.element(Level::HELP.message(h));
    }
    let renderer = if color {
        Renderer::styled()
    } else {
        Renderer::plain()
    };
    renderer.render(&[group])
}

/// Render an input that could not be read as a code frame (no trailing newline).
#[must_use]
pub fn render_load_error(sources: &SourceDb, e: &LoadError, color: bool) -> String {
    let file = sources.get(e.location.file);
    let mut group = Group::with_title(Level::ERROR.primary_title(e.message.as_str()))
        .element(frame(file, &[(e.location.span, None, true)]));
    if let Some(o) = &e.object {
        group = group.element(Level::NOTE.message(format!("in {o}")));
    }
    finish(group, e.help.as_deref(), color)
}

/// Render the inputs that could not be read, every diagnostic and a closing summary line.
#[must_use]
pub fn render(report: &Report<'_>, color: bool) -> String {
    let mut out = String::new();
    for e in report.load_errors {
        out.push_str(&render_load_error(report.sources, e, color));
        out.push_str("\n\n");
    }
    for d in report.diagnostics {
        out.push_str(&render_one(report.sources, d, color));
        out.push_str("\n\n");
    }
    if !report.fixed.is_empty() {
        let _ = writeln!(
            out,
            "fixed {} finding{}:",
            report.fixed.len(),
            if report.fixed.len() == 1 { "" } else { "s" }
        );
        for f in report.fixed {
            let _ = writeln!(out, "  {f}");
        }
        out.push('\n');
    }
    let s = report.summary();
    let plural = |n: usize, w: &str| format!("{n} {w}{}", if n == 1 { "" } else { "s" });
    if s.input_errors > 0 {
        let _ = write!(
            out,
            "{} could not be read; ",
            plural(s.input_errors, "input")
        );
    }
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
