//! Ground truth against real nginx.
//!
//! Every case of `tests/ground_truth/cases.txt` is rendered into a location that copies the block
//! ingress-nginx v1.15 renders (`tests/ground_truth/controller_location.conf`, or
//! `auth_location.conf` for `auth-snippet` cases; an independent fixture written from the template
//! facts in the project docs, not from the profile code). One nginx (Debian `nginx-light` plus
//! `libnginx-mod-http-headers-more-filter`) serves all of them on 127.0.0.1 and proxies to an echo
//! upstream run by this test; a request is sent through each location and the header lines the
//! upstream receives are counted. The linter gets the same snippet as Kubernetes objects, and its
//! verdict (which headers are duplicated) must match what nginx did, case by case. Snippets nginx
//! rejects are tested with `nginx -t` in a config of their own; the linter must report
//! `invalid-snippet` for them.
//!
//! The test installs nothing. Without nginx it fails and says how to install it, unless
//! `SNIPPET_GUARD_SKIP_NGINX=1` is set; then it prints that it is skipped.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write as _;
use std::fs::{self, File};
use std::io::{self, Read, Write};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

use snippet_guard::input::{self, Format};
use snippet_guard::model::Workspace;
use snippet_guard::{Settings, check};

const NGINX_CANDIDATES: [&str; 2] = ["/usr/sbin/nginx", "/usr/bin/nginx"];
const HEADERS_MORE: &str = "/usr/lib/nginx/modules/ngx_http_headers_more_filter_module.so";
const INSTALL: &str = "apt-get install nginx-light libnginx-mod-http-headers-more-filter";
const SKIP_ENV: &str = "SNIPPET_GUARD_SKIP_NGINX";
/// Every socket read, write and connect.
const IO_TIMEOUT: Duration = Duration::from_secs(5);
/// `nginx -t` and nginx start-up.
const PROCESS_TIMEOUT: Duration = Duration::from_secs(20);
const PREFIX: &str = "nginx.ingress.kubernetes.io";
const AUTH_URL: &str = "http://auth.example.com/verify";
/// Rules whose findings mean "nginx sends this header more than once".
const DUPLICATE_RULES: [&str; 3] = [
    "redundant-forwarded-proto",
    "duplicate-controller-header",
    "duplicate-snippet-header",
];
/// Rules that report something else about a header line or a snippet.
const OTHER_RULES: [&str; 3] = [
    "ineffective-empty-header",
    "ineffective-inherited-header",
    "invalid-snippet",
];

/// Rows of the verdict table in docs/ground-truth.md section 1 and the case that reproduces each.
const VERDICT_TABLE: [(&str, &str, Category); 15] = [
    (
        "proxy_set_header X-Forwarded-Proto $scheme;",
        "xfp-scheme",
        Category::Duplicate,
    ),
    (
        "proxy_set_header X-Forwarded-Proto https; (same value)",
        "xfp-literal-https",
        Category::Duplicate,
    ),
    (
        "proxy_set_header X-Forwarded-Proto https; (plain+LB)",
        "xfp-literal-https-behind-lb",
        Category::Duplicate,
    ),
    (
        "lowercase x-forwarded-proto",
        "xfp-lowercase-name",
        Category::Duplicate,
    ),
    (
        "double-quoted name",
        "xfp-double-quoted-name",
        Category::Duplicate,
    ),
    (
        "single-quoted name",
        "xfp-single-quoted-name",
        Category::Duplicate,
    ),
    (
        "different value http",
        "xfp-different-value-http",
        Category::Duplicate,
    ),
    (
        "controller + 2 snippet lines",
        "xfp-three-lines",
        Category::Duplicate,
    ),
    ("empty \"\" value", "xfp-empty", Category::Ineffective),
    (
        "X-Forwarded-For $proxy_add_x_forwarded_for",
        "xff-proxy-add",
        Category::Duplicate,
    ),
    ("X-Real-IP $remote_addr", "x-real-ip", Category::Duplicate),
    ("Host $host", "host-host", Category::Duplicate),
    (
        "server-snippet (not inherited)",
        "server-snippet-xfp",
        Category::Ineffective,
    ),
    (
        "more_set_input_headers (and inside if)",
        "more-set-input-headers-xfp",
        Category::NoDuplicate,
    ),
    (
        "proxy_set_header inside if (rejected)",
        "proxy-set-header-in-if",
        Category::Invalid,
    ),
];

type Names = BTreeSet<String>;

// ------------------------------------------------------------------------------------------------
// The case table

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
enum Category {
    Duplicate,
    NoDuplicate,
    Ineffective,
    RuntimeEmpty,
    ControllerRuntimeEmpty,
    Suppressed,
    Invalid,
}

impl Category {
    const ALL: [Category; 7] = [
        Category::Duplicate,
        Category::NoDuplicate,
        Category::Ineffective,
        Category::RuntimeEmpty,
        Category::ControllerRuntimeEmpty,
        Category::Suppressed,
        Category::Invalid,
    ];

    fn name(self) -> &'static str {
        match self {
            Category::Duplicate => "duplicate",
            Category::NoDuplicate => "no-duplicate",
            Category::Ineffective => "ineffective",
            Category::RuntimeEmpty => "runtime-empty",
            Category::ControllerRuntimeEmpty => "controller-runtime-empty",
            Category::Suppressed => "suppressed",
            Category::Invalid => "invalid",
        }
    }

    fn parse(s: &str) -> Option<Category> {
        Category::ALL.into_iter().find(|c| c.name() == s)
    }

    /// The linter's duplicate verdict differs from nginx's by design (stated in the table).
    fn linter_listed(self) -> bool {
        matches!(
            self,
            Category::RuntimeEmpty | Category::ControllerRuntimeEmpty | Category::Suppressed
        )
    }
}

/// Where a case's text lands.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
enum Section {
    ConfigurationSnippet,
    LocationSnippet,
    ProxySetHeaders,
    ServerSnippet,
    ConfigMapServerSnippet,
    AuthSnippet,
}

impl Section {
    const ALL: [Section; 6] = [
        Section::ConfigurationSnippet,
        Section::LocationSnippet,
        Section::ProxySetHeaders,
        Section::ServerSnippet,
        Section::ConfigMapServerSnippet,
        Section::AuthSnippet,
    ];

