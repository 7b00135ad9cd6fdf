//! The `snippet-guard` binary end to end: exit codes, output formats, stdin, directories.

use std::io::Write;
use std::path::Path;
use std::process::{Command, Output, Stdio};

fn bin() -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_snippet-guard"));
    c.current_dir(env!("CARGO_MANIFEST_DIR"));
    c.env("NO_COLOR", "1");
    c
}

fn run(args: &[&str]) -> Output {
    bin().args(args).output().expect("run snippet-guard")
}

fn run_stdin(args: &[&str], input: &[u8]) -> Output {
    let mut child = bin()
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn");
    child.stdin.take().unwrap().write_all(input).unwrap();
    child.wait_with_output().expect("wait")
}

fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

const CONFIGMAP_FIXED: &str = "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: ingress-nginx-controller\n  namespace: ingress-nginx\ndata:\n  use-forwarded-headers: \"true\"\n";

#[test]
fn original_report_fails_and_points_at_the_snippet_line() {
    let o = run(&["lint", "examples/original-report.yaml"]);
    assert_eq!(o.status.code(), Some(1), "{}", stdout(&o));
    let out = stdout(&o);
    assert!(out.contains("error[redundant-forwarded-proto]"), "{out}");
    assert!(
        out.contains("--> examples/original-report.yaml:13:7"),
        "{out}"
    );
    assert!(
        out.contains("13 |       proxy_set_header X-Forwarded-Proto $scheme;"),
        "{out}"
    );
}

#[test]
fn fixed_report_passes() {
    let o = run(&["lint", "examples/original-report-fixed.yaml"]);
    assert_eq!(o.status.code(), Some(0), "{}", stdout(&o));
    assert!(stdout(&o).contains("0 errors, 0 warnings"));
}

#[test]
fn configmap_variant_fails_and_its_fix_passes() {
    let o = run(&[
        "lint",
        "--select",
        "redundant-forwarded-proto",
        "examples/controller-configmap.yaml",
    ]);
    assert_eq!(o.status.code(), Some(1));
    assert!(
        stdout(&o).contains("--> examples/controller-configmap.yaml:12:5"),
        "{}",
        stdout(&o)
    );
    let o = run_stdin(&["lint", "-"], CONFIGMAP_FIXED.as_bytes());
    assert_eq!(o.status.code(), Some(0), "{}", stdout(&o));
}

#[test]
fn json_has_exactly_the_documented_shape() {
    let o = run(&["lint", "--format", "json", "examples/original-report.yaml"]);
    assert_eq!(o.status.code(), Some(1));
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).expect("valid JSON");
    let keys = |v: &serde_json::Value| {
        let mut k: Vec<String> = v.as_object().unwrap().keys().cloned().collect();
        k.sort();
        k
    };
    assert_eq!(keys(&v), ["diagnostics", "summary"]);
    let d = &v["diagnostics"][0];
    assert_eq!(
        keys(d),
        [
            "column",
            "end_column",
            "end_line",
            "file",
            "fix",
            "help",
            "line",
            "message",
            "object",
            "rule",
            "severity",
            "source"
        ]
    );
    // The fix: delete line 13 with its line break, bytes of the file as read.
    let text = std::fs::read_to_string("examples/original-report.yaml").unwrap();
    let line = text
        .find("      proxy_set_header X-Forwarded-Proto")
        .unwrap();
    let end = line + text[line..].find('\n').unwrap() + 1;
    assert_eq!(
        d["fix"],
        serde_json::json!({
            "applicability": "safe",
            "description": "remove this line",
            "edits": [{"file": "examples/original-report.yaml", "start": line, "end": end, "replacement": ""}],
        })
    );
    assert_eq!(
        keys(&d["object"]),
        ["apiVersion", "kind", "name", "namespace"]
    );
    assert_eq!(
        keys(&v["summary"]),
        ["errors", "files", "infos", "objects", "warnings"]
    );
    assert_eq!(d["rule"], "redundant-forwarded-proto");
    assert_eq!(d["severity"], "error");
    assert_eq!(
        (d["line"].as_u64(), d["column"].as_u64()),
        (Some(13), Some(7))
    );
    assert_eq!(
        (d["end_line"].as_u64(), d["end_column"].as_u64()),
        (Some(13), Some(50))
    );
    assert_eq!(d["object"]["namespace"], "shop");
    assert_eq!(d["object"]["name"], "django-api");
    assert_eq!(
        d["source"],
        "annotation nginx.ingress.kubernetes.io/configuration-snippet"
    );
    assert_eq!(v["summary"]["errors"], 1);
    assert_eq!(v["summary"]["files"], 1);
}

