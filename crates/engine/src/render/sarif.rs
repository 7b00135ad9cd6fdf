//! `--format sarif`: SARIF 2.1.0 for code scanning.

use serde_json::{Value, json};

use crate::diagnostic::Severity;
use crate::render::Report;
use crate::rules;

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
            let s = f.line_col(d.primary.span.start);
            let e = f.line_col(d.primary.span.end);
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
                    let rs = rf.line_col(r.location.span.start);
                    json!({
                        "id": i,
                        "message": { "text": r.message },
                        "physicalLocation": {
                            "artifactLocation": { "uri": rf.name },
                            "region": { "startLine": rs.line, "startColumn": rs.column }
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
                        "artifactLocation": { "uri": f.name },
                        "region": {
                            "startLine": s.line, "startColumn": s.column,
                            "endLine": e.line, "endColumn": e.column
                        }
                    }
                }],
            });
            if !related.is_empty() {
                result["relatedLocations"] = Value::Array(related);
            }
            if let Some(o) = &d.object {
                result["properties"] = json!({
                    "object": o,
                    "source": d.source.as_ref().map(ToString::to_string),
                });
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
        "results": results,
    });
    if !report.load_errors.is_empty() {
        let notifications: Vec<Value> = report
            .load_errors
            .iter()
            .map(|e| {
                let f = report.sources.get(e.location.file);
                let at = f.line_col(e.location.span.start);
                json!({
                    "level": "error",
                    "message": { "text": e.message },
                    "locations": [{
                        "physicalLocation": {
                            "artifactLocation": { "uri": f.name },
                            "region": { "startLine": at.line, "startColumn": at.column }
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