    fn name(self) -> &'static str {
        match self {
            Section::ConfigurationSnippet => "configuration-snippet",
            Section::LocationSnippet => "location-snippet",
            Section::ProxySetHeaders => "proxy-set-headers",
            Section::ServerSnippet => "server-snippet",
            Section::ConfigMapServerSnippet => "configmap-server-snippet",
            Section::AuthSnippet => "auth-snippet",
        }
    }

    fn parse(s: &str) -> Option<Section> {
        Section::ALL.into_iter().find(|c| c.name() == s)
    }
}

#[derive(Clone, Debug, Default)]
struct Case {
    name: String,
    /// Line of `=== name` in cases.txt.
    line: usize,
    category: Option<Category>,
    nginx: Option<Names>,
    linter: Option<Names>,
    rules: Names,
    message: Option<String>,
    wire: Vec<(String, usize)>,
    client: Vec<String>,
    path: Option<String>,
    annotations: Vec<(String, String)>,
    configmap: Vec<(String, String)>,
    nginx_error: Option<String>,
    note: String,
    sections: BTreeMap<Section, String>,
}

impl Case {
    fn category(&self) -> Category {
        self.category.expect("validated")
    }

    /// Server-level cases get a server block (and host name) of their own.
    fn own_server(&self) -> bool {
        self.sections.contains_key(&Section::ServerSnippet)
            || self.sections.contains_key(&Section::ConfigMapServerSnippet)
    }

    fn host(&self) -> String {
        if self.own_server() {
            format!("{}.test", self.name)
        } else {
            "example.com".to_string()
        }
    }

    fn location_path(&self) -> String {
        format!("/c/{}/", self.name)
    }

    fn request_path(&self) -> String {
        match &self.path {
            Some(p) => p.replace("{case}", &self.name),
            None => self.location_path(),
        }
    }

    /// A section's text with `{case}` and `{echo}` filled in.
    fn text(&self, section: Section, echo: &str) -> Option<String> {
        self.sections
            .get(&section)
            .map(|t| t.replace("{case}", &self.name).replace("{echo}", echo))
    }

    /// The `proxy-set-headers` ConfigMap data, sorted by key as Go templates range over maps.
    fn proxy_set_headers(&self) -> BTreeMap<String, String> {
        self.sections
            .get(&Section::ProxySetHeaders)
            .map(|t| {
                t.lines()
                    .filter(|l| !l.trim().is_empty())
                    .map(|l| {
                        let (k, v) = l.split_once(':').unwrap_or((l, ""));
                        (k.trim().to_string(), v.trim().to_string())
                    })
                    .collect()
            })
            .unwrap_or_default()
    }

    /// Annotation suffixes and ConfigMap keys that switch rows of the fixture.
    fn switches(&self) -> BTreeMap<String, String> {
        let mut out = BTreeMap::new();
        for (k, v) in &self.annotations {
            if let Some(suffix) = k.strip_prefix(&format!("{PREFIX}/")) {
                out.insert(suffix.to_string(), v.clone());
            }
        }
        for (k, v) in &self.configmap {
            out.insert(k.clone(), v.clone());
        }
        out
    }
}

fn names(s: &str) -> Names {
    if s.trim() == "none" {
        return Names::new();
    }
    s.split(',')
        .map(|n| n.trim().to_ascii_lowercase())
        .filter(|n| !n.is_empty())
        .collect()
}

fn show(names: &Names) -> String {
    if names.is_empty() {
        "none".to_string()
    } else {
        names.iter().cloned().collect::<Vec<_>>().join(", ")
    }
}

fn key_value(s: &str, sep: char, line: usize) -> Result<(String, String), String> {
    s.split_once(sep)
        .map(|(k, v)| (k.trim().to_string(), v.trim().to_string()))
        .ok_or_else(|| format!("cases.txt:{line}: expected `key{sep}value`, got `{s}`"))
}

fn set_field(case: &mut Case, key: &str, value: &str, line: usize) -> Result<(), String> {
    let once = |slot: bool| {
        if slot {
            Err(format!("cases.txt:{line}: `{key}` given twice"))
        } else {
            Ok(())
        }
    };
    match key {
        "category" => {
            once(case.category.is_some())?;
            case.category = Some(
                Category::parse(value)
                    .ok_or_else(|| format!("cases.txt:{line}: unknown category `{value}`"))?,
            );
        }
        "nginx" => {
            once(case.nginx.is_some())?;
            case.nginx = Some(names(value));
        }
        "linter" => {
            once(case.linter.is_some())?;
            case.linter = Some(names(value));
        }
        "rules" => case.rules = names(value),
        "message" => case.message = Some(value.to_string()),
        "wire" => {
            for item in value.split(',') {
                let (h, n) = key_value(item, '=', line)?;
                let n = n
                    .parse()
                    .map_err(|_| format!("cases.txt:{line}: `{item}`: count is not a number"))?;
                case.wire.push((h.to_ascii_lowercase(), n));
            }
        }
        "client" => case.client.push(value.to_string()),
        "path" => case.path = Some(value.to_string()),
        "annotation" => case.annotations.push(key_value(value, '=', line)?),
        "configmap" => case.configmap.push(key_value(value, '=', line)?),
        "nginx-error" => case.nginx_error = Some(value.to_string()),
        "note" => case.note = value.to_string(),
        _ => return Err(format!("cases.txt:{line}: unknown field `{key}`")),
    }
    Ok(())
}

fn finish_section(case: Option<&mut Case>, section: Option<(Section, Vec<&str>)>) {
    if let (Some(case), Some((s, mut lines))) = (case, section) {
        while lines.last().is_some_and(|l| l.trim().is_empty()) {
            lines.pop();
        }
        let mut text = lines.join("\n");
        text.push('\n');
        case.sections.insert(s, text);
    }
}

