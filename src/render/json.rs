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
    source: Option<&'a str>,
}

#[derive(Serialize)]
struct JsonReport<'a> {
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
                source: d.source.as_deref(),
            }
        })
        .collect();
    let out = JsonReport {
        diagnostics,
        summary: report.summary(),
    };
    let mut s = serde_json::to_string_pretty(&out).expect("plain data always serializes");
    s.push('\n');
    s
}