#[test]
fn sarif_is_2_1_0_with_rules_and_results() {
    let o = run(&["lint", "--format", "sarif", "examples/"]);
    assert_eq!(o.status.code(), Some(1));
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).expect("valid JSON");
    assert_eq!(v["version"], "2.1.0");
    let run = &v["runs"][0];
    assert_eq!(run["tool"]["driver"]["name"], "snippet-guard");
    assert_eq!(
        run["tool"]["driver"]["rules"].as_array().unwrap().len(),
        snippet_guard::rules::ALL.len()
    );
    let results = run["results"].as_array().unwrap();
    assert!(
        results
            .iter()
            .any(|r| r["ruleId"] == "redundant-forwarded-proto"
                && r["locations"][0]["physicalLocation"]["region"]["startLine"] == 13)
    );
    for r in results {
        let idx = r["ruleIndex"].as_u64().unwrap() as usize;
        assert_eq!(run["tool"]["driver"]["rules"][idx]["id"], r["ruleId"]);
    }
}

#[test]
fn stdin_takes_kubectl_lists_and_nginx_conf() {
    let list = "apiVersion: v1\nkind: List\nitems:\n- apiVersion: networking.k8s.io/v1\n  kind: Ingress\n  metadata:\n    name: a\n    namespace: b\n    annotations:\n      nginx.ingress.kubernetes.io/configuration-snippet: |\n        proxy_set_header Host $host;\n  spec: {}\n";
    let o = run_stdin(&["lint", "--format", "json", "-"], list.as_bytes());
    assert_eq!(o.status.code(), Some(1));
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(v["diagnostics"][0]["rule"], "duplicate-controller-header");
    assert_eq!(v["diagnostics"][0]["file"], "<stdin>");
    assert_eq!(v["diagnostics"][0]["line"], 11);

    let conf = "http { server { location / { proxy_set_header X-Real-IP $remote_addr; proxy_set_header X-Real-IP $remote_addr; proxy_pass http://a; } } }\n";
    let o = run_stdin(&["lint", "--format", "json", "-"], conf.as_bytes());
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(v["diagnostics"][0]["rule"], "duplicate-controller-header");
}

#[test]
fn fail_on_select_ignore_exit_zero() {
    let warn_only = "tests/fixtures/duplicate-snippet-header/twice.yaml";
    assert_eq!(run(&["lint", warn_only]).status.code(), Some(0));
    assert_eq!(
        run(&["lint", "--fail-on", "warning", warn_only])
            .status
            .code(),
        Some(1)
    );
    let bad = "examples/original-report.yaml";
    assert_eq!(run(&["lint", "--exit-zero", bad]).status.code(), Some(0));
    assert_eq!(
        run(&["lint", "--ignore", "redundant-forwarded-proto", bad])
            .status
            .code(),
        Some(0)
    );
    assert_eq!(
        run(&["lint", "--select", "invalid-snippet", bad])
            .status
            .code(),
        Some(0)
    );
}

#[test]
fn usage_and_io_errors_exit_2() {
    let o = run(&["lint", "no/such/file.yaml"]);
    assert_eq!(o.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&o.stderr).contains("cannot read no/such/file.yaml"));
    let o = run(&["lint", "--select", "no-such-rule", "examples/"]);
    assert_eq!(o.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&o.stderr).contains("unknown rule `no-such-rule`"));
    assert_eq!(
        run(&["lint", "--controller-version", "0.49", "examples/"])
            .status
            .code(),
        Some(2)
    );
    assert_eq!(run(&["lint"]).status.code(), Some(2));
}

#[test]
fn controller_version_changes_the_header_table() {
    let snippet = "apiVersion: networking.k8s.io/v1\nkind: Ingress\nmetadata:\n  name: a\n  annotations:\n    nginx.ingress.kubernetes.io/configuration-snippet: proxy_set_header X-Original-Forwarded-Host $host;\n";
    let new = run_stdin(&["lint", "-"], snippet.as_bytes());
    assert_eq!(
        new.status.code(),
        Some(1),
        "v1.15 sets X-Original-Forwarded-Host"
    );
    let old = run_stdin(
        &["lint", "--controller-version", "1.12", "-"],
        snippet.as_bytes(),
    );
    assert_eq!(old.status.code(), Some(0), "v1.12 does not");
}

#[test]
fn explain_and_rules() {
    let o = run(&["explain", "redundant-forwarded-proto"]);
    assert_eq!(o.status.code(), Some(0));
    let doc = stdout(&o);
    assert!(doc.starts_with("<!-- generated"));
    assert!(doc.contains("## Why is this bad?"));
    let on_disk = std::fs::read_to_string(
        Path::new(env!("CARGO_MANIFEST_DIR")).join("docs/rules/redundant-forwarded-proto.md"),
    )
    .unwrap();
    assert_eq!(doc, on_disk);
    assert_eq!(run(&["explain", "nope"]).status.code(), Some(2));
    let o = run(&["rules"]);
    assert_eq!(stdout(&o).lines().count(), snippet_guard::rules::ALL.len());
}