fn parse_cases(text: &str) -> Result<Vec<Case>, String> {
    let mut cases: Vec<Case> = Vec::new();
    let mut current: Option<Case> = None;
    let mut section: Option<(Section, Vec<&str>)> = None;
    for (i, line) in text.lines().enumerate() {
        let n = i + 1;
        let ends_section =
            line.starts_with("===") || line.starts_with("---") || line.starts_with("##");
        if !ends_section && let Some((_, body)) = section.as_mut() {
            body.push(line);
            continue;
        }
        if ends_section {
            finish_section(current.as_mut(), section.take());
        }
        if let Some(name) = line.strip_prefix("=== ") {
            cases.extend(current.take());
            current = Some(Case {
                name: name.trim().to_string(),
                line: n,
                ..Case::default()
            });
        } else if let Some(name) = line.strip_prefix("--- ") {
            let case = current
                .as_ref()
                .ok_or_else(|| format!("cases.txt:{n}: section outside a case"))?;
            let s = Section::parse(name.trim())
                .ok_or_else(|| format!("cases.txt:{n}: unknown section `{}`", name.trim()))?;
            if case.sections.contains_key(&s) {
                return Err(format!("cases.txt:{n}: section `{}` given twice", s.name()));
            }
            section = Some((s, Vec::new()));
        } else {
            let t = line.trim();
            if t.is_empty() || t.starts_with('#') {
                continue;
            }
            let case = current
                .as_mut()
                .ok_or_else(|| format!("cases.txt:{n}: `{t}` outside a case"))?;
            let (key, value) = t
                .split_once(':')
                .ok_or_else(|| format!("cases.txt:{n}: expected `field: value`, got `{t}`"))?;
            set_field(case, key.trim(), value.trim(), n)?;
        }
    }
    finish_section(current.as_mut(), section.take());
    cases.extend(current);
    Ok(cases)
}

/// Problems with one case's fields (the table must say what it means).
fn validate(case: &Case) -> Vec<String> {
    let mut p = Vec::new();
    let n = &case.name;
    if n.is_empty()
        || n.len() > 60
        || !n.starts_with(|c: char| c.is_ascii_lowercase())
        || !n
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
    {
        p.push("name must be lowercase letters, digits and `-` (it names the Ingress)".into());
    }
    if case.sections.is_empty() {
        p.push("no section".into());
    }
    if case.sections.contains_key(&Section::AuthSnippet)
        && case.sections.keys().any(|s| {
            matches!(
                s,
                Section::ConfigurationSnippet | Section::LocationSnippet | Section::ProxySetHeaders
            )
        })
    {
        p.push("auth-snippet cases request the auth location only; no location sections".into());
    }
    for r in &case.rules {
        if !OTHER_RULES.contains(&r.as_str()) || r == "invalid-snippet" {
            p.push(format!(
                "`rules` may list ineffective-* rules only, not `{r}`"
            ));
        }
    }
    let Some(category) = case.category else {
        p.push("no category".into());
        return p;
    };
    if category == Category::Invalid {
        if case.nginx_error.is_none() {
            p.push("invalid cases need `nginx-error`".into());
        }
        if case.nginx.is_some() || case.linter.is_some() || !case.wire.is_empty() {
            p.push("invalid cases are not sent through nginx: no nginx/linter/wire".into());
        }
        return p;
    }
    let Some(nginx) = &case.nginx else {
        p.push("no `nginx` expectation".into());
        return p;
    };
    if case.linter.is_some() != category.linter_listed() {
        p.push(format!(
            "`linter` is given exactly for runtime-empty, controller-runtime-empty and suppressed, not {}",
            category.name()
        ));
    }
    let wants_dup = matches!(category, Category::Duplicate | Category::Suppressed);
    if nginx.is_empty() == wants_dup {
        p.push(format!(
            "category {} contradicts `nginx: {}`",
            category.name(),
            show(nginx)
        ));
    }
    match category {
        Category::NoDuplicate if !case.rules.is_empty() => {
            p.push("no-duplicate cases expect no other finding; use `ineffective`".into());
        }
        Category::Ineffective if case.rules.is_empty() => {
            p.push("ineffective cases name the rule that must fire".into());
        }
        Category::RuntimeEmpty if case.message.is_none() => {
            p.push("runtime-empty cases need `message`".into());
        }
        Category::RuntimeEmpty | Category::ControllerRuntimeEmpty
            if case.linter.as_ref().is_some_and(BTreeSet::is_empty) =>
        {
            p.push("the linter is expected to report these cases".into());
        }
        Category::Suppressed if case.linter.as_ref().is_some_and(|l| !l.is_empty()) => {
            p.push("suppressed cases expect `linter: none`".into());
        }
        _ => {}
    }
    p
}

fn data_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/ground_truth")
}

