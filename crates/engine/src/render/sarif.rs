//! `--format sarif`: SARIF 2.1.0 for code scanning.
//!
//! Positions follow SARIF's defaults, which code scanning and the SARIF viewers assume: columns
//! count UTF-16 code units (declared as the run's `columnKind`), and every `uri` is a valid URI
//! reference: a relative path percent-encoded (a space or a `#` in a file name stays part of
//! the name), an absolute path a `file:///` URI, standard input `file:///dev/stdin`.

use std::fmt::Write as _;

use serde_json::{Value, json};

use crate::diagnostic::Severity;
use crate::input::STDIN_NAME;
use crate::render::Report;
use crate::rules;
use crate::source::SourceFile;

/// Where standard input is, as a URI.
const STDIN_URI: &str = "file:///dev/stdin";

/// The SARIF `uri` of a file, from its display name (a path as given, or standard input).
fn uri(name: &str) -> String {
    if name == STDIN_NAME {
        return STDIN_URI.to_string();
    }
    let mut path = name;
    while let Some(rest) = path.strip_prefix("./") {
        path = rest;
    }
    let mut out = String::with_capacity(path.len() + 8);
    if path.starts_with('/') {
        out.push_str("file://");
    }
    for &b in path.as_bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~' | b'/') {
            out.push(char::from(b));
        } else {
            let _ = write!(out, "%{b:02X}");
        }
    }
    out
}

/// The 1-based line and column of a byte offset, the column in UTF-16 code units.
fn position(f: &SourceFile, offset: u32) -> (usize, usize) {
    let line = f.line_col(offset).line;
    let start = f.line_start(line);
    let mut end = (offset as usize).clamp(start, f.text.len());
    while !f.text.is_char_boundary(end) {
        end -= 1;
    }
    let before = &f.text[start..end];
    let units = if before.is_ascii() {
        before.len()
    } else {
        before.encode_utf16().count()
    };
    (line, units + 1)
}

fn level(s: Severity) -> &'static str {
    match s {
        Severity::Error => "error",
        Severity::Warning => "warning",
        Severity::Info => "note",
    }
}

/// Render the report as a SARIF 2.1.0 log with one run.
#[must_use]
pub fn render(report: &Report<'_>) -> String {
    let rules: Vec<Value> = rules::ALL
        .iter()
        .map(|r| {
            json!({
                "id": r.id,
                "name": r.name,
                "shortDescription": { "text": r.summary },
                "fullDescription": { "text": r.summary },
                "help": { "text": r.summary, "markdown": r.docs() },
                "helpUri": format!("https://github.com/snippet-guard/snippet-guard/blob/main/docs/rules/{}.md", r.id),
                "defaultConfiguration": { "level": level(r.default_severity) },
            })
        })
        .collect();
    let results: Vec<Value> = report
        .diagnostics
        .iter()
        .map(|d| {
            let f = report.sources.get(d.primary.file);
            let (start_line, start_column) = position(f, d.primary.span.start);
            let (end_line, end_column) = position(f, d.primary.span.end);
            let mut text = d.message.clone();
            if let Some(h) = &d.help {
                text.push_str("\nhelp: ");
                text.push_str(h);
            }
            let related: Vec<Value> = d
                .related
                .iter()
                .enumerate()
                .map(|(i, r)| {
                    let rf = report.sources.get(r.location.file);
                    let (line, column) = position(rf, r.location.span.start);
                    json!({
                        "id": i,
                        "message": { "text": r.message },
                        "physicalLocation": {
                            "artifactLocation": { "uri": uri(&rf.name) },
                            "region": { "startLine": line, "startColumn": column }
                        }
                    })
                })
                .collect();
            let mut result = json!({
                "ruleId": d.rule.id,
                "ruleIndex": rules::ALL.iter().position(|r| r.id == d.rule.id),
                "level": level(d.severity),
                "message": { "text": text },
                "locations": [{
                    "physicalLocation": {
                        "artifactLocation": { "uri": uri(&f.name) },
                        "region": {
                            "startLine": start_line, "startColumn": start_column,
                            "endLine": end_line, "endColumn": end_column
                        }
                    }
                }],
            });
            if !related.is_empty() {
                result["relatedLocations"] = Value::Array(related);
            }
            if let Some(fix) = &d.fix {
                // SARIF's `fixes` (3.55): byte regions of the file as read.
                let changes: Vec<Value> = fix
                    .edits
                    .iter()
                    .map(|e| {
                        json!({
                            "artifactLocation": { "uri": uri(&report.sources.get(e.file).name) },
                            "replacements": [{
                                "deletedRegion": {
                                    "byteOffset": e.span.start,
                                    "byteLength": e.span.len(),
                                },
                                "insertedContent": { "text": e.replacement },
                            }],
                        })
                    })
                    .collect();
                result["fixes"] = json!([{
                    "description": { "text": fix.description },
                    "artifactChanges": changes,
                }]);
                result["properties"] = json!({ "fixApplicability": fix.applicability.as_str() });
            }
            if let Some(o) = &d.object {
                result["properties"]["object"] = json!(o);
                result["properties"]["source"] = json!(d.source.as_ref().map(ToString::to_string));
            }
            result
        })
        .collect();
    let mut run = json!({
        "tool": { "driver": {
            "name": "snippet-guard",
            "version": env!("CARGO_PKG_VERSION"),
            "informationUri": "https://github.com/snippet-guard/snippet-guard",
            "rules": rules,
        }},
        "columnKind": "utf16CodeUnits",
        "results": results,
    });
    if !report.load_errors.is_empty() {
        let notifications: Vec<Value> = report
            .load_errors
            .iter()
            .map(|e| {
                let f = report.sources.get(e.location.file);
                let (line, column) = position(f, e.location.span.start);
                json!({
                    "level": "error",
                    "message": { "text": e.message },
                    "locations": [{
                        "physicalLocation": {
                            "artifactLocation": { "uri": uri(&f.name) },
                            "region": { "startLine": line, "startColumn": column }
                        }
                    }],
                })
            })
            .collect();
        run["invocations"] = json!([{
            "executionSuccessful": false,
            "toolExecutionNotifications": notifications,
        }]);
    }
    let log = json!({
        "$schema": "https://json.schemastore.org/sarif-2.1.0.json",
        "version": "2.1.0",
        "runs": [run]
    });
    let mut s = serde_json::to_string_pretty(&log).expect("plain data always serializes");
    s.push('\n');
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn uris_are_valid_references() {
        assert_eq!(uri("examples/a.yaml"), "examples/a.yaml");
        assert_eq!(uri("./deploy/my app#2.yaml"), "deploy/my%20app%232.yaml");
        assert_eq!(uri("/srv/k8s/ingress.yaml"), "file:///srv/k8s/ingress.yaml");
        assert_eq!(uri("a:b/é.yaml"), "a%3Ab/%C3%A9.yaml");
        assert_eq!(uri(STDIN_NAME), STDIN_URI);
    }

    #[test]
    fn columns_count_utf16_code_units() {
        // `é` is one unit, `𝄞` two (a surrogate pair); bytes 2 and 4 respectively.
        let f = SourceFile::new("x", "a: é𝄞 x\nb\n");
        let x = f.text.find(" x").unwrap() as u32 + 1;
        assert_eq!(position(&f, x), (1, 8));
        assert_eq!(position(&f, x + 2), (2, 1));
        // An offset inside a character counts from its start.
        assert_eq!(position(&f, 4), (1, 4));
    }
}