#[test]
fn invalid_utf8_and_binary_input_are_input_errors() {
    let o = run_stdin(
        &["lint", "--format", "json", "--input-format", "yaml", "-"],
        b"kind: \xff\xfe\n",
    );
    assert_eq!(o.status.code(), Some(2));
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert!(
        v["input_errors"][0]["message"]
            .as_str()
            .unwrap()
            .contains("not valid UTF-8")
    );
    assert_eq!(v["summary"]["input_errors"], 1);
}

/// An input that cannot be read is never green: not with `--select`, `--ignore`, `--fail-on`
/// or `--exit-zero` (issue: "Unreadable input goes green").
#[test]
fn unreadable_input_exits_2_whatever_the_flags() {
    let broken = b"apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: x\ndata: [\n";
    for flags in [
        &[][..],
        &["--select", "redundant-forwarded-proto"][..],
        &["--ignore", "invalid-snippet"][..],
        &["--fail-on", "info"][..],
        &["--exit-zero"][..],
    ] {
        for format in ["text", "json", "sarif"] {
            let mut args = vec!["lint", "--format", format, "--input-format", "yaml"];
            args.extend_from_slice(flags);
            args.push("-");
            let o = run_stdin(&args, broken);
            assert_eq!(o.status.code(), Some(2), "{args:?}");
            let out = stdout(&o);
            assert!(
                out.contains("cannot read this file as YAML or JSON"),
                "{args:?}: {out}"
            );
        }
    }
    let binary = run_stdin(
        &["lint", "--select", "redundant-forwarded-proto", "-"],
        b"\x00\x01\x02\xff",
    );
    assert_eq!(binary.status.code(), Some(2), "{}", stdout(&binary));
}

/// `kubectl snippet-guard …` runs the binary found on PATH as `kubectl-snippet_guard` (kubectl
/// turns the dash of a plugin name into `_` in the file name) with the arguments after the plugin
/// name. The renamed binary behaves the same; its help names the program as it was invoked.
#[test]
fn renamed_as_a_kubectl_plugin_it_runs_the_same() {
    let dir = tempfile::tempdir().expect("temp dir");
    let plugin = dir.path().join("kubectl-snippet_guard");
    std::fs::copy(env!("CARGO_BIN_EXE_snippet-guard"), &plugin).expect("copy the binary");
    let run_plugin = |args: &[&str]| {
        Command::new(&plugin)
            .args(args)
            .current_dir(env!("CARGO_MANIFEST_DIR"))
            .env("NO_COLOR", "1")
            .output()
            .expect("run kubectl-snippet_guard")
    };
    for args in [
        &["rules"][..],
        &["--version"],
        &["lint", "examples/original-report.yaml"],
    ] {
        let (renamed, original) = (run_plugin(args), run(args));
        assert_eq!(renamed.status.code(), original.status.code(), "{args:?}");
        assert_eq!(stdout(&renamed), stdout(&original), "{args:?}");
    }
    let version = stdout(&run_plugin(&["--version"]));
    assert_eq!(
        version.trim(),
        concat!("snippet-guard ", env!("CARGO_PKG_VERSION"))
    );
    let rules = stdout(&run_plugin(&["rules"]));
    assert!(rules.contains("redundant-forwarded-proto"), "{rules}");

    let help = run_plugin(&["audit", "--help"]);
    assert_eq!(help.status.code(), Some(0));
    let help = stdout(&help);
    assert!(
        help.contains("Usage: kubectl-snippet_guard audit [OPTIONS]"),
        "{help}"
    );
    assert!(help.contains("--all-namespaces"), "{help}");
}

/// A copy of a file in a temporary directory.
fn scratch(from: &str) -> (tempfile::TempDir, std::path::PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join(Path::new(from).file_name().unwrap());
    std::fs::copy(Path::new(env!("CARGO_MANIFEST_DIR")).join(from), &path).unwrap();
    (dir, path)
}