fn read_data(name: &str) -> String {
    let path = data_dir().join(name);
    fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

fn load_cases() -> Vec<Case> {
    let cases = parse_cases(&read_data("cases.txt")).unwrap_or_else(|e| panic!("{e}"));
    let mut problems = Vec::new();
    let mut seen = BTreeSet::new();
    for case in &cases {
        if !seen.insert(case.name.clone()) {
            problems.push(format!(
                "cases.txt:{}: duplicate case name {}",
                case.line, case.name
            ));
        }
        for p in validate(case) {
            problems.push(format!("cases.txt:{}: {}: {p}", case.line, case.name));
        }
    }
    assert!(
        problems.is_empty(),
        "bad case table:\n{}",
        problems.join("\n")
    );
    cases
}

// ------------------------------------------------------------------------------------------------
// nginx configuration

struct Fixtures {
    http: String,
    location: String,
    auth: String,
}

impl Fixtures {
    fn load() -> Self {
        Self {
            http: read_data("controller_http.conf"),
            location: read_data("controller_location.conf"),
            auth: read_data("auth_location.conf"),
        }
    }
}

/// Go's `strconv.Quote` for the plain strings of the case table (the template's `quote`).
fn go_quote(s: &str) -> String {
    let mut out = String::from("\"");
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

fn indent(text: &str, by: &str) -> String {
    let mut out = String::new();
    for line in text.lines() {
        if !line.trim().is_empty() {
            out.push_str(by);
            out.push_str(line);
        }
        out.push('\n');
    }
    out
}

/// Expand a location fixture for one case (markers described in controller_location.conf).
fn expand_fixture(template: &str, case: &Case, echo: &str) -> String {
    let switches = case.switches();
    let mut out = String::new();
    // The fixture's header comment (up to the first directive) describes the file, not nginx.
    let body = template
        .lines()
        .skip_while(|l| l.trim().is_empty() || l.trim_start().starts_with('#'));
    for line in body {
        if let Some(marker) = line.trim().strip_prefix("#@ ") {
            let section = Section::parse(marker.trim())
                .unwrap_or_else(|| panic!("fixture: unknown placement marker `{line}`"));
            if section == Section::ProxySetHeaders {
                for (k, v) in case.proxy_set_headers() {
                    let _ = writeln!(out, "proxy_set_header {k} {};", go_quote(&v));
                }
            } else if let Some(text) = case.text(section, echo) {
                out.push_str(&text);
            }
            continue;
        }
        // `code;  #@ if KEY`
        let (code, condition) = match line.split_once("#@ ") {
            Some((code, cond)) => (code.trim_end(), Some(cond.trim())),
            None => (line, None),
        };
        if let Some(cond) = condition {
            let (wanted, key) = if let Some(k) = cond.strip_prefix("if ") {
                (true, k.trim())
            } else if let Some(k) = cond.strip_prefix("unless ") {
                (false, k.trim())
            } else {
                panic!("fixture: unknown condition `{cond}`");
            };
            let on = switches
                .get(key)
                .is_some_and(|v| !v.is_empty() && v != "false");
            if on != wanted {
                continue;
            }
        }
        let mut code = code.replace("{echo}", echo);
        for (k, v) in &switches {
            code = code.replace(&format!("{{{k}}}"), v);
        }
        out.push_str(&code);
        out.push('\n');
    }
    out
}

fn render_location(f: &Fixtures, case: &Case, echo: &str) -> String {
    let body = if case.sections.contains_key(&Section::AuthSnippet) {
        expand_fixture(&f.auth, case, echo)
    } else {
        expand_fixture(&f.location, case, echo)
    };
    // Unindented: snippets are inserted verbatim, as the template does, so that a quoted value
    // spanning lines keeps its exact content.
    format!("location {} {{\n{body}}}\n", case.location_path())
}

fn render_own_server(f: &Fixtures, case: &Case, port: u16, echo: &str) -> String {
    let mut s = format!(
        "server {{\n    listen 127.0.0.1:{port};\n    server_name {};\n\n",
        case.host()
    );
    if let Some(t) = case.text(Section::ServerSnippet, echo) {
        s.push_str("# annotation server-snippet (before the locations)\n");
        s.push_str(&t);
    }
    s.push_str(&render_location(f, case, echo));
    if let Some(t) = case.text(Section::ConfigMapServerSnippet, echo) {
        s.push_str("# ConfigMap server-snippet (after the locations)\n");
        s.push_str(&t);
    }
    s.push_str("}\n");
    s
}

/// A whole nginx.conf serving `cases` on 127.0.0.1:`port`.
fn render_conf(
    f: &Fixtures,
    nginx: &NginxInfo,
    dir: &Path,
    cases: &[&Case],
    port: u16,
    echo: &str,
) -> String {
    let d = dir.display();
    let mut c = String::new();
    let _ = writeln!(c, "load_module {HEADERS_MORE};");
    c.push_str("daemon off;\nmaster_process off;\nworker_processes 1;\n");
    let _ = writeln!(c, "pid {d}/nginx.pid;\nerror_log {d}/error.log notice;");
    c.push_str("events {\n    worker_connections 256;\n}\n\nhttp {\n    access_log off;\n");
    let _ = writeln!(c, "    client_body_temp_path {d}/temp/body;");
    let _ = writeln!(c, "    proxy_temp_path {d}/temp/proxy;");
    for module in ["fastcgi", "uwsgi", "scgi"] {
        if nginx.has_module(module) {
            let _ = writeln!(c, "    {module}_temp_path {d}/temp/{module};");
        }
    }
    c.push('\n');
    c.push_str(&indent(&f.http, "    "));
    let _ = write!(
        c,
        "\n    server {{\n        listen 127.0.0.1:{port} default_server;\n        server_name example.com;\n\n"
    );
    for case in cases.iter().filter(|c| !c.own_server()) {
        c.push_str(&render_location(f, case, echo));
    }
    c.push_str("    }\n");
    for case in cases.iter().filter(|c| c.own_server()) {
        c.push('\n');
        c.push_str(&render_own_server(f, case, port, echo));
    }
    c.push_str("}\n");
    c
}

// ------------------------------------------------------------------------------------------------
// nginx processes

struct NginxInfo {
    bin: PathBuf,
    /// `nginx -V` output.
    build: String,
}

impl NginxInfo {
    fn has_module(&self, module: &str) -> bool {
        !self
            .build
            .contains(&format!("--without-http_{module}_module"))
    }
}

fn find_nginx() -> Option<PathBuf> {
    NGINX_CANDIDATES
        .iter()
        .map(PathBuf::from)
        .chain(
            std::env::var_os("PATH")
                .map(|p| {
                    std::env::split_paths(&p)
                        .map(|d| d.join("nginx"))
                        .collect::<Vec<_>>()
                })
                .unwrap_or_default(),
        )
        .find(|p| p.is_file())
}

/// nginx and headers-more, or `None` when they are missing and skipping was asked for.
fn require_nginx() -> Option<NginxInfo> {
    let bin = find_nginx();
    let module = Path::new(HEADERS_MORE).is_file();
    let mut missing = Vec::new();
    if bin.is_none() {
        missing.push("nginx (/usr/sbin/nginx)".to_string());
    }
    if !module {
        missing.push(format!("the headers-more module ({HEADERS_MORE})"));
    }
    if let (Some(bin), true) = (bin, module) {
        let out = Command::new(&bin)
            .arg("-V")
            .stdin(Stdio::null())
            .output()
            .unwrap_or_else(|e| panic!("{} -V: {e}", bin.display()));
        let mut build = String::from_utf8_lossy(&out.stdout).into_owned();
        build.push_str(&String::from_utf8_lossy(&out.stderr));
        return Some(NginxInfo { bin, build });
    }
    let missing = missing.join(" and ");
    if std::env::var(SKIP_ENV).is_ok_and(|v| v == "1") {
        println!("ground truth: skipped: {missing} not installed and {SKIP_ENV}=1");
        return None;
    }
    panic!(
        "the ground-truth test needs real nginx, but {missing} is not installed.\n\
         Install it with `{INSTALL}` (as root; scripts/test.sh does it when missing),\n\
         or set {SKIP_ENV}=1 to skip this test."
    );
}

/// Kills nginx when dropped, also when an assertion fails.
struct Nginx {
    child: Child,
}

impl Drop for Nginx {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Run `nginx <args>` to completion with a time limit; exit status and everything it printed.
fn run_nginx(info: &NginxInfo, args: &[&str], log: &Path) -> (Option<ExitStatus>, String) {
    let out = File::create(log).unwrap_or_else(|e| panic!("{}: {e}", log.display()));
    let err = out.try_clone().expect("clone log handle");
    let child = Command::new(&info.bin)
        .args(args)
        .stdin(Stdio::null())
        .stdout(out)
        .stderr(err)
        .spawn()
        .unwrap_or_else(|e| panic!("{}: {e}", info.bin.display()));
    let mut guard = Nginx { child };
    let deadline = Instant::now() + PROCESS_TIMEOUT;
    let status = loop {
        match guard.child.try_wait() {
            Ok(Some(status)) => break Some(status),
            Ok(None) if Instant::now() < deadline => thread::sleep(Duration::from_millis(10)),
            _ => break None,
        }
    };
    drop(guard);
    (status, fs::read_to_string(log).unwrap_or_default())
}

/// `nginx -t` on a config file: accepted, and what nginx printed.
fn nginx_test(info: &NginxInfo, dir: &Path, conf: &Path) -> (bool, String) {
    let (status, out) = run_nginx(
        info,
        &[
            "-t",
            "-p",
            &dir.display().to_string(),
            "-c",
            &conf.display().to_string(),
            "-e",
            "stderr",
        ],
        &dir.join("nginx-t.log"),
    );
    (status.is_some_and(|s| s.success()), out)
}

fn start_nginx(info: &NginxInfo, dir: &Path, conf: &Path, port: u16) -> Result<Nginx, String> {
    let log_path = dir.join("nginx.stderr");
    let log = File::create(&log_path).map_err(|e| format!("{}: {e}", log_path.display()))?;
    let err = log.try_clone().map_err(|e| e.to_string())?;
    let child = Command::new(&info.bin)
        .args(["-p", &dir.display().to_string()])
        .args(["-c", &conf.display().to_string()])
        .args(["-e", "stderr"])
        .stdin(Stdio::null())
        .stdout(log)
        .stderr(err)
        .spawn()
        .map_err(|e| format!("{}: {e}", info.bin.display()))?;
    let mut nginx = Nginx { child };
    let deadline = Instant::now() + PROCESS_TIMEOUT;
    let addr = SocketAddr::from(([127, 0, 0, 1], port));
    loop {
        if let Ok(Some(status)) = nginx.child.try_wait() {
            return Err(format!(
                "nginx exited ({status}) at start-up:\n{}{}",
                fs::read_to_string(&log_path).unwrap_or_default(),
                fs::read_to_string(dir.join("error.log")).unwrap_or_default()
            ));
        }
        if TcpStream::connect_timeout(&addr, Duration::from_millis(200)).is_ok() {
            return Ok(nginx);
        }
        if Instant::now() > deadline {
            return Err(format!(
                "nginx did not listen on {addr} within {PROCESS_TIMEOUT:?}:\n{}",
                fs::read_to_string(&log_path).unwrap_or_default()
            ));
        }
        thread::sleep(Duration::from_millis(25));
    }
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("bind 127.0.0.1:0")
        .port()
}

// ------------------------------------------------------------------------------------------------
// The echo upstream and the client

/// A std-only HTTP upstream on 127.0.0.1 that answers every request with its raw request head.
struct Echo {
    addr: SocketAddr,
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl Echo {
    fn start() -> Echo {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind the echo upstream");
        let addr = listener.local_addr().expect("echo address");
        let stop = Arc::new(AtomicBool::new(false));
        let flag = Arc::clone(&stop);
        let thread = thread::spawn(move || {
            for conn in listener.incoming() {
                if flag.load(Ordering::SeqCst) {
                    break;
                }
                if let Ok(stream) = conn {
                    let _ = serve_echo(stream);
                }
            }
        });
        Echo {
            addr,
            stop,
            thread: Some(thread),
        }
    }
}

impl Drop for Echo {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        let _ = TcpStream::connect_timeout(&self.addr, IO_TIMEOUT);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).position(|w| w == needle)
}

/// Read up to and including the blank line that ends an HTTP head.
fn read_head(s: &mut TcpStream, buf: &mut Vec<u8>) -> io::Result<usize> {
    let mut chunk = [0u8; 4096];
    loop {
        if let Some(i) = find(buf, b"\r\n\r\n") {
            return Ok(i + 4);
        }
        if buf.len() > 1 << 20 {
            return Err(io::Error::other("head larger than 1 MiB"));
        }
        let n = s.read(&mut chunk)?;
        if n == 0 {
            return Err(io::Error::new(
                io::ErrorKind::UnexpectedEof,
                format!(
                    "connection closed before the end of the head: {:?}",
                    String::from_utf8_lossy(buf)
                ),
            ));
        }
        buf.extend_from_slice(&chunk[..n]);
    }
}

fn serve_echo(mut s: TcpStream) -> io::Result<()> {
    s.set_read_timeout(Some(IO_TIMEOUT))?;
    s.set_write_timeout(Some(IO_TIMEOUT))?;
    let mut buf = Vec::new();
    let end = read_head(&mut s, &mut buf)?;
    let head = &buf[..end];
    let mut response = format!(
        "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
        head.len()
    )
    .into_bytes();
    response.extend_from_slice(head);
    s.write_all(&response)?;
    let _ = s.shutdown(Shutdown::Write);
    Ok(())
}

/// Send one request through nginx; the request head the upstream received.
fn request(port: u16, case: &Case) -> Result<String, String> {
    let addr = SocketAddr::from(([127, 0, 0, 1], port));
    let err = |e: io::Error| format!("{addr}: {e}");
    let mut s = TcpStream::connect_timeout(&addr, IO_TIMEOUT).map_err(err)?;
    s.set_read_timeout(Some(IO_TIMEOUT)).map_err(err)?;
    s.set_write_timeout(Some(IO_TIMEOUT)).map_err(err)?;
    let mut req = format!(
        "GET {} HTTP/1.1\r\nHost: {}\r\n",
        case.request_path(),
        case.host()
    );
    for h in &case.client {
        req.push_str(h);
        req.push_str("\r\n");
    }
    if !case
        .client
        .iter()
        .any(|h| h.to_ascii_lowercase().starts_with("connection:"))
    {
        req.push_str("Connection: close\r\n");
    }
    req.push_str("\r\n");
    s.write_all(req.as_bytes()).map_err(err)?;
    let mut buf = Vec::new();
    let head_end = read_head(&mut s, &mut buf).map_err(err)?;
    let head = String::from_utf8_lossy(&buf[..head_end]).into_owned();
    let length = head
        .lines()
        .filter_map(|l| l.split_once(':'))
        .find(|(n, _)| n.trim().eq_ignore_ascii_case("content-length"))
        .and_then(|(_, v)| v.trim().parse::<usize>().ok());
    let mut chunk = [0u8; 4096];
    while length.is_none_or(|len| buf.len() < head_end + len) {
        let n = s.read(&mut chunk).map_err(err)?;
        if n == 0 {
            break;
        }
        buf.extend_from_slice(&chunk[..n]);
    }
    let body_end = length.map_or(buf.len(), |len| (head_end + len).min(buf.len()));
    let body = String::from_utf8_lossy(&buf[head_end..body_end]).into_owned();
    if !head.starts_with("HTTP/1.1 200") {
        return Err(format!("nginx answered {head}{body}"));
    }
    Ok(body)
}

/// Header lines per lowercased name in a request head.
fn count_headers(head: &str) -> BTreeMap<String, usize> {
    let mut counts = BTreeMap::new();
    for line in head.split("\r\n").skip(1).take_while(|l| !l.is_empty()) {
        let name = line.split_once(':').map_or(line, |(n, _)| n);
        *counts.entry(name.trim().to_ascii_lowercase()).or_insert(0) += 1;
    }
    counts
}

// ------------------------------------------------------------------------------------------------
// The linter side

/// A YAML scalar for a value: a literal block for snippets, a JSON (= YAML double-quoted) string
/// for everything else.
fn yaml_scalar(value: &str, indent: usize) -> String {
    let block = value.ends_with('\n')
        && !value.starts_with([' ', '\t', '\n'])
        && !value.contains('\r')
        && value.lines().all(|l| l.is_empty() || !l.trim().is_empty());
    if !block {
        return serde_json::to_string(value).expect("a string serialises");
    }
    let pad = " ".repeat(indent);
    let mut out = String::from("|");
    for line in value.lines() {
        out.push('\n');
        if !line.is_empty() {
            out.push_str(&pad);
            out.push_str(line);
        }
    }
    out
}

/// The Kubernetes objects a user would apply for the case.
fn linter_input(case: &Case, echo: &str) -> String {
    let mut annotations: Vec<(String, String)> = Vec::new();
    if let Some(t) = case.text(Section::ConfigurationSnippet, echo) {
        annotations.push((format!("{PREFIX}/configuration-snippet"), t));
    }
    if let Some(t) = case.text(Section::ServerSnippet, echo) {
        annotations.push((format!("{PREFIX}/server-snippet"), t));
    }
    if let Some(t) = case.text(Section::AuthSnippet, echo) {
        annotations.push((format!("{PREFIX}/auth-url"), AUTH_URL.to_string()));
        annotations.push((format!("{PREFIX}/auth-snippet"), t));
    }
    let snippet_annotations = !annotations.is_empty();
    annotations.extend(case.annotations.iter().cloned());

    let mut y = String::new();
    let _ = writeln!(
        y,
        "apiVersion: networking.k8s.io/v1\nkind: Ingress\nmetadata:\n  name: {}\n  namespace: default",
        case.name
    );
    if !annotations.is_empty() {
        y.push_str("  annotations:\n");
        for (k, v) in &annotations {
            let _ = writeln!(y, "    {k}: {}", yaml_scalar(v, 6));
        }
    }
    let _ = writeln!(
        y,
        "spec:\n  ingressClassName: nginx\n  rules:\n    - host: {}\n      http:\n        paths:\n          - path: {}\n            pathType: Prefix\n            backend:\n              service:\n                name: echo\n                port:\n                  number: 80",
        case.host(),
        case.location_path()
    );

    let mut data: Vec<(String, String)> = Vec::new();
    if let Some(t) = case.text(Section::LocationSnippet, echo) {
        data.push(("location-snippet".into(), t));
    }
    if let Some(t) = case.text(Section::ConfigMapServerSnippet, echo) {
        data.push(("server-snippet".into(), t));
    }
    if case.sections.contains_key(&Section::ProxySetHeaders) {
        data.push((
            "proxy-set-headers".into(),
            "ingress-nginx/custom-headers".into(),
        ));
    }
    data.extend(case.configmap.iter().cloned());
    if !data.is_empty() {
        if snippet_annotations {
            // Without both keys ingress-nginx v1.12+ drops annotation snippets (and so does the linter).
            data.insert(0, ("annotations-risk-level".into(), "Critical".into()));
            data.insert(0, ("allow-snippet-annotations".into(), "true".into()));
        }
        y.push_str("---\napiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: ingress-nginx-controller\n  namespace: ingress-nginx\ndata:\n");
        for (k, v) in &data {
            let _ = writeln!(y, "  {k}: {}", yaml_scalar(v, 4));
        }
    }
    let headers = case.proxy_set_headers();
    if case.sections.contains_key(&Section::ProxySetHeaders) {
        y.push_str("---\napiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: custom-headers\n  namespace: ingress-nginx\ndata:\n");
        for (k, v) in &headers {
            let _ = writeln!(y, "  {k}: {}", yaml_scalar(v, 4));
        }
    }
    y
}

#[derive(Debug, Default)]
struct LinterVerdict {
    /// Lowercased headers of duplicate findings.
    duplicates: Names,
    /// Ids of the other known rules that fired.
    rules: Names,
    /// (header, message) of every duplicate finding.
    duplicate_messages: Vec<(String, String)>,
    /// Every finding, one line each.
    findings: Vec<String>,
}

fn lint(case: &Case, yaml: &str) -> LinterVerdict {
    let mut ws = Workspace::new();
    input::add_text(&mut ws, &format!("{}.yaml", case.name), yaml, Format::Yaml);
    let mut v = LinterVerdict::default();
    for d in check(&ws, &Settings::default()) {
        let header = d.header.clone().unwrap_or_default();
        v.findings.push(format!(
            "{} [{}]: {}",
            d.rule.id,
            if header.is_empty() { "-" } else { &header },
            d.message
        ));
        if DUPLICATE_RULES.contains(&d.rule.id) {
            let h = if header.is_empty() {
                "<no header>".to_string()
            } else {
                header.to_ascii_lowercase()
            };
            v.duplicates.insert(h.clone());
            v.duplicate_messages.push((h, d.message.clone()));
        } else if OTHER_RULES.contains(&d.rule.id) {
            v.rules.insert(d.rule.id.to_string());
        }
    }
    v
}

// ------------------------------------------------------------------------------------------------
// Comparing

/// What nginx did with one case.
#[derive(Debug, Default)]
struct NginxVerdict {
    /// The request head the upstream received (empty for invalid cases).
    head: String,
    counts: BTreeMap<String, usize>,
    duplicates: Names,
    /// `nginx -t` for invalid cases: accepted, and its output.
    test: Option<(bool, String)>,
    /// The request failed.
    error: Option<String>,
}

fn compare(case: &Case, nginx: &NginxVerdict, linter: &LinterVerdict) -> Vec<String> {
    let mut p = Vec::new();
    if case.category() == Category::Invalid {
        let (accepted, out) = nginx.test.clone().unwrap_or_default();
        let want = case.nginx_error.as_deref().unwrap_or_default();
        if accepted {
            p.push("nginx -t accepted the snippet, the table says nginx rejects it".into());
        } else if !out.contains(want) {
            p.push(format!("nginx -t failed without printing `{want}`"));
        }
        if !linter.rules.contains("invalid-snippet") {
            p.push("nginx -t rejects the snippet but the linter reports no invalid-snippet".into());
        }
        return p;
    }
    if let Some(e) = &nginx.error {
        p.push(format!("the request through nginx failed: {e}"));
        return p;
    }
    let expected_nginx = case.nginx.clone().unwrap_or_default();
    if nginx.duplicates != expected_nginx {
        p.push(format!(
            "nginx duplicated {} but the case table expects {} (harness or table wrong)",
            show(&nginx.duplicates),
            show(&expected_nginx)
        ));
    }
    for (h, n) in &case.wire {
        let got = nginx.counts.get(h).copied().unwrap_or(0);
        if got != *n {
            p.push(format!(
                "the upstream got {got} `{h}` line(s), the table says {n}"
            ));
        }
    }
    let expected_linter = if case.category().linter_listed() {
        case.linter.clone().unwrap_or_default()
    } else {
        nginx.duplicates.clone()
    };
    if linter.duplicates != expected_linter {
        p.push(format!(
            "the linter reports duplicates of {}, expected {} (nginx duplicated {}; category {})",
            show(&linter.duplicates),
            show(&expected_linter),
            show(&nginx.duplicates),
            case.category().name()
        ));
    }
    if linter.rules != case.rules {
        p.push(format!(
            "the linter's other findings are {} but the table expects {}",
            show(&linter.rules),
            show(&case.rules)
        ));
    }
    if let Some(m) = &case.message {
        for (h, msg) in &linter.duplicate_messages {
            if !msg.contains(m.as_str()) {
                p.push(format!("the finding for {h} does not say `{m}`: {msg}"));
            }
        }
    }
    p
}

fn describe(
    case: &Case,
    nginx: &NginxVerdict,
    linter: &LinterVerdict,
    problems: &[String],
    echo: &str,
) -> String {
    let mut s = format!(
        "--- {} ({}, cases.txt:{})\n",
        case.name,
        case.category().name(),
        case.line
    );
    for p in problems {
        let _ = writeln!(s, "  ! {p}");
    }
    if !case.note.is_empty() {
        let _ = writeln!(s, "  note: {}", case.note);
    }
    for section in case.sections.keys() {
        let _ = writeln!(s, "  {}:", section.name());
        s.push_str(&indent(
            &case.text(*section, echo).unwrap_or_default(),
            "    | ",
        ));
    }
    for h in &case.client {
        let _ = writeln!(s, "  client header: {h}");
    }
    if let Some((accepted, out)) = &nginx.test {
        let _ = writeln!(
            s,
            "  nginx -t: {}",
            if *accepted { "ok" } else { "rejected" }
        );
        s.push_str(&indent(out.trim_end(), "    | "));
    } else {
        let _ = writeln!(s, "  nginx duplicated: {}", show(&nginx.duplicates));
        let _ = writeln!(s, "  upstream received:");
        s.push_str(&indent(nginx.head.trim_end(), "    | "));
    }
    let _ = writeln!(s, "  linter said:");
    if linter.findings.is_empty() {
        s.push_str("    (nothing)\n");
    }
    for f in &linter.findings {
        let _ = writeln!(s, "    - {f}");
    }
    s
}

// ------------------------------------------------------------------------------------------------
// Tests

/// The table itself: well formed, every verdict-table row present, enough cases. Needs no nginx.
#[test]
fn case_table_covers_the_verdict_table() {
    let cases = load_cases();
    assert!(
        cases.len() >= 60,
        "the corpus needs at least 60 cases, has {}",
        cases.len()
    );
    for (row, name, category) in VERDICT_TABLE {
        let case = cases
            .iter()
            .find(|c| c.name == name)
            .unwrap_or_else(|| panic!("verdict-table row `{row}` has no case `{name}`"));
        assert_eq!(
            case.category(),
            category,
            "verdict-table row `{row}`: case {name} has the wrong category"
        );
    }
    assert!(
        cases
            .iter()
            .any(|c| c.name == "more-set-input-headers-in-if"),
        "verdict-table row `if (...) {{ more_set_input_headers ...; }}` has no case"
    );
    for category in Category::ALL {
        assert!(
            cases.iter().any(|c| c.category() == category),
            "no case of category {}",
            category.name()
        );
    }
    for section in Section::ALL {
        assert!(
            cases.iter().any(|c| c.sections.contains_key(&section)),
            "no case uses {}",
            section.name()
        );
    }
    // Every fixture expands without leftover placeholders.
    let f = Fixtures::load();
    for case in &cases {
        let loc = render_location(&f, case, "127.0.0.1:9");
        assert!(
            !loc.contains("#@") && !loc.contains("{upstream-vhost}") && !loc.contains("{echo}"),
            "{}: fixture not fully expanded:\n{loc}",
            case.name
        );
    }
}

#[test]
fn nginx_agrees_with_the_linter() {
    let Some(info) = require_nginx() else {
        return;
    };
    let cases = load_cases();
    let fixtures = Fixtures::load();
    let echo = Echo::start();
    let echo_addr = echo.addr.to_string();
    let tmp = tempfile::Builder::new()
        .prefix("snippet-guard-ground-truth")
        .tempdir()
        .expect("temporary directory");
    let root = tmp.path();

    let mut nginx_verdicts: BTreeMap<String, NginxVerdict> = BTreeMap::new();

    // 1. Snippets nginx rejects: each in a config of its own, `nginx -t` only.
    for case in cases.iter().filter(|c| c.category() == Category::Invalid) {
        let dir = root.join("invalid").join(&case.name);
        fs::create_dir_all(dir.join("temp")).expect("create case dir");
        let conf = dir.join("nginx.conf");
        let rendered = render_conf(&fixtures, &info, &dir, &[case], free_port(), &echo_addr);
        fs::write(&conf, rendered).expect("write nginx.conf");
        let test = nginx_test(&info, &dir, &conf);
        nginx_verdicts.insert(
            case.name.clone(),
            NginxVerdict {
                test: Some(test),
                ..NginxVerdict::default()
            },
        );
    }

    // 2. Everything else: one nginx for all cases.
    let valid: Vec<&Case> = cases
        .iter()
        .filter(|c| c.category() != Category::Invalid)
        .collect();
    let dir = root.join("all");
    fs::create_dir_all(dir.join("temp")).expect("create dir");
    let conf = dir.join("nginx.conf");
    let mut started = None;
    for attempt in 1..=3 {
        let port = free_port();
        fs::write(
            &conf,
            render_conf(&fixtures, &info, &dir, &valid, port, &echo_addr),
        )
        .expect("write nginx.conf");
        let (ok, out) = nginx_test(&info, &dir, &conf);
        if !ok {
            // Name the cases nginx refuses, one config each.
            let mut culprits = Vec::new();
            for case in &valid {
                let d = root.join("bisect").join(&case.name);
                fs::create_dir_all(d.join("temp")).expect("create dir");
                let c = d.join("nginx.conf");
                fs::write(
                    &c,
                    render_conf(&fixtures, &info, &d, &[case], port, &echo_addr),
                )
                .expect("write nginx.conf");
                let (ok, out) = nginx_test(&info, &d, &c);
                if !ok {
                    culprits.push(format!("{}:\n{}", case.name, indent(&out, "    ")));
                }
            }
            panic!(
                "nginx -t rejects the combined config ({}):\n{out}\ncases nginx rejects on their own (mark them `category: invalid`):\n{}",
                conf.display(),
                culprits.join("\n")
            );
        }
        match start_nginx(&info, &dir, &conf, port) {
            Ok(n) => {
                started = Some((n, port));
                break;
            }
            Err(e) if attempt < 3 && e.contains("Address already in use") => {}
            Err(e) => panic!("{e}"),
        }
    }
    let (nginx, port) = started.expect("nginx started");
    for case in &valid {
        let verdict = match request(port, case) {
            Ok(head) => {
                let counts = count_headers(&head);
                let duplicates = counts
                    .iter()
                    .filter(|(_, n)| **n > 1)
                    .map(|(h, _)| h.clone())
                    .collect();
                let line = head.lines().next().unwrap_or_default().to_string();
                let error = (!line.contains(&format!(" {} ", case.request_path())))
                    .then(|| format!("the upstream got `{line}`, not {}", case.request_path()));
                NginxVerdict {
                    head,
                    counts,
                    duplicates,
                    test: None,
                    error,
                }
            }
            Err(e) => NginxVerdict {
                error: Some(e),
                ..NginxVerdict::default()
            },
        };
        nginx_verdicts.insert(case.name.clone(), verdict);
    }
    drop(nginx);
    drop(echo);

    // 3. The linter on the same cases, and the comparison.
    let mut report = String::new();
    let mut disagreements = 0;
    let mut per_category: BTreeMap<Category, usize> = BTreeMap::new();
    for case in &cases {
        *per_category.entry(case.category()).or_default() += 1;
        let nginx = &nginx_verdicts[&case.name];
        let yaml = linter_input(case, &echo_addr);
        let linter = lint(case, &yaml);
        let problems = compare(case, nginx, &linter);
        println!(
            "{} {:<48} {:<24} nginx: {:<36} linter: {}",
            if problems.is_empty() { "ok  " } else { "FAIL" },
            case.name,
            case.category().name(),
            nginx.test.as_ref().map_or_else(
                || show(&nginx.duplicates),
                |(ok, _)| if *ok {
                    "accepted".into()
                } else {
                    "rejected".into()
                }
            ),
            if linter.rules.contains("invalid-snippet") {
                "invalid-snippet".to_string()
            } else {
                show(&linter.duplicates)
            }
        );
        if !problems.is_empty() {
            disagreements += 1;
            report.push_str(&describe(case, nginx, &linter, &problems, &echo_addr));
            let _ = writeln!(report, "  linter input:\n{}", indent(&yaml, "    | "));
        }
    }
    let categories: Vec<String> = per_category
        .iter()
        .map(|(c, n)| format!("{} {n}", c.name()))
        .collect();
    let summary = format!(
        "ground truth: {} cases, {disagreements} disagreements ({})",
        cases.len(),
        categories.join(", ")
    );
    println!("{summary}");
    assert!(disagreements == 0, "{summary}\n\n{report}");
}
