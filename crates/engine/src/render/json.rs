//! `--format json`: one object with `diagnostics` and `summary`, positions 1-based.

use serde::Serialize;

use crate::diagnostic::ObjectRef;
use crate::render::{Report, Summary};

#[derive(Serialize)]
struct JsonDiagnostic<'a> {
    rule: &'a str,
    severity: &'a str,
    message: &'a str,
    help: Option<&'a str>,
    file: &'a str,
    line: usize,
    column: usize,
    end_line: usize,
    end_column: usize,
    object: Option<&'a ObjectRef>,
    source: Option<String>,
    /// Present when a tool can fix the finding.
    #[serde(skip_serializing_if = "Option::is_none")]
    fix: Option<JsonFix<'a>>,
}

#[derive(Serialize)]
struct JsonFix<'a> {
    applicability: &'static str,
    description: &'a str,
    edits: Vec<JsonEdit<'a>>,
}

/// Byte offsets into the file as read (`start` inclusive, `end` exclusive).
#[derive(Serialize)]
struct JsonEdit<'a> {
    file: &'a str,
    start: u32,
    end: u32,
    replacement: &'a str,
}

#[derive(Serialize)]
struct JsonFixed<'a> {
    rule: &'a str,
    file: &'a str,
    line: usize,
    object: Option<&'a ObjectRef>,
    applicability: &'static str,
}

/// An input that could not be read.
#[derive(Serialize)]
struct JsonLoadError<'a> {
    message: &'a str,
    help: Option<&'a str>,
    file: &'a str,
    line: usize,
    column: usize,
    object: Option<&'a ObjectRef>,
}

#[derive(Serialize)]
struct JsonReport<'a> {
    /// Present only when an input could not be read.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    input_errors: Vec<JsonLoadError<'a>>,
    /// Present only after `lint --fix`: the findings fixed (the diagnostics remain).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    fixed: Vec<JsonFixed<'a>>,
    diagnostics: Vec<JsonDiagnostic<'a>>,
    summary: Summary,
}

/// Render the report as pretty JSON.
#[must_use]
pub fn render(report: &Report<'_>) -> String {
    let diagnostics = report
        .diagnostics
        .iter()
        .map(|d| {
            let f = report.sources.get(d.primary.file);
            let start = f.line_col(d.primary.span.start);
            let end = f.line_col(d.primary.span.end);
            JsonDiagnostic {
                rule: d.rule.id,
                severity: d.severity.as_str(),
                message: &d.message,
                help: d.help.as_deref(),
                file: &f.name,
                line: start.line,
                column: start.column,
                end_line: end.line,
                end_column: end.column,
                object: d.object.as_ref(),
                source: d.source.as_ref().map(ToString::to_string),
                fix: d.fix.as_ref().map(|fix| JsonFix {
                    applicability: fix.applicability.as_str(),
                    description: &fix.description,
                    edits: fix
                        .edits
                        .iter()
                        .map(|e| JsonEdit {
                            file: &report.sources.get(e.file).name,
                            start: e.span.start,
                            end: e.span.end,
                            replacement: &e.replacement,
                        })
                        .collect(),
                }),
            }
        })
        .collect();
    let input_errors = report
        .load_errors
        .iter()
        .map(|e| {
            let f = report.sources.get(e.location.file);
            let at = f.line_col(e.location.span.start);
            JsonLoadError {
                message: &e.message,
                help: e.help.as_deref(),
                file: &f.name,
                line: at.line,
                column: at.column,
                object: e.object.as_ref(),
            }
        })
        .collect();
    let fixed = report
        .fixed
        .iter()
        .map(|f| JsonFixed {
            rule: f.rule.id,
            file: &f.file,
            line: f.line,
            object: f.object.as_ref(),
            applicability: f.applicability.as_str(),
        })
        .collect();
    let out = JsonReport {
        input_errors,
        fixed,
        diagnostics,
        summary: report.summary(),
    };
    let mut s = serde_json::to_string_pretty(&out).expect("plain data always serializes");
    s.push('\n');
    s
}