#[test]
fn fix_rewrites_the_file_and_exits_on_what_remains() {
    let (_dir, path) = scratch("examples/original-report.yaml");
    let before = std::fs::read_to_string(&path).unwrap();
    let o = run(&["lint", "--fix", path.to_str().unwrap()]);
    let out = stdout(&o);
    assert_eq!(o.status.code(), Some(0), "{out}");
    assert!(out.contains("fixed 1 finding:"), "{out}");
    assert!(out.contains("0 errors, 0 warnings"), "{out}");
    let after = std::fs::read_to_string(&path).unwrap();
    assert_eq!(
        after,
        before.replace("      proxy_set_header X-Forwarded-Proto $scheme;\n", "")
    );
    // Nothing left to fix: the file stays as it is.
    let o = run(&["lint", "--fix", path.to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(0));
    assert_eq!(std::fs::read_to_string(&path).unwrap(), after);
    // No temporary file is left beside it.
    let left: Vec<_> = std::fs::read_dir(path.parent().unwrap()).unwrap().collect();
    assert_eq!(left.len(), 1);
}

#[test]
fn unsafe_fixes_only_when_asked_and_the_exit_code_says_what_remains() {
    // `https` is not the controller's value: an unsafe fix.
    let yaml = "apiVersion: networking.k8s.io/v1\nkind: Ingress\nmetadata:\n  name: a\n  annotations:\n    nginx.ingress.kubernetes.io/configuration-snippet: |\n      proxy_set_header X-Forwarded-Proto https;\n      more_set_headers \"X-A: b\";\nspec:\n  ingressClassName: nginx\n";
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("a.yaml");
    std::fs::write(&path, yaml).unwrap();
    let p = path.to_str().unwrap();
    let o = run(&["lint", p]);
    assert!(
        stdout(&o).contains("[unsafe fix available]"),
        "{}",
        stdout(&o)
    );
    let o = run(&["lint", "--fix", p]);
    assert_eq!(o.status.code(), Some(1), "{}", stdout(&o));
    assert_eq!(std::fs::read_to_string(&path).unwrap(), yaml);
    let o = run(&["lint", "--fix", "--unsafe-fixes", p]);
    assert_eq!(o.status.code(), Some(0), "{}", stdout(&o));
    assert_eq!(
        std::fs::read_to_string(&path).unwrap(),
        yaml.replace("      proxy_set_header X-Forwarded-Proto https;\n", "")
    );
    let o = run(&["lint", "--unsafe-fixes", p]);
    assert_eq!(o.status.code(), Some(2));
}

#[test]
fn diff_prints_a_unified_diff_and_writes_nothing() {
    let (_dir, path) = scratch("examples/original-report.yaml");
    let before = std::fs::read(&path).unwrap();
    let p = path.to_str().unwrap();
    let o = run(&["lint", "--diff", p]);
    let out = stdout(&o);
    assert_eq!(o.status.code(), Some(0), "{out}");
    assert!(
        out.starts_with(&format!("--- a/{p}\n+++ b/{p}\n@@ -10,7 +10,6 @@\n")),
        "{out}"
    );
    assert!(
        out.contains("\n-      proxy_set_header X-Forwarded-Proto $scheme;\n"),
        "{out}"
    );
    assert_eq!(
        out.lines().filter(|l| l.starts_with(['-', '+'])).count(),
        3,
        "{out}"
    );
    assert!(
        String::from_utf8_lossy(&o.stderr)
            .contains("would fix 1 finding in 1 file; 0 would remain")
    );
    assert_eq!(std::fs::read(&path).unwrap(), before);
}

#[test]
fn fix_keeps_crlf_and_a_byte_order_mark() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("crlf.yaml");
    let yaml = "\u{feff}apiVersion: networking.k8s.io/v1\r\nkind: Ingress\r\nmetadata:\r\n  name: a\r\n  annotations:\r\n    nginx.ingress.kubernetes.io/configuration-snippet: |\r\n      proxy_set_header X-Forwarded-Proto $scheme;\r\n      more_set_headers \"X-A: b\";\r\nspec:\r\n  ingressClassName: nginx\r\n";
    std::fs::write(&path, yaml).unwrap();
    let o = run(&["lint", "--fix", path.to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(0), "{}", stdout(&o));
    assert_eq!(
        std::fs::read_to_string(&path).unwrap(),
        yaml.replace("      proxy_set_header X-Forwarded-Proto $scheme;\r\n", "")
    );
}

#[test]
fn fix_never_edits_standard_input_unless_it_is_the_only_input() {
    let yaml = std::fs::read("examples/original-report.yaml").unwrap();
    // `--fix -`: the fixed document on stdout, the report on stderr.
    let o = run_stdin(&["lint", "--fix", "-"], &yaml);
    assert_eq!(o.status.code(), Some(0));
    assert_eq!(
        stdout(&o),
        String::from_utf8_lossy(&yaml)
            .replace("      proxy_set_header X-Forwarded-Proto $scheme;\n", "")
    );
    assert!(String::from_utf8_lossy(&o.stderr).contains("fixed 1 finding"));
    // With files besides: refused.
    let o = run_stdin(
        &["lint", "--fix", "-", "examples/original-report.yaml"],
        &yaml,
    );
    assert_eq!(o.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&o.stderr).contains("never edits standard input"));
}
