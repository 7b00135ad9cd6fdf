//! Fixture walker: every file in `tests/fixtures/<rule-id>/` that does not end in `_ok` must make
//! that rule fire (its rendered diagnostics are snapshot-tested); every `_ok` file must not.
//! Every rule must have both kinds of fixture and every documentation heading.

use std::path::{Path, PathBuf};

use snippet_guard::input::{Format, add_text};
use snippet_guard::model::Workspace;
use snippet_guard::render::{Report, text};
use snippet_guard::rules::ALL;
use snippet_guard::{Settings, check};

const HEADINGS: [&str; 6] = [
    "## What it does",
    "## Why is this bad?",
    "## Example",
    "## Use instead",
    "## Fix",
    "## Known limits",
];

fn fixtures(rule: &str) -> Vec<PathBuf> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures")
        .join(rule);
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|e| e.expect("dir entry").path())
        .collect();
    files.sort();
    files
}

fn lint(path: &Path) -> (Workspace, Vec<snippet_guard::Diagnostic>) {
    let text = std::fs::read_to_string(path).expect("fixture is UTF-8");
    let name = path
        .strip_prefix(env!("CARGO_MANIFEST_DIR"))
        .expect("inside the crate")
        .display()
        .to_string();
    let mut ws = Workspace::new();
    add_text(&mut ws, &name, &text, Format::Auto);
    let diags = check(&ws, &Settings::default());
    (ws, diags)
}

#[test]
fn every_rule_has_docs_and_both_kinds_of_fixture() {
    for rule in ALL {
        let docs = rule.docs();
        for h in HEADINGS {
            assert!(docs.contains(h), "{}: missing doc heading {h}", rule.id);
        }
        let files = fixtures(rule.id);
        let stem = |p: &PathBuf| p.file_stem().unwrap().to_string_lossy().into_owned();
        assert!(
            files.iter().any(|p| stem(p).ends_with("_ok")),
            "{}: no _ok fixture",
            rule.id
        );
        assert!(
            files.iter().any(|p| !stem(p).ends_with("_ok")),
            "{}: no firing fixture",
            rule.id
        );
    }
}

#[test]
fn fixtures_fire_or_stay_silent() {
    let mut failures = Vec::new();
    for rule in ALL {
        for path in fixtures(rule.id) {
            let (ws, diags) = lint(&path);
            let stem = path.file_stem().unwrap().to_string_lossy().into_owned();
            let fired = diags.iter().filter(|d| d.rule.id == rule.id).count();
            if stem.ends_with("_ok") {
                if !diags.is_empty() {
                    failures.push(format!(
                        "{}: expected no findings, got {:?}",
                        path.display(),
                        diags.iter().map(|d| d.rule.id).collect::<Vec<_>>()
                    ));
                }
                continue;
            }
            if fired == 0 {
                failures.push(format!("{}: {} did not fire", path.display(), rule.id));
                continue;
            }
            let report = Report {
                sources: &ws.sources,
                diagnostics: &diags,
                load_errors: &ws.load_errors,
                files: ws.files,
                objects: ws.objects.len() + ws.confs.len(),
            };
            let rendered = text::render(&report, false);
            let mut settings = insta::Settings::clone_current();
            settings.set_snapshot_suffix(format!("{}__{}", rule.id, stem));
            settings.set_prepend_module_to_snapshot(false);
            settings.bind(|| insta::assert_snapshot!("fixture", rendered));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}
