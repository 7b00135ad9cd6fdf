//! Fixture walker: every file in `tests/fixtures/<rule-id>/` that does not end in `_ok` must make
//! that rule fire (its rendered diagnostics are snapshot-tested); every `_ok` file must not.
//! Every rule must have both kinds of fixture and every documentation heading. Beside every firing
//! fixture `<name>.<ext>`, `<name>.fixed.<ext>` is the file after `lint --fix`, byte for byte, and
//! `<name>.unsafe-fixed.<ext>` the file after `lint --fix --unsafe-fixes` when that differs
//! (`SNIPPET_GUARD_UPDATE_FIXED=1` writes them; review the diff).

use std::path::{Path, PathBuf};

use snippet_guard::fix;
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
        .filter(|p| fixed_kind(p).is_none())
        .collect();
    files.sort();
    files
}

/// `fixed` or `unsafe-fixed` for the expected output of a fix, else none.
fn fixed_kind(path: &Path) -> Option<&'static str> {
    let stem = path.file_stem()?.to_str()?;
    ["unsafe-fixed", "fixed"]
        .into_iter()
        .find(|k| stem.ends_with(&format!(".{k}")))
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
                fixed: &[],
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

/// The name `lint` reports a fixture under, relative to the crate.
fn display_name(path: &Path) -> String {
    path.strip_prefix(env!("CARGO_MANIFEST_DIR"))
        .expect("inside the crate")
        .display()
        .to_string()
}

#[test]
fn fixtures_fix_byte_for_byte() {
    let update = std::env::var_os("SNIPPET_GUARD_UPDATE_FIXED").is_some();
    let mut failures = Vec::new();
    let mut compared = 0;
    for rule in ALL {
        for path in fixtures(rule.id) {
            let stem = path.file_stem().unwrap().to_string_lossy().into_owned();
            if stem.ends_with("_ok") {
                continue;
            }
            let ext = path.extension().unwrap().to_string_lossy().into_owned();
            let text = std::fs::read_to_string(&path).expect("fixture is UTF-8");
            let input = fix::Input {
                name: display_name(&path),
                text: text.clone(),
                format: if ext == "conf" {
                    Format::Conf
                } else {
                    Format::Yaml
                },
                fixable: true,
            };
            let safe = fix::run(std::slice::from_ref(&input), &Settings::default(), false);
            let all = fix::run(std::slice::from_ref(&input), &Settings::default(), true);
            for (kind, outcome) in [("fixed", &safe), ("unsafe-fixed", &all)] {
                let expected = path.with_file_name(format!("{stem}.{kind}.{ext}"));
                let got = &outcome.texts[0];
                assert!(
                    outcome.reverted.is_empty() && !outcome.unfinished,
                    "{}: {kind}: reverted {:?}, unfinished {}",
                    path.display(),
                    outcome.reverted,
                    outcome.unfinished
                );
                // What was fixed is gone, and nothing left has a fix that would apply.
                let allowed = |a| {
                    kind == "unsafe-fixed" || a == snippet_guard::diagnostic::Applicability::Safe
                };
                if let Some(d) = outcome
                    .remaining
                    .iter()
                    .find(|d| d.fix.as_ref().is_some_and(|f| allowed(f.applicability)))
                {
                    failures.push(format!(
                        "{}: {kind}: a fix is left: {}",
                        path.display(),
                        d.one_line()
                    ));
                }
                if kind == "unsafe-fixed" && *got == safe.texts[0] {
                    if expected.exists() {
                        failures.push(format!(
                            "{}: same as the safe fix, remove it",
                            expected.display()
                        ));
                    }
                    continue;
                }
                if update {
                    std::fs::write(&expected, got).expect("write the fixed file");
                    continue;
                }
                compared += 1;
                match std::fs::read(&expected) {
                    Ok(want) if want == got.as_bytes() => {}
                    Ok(want) => failures.push(format!(
                        "{}: differs from the fix of {}:\n--- expected\n{}\n--- got\n{got}",
                        expected.display(),
                        path.display(),
                        String::from_utf8_lossy(&want)
                    )),
                    Err(e) => failures.push(format!("{}: {e}", expected.display())),
                }
            }
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
    assert!(update || compared > 40, "{compared} fixed files compared");
}
