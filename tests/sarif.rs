//! `--format sarif` (issue item 12): valid URIs (relative, absolute, standard input, names with
//! a space or `#`), columns in UTF-16 code units, a byte order mark not counted; and every log
//! passes Microsoft's reference validator (SARIF Multitool, the 2.1.0 schema and its rules).
//!
//! `scripts/test.sh` installs the validator (npm `@microsoft/sarif-multitool`) into
//! `.venv/sarif-multitool` and sets `SARIF_MULTITOOL`; without either, the validator test says so
//! and checks nothing more.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

use serde_json::Value;

fn bin(dir: &Path) -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_snippet-guard"));
    c.current_dir(dir);
    c.env("NO_COLOR", "1");
    c
}

fn run(dir: &Path, args: &[&str], stdin: Option<&[u8]>) -> Output {
    let mut child = bin(dir)
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn snippet-guard");
    let mut input = child.stdin.take().unwrap();
    input.write_all(stdin.unwrap_or_default()).unwrap();
    drop(input);
    child.wait_with_output().expect("wait")
}

fn repo() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

/// An Ingress whose configuration-snippet sets X-Forwarded-Proto again.
const FINDING: &str = "apiVersion: networking.k8s.io/v1\nkind: Ingress\nmetadata:\n  name: web\n  namespace: shop\n  annotations:\n    nginx.ingress.kubernetes.io/configuration-snippet: |\n      proxy_set_header X-Forwarded-Proto $scheme;\n";

/// One line of JSON with a byte order mark and, before the snippet, characters of one, two and
/// three UTF-8 bytes, and one (`𝄞`) that is two UTF-16 code units.
fn one_line_json(bom: bool) -> String {
    let doc = r#"{"apiVersion":"networking.k8s.io/v1","kind":"Ingress","metadata":{"name":"café","labels":{"note":"𝄞 ☕ été"},"annotations":{"nginx.ingress.kubernetes.io/configuration-snippet":"proxy_set_header X-Forwarded-Proto $scheme;"}}}"#;
    format!("{}{doc}\n", if bom { "\u{feff}" } else { "" })
}

/// One SARIF case: its name, the paths to lint, what standard input holds.
type Case = (&'static str, Vec<String>, Option<Vec<u8>>);

/// The inputs of the SARIF cases, and the tempdir holding their files.
struct Cases {
    dir: tempfile::TempDir,
    list: Vec<Case>,
}

fn cases() -> Cases {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    std::fs::create_dir_all(d.join("odd dir")).unwrap();
    std::fs::write(d.join("odd dir/my app#1.yaml"), FINDING).unwrap();
    std::fs::write(d.join("non-ascii.json"), one_line_json(false)).unwrap();
    std::fs::write(d.join("bom.json"), one_line_json(true)).unwrap();
    std::fs::write(d.join("broken.yaml"), "kind: ConfigMap\ndata: [\n").unwrap();
    let examples = repo().join("examples").display().to_string();
    let absolute = d.join("odd dir/my app#1.yaml").display().to_string();
    let args = |a: &[&str]| -> Vec<String> { a.iter().map(|s| (*s).to_string()).collect() };
    let list = vec![
        ("examples", args(&["examples/"]), None),
        ("stdin", args(&["-"]), Some(FINDING.as_bytes().to_vec())),
        ("absolute", vec![absolute], None),
        ("space-and-hash", args(&["odd dir/my app#1.yaml"]), None),
        ("non-ascii", args(&["non-ascii.json"]), None),
        ("bom", args(&["bom.json"]), None),
        ("input-error", args(&["broken.yaml"]), None),
        ("examples-absolute", vec![examples], None),
    ];
    Cases { dir, list }
}

/// Run one case with `--format sarif`, from the repository for `examples/`, else from the
/// tempdir.
fn sarif(cases: &Cases, name: &str) -> Value {
    let (_, args, stdin) = cases.list.iter().find(|c| c.0 == name).unwrap();
    let cwd = if name == "examples" {
        repo()
    } else {
        cases.dir.path()
    };
    let mut all = vec!["lint", "--format", "sarif"];
    all.extend(args.iter().map(String::as_str));
    let o = run(cwd, &all, stdin.as_deref());
    assert!(
        matches!(o.status.code(), Some(1 | 2)),
        "{name}: {}",
        String::from_utf8_lossy(&o.stderr)
    );
    serde_json::from_slice(&o.stdout).unwrap_or_else(|e| panic!("{name}: {e}"))
}

fn first_location(v: &Value) -> &Value {
    &v["runs"][0]["results"][0]["locations"][0]["physicalLocation"]
}

#[test]
fn uris_are_valid_and_name_one_file() {
    let c = cases();
    let uri = |name| {
        first_location(&sarif(&c, name))["artifactLocation"]["uri"]
            .as_str()
            .unwrap()
            .to_string()
    };
    assert_eq!(uri("space-and-hash"), "odd%20dir/my%20app%231.yaml");
    assert_eq!(uri("stdin"), "file:///dev/stdin");
    // The path as given (absolute), as a file URI; the tempdir's name needs no escaping.
    let expected = format!(
        "file://{}/odd%20dir/my%20app%231.yaml",
        c.dir.path().display()
    );
    assert_eq!(uri("absolute"), expected);
    assert!(uri("examples").starts_with("examples/"));
    // An input error's notification points at its file the same way.
    let v = sarif(&c, "input-error");
    let notification = &v["runs"][0]["invocations"][0]["toolExecutionNotifications"][0];
    assert_eq!(
        notification["locations"][0]["physicalLocation"]["artifactLocation"]["uri"],
        "broken.yaml"
    );
}

#[test]
fn a_fix_is_a_byte_region_replacement_of_the_same_artifact() {
    let c = cases();
    let v = sarif(&c, "examples");
    let results = v["runs"][0]["results"].as_array().unwrap();
    let mut fixes = 0;
    for r in results {
        let Some(fix) = r["fixes"].get(0) else {
            continue;
        };
        fixes += 1;
        let change = &fix["artifactChanges"][0];
        assert_eq!(
            change["artifactLocation"]["uri"],
            r["locations"][0]["physicalLocation"]["artifactLocation"]["uri"]
        );
        let uri = change["artifactLocation"]["uri"].as_str().unwrap();
        let text = std::fs::read(repo().join(uri)).unwrap();
        let region = &change["replacements"][0]["deletedRegion"];
        let start = region["byteOffset"].as_u64().unwrap() as usize;
        let len = region["byteLength"].as_u64().unwrap() as usize;
        // The deleted bytes are whole lines holding the finding's line.
        let deleted = String::from_utf8_lossy(&text[start..start + len]).into_owned();
        assert!(
            deleted.ends_with('\n') && (start == 0 || text[start - 1] == b'\n'),
            "{deleted:?}"
        );
        assert!(deleted.contains("proxy_set_header"), "{deleted:?}");
        assert!(matches!(
            r["properties"]["fixApplicability"].as_str(),
            Some("safe" | "unsafe")
        ));
    }
    assert!(fixes > 0, "no fix in the examples' SARIF");
}

/// The JSON output's column of the first finding, and the text output's `--> file:line:column`.
fn json_and_text_columns(dir: &Path, file: &str) -> (u64, String) {
    let o = run(dir, &["lint", "--format", "json", file], None);
    let v: Value = serde_json::from_slice(&o.stdout).unwrap();
    let column = v["diagnostics"][0]["column"].as_u64().unwrap();
    let o = run(dir, &["lint", file], None);
    let text = String::from_utf8_lossy(&o.stdout).into_owned();
    let arrow = text
        .lines()
        .find_map(|l| l.trim_start().strip_prefix("--> "))
        .unwrap_or_else(|| panic!("{text}"))
        .to_string();
    (column, arrow)
}

#[test]
fn columns_are_utf16_code_units_and_a_byte_order_mark_is_not_one() {
    let c = cases();
    let text = one_line_json(false);
    let before = &text[..text.find("proxy_set_header").unwrap()];
    let chars = before.chars().count() as u64 + 1;
    let units = before.encode_utf16().count() as u64 + 1;
    assert_eq!(units, chars + 1, "one character is a surrogate pair");
    for name in ["non-ascii", "bom"] {
        let v = sarif(&c, name);
        assert_eq!(v["runs"][0]["columnKind"], "utf16CodeUnits");
        let region = &first_location(&v)["region"];
        assert_eq!(region["startLine"], 1, "{name}");
        assert_eq!(region["startColumn"], units, "{name}");
        let len = "proxy_set_header X-Forwarded-Proto $scheme;".len() as u64;
        assert_eq!(region["endColumn"], units + len, "{name}");
        // JSON and text count characters, and agree.
        let file = format!("{name}.json");
        let (column, arrow) = json_and_text_columns(c.dir.path(), &file);
        assert_eq!(column, chars, "{name}");
        assert_eq!(arrow, format!("{file}:1:{chars}"), "{name}");
    }
}

/// The validator: `SARIF_MULTITOOL`, else the copy `scripts/test.sh` installs.
fn validator() -> Option<PathBuf> {
    if let Some(path) = std::env::var_os("SARIF_MULTITOOL") {
        let path = PathBuf::from(path);
        assert!(
            path.exists(),
            "SARIF_MULTITOOL={} does not exist",
            path.display()
        );
        return Some(path);
    }
    let path = repo().join(".venv/sarif-multitool/node_modules/.bin/sarif-multitool");
    path.exists().then_some(path)
}

/// The errors and warnings the validator reports on each log, by name (its notes are style
/// advice: message ids instead of text, code snippets, reachable URLs). One run for all logs:
/// the validator takes a second to start.
fn problems(validator: &Path, dir: &Path, logs: &[(&str, Value)]) -> Vec<(String, String)> {
    // The npm launcher hands its arguments to a shell: plain file names only.
    let inputs: Vec<PathBuf> = logs
        .iter()
        .map(|(name, log)| {
            let path = dir.join(format!("{name}.sarif"));
            std::fs::write(&path, serde_json::to_vec_pretty(log).unwrap()).unwrap();
            path
        })
        .collect();
    let output = dir.join("validation.sarif");
    let o = Command::new(validator)
        .arg("validate")
        .args(&inputs)
        .arg("--output")
        .arg(&output)
        .args(["--log", "ForceOverwrite"])
        .output()
        .expect("run the SARIF validator");
    let result: Value = std::fs::read(&output)
        .ok()
        .and_then(|b| serde_json::from_slice(&b).ok())
        .unwrap_or_else(|| {
            panic!(
                "the validator wrote no log: {}{}",
                String::from_utf8_lossy(&o.stdout),
                String::from_utf8_lossy(&o.stderr)
            )
        });
    result["runs"][0]["results"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|r| matches!(r["level"].as_str(), Some("error" | "warning") | None))
        .map(|r| {
            let uri = r["locations"][0]["physicalLocation"]["artifactLocation"]["uri"]
                .as_str()
                .unwrap_or_default();
            let name = uri.rsplit('/').next().unwrap_or_default();
            let name = name.strip_suffix(".sarif").unwrap_or(name).to_string();
            (name, format!("{}: {}", r["ruleId"], r["message"]))
        })
        .collect()
}

#[test]
fn every_log_passes_the_reference_validator() {
    let Some(validator) = validator() else {
        eprintln!(
            "SKIPPED: the SARIF validator is not installed; scripts/test.sh installs it \
             (npm @microsoft/sarif-multitool into .venv/sarif-multitool), or set SARIF_MULTITOOL"
        );
        return;
    };
    let c = cases();
    let work = tempfile::tempdir().unwrap();
    // The validator finds what it should: the old output's `<stdin>` URI, a column 0.
    let mut bad = sarif(&c, "stdin");
    let location = &mut bad["runs"][0]["results"][0]["locations"][0]["physicalLocation"];
    location["artifactLocation"]["uri"] = Value::from("<stdin>");
    location["region"]["startColumn"] = Value::from(0);
    let mut logs = vec![("bad", bad)];
    logs.extend(c.list.iter().map(|(name, _, _)| (*name, sarif(&c, name))));
    let found = problems(&validator, work.path(), &logs);
    let of = |name: &str| -> Vec<&str> {
        found
            .iter()
            .filter(|(n, _)| n == name)
            .map(|(_, p)| p.as_str())
            .collect()
    };
    let bad = of("bad");
    assert!(
        bad.iter().any(|p| p.contains("SARIF1002")) && bad.iter().any(|p| p.contains("JSON1008")),
        "{found:#?}"
    );
    for (name, log) in &logs[1..] {
        assert!(of(name).is_empty(), "{name}: {:#?}\n{log:#}", of(name));
    }
}
