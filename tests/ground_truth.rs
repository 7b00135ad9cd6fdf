//! Ground truth against real nginx.
//!
//! Every case of `tests/ground_truth/cases.txt` is rendered into a location that copies the block
//! its controller renders, from fixtures written by hand from the template facts in the project
//! docs, not from the profile code:
//! - ingress-nginx v1.15 (`controller_location.conf`; `grpc_location.conf` or
//!   `fcgi_location.conf` for `backend: grpc|fcgi` cases; `auth_location.conf` for `auth-snippet`
//!   cases; http-level maps in `controller_http.conf`);
//! - F5 NGINX Ingress Controller v5.5 (`controller: nic` / `nic-vs` cases): an Ingress location
//!   (`nic_location.conf`, `nic_grpc_location.conf` for `nginx.org/grpc-services`) or a
//!   VirtualServer route (`nic_vs_location.conf`, `nic_vs_grpc_location.conf` for a `type: grpc`
//!   upstream), with NIC's http-level maps (`nic_http.conf`);
//! - NGINX Gateway Fabric v2.6 (`controller: ngf` cases): the location of an HTTPRoute rule
//!   (`ngf_location.conf`) or a GRPCRoute rule (`ngf_grpc_location.conf` for `backend: grpc`),
//!   the SnippetsFilter's include first, then the rule's RequestHeaderModifier and NGF's base
//!   headers, with NGF's http-level maps (`ngf_http.conf`).
//!
//! One nginx per controller (Debian `nginx-light` plus `libnginx-mod-http-headers-more-filter`)
//! serves its cases on 127.0.0.1 and passes each to an echo upstream run by this test: HTTP/1.1
//! (`proxy_pass`), FastCGI (`fastcgi_pass`: the request headers arrive as `HTTP_*` params) or h2c
//! (`grpc_pass`: `tests/ground_truth/h2c_echo.py`, Python `h2` from `.venv`). A request is sent
//! through each location and the header lines (params, HTTP/2 fields) the upstream receives are
//! counted. The linter gets the same snippet as the Kubernetes objects a user applies (for NIC:
//! its IngressClass, then the Ingress with `nginx.org/*` annotations or the VirtualServer, and
//! NIC's ConfigMap; for NGF: the SnippetsFilter and the route that references it, the findings
//! on both counted), and its verdict (which headers are duplicated) must match what nginx did,
//! case by case. Snippets nginx rejects are tested with `nginx -t` in a config of their own; the
//! linter must report `invalid-snippet` for them.
//!
//! Every case where the linter's duplicate finding has a fix is then run again as
//! `lint --fix --unsafe-fixes` leaves it (`<case>-fixed`, the fixed snippets read back from the
//! fixed manifest): nginx must send each header whose finding was fixed once at most.
//!
//! The test installs nothing. Without nginx it fails and says how to install it, unless
//! `SNIPPET_GUARD_SKIP_NGINX=1` is set; then it prints that it is skipped. Without
//! `.venv/bin/python` (scripts/test.sh creates it from tests/chart/requirements.txt) the gRPC cases
//! are skipped and the summary says so; a `.venv` without `h2` fails with the command to fix it.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write as _;
use std::fs::{self, File};
use std::io::{self, BufRead, BufReader, Read, Write};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, mpsc};
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

use snippet_guard::input::{self, Format};
use snippet_guard::model::{Object, Workspace};
use snippet_guard::{Settings, check};

const NGINX_CANDIDATES: [&str; 2] = ["/usr/sbin/nginx", "/usr/bin/nginx"];
const HEADERS_MORE: &str = "/usr/lib/nginx/modules/ngx_http_headers_more_filter_module.so";
const INSTALL: &str = "apt-get install nginx-light libnginx-mod-http-headers-more-filter";
const SKIP_ENV: &str = "SNIPPET_GUARD_SKIP_NGINX";
/// Comma-separated case names whose details (what the upstream received, what the linter said)
/// are printed even when nginx and the linter agree: for writing a case's note.
const SHOW_ENV: &str = "SNIPPET_GUARD_GROUND_TRUTH_SHOW";
/// Every socket read, write and connect.
const IO_TIMEOUT: Duration = Duration::from_secs(5);
/// `nginx -t` and nginx start-up.
const PROCESS_TIMEOUT: Duration = Duration::from_secs(20);
const PREFIX: &str = "nginx.ingress.kubernetes.io";
/// F5 NGINX Ingress Controller's annotation prefix.
const NIC_PREFIX: &str = "nginx.org";
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
    /// NIC: annotation `nginx.org/location-snippets`.
    NicLocationSnippets,
    /// NIC: annotation `nginx.org/proxy-set-headers`, its value as written (a comma list).
    NicProxySetHeaders,
    /// NIC: its ConfigMap's `location-snippets` (every location, unless the annotation or the
    /// route's field replaces it).
    NicConfigMapLocationSnippets,
    /// NIC: the VirtualServer route's `location-snippets`.
    VsLocationSnippets,
    /// NIC: the VirtualServer route's `action.proxy.requestHeaders.set`, `Name: value` lines.
    VsRequestHeadersSet,
    /// NGF: the `http.server.location` snippet of a SnippetsFilter the route references.
    NgfLocationSnippet,
    /// NGF: the route rule's RequestHeaderModifier, `set Name: value`, `add Name: value` and
    /// `remove Name` lines.
    NgfRequestHeaderModifier,
}

impl Section {
    const ALL: [Section; 13] = [
        Section::ConfigurationSnippet,
        Section::LocationSnippet,
        Section::ProxySetHeaders,
        Section::ServerSnippet,
        Section::ConfigMapServerSnippet,
        Section::AuthSnippet,
        Section::NicLocationSnippets,
        Section::NicProxySetHeaders,
        Section::NicConfigMapLocationSnippets,
        Section::VsLocationSnippets,
        Section::VsRequestHeadersSet,
        Section::NgfLocationSnippet,
        Section::NgfRequestHeaderModifier,
    ];

    fn name(self) -> &'static str {
        match self {
            Section::ConfigurationSnippet => "configuration-snippet",
            Section::LocationSnippet => "location-snippet",
            Section::ProxySetHeaders => "proxy-set-headers",
            Section::ServerSnippet => "server-snippet",
            Section::ConfigMapServerSnippet => "configmap-server-snippet",
            Section::AuthSnippet => "auth-snippet",
            Section::NicLocationSnippets => "nic-location-snippets",
            Section::NicProxySetHeaders => "nic-proxy-set-headers",
            Section::NicConfigMapLocationSnippets => "nic-configmap-location-snippets",
            Section::VsLocationSnippets => "vs-location-snippets",
            Section::VsRequestHeadersSet => "vs-request-headers-set",
            Section::NgfLocationSnippet => "ngf-location-snippet",
            Section::NgfRequestHeaderModifier => "ngf-request-header-modifier",
        }
    }

    /// Whether a case of `controller` may carry the section.
    fn fits(self, controller: Controller) -> bool {
        match self {
            Section::NicLocationSnippets | Section::NicProxySetHeaders => {
                controller == Controller::Nic
            }
            Section::NicConfigMapLocationSnippets => controller.is_nic(),
            Section::VsLocationSnippets | Section::VsRequestHeadersSet => {
                controller == Controller::NicVs
            }
            Section::NgfLocationSnippet | Section::NgfRequestHeaderModifier => {
                controller == Controller::Ngf
            }
            _ => controller == Controller::IngressNginx,
        }
    }

    fn parse(s: &str) -> Option<Section> {
        Section::ALL.into_iter().find(|c| c.name() == s)
    }
}

/// Which controller renders the case's location, and from which objects.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord)]
enum Controller {
    /// ingress-nginx v1.15: an Ingress (class `nginx`) and the controller ConfigMap.
    #[default]
    IngressNginx,
    /// F5 NGINX Ingress Controller v5.5: an Ingress whose IngressClass names
    /// `nginx.org/ingress-controller`, with `nginx.org/*` annotations, and NIC's ConfigMap.
    Nic,
    /// F5 NGINX Ingress Controller v5.5: a VirtualServer route.
    NicVs,
    /// NGINX Gateway Fabric v2.6: an HTTPRoute (or GRPCRoute) rule referencing a SnippetsFilter.
    Ngf,
}

impl Controller {
    const ALL: [Controller; 4] = [
        Controller::IngressNginx,
        Controller::Nic,
        Controller::NicVs,
        Controller::Ngf,
    ];

    fn name(self) -> &'static str {
        match self {
            Controller::IngressNginx => "ingress-nginx",
            Controller::Nic => "nic",
            Controller::NicVs => "nic-vs",
            Controller::Ngf => "ngf",
        }
    }

    fn parse(s: &str) -> Option<Controller> {
        Controller::ALL.into_iter().find(|c| c.name() == s)
    }

    /// NIC (Ingress or VirtualServer): its own http block, so its own nginx.
    fn is_nic(self) -> bool {
        matches!(self, Controller::Nic | Controller::NicVs)
    }

    /// The controllers whose cases share one http block, so one nginx.
    fn family(self) -> &'static str {
        match self {
            Controller::IngressNginx => "ingress-nginx",
            Controller::Nic | Controller::NicVs => "nic",
            Controller::Ngf => "ngf",
        }
    }

    /// The prefix of the annotations that switch rows of its fixture.
    fn annotation_prefix(self) -> &'static str {
        if self.is_nic() { NIC_PREFIX } else { PREFIX }
    }
}

/// What the location passes the request to, as `nginx.ingress.kubernetes.io/backend-protocol` picks it.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord)]
enum Backend {
    /// `proxy_pass http://` (no annotation, or `HTTP`).
    #[default]
    Http,
    /// `grpc_pass grpc://` (h2c), headers set with `grpc_set_header` (`GRPC`).
    Grpc,
    /// `fastcgi_pass`, the request headers sent as `HTTP_*` params (`FCGI`).
    Fcgi,
}

impl Backend {
    const ALL: [Backend; 3] = [Backend::Http, Backend::Grpc, Backend::Fcgi];

    fn name(self) -> &'static str {
        match self {
            Backend::Http => "http",
            Backend::Grpc => "grpc",
            Backend::Fcgi => "fcgi",
        }
    }

    fn parse(s: &str) -> Option<Backend> {
        Backend::ALL.into_iter().find(|b| b.name() == s)
    }

    /// The `backend-protocol` annotation value that selects it (none for the default).
    fn protocol(self) -> Option<&'static str> {
        match self {
            Backend::Http => None,
            Backend::Grpc => Some("GRPC"),
            Backend::Fcgi => Some("FCGI"),
        }
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
    /// Duplicates the linter reports on the controller ConfigMap, compared apart from nginx's
    /// verdict: they are about the location every object without its own snippets gets, which
    /// this case's object replaces.
    configmap_linter: Option<Names>,
    rules: Names,
    message: Option<String>,
    wire: Vec<(String, usize)>,
    client: Vec<String>,
    path: Option<String>,
    annotations: Vec<(String, String)>,
    configmap: Vec<(String, String)>,
    nginx_error: Option<String>,
    backend: Option<Backend>,
    controller: Option<Controller>,
    /// A VirtualServer's `spec.tls.redirect.basedOn`.
    vs_redirect_based_on: Option<String>,
    note: String,
    sections: BTreeMap<Section, String>,
}

impl Case {
    fn category(&self) -> Category {
        self.category.expect("validated")
    }

    fn backend(&self) -> Backend {
        self.backend.unwrap_or_default()
    }

    fn controller(&self) -> Controller {
        self.controller.unwrap_or_default()
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

    /// The `nginx.org/proxy-set-headers` entries, in annotation order.
    fn nic_proxy_set_headers(&self) -> Vec<(String, String)> {
        self.sections
            .get(&Section::NicProxySetHeaders)
            .map(|t| nic_proxy_set_headers(&t.replace('\n', " ")))
            .unwrap_or_default()
    }

    /// The VirtualServer route's `requestHeaders.set` entries, in order.
    fn vs_request_headers(&self) -> Vec<(String, String)> {
        self.sections
            .get(&Section::VsRequestHeadersSet)
            .map(|t| header_lines(t))
            .unwrap_or_default()
    }

    /// Whether `requestHeaders.set` names `header` (NIC compares case-insensitively).
    fn vs_sets(&self, header: &str) -> bool {
        self.vs_request_headers()
            .iter()
            .any(|(k, _)| k.eq_ignore_ascii_case(header))
    }

    /// The route's RequestHeaderModifier entries, in the order written (empty when the section
    /// does not parse: `validate` reports it).
    fn ngf_modifier(&self) -> Vec<Modifier> {
        self.sections
            .get(&Section::NgfRequestHeaderModifier)
            .and_then(|t| parse_modifier(t).ok())
            .unwrap_or_default()
    }

    /// The modifier's header lines as NGF writes them: every `add` (its value after the
    /// `${<name>_header_var}` that carries the client's value), then every `set`, then every
    /// `remove` as `""`.
    fn ngf_modifier_lines(&self) -> Vec<(String, String)> {
        let modifier = self.ngf_modifier();
        let mut out = Vec::new();
        for op in [ModifierOp::Add, ModifierOp::Set, ModifierOp::Remove] {
            for m in modifier.iter().filter(|m| m.op == op) {
                let value = match op {
                    ModifierOp::Add => format!("${{{}}}{}", add_header_var(&m.name), m.value),
                    ModifierOp::Set => m.value.clone(),
                    ModifierOp::Remove => String::new(),
                };
                out.push((m.name.clone(), value));
            }
        }
        out
    }

    /// Whether a modifier header is named exactly `header` (NGF compares case-sensitively).
    fn ngf_modifies(&self, header: &str) -> bool {
        self.ngf_modifier().iter().any(|m| m.name == header)
    }

    /// Annotation suffixes and ConfigMap keys that switch rows of the fixture.
    fn switches(&self) -> BTreeMap<String, String> {
        let mut out = BTreeMap::new();
        let prefix = self.controller().annotation_prefix();
        for (k, v) in &self.annotations {
            if let Some(suffix) = k.strip_prefix(&format!("{prefix}/")) {
                out.insert(suffix.to_string(), v.clone());
            }
        }
        if let Some(protocol) = self.backend().protocol()
            && self.controller() == Controller::IngressNginx
        {
            out.insert("backend-protocol".to_string(), protocol.to_string());
        }
        if let Some(v) = &self.vs_redirect_based_on {
            out.insert("vs-redirect-based-on".to_string(), v.clone());
        }
        // An annotation wins over the ConfigMap key of the same name, as in both controllers.
        for (k, v) in &self.configmap {
            out.entry(k.clone()).or_insert_with(|| v.clone());
        }
        out
    }
}

/// What a RequestHeaderModifier line does.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum ModifierOp {
    Add,
    Set,
    Remove,
}

/// One RequestHeaderModifier entry.
#[derive(Clone, Debug, PartialEq, Eq)]
struct Modifier {
    op: ModifierOp,
    name: String,
    /// Empty for `remove`.
    value: String,
}

/// `set Name: value`, `add Name: value` and `remove Name` lines.
fn parse_modifier(text: &str) -> Result<Vec<Modifier>, String> {
    let mut out = Vec::new();
    for line in text.lines().map(str::trim).filter(|l| !l.is_empty()) {
        let (op, rest) = line.split_once(' ').unwrap_or((line, ""));
        let rest = rest.trim();
        let op = match op {
            "add" => ModifierOp::Add,
            "set" => ModifierOp::Set,
            "remove" => ModifierOp::Remove,
            _ => {
                return Err(format!(
                    "`{line}`: a modifier line is `set Name: value`, `add Name: value` or `remove Name`"
                ));
            }
        };
        let (name, value) = if op == ModifierOp::Remove {
            (rest.to_string(), String::new())
        } else {
            let (k, v) = rest
                .split_once(':')
                .ok_or_else(|| format!("`{line}`: expected `Name: value`"))?;
            (k.trim().to_string(), v.trim().to_string())
        };
        if name.is_empty() || name.contains([' ', ':']) {
            return Err(format!("`{line}`: no header name"));
        }
        out.push(Modifier { op, name, value });
    }
    Ok(out)
}

/// The variable NGF's map for a RequestHeaderModifier `add` sets (the client's value and a
/// comma, or nothing): the name lowercased, `-` as `_`, then `_header_var`.
fn add_header_var(name: &str) -> String {
    format!("{}_header_var", name.to_ascii_lowercase().replace('-', "_"))
}

/// NGF's http-level map for an `add` of `name`.
fn add_header_map(name: &str) -> String {
    let source = format!("${{http_{}}}", name.replace('-', "_"));
    format!(
        "map {source} ${} {{\n    default '';\n    ~.* \"{source},\";\n}}\n",
        add_header_var(name)
    )
}

/// NIC's `nginx.org/proxy-set-headers` value: comma-separated `Name: value` items, a bare
/// name meaning `$http_<name>` (lowercased, `-` as `_`), in the order written.
fn nic_proxy_set_headers(value: &str) -> Vec<(String, String)> {
    value
        .split(',')
        .map(str::trim)
        .filter(|item| !item.is_empty())
        .map(|item| match item.split_once(':') {
            Some((k, v)) => (k.trim().to_string(), v.trim().to_string()),
            None => (
                item.to_string(),
                format!("$http_{}", item.to_ascii_lowercase().replace('-', "_")),
            ),
        })
        .collect()
}

/// `Name: value` lines, in order (a VirtualServer's `requestHeaders.set`).
fn header_lines(text: &str) -> Vec<(String, String)> {
    text.lines()
        .filter(|l| !l.trim().is_empty())
        .map(|l| {
            let (k, v) = l.split_once(':').unwrap_or((l, ""));
            (k.trim().to_string(), v.trim().to_string())
        })
        .collect()
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
        "configmap-linter" => {
            once(case.configmap_linter.is_some())?;
            case.configmap_linter = Some(names(value));
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
        "backend" => {
            once(case.backend.is_some())?;
            case.backend = Some(
                Backend::parse(value)
                    .ok_or_else(|| format!("cases.txt:{line}: unknown backend `{value}`"))?,
            );
        }
        "vs-redirect-based-on" => {
            once(case.vs_redirect_based_on.is_some())?;
            case.vs_redirect_based_on = Some(value.to_string());
        }
        "controller" => {
            once(case.controller.is_some())?;
            case.controller = Some(
                Controller::parse(value)
                    .ok_or_else(|| format!("cases.txt:{line}: unknown controller `{value}`"))?,
            );
        }
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
    for s in case.sections.keys() {
        if !s.fits(case.controller()) {
            p.push(format!(
                "section {} does not fit `controller: {}`",
                s.name(),
                case.controller().name()
            ));
        }
    }
    if case.controller().is_nic() {
        if case.backend() == Backend::Fcgi {
            p.push("NIC cases take `backend: http` or `grpc` only".into());
        }
        if case
            .annotations
            .iter()
            .any(|(k, _)| k == &format!("{NIC_PREFIX}/grpc-services"))
        {
            p.push("set a NIC gRPC backend with `backend: grpc`, not the grpc-services annotation (the field picks the fixture and the upstream too)".into());
        }
        if case.controller() == Controller::NicVs && !case.annotations.is_empty() {
            p.push("a VirtualServer has no annotations that switch its location".into());
        }
    }
    if case.controller() == Controller::Ngf {
        if case.backend() == Backend::Fcgi {
            p.push(
                "NGF cases take `backend: http` (an HTTPRoute) or `grpc` (a GRPCRoute) only".into(),
            );
        }
        if !case.annotations.is_empty() || !case.configmap.is_empty() {
            p.push(
                "NGF routes have no annotations or ConfigMap keys that switch their location"
                    .into(),
            );
        }
        if let Some(Err(e)) = case
            .sections
            .get(&Section::NgfRequestHeaderModifier)
            .map(|t| parse_modifier(t))
        {
            p.push(e);
        }
    }
    if let Some(v) = &case.vs_redirect_based_on
        && (case.controller() != Controller::NicVs || v != "x-forwarded-proto")
    {
        p.push("`vs-redirect-based-on` takes `x-forwarded-proto` (the default `scheme` is every other case), on nic-vs cases only".into());
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
    if case.backend() != Backend::Http && case.sections.contains_key(&Section::AuthSnippet) {
        p.push(
            "the external-auth location always proxies over HTTP: no `backend` with auth-snippet"
                .into(),
        );
    }
    if case
        .annotations
        .iter()
        .any(|(k, _)| k == &format!("{PREFIX}/backend-protocol"))
    {
        p.push("set the backend with `backend: grpc|fcgi`, not the backend-protocol annotation (the field picks the fixture and the upstream too)".into());
    }
    if case.configmap_linter.is_some()
        && !(case
            .sections
            .contains_key(&Section::NicConfigMapLocationSnippets)
            && (case.sections.contains_key(&Section::NicLocationSnippets)
                || case.sections.contains_key(&Section::VsLocationSnippets)))
    {
        p.push("`configmap-linter` is for NIC cases whose own location-snippets replace the ConfigMap's".into());
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
    grpc: String,
    fcgi: String,
    auth: String,
    nic_http: String,
    nic_location: String,
    nic_grpc: String,
    vs_location: String,
    vs_grpc: String,
    ngf_http: String,
    ngf_location: String,
    ngf_grpc: String,
}

impl Fixtures {
    fn load() -> Self {
        Self {
            http: read_data("controller_http.conf"),
            location: read_data("controller_location.conf"),
            grpc: read_data("grpc_location.conf"),
            fcgi: read_data("fcgi_location.conf"),
            auth: read_data("auth_location.conf"),
            nic_http: read_data("nic_http.conf"),
            nic_location: read_data("nic_location.conf"),
            nic_grpc: read_data("nic_grpc_location.conf"),
            vs_location: read_data("nic_vs_location.conf"),
            vs_grpc: read_data("nic_vs_grpc_location.conf"),
            ngf_http: read_data("ngf_http.conf"),
            ngf_location: read_data("ngf_location.conf"),
            ngf_grpc: read_data("ngf_grpc_location.conf"),
        }
    }

    /// The http-level definitions the controller's locations rely on.
    fn http(&self, controller: Controller) -> &str {
        match controller {
            Controller::IngressNginx => &self.http,
            Controller::Nic | Controller::NicVs => &self.nic_http,
            Controller::Ngf => &self.ngf_http,
        }
    }

    /// The location fixture for a case.
    fn location(&self, case: &Case) -> &str {
        if case.sections.contains_key(&Section::AuthSnippet) {
            return &self.auth;
        }
        match (case.controller(), case.backend()) {
            (Controller::IngressNginx, Backend::Http) => &self.location,
            (Controller::IngressNginx, Backend::Grpc) => &self.grpc,
            (Controller::IngressNginx, Backend::Fcgi) => &self.fcgi,
            (Controller::Nic, Backend::Grpc) => &self.nic_grpc,
            (Controller::Nic, _) => &self.nic_location,
            (Controller::NicVs, Backend::Grpc) => &self.vs_grpc,
            (Controller::NicVs, _) => &self.vs_location,
            (Controller::Ngf, Backend::Grpc) => &self.ngf_grpc,
            (Controller::Ngf, _) => &self.ngf_location,
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

/// One fixture condition: `if KEY` / `unless KEY` (an annotation or ConfigMap key set to
/// something other than empty, `false` or `0`), `unless-set NAME` (a VirtualServer's
/// `requestHeaders.set` names NAME, case-insensitively), `unless-modified NAME` (an NGF route's
/// RequestHeaderModifier names exactly NAME).
fn condition_holds(cond: &str, case: &Case, switches: &BTreeMap<String, String>) -> bool {
    let on = |key: &str| {
        switches
            .get(key.trim())
            .is_some_and(|v| !v.is_empty() && v != "false" && v != "0")
    };
    if let Some(name) = cond.strip_prefix("unless-set ") {
        !case.vs_sets(name.trim())
    } else if let Some(name) = cond.strip_prefix("unless-modified ") {
        !case.ngf_modifies(name.trim())
    } else if let Some(k) = cond.strip_prefix("if ") {
        on(k)
    } else if let Some(k) = cond.strip_prefix("unless ") {
        !on(k)
    } else {
        panic!("fixture: unknown condition `{cond}`");
    }
}

/// Expand a location fixture for one case (markers described in controller_location.conf).
fn expand_fixture(template: &str, case: &Case, echo: &str) -> String {
    let switches = case.switches();
    let mut out = String::new();
    // The fixture's header comment (up to the first directive) describes the file, not nginx.
    let body = template.lines().skip_while(|l| {
        let t = l.trim_start();
        t.is_empty() || (t.starts_with('#') && !t.starts_with("#@ "))
    });
    for line in body {
        if let Some(marker) = line.trim().strip_prefix("#@ ") {
            // `#@ proxy-set-headers grpc_set_header`: the directive the ConfigMap lines use.
            let (marker, directive) = marker
                .trim()
                .split_once(' ')
                .map_or((marker.trim(), "proxy_set_header"), |(m, d)| (m, d.trim()));
            let section = Section::parse(marker)
                .unwrap_or_else(|| panic!("fixture: unknown placement marker `{line}`"));
            match section {
                Section::ProxySetHeaders => {
                    for (k, v) in case.proxy_set_headers() {
                        let _ = writeln!(out, "{directive} {k} {};", go_quote(&v));
                    }
                }
                // NIC writes both lists as `<directive> {{Name}} "{{Value}}";`.
                Section::NicProxySetHeaders => {
                    for (k, v) in case.nic_proxy_set_headers() {
                        let _ = writeln!(out, "{directive} {k} \"{v}\";");
                    }
                }
                Section::VsRequestHeadersSet => {
                    for (k, v) in case.vs_request_headers() {
                        let _ = writeln!(out, "{directive} {k} \"{v}\";");
                    }
                }
                // NGF writes `{{ $proxyOrGRPC }}_set_header {{ $h.Name }} "{{ $h.Value }}";`.
                Section::NgfRequestHeaderModifier => {
                    for (k, v) in case.ngf_modifier_lines() {
                        let _ = writeln!(out, "{directive} {k} \"{v}\";");
                    }
                }
                // The annotation (Ingress) or the route's field (VirtualServer) replaces the
                // ConfigMap's `location-snippets`.
                Section::NicLocationSnippets | Section::VsLocationSnippets => {
                    if let Some(text) = case
                        .text(section, echo)
                        .or_else(|| case.text(Section::NicConfigMapLocationSnippets, echo))
                    {
                        out.push_str(&text);
                    }
                }
                _ => {
                    if let Some(text) = case.text(section, echo) {
                        out.push_str(&text);
                    }
                }
            }
            continue;
        }
        // `code;  #@ if KEY`, `#@ unless KEY`, `#@ unless-set NAME`, several joined by `, `.
        let (code, condition) = match line.split_once("#@ ") {
            Some((code, cond)) => (code.trim_end(), Some(cond.trim())),
            None => (line, None),
        };
        if let Some(conditions) = condition
            && !conditions
                .split(',')
                .all(|c| condition_holds(c.trim(), case, &switches))
        {
            continue;
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
    let body = expand_fixture(f.location(case), case, echo);
    // Unindented: snippets are inserted verbatim, as the template does, so that a quoted value
    // spanning lines keeps its exact content.
    format!("location {} {{\n{body}}}\n", case.location_path())
}

fn render_own_server(f: &Fixtures, case: &Case, port: u16, upstreams: &Upstreams) -> String {
    let echo = upstreams.for_case(case);
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

/// A whole nginx.conf serving `cases` (all of one controller family: ingress-nginx, NIC or NGF)
/// on 127.0.0.1:`port`.
fn render_conf(
    f: &Fixtures,
    nginx: &NginxInfo,
    dir: &Path,
    cases: &[&Case],
    port: u16,
    upstreams: &Upstreams,
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
    let controller = cases.first().map(|c| c.controller()).unwrap_or_default();
    assert!(
        cases
            .iter()
            .all(|c| c.controller().family() == controller.family()),
        "one nginx.conf serves one controller's http block"
    );
    c.push_str(&indent(f.http(controller), "    "));
    // NGF: one map per header name a RequestHeaderModifier adds.
    let added: BTreeSet<String> = cases
        .iter()
        .flat_map(|c| c.ngf_modifier())
        .filter(|m| m.op == ModifierOp::Add)
        .map(|m| m.name)
        .collect();
    for name in added {
        c.push('\n');
        c.push_str(&indent(&add_header_map(&name), "    "));
    }
    let _ = write!(
        c,
        "\n    server {{\n        listen 127.0.0.1:{port} default_server;\n        server_name example.com;\n\n"
    );
    for case in cases.iter().filter(|c| !c.own_server()) {
        c.push_str(&render_location(f, case, upstreams.for_case(case)));
    }
    c.push_str("    }\n");
    for case in cases.iter().filter(|c| c.own_server()) {
        c.push('\n');
        c.push_str(&render_own_server(f, case, port, upstreams));
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
// The echo upstreams and the client

/// Where each backend's echo upstream listens.
struct Upstreams {
    http: String,
    /// `None` without `.venv/bin/python`: the gRPC cases are left out.
    grpc: Option<String>,
    fcgi: String,
}

impl Upstreams {
    fn for_case(&self, case: &Case) -> &str {
        match case.backend() {
            Backend::Http => &self.http,
            Backend::Grpc => self
                .grpc
                .as_deref()
                .expect("gRPC cases are left out without the h2c echo"),
            Backend::Fcgi => &self.fcgi,
        }
    }
}

/// A std-only upstream on 127.0.0.1 that answers every request with what it received, one
/// connection at a time: `serve_echo` for HTTP/1.1, `serve_fcgi` for FastCGI.
struct Echo {
    addr: SocketAddr,
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl Echo {
    fn start(serve: fn(TcpStream) -> io::Result<()>) -> Echo {
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
                    let _ = serve(stream);
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

const FCGI_VERSION: u8 = 1;
const FCGI_BEGIN_REQUEST: u8 = 1;
const FCGI_END_REQUEST: u8 = 3;
const FCGI_PARAMS: u8 = 4;
const FCGI_STDIN: u8 = 5;
const FCGI_STDOUT: u8 = 6;

/// One FastCGI record: type, request id, content (padding dropped).
fn read_record(s: &mut TcpStream) -> io::Result<(u8, u16, Vec<u8>)> {
    let mut h = [0u8; 8];
    s.read_exact(&mut h)?;
    if h[0] != FCGI_VERSION {
        return Err(io::Error::other(format!("fastcgi version {}", h[0])));
    }
    let id = u16::from_be_bytes([h[2], h[3]]);
    let len = usize::from(u16::from_be_bytes([h[4], h[5]]));
    let mut content = vec![0u8; len + usize::from(h[6])];
    s.read_exact(&mut content)?;
    content.truncate(len);
    Ok((h[1], id, content))
}

fn write_record(out: &mut Vec<u8>, kind: u8, id: u16, content: &[u8]) {
    let len = u16::try_from(content.len()).expect("records are written in chunks under 64 KiB");
    out.extend_from_slice(&[FCGI_VERSION, kind]);
    out.extend_from_slice(&id.to_be_bytes());
    out.extend_from_slice(&len.to_be_bytes());
    out.extend_from_slice(&[0, 0]);
    out.extend_from_slice(content);
}

/// The name-value pairs of a FastCGI params stream, in order (a length is one byte, or four
/// bytes with the top bit set).
fn fcgi_pairs(buf: &[u8]) -> io::Result<Vec<(String, String)>> {
    fn length(buf: &[u8], i: &mut usize) -> io::Result<usize> {
        let bad = || io::Error::other("truncated fastcgi params");
        let first = *buf.get(*i).ok_or_else(bad)?;
        if first & 0x80 == 0 {
            *i += 1;
            return Ok(usize::from(first));
        }
        let b = buf.get(*i..*i + 4).ok_or_else(bad)?;
        *i += 4;
        usize::try_from(u32::from_be_bytes([first & 0x7f, b[1], b[2], b[3]])).map_err(|_| bad())
    }
    fn take(buf: &[u8], i: &mut usize, n: usize) -> io::Result<String> {
        let bytes = buf
            .get(*i..*i + n)
            .ok_or_else(|| io::Error::other("truncated fastcgi params"))?;
        *i += n;
        Ok(String::from_utf8_lossy(bytes).into_owned())
    }
    let mut i = 0;
    let mut out = Vec::new();
    while i < buf.len() {
        let name_len = length(buf, &mut i)?;
        let value_len = length(buf, &mut i)?;
        let name = take(buf, &mut i, name_len)?;
        let value = take(buf, &mut i, value_len)?;
        out.push((name, value));
    }
    Ok(out)
}

/// FastCGI params written as a request head, so the test counts them like the HTTP echo's:
/// `METHOD URI FastCGI/1.0`, then every param in the order nginx sent it, an `HTTP_X_Y` param
/// (a request header) as `x-y: value`, any other under its own name (`REQUEST_METHOD: GET`).
fn fcgi_head(params: &[(String, String)]) -> String {
    let param = |name: &str| {
        params
            .iter()
            .find(|(n, _)| n == name)
            .map_or("-", |(_, v)| v.as_str())
    };
    let mut head = format!(
        "{} {} FastCGI/1.0\r\n",
        param("REQUEST_METHOD"),
        param("REQUEST_URI")
    );
    for (name, value) in params {
        match name.strip_prefix("HTTP_") {
            Some(header) => {
                let header = header.to_ascii_lowercase().replace('_', "-");
                let _ = write!(head, "{header}: {value}\r\n");
            }
            None => {
                let _ = write!(head, "{name}: {value}\r\n");
            }
        }
    }
    head.push_str("\r\n");
    head
}

/// A FastCGI responder: reads one request (begin, params, stdin) and answers with its params.
fn serve_fcgi(mut s: TcpStream) -> io::Result<()> {
    s.set_read_timeout(Some(IO_TIMEOUT))?;
    s.set_write_timeout(Some(IO_TIMEOUT))?;
    let mut id = None;
    let mut params = Vec::new();
    loop {
        let (kind, request, content) = read_record(&mut s)?;
        match kind {
            FCGI_BEGIN_REQUEST => id = Some(request),
            FCGI_PARAMS => params.extend_from_slice(&content),
            FCGI_STDIN if content.is_empty() => break,
            _ => {}
        }
    }
    let id = id.ok_or_else(|| io::Error::other("no FCGI_BEGIN_REQUEST record"))?;
    let body = fcgi_head(&fcgi_pairs(&params)?);
    let mut stdout = format!(
        "Status: 200 OK\r\nContent-Type: text/plain\r\nContent-Length: {}\r\n\r\n",
        body.len()
    )
    .into_bytes();
    stdout.extend_from_slice(body.as_bytes());
    let mut out = Vec::new();
    for chunk in stdout.chunks(0xffff) {
        write_record(&mut out, FCGI_STDOUT, id, chunk);
    }
    write_record(&mut out, FCGI_STDOUT, id, &[]);
    // appStatus 0, FCGI_REQUEST_COMPLETE.
    write_record(&mut out, FCGI_END_REQUEST, id, &[0; 8]);
    s.write_all(&out)?;
    let _ = s.shutdown(Shutdown::Write);
    Ok(())
}

/// The h2c echo upstream (`tests/ground_truth/h2c_echo.py`, Python `h2`) run with the project's
/// `.venv/bin/python`; killed when dropped.
struct H2cEcho {
    child: Child,
    addr: SocketAddr,
}

impl H2cEcho {
    fn python() -> PathBuf {
        Path::new(env!("CARGO_MANIFEST_DIR")).join(".venv/bin/python")
    }

    /// `None` when `.venv/bin/python` does not exist; a panic when it cannot run the echo.
    fn start(log: &Path) -> Option<H2cEcho> {
        let python = Self::python();
        if !python.is_file() {
            return None;
        }
        let script = data_dir().join("h2c_echo.py");
        let err = File::create(log).unwrap_or_else(|e| panic!("{}: {e}", log.display()));
        let mut child = Command::new(&python)
            .arg(&script)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(err)
            .spawn()
            .unwrap_or_else(|e| panic!("{}: {e}", python.display()));
        let stdout = child.stdout.take().expect("piped stdout");
        let (tx, rx) = mpsc::channel();
        thread::spawn(move || {
            let mut line = String::new();
            let _ = BufReader::new(stdout).read_line(&mut line);
            let _ = tx.send(line);
        });
        let line = rx.recv_timeout(PROCESS_TIMEOUT).unwrap_or_default();
        let port = line
            .trim()
            .strip_prefix("listening ")
            .and_then(|p| p.parse::<u16>().ok());
        let mut echo = H2cEcho {
            child,
            addr: SocketAddr::from(([127, 0, 0, 1], port.unwrap_or(0))),
        };
        if port.is_none() {
            let _ = echo.child.kill();
            let _ = echo.child.wait();
            panic!(
                "the h2c echo upstream for the gRPC cases did not start ({} {}):\n{}\n\
                 it needs the Python packages of tests/chart/requirements.txt in .venv:\n\
                 .venv/bin/pip install -r tests/chart/requirements.txt",
                python.display(),
                script.display(),
                fs::read_to_string(log).unwrap_or_default()
            );
        }
        Some(echo)
    }
}

impl Drop for H2cEcho {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
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

/// Header lines per lowercased name in a request head (HTTP/2 pseudo-header fields such as
/// `:authority` under their own name).
fn count_headers(head: &str) -> BTreeMap<String, usize> {
    let mut counts = BTreeMap::new();
    for line in head.split("\r\n").skip(1).take_while(|l| !l.is_empty()) {
        let pseudo = usize::from(line.starts_with(':'));
        let name = line[pseudo..]
            .split_once(':')
            .map_or(line, |(n, _)| &line[..pseudo + n.len()]);
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

/// NIC's IngressClass: what makes class `nginx` NIC's.
const NIC_INGRESS_CLASS: &str = "apiVersion: networking.k8s.io/v1\nkind: IngressClass\nmetadata:\n  name: nginx\nspec:\n  controller: nginx.org/ingress-controller\n";

/// The objects a NIC user applies: the IngressClass, then an Ingress with `nginx.org/*`
/// annotations (`nginx.org/grpc-services` naming the path's Service for gRPC) or a
/// VirtualServer with an upstream (`type: grpc` for gRPC) and one route, then NIC's ConfigMap
/// when the case sets keys.
fn nic_linter_input(case: &Case, echo: &str) -> String {
    let mut y = String::from(NIC_INGRESS_CLASS);
    y.push_str("---\n");
    if case.controller() == Controller::NicVs {
        let _ = writeln!(
            y,
            "apiVersion: k8s.nginx.org/v1\nkind: VirtualServer\nmetadata:\n  name: {}\n  namespace: default\nspec:\n  ingressClassName: nginx\n  host: {}\n  upstreams:\n    - name: echo\n      service: echo\n      port: 80",
            case.name,
            case.host()
        );
        if case.backend() == Backend::Grpc {
            y.push_str("      type: grpc\n");
        }
        if let Some(based_on) = &case.vs_redirect_based_on {
            let _ = writeln!(
                y,
                "  tls:\n    secret: example-tls\n    redirect:\n      enable: true\n      basedOn: {based_on}"
            );
        }
        let _ = writeln!(y, "  routes:\n    - path: {}", case.location_path());
        if let Some(t) = case.text(Section::VsLocationSnippets, echo) {
            let _ = writeln!(y, "      location-snippets: {}", yaml_scalar(&t, 8));
        }
        let set = case.vs_request_headers();
        if set.is_empty() {
            y.push_str("      action:\n        pass: echo\n");
        } else {
            y.push_str("      action:\n        proxy:\n          upstream: echo\n          requestHeaders:\n            set:\n");
            for (k, v) in &set {
                let _ = writeln!(
                    y,
                    "              - name: {}\n                value: {}",
                    yaml_scalar(k, 0),
                    yaml_scalar(v, 0)
                );
            }
        }
    } else {
        let mut annotations: Vec<(String, String)> = Vec::new();
        if let Some(t) = case.text(Section::NicLocationSnippets, echo) {
            annotations.push((format!("{NIC_PREFIX}/location-snippets"), t));
        }
        if let Some(t) = case.text(Section::NicProxySetHeaders, echo) {
            annotations.push((
                format!("{NIC_PREFIX}/proxy-set-headers"),
                t.trim_end().to_string(),
            ));
        }
        if case.backend() == Backend::Grpc {
            annotations.push((format!("{NIC_PREFIX}/grpc-services"), "echo".into()));
        }
        annotations.extend(case.annotations.iter().cloned());
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
    }
    let mut data: Vec<(String, String)> = Vec::new();
    if let Some(t) = case.text(Section::NicConfigMapLocationSnippets, echo) {
        data.push(("location-snippets".into(), t));
    }
    data.extend(case.configmap.iter().cloned());
    if !data.is_empty() {
        y.push_str("---\napiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: nginx-config\n  namespace: nginx-ingress\ndata:\n");
        for (k, v) in &data {
            let _ = writeln!(y, "  {k}: {}", yaml_scalar(v, 4));
        }
    }
    y
}

/// The objects an NGF user applies: a SnippetsFilter with the case's `http.server.location`
/// snippet (when it has one), then an HTTPRoute (GRPCRoute for `backend: grpc`) whose one rule
/// references it through an ExtensionRef filter, carries the case's RequestHeaderModifier and
/// sends to Service `echo`.
fn ngf_linter_input(case: &Case, echo: &str) -> String {
    let mut y = String::new();
    let snippet = case.text(Section::NgfLocationSnippet, echo);
    if let Some(t) = &snippet {
        let _ = writeln!(
            y,
            "apiVersion: gateway.nginx.org/v1alpha1\nkind: SnippetsFilter\nmetadata:\n  name: {}\n  namespace: default\nspec:\n  snippets:\n    - context: http.server.location\n      value: {}\n---",
            case.name,
            yaml_scalar(t, 8)
        );
    }
    let grpc = case.backend() == Backend::Grpc;
    let _ = writeln!(
        y,
        "apiVersion: gateway.networking.k8s.io/v1\nkind: {}\nmetadata:\n  name: {}\n  namespace: default\nspec:\n  parentRefs:\n    - name: gateway\n  hostnames:\n    - {}\n  rules:",
        if grpc { "GRPCRoute" } else { "HTTPRoute" },
        case.name,
        case.host()
    );
    if grpc {
        y.push_str("    - filters:\n");
    } else {
        let _ = writeln!(
            y,
            "    - matches:\n        - path:\n            type: PathPrefix\n            value: {}\n      filters:",
            case.location_path()
        );
    }
    if snippet.is_some() {
        let _ = writeln!(
            y,
            "        - type: ExtensionRef\n          extensionRef:\n            group: gateway.nginx.org\n            kind: SnippetsFilter\n            name: {}",
            case.name
        );
    }
    let modifier = case.ngf_modifier();
    if !modifier.is_empty() {
        y.push_str("        - type: RequestHeaderModifier\n          requestHeaderModifier:\n");
        for (op, key) in [
            (ModifierOp::Set, "set"),
            (ModifierOp::Add, "add"),
            (ModifierOp::Remove, "remove"),
        ] {
            let entries: Vec<&Modifier> = modifier.iter().filter(|m| m.op == op).collect();
            if entries.is_empty() {
                continue;
            }
            let _ = writeln!(y, "            {key}:");
            for m in entries {
                if op == ModifierOp::Remove {
                    let _ = writeln!(y, "              - {}", yaml_scalar(&m.name, 0));
                } else {
                    let _ = writeln!(
                        y,
                        "              - name: {}\n                value: {}",
                        yaml_scalar(&m.name, 0),
                        yaml_scalar(&m.value, 0)
                    );
                }
            }
        }
    }
    // Every NGF section is a filter, and a case has a section: `filters` is never empty.
    y.push_str("      backendRefs:\n        - name: echo\n          port: 80\n");
    y
}

/// The Kubernetes objects a user would apply for the case.
fn linter_input(case: &Case, echo: &str) -> String {
    if case.controller() == Controller::Ngf {
        return ngf_linter_input(case, echo);
    }
    if case.controller().is_nic() {
        return nic_linter_input(case, echo);
    }
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
    if let Some(protocol) = case.backend().protocol() {
        annotations.push((format!("{PREFIX}/backend-protocol"), protocol.to_string()));
    }
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
    /// The same, of the findings on a ConfigMap.
    configmap_duplicates: Names,
    /// (header, on a ConfigMap) of every duplicate finding.
    duplicate_objects: BTreeSet<(String, bool)>,
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
            let on_configmap = d.object.as_ref().is_some_and(|o| o.kind == "ConfigMap");
            if on_configmap {
                v.configmap_duplicates.insert(h.clone());
            }
            v.duplicate_objects.insert((h.clone(), on_configmap));
            v.duplicates.insert(h.clone());
            v.duplicate_messages.push((h, d.message.clone()));
        } else if OTHER_RULES.contains(&d.rule.id) {
            v.rules.insert(d.rule.id.to_string());
        }
    }
    v
}

/// The case as `lint --fix --unsafe-fixes` leaves it: named `<case>-fixed`, its snippets read back
/// from the fixed manifest; and the headers whose duplicate findings were fixed. None when no
/// duplicate finding of the case has a fix.
fn fixed_case(case: &Case, echo: &str) -> Option<(Case, Names)> {
    // The fixed snippets are read back from ingress-nginx's annotations and ConfigMaps.
    if case.controller() != Controller::IngressNginx {
        return None;
    }
    let input = snippet_guard::fix::Input {
        name: format!("{}.yaml", case.name),
        text: linter_input(case, echo),
        format: Format::Yaml,
        fixable: true,
    };
    let out = snippet_guard::fix::run(&[input], &Settings::default(), true);
    let headers: Names = out
        .fixed
        .iter()
        .filter(|f| DUPLICATE_RULES.contains(&f.rule.id))
        .filter_map(|f| f.header.as_ref().map(|h| h.to_ascii_lowercase()))
        .collect();
    if headers.is_empty() {
        return None;
    }
    let mut fixed = case.clone();
    fixed.name = format!("{}-fixed", case.name);
    let snippets = [
        (
            format!("{PREFIX}/configuration-snippet"),
            Section::ConfigurationSnippet,
        ),
        (format!("{PREFIX}/server-snippet"), Section::ServerSnippet),
        (format!("{PREFIX}/auth-snippet"), Section::AuthSnippet),
        ("location-snippet".to_string(), Section::LocationSnippet),
        (
            "server-snippet".to_string(),
            Section::ConfigMapServerSnippet,
        ),
    ];
    for (_, section) in &snippets {
        fixed.sections.remove(section);
    }
    let mut read = |entries: &[snippet_guard::model::Entry], configmap: bool| {
        for e in entries {
            let section = snippets.iter().find(|(key, s)| {
                *key == e.key
                    && matches!(
                        s,
                        Section::LocationSnippet | Section::ConfigMapServerSnippet
                    ) == configmap
            });
            if let Some((_, section)) = section {
                // Back to the case's own placeholders, filled in again under the new name.
                fixed
                    .sections
                    .insert(*section, e.value.value.replace(&case.name, "{case}"));
            }
        }
    };
    let mut header_map = None;
    for o in &out.workspace.objects {
        match o {
            Object::Ingress(ing) => read(&ing.meta.annotations, false),
            Object::ConfigMap(cm) if cm.meta.object.name == "ingress-nginx-controller" => {
                read(&cm.data, true);
            }
            Object::ConfigMap(cm) if cm.meta.object.name == "custom-headers" => {
                let lines: Vec<String> = cm
                    .data
                    .iter()
                    .map(|e| format!("{}: {}", e.key, e.value.value))
                    .collect();
                header_map = Some(lines.join("\n"));
            }
            _ => {}
        }
    }
    if let Some(lines) = header_map
        && fixed.sections.contains_key(&Section::ProxySetHeaders)
    {
        fixed.sections.insert(Section::ProxySetHeaders, lines);
    }
    Some((fixed, headers))
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
    let mut reported = linter.duplicates.clone();
    if let Some(expected) = &case.configmap_linter {
        // The ConfigMap's findings are judged apart; the case's own object against nginx.
        if &linter.configmap_duplicates != expected {
            p.push(format!(
                "the linter reports duplicates of {} on the ConfigMap, the table says {}",
                show(&linter.configmap_duplicates),
                show(expected)
            ));
        }
        reported = linter
            .duplicate_objects
            .iter()
            .filter(|(_, configmap)| !configmap)
            .map(|(h, _)| h.clone())
            .collect();
    }
    if reported != expected_linter {
        p.push(format!(
            "the linter reports duplicates of {}, expected {} (nginx duplicated {}; category {})",
            show(&reported),
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
    if case.controller() != Controller::IngressNginx {
        let _ = writeln!(s, "  controller: {}", case.controller().name());
    }
    if case.backend() != Backend::Http {
        let _ = writeln!(s, "  backend: {}", case.backend().name());
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
    // gRPC locations take grpc_set_header duplicates; FastCGI locations take no header line at all.
    for (backend, category) in [
        (Backend::Grpc, Category::Duplicate),
        (Backend::Grpc, Category::NoDuplicate),
        (Backend::Fcgi, Category::NoDuplicate),
    ] {
        assert!(
            cases
                .iter()
                .any(|c| c.backend() == backend && c.category() == category),
            "no {} case with backend {}",
            category.name(),
            backend.name()
        );
    }
    // Both NIC location kinds, HTTP and gRPC, each with a duplicate and a clean case.
    for controller in [Controller::Nic, Controller::NicVs] {
        for backend in [Backend::Http, Backend::Grpc] {
            for category in [Category::Duplicate, Category::NoDuplicate] {
                assert!(
                    cases.iter().any(|c| c.controller() == controller
                        && c.backend() == backend
                        && c.category() == category),
                    "no {} case with controller {} and backend {}",
                    category.name(),
                    controller.name(),
                    backend.name()
                );
            }
        }
    }
    // NGF: HTTPRoute and GRPCRoute locations, each with a duplicate and a clean case.
    for backend in [Backend::Http, Backend::Grpc] {
        for category in [Category::Duplicate, Category::NoDuplicate] {
            assert!(
                cases.iter().any(|c| c.controller() == Controller::Ngf
                    && c.backend() == backend
                    && c.category() == category),
                "no {} case with controller ngf and backend {}",
                category.name(),
                backend.name()
            );
        }
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

/// The `backend` field: parsed, and its misuses named. Needs no nginx.
#[test]
fn backend_field_is_validated() {
    let cases = parse_cases(
        "=== a\ncategory: no-duplicate\nnginx: none\nbackend: grpc\n--- auth-snippet\nproxy_set_header X-A 1;\n\
         === b\ncategory: no-duplicate\nnginx: none\nbackend: fcgi\n\
         annotation: nginx.ingress.kubernetes.io/backend-protocol=FCGI\n--- configuration-snippet\nproxy_set_header X-A 1;\n\
         === c\ncategory: no-duplicate\nnginx: none\n--- configuration-snippet\nproxy_set_header X-A 1;\n",
    )
    .expect("the table parses");
    assert_eq!(cases[0].backend(), Backend::Grpc);
    assert_eq!(cases[2].backend(), Backend::Http);
    assert!(
        validate(&cases[0])
            .iter()
            .any(|p| p.contains("external-auth")),
        "{:?}",
        validate(&cases[0])
    );
    assert!(
        validate(&cases[1])
            .iter()
            .any(|p| p.contains("backend-protocol")),
        "{:?}",
        validate(&cases[1])
    );
    assert_eq!(validate(&cases[2]), Vec::<String>::new());
    assert_eq!(
        cases[1]
            .switches()
            .get("backend-protocol")
            .map(String::as_str),
        Some("FCGI")
    );
    for (text, error) in [
        ("=== d\nbackend: h2\n", "unknown backend `h2`"),
        (
            "=== d\nbackend: grpc\nbackend: fcgi\n",
            "`backend` given twice",
        ),
    ] {
        let e = parse_cases(text).expect_err(text);
        assert!(e.contains(error), "{e}");
    }
}

/// The `controller` field and the NIC sections: parsed, their misuses named, and the
/// annotation's and the route's header lists read as NIC reads them. Needs no nginx.
#[test]
fn nic_fields_are_validated() {
    let cases = parse_cases(
        "=== a\ncategory: no-duplicate\nnginx: none\ncontroller: nic\n--- nic-proxy-set-headers\nX-A: 1, X-Request-Source,\n  X-B:two\n\
         === b\ncategory: no-duplicate\nnginx: none\ncontroller: nic-vs\n--- vs-request-headers-set\nx-forwarded-proto: https\nHost: h\n\
         === c\ncategory: no-duplicate\nnginx: none\n--- nic-location-snippets\nproxy_set_header X-A 1;\n\
         === d\ncategory: no-duplicate\nnginx: none\ncontroller: nic\nbackend: fcgi\n\
         annotation: nginx.org/grpc-services=echo\nconfigmap-linter: none\n--- vs-location-snippets\nproxy_set_header X-A 1;\n",
    )
    .expect("the table parses");
    assert_eq!(cases[0].controller(), Controller::Nic);
    assert_eq!(
        cases[0].nic_proxy_set_headers(),
        vec![
            ("X-A".to_string(), "1".to_string()),
            (
                "X-Request-Source".to_string(),
                "$http_x_request_source".to_string()
            ),
            ("X-B".to_string(), "two".to_string()),
        ]
    );
    assert_eq!(validate(&cases[0]), Vec::<String>::new());
    assert!(cases[1].vs_sets("X-Forwarded-Proto") && cases[1].vs_sets("host"));
    assert!(!cases[1].vs_sets("X-Real-IP"));
    let switches = cases[1].switches();
    assert!(!condition_holds(
        "unless-set X-FORWARDED-PROTO",
        &cases[1],
        &switches
    ));
    assert!(condition_holds(
        "unless-set X-Real-IP",
        &cases[1],
        &switches
    ));
    assert_eq!(validate(&cases[1]), Vec::<String>::new());
    assert_eq!(cases[2].controller(), Controller::IngressNginx);
    assert!(
        validate(&cases[2])
            .iter()
            .any(|p| p.contains("does not fit")),
        "{:?}",
        validate(&cases[2])
    );
    let problems = validate(&cases[3]);
    for want in [
        "does not fit",
        "`grpc` only",
        "grpc-services",
        "configmap-linter",
    ] {
        assert!(
            problems.iter().any(|p| p.contains(want)),
            "{want}: {problems:?}"
        );
    }
    // NIC annotations switch NIC fixtures; the ingress-nginx prefix does not.
    let mut on = cases[0].clone();
    on.annotations = vec![
        ("nginx.org/redirect-to-https".into(), "true".into()),
        ("nginx.ingress.kubernetes.io/keepalive".into(), "32".into()),
        ("nginx.org/websocket-services".into(), String::new()),
    ];
    on.configmap = vec![
        ("keepalive".into(), "0".into()),
        ("redirect-to-https".into(), "false".into()),
        ("websocket-services".into(), "echo".into()),
    ];
    let switches = on.switches();
    // The annotation wins over the ConfigMap key; `0`, `false` and empty are off.
    assert!(condition_holds("if redirect-to-https", &on, &switches));
    assert!(!condition_holds("if keepalive", &on, &switches));
    assert!(condition_holds("unless websocket-services", &on, &switches));
    let e = parse_cases("=== e\ncontroller: nginx-plus\n").expect_err("unknown controller");
    assert!(e.contains("unknown controller `nginx-plus`"), "{e}");
}

/// The NGF sections: the modifier's lines parsed and rendered in NGF's order (add, set, remove),
/// names compared case-sensitively, the add maps, and the misuses named. Needs no nginx.
#[test]
fn ngf_fields_are_validated() {
    let cases = parse_cases(
        "=== a\ncategory: no-duplicate\nnginx: none\ncontroller: ngf\n--- ngf-request-header-modifier\n\
         remove X-Real-IP\nset x-forwarded-proto: https\nadd X-Tenant: blue\n--- ngf-location-snippet\nproxy_set_header X-A 1;\n\
         === b\ncategory: no-duplicate\nnginx: none\ncontroller: ngf\nbackend: fcgi\n\
         annotation: nginx.org/redirect-to-https=true\n--- ngf-request-header-modifier\nreplace X-A: 1\n\
         === c\ncategory: no-duplicate\nnginx: none\n--- ngf-location-snippet\nproxy_set_header X-A 1;\n",
    )
    .expect("the table parses");
    assert_eq!(cases[0].controller(), Controller::Ngf);
    assert_eq!(validate(&cases[0]), Vec::<String>::new());
    assert_eq!(
        cases[0].ngf_modifier_lines(),
        vec![
            (
                "X-Tenant".to_string(),
                "${x_tenant_header_var}blue".to_string()
            ),
            ("x-forwarded-proto".to_string(), "https".to_string()),
            ("X-Real-IP".to_string(), String::new()),
        ]
    );
    let switches = cases[0].switches();
    assert!(condition_holds(
        "unless-modified X-Forwarded-Proto",
        &cases[0],
        &switches
    ));
    assert!(!condition_holds(
        "unless-modified x-forwarded-proto",
        &cases[0],
        &switches
    ));
    assert!(!condition_holds(
        "unless-modified X-Real-IP",
        &cases[0],
        &switches
    ));
    assert_eq!(
        add_header_map("X-Tenant"),
        "map ${http_X_Tenant} $x_tenant_header_var {\n    default '';\n    ~.* \"${http_X_Tenant},\";\n}\n"
    );
    let problems = validate(&cases[1]);
    for want in [
        "`grpc` (a GRPCRoute) only",
        "no annotations",
        "`replace X-A: 1`",
    ] {
        assert!(
            problems.iter().any(|p| p.contains(want)),
            "{want}: {problems:?}"
        );
    }
    assert!(
        validate(&cases[2])
            .iter()
            .any(|p| p.contains("does not fit")),
        "{:?}",
        validate(&cases[2])
    );
    // The linter's objects: the SnippetsFilter, then the route referencing it with the modifier.
    let yaml = ngf_linter_input(&cases[0], "127.0.0.1:9");
    for want in [
        "kind: SnippetsFilter",
        "context: http.server.location",
        "kind: HTTPRoute",
        "kind: SnippetsFilter\n            name: a",
        "set:\n              - name: \"x-forwarded-proto\"",
        "remove:\n              - \"X-Real-IP\"",
    ] {
        assert!(yaml.contains(want), "{want}:\n{yaml}");
    }
    let mut grpc = cases[0].clone();
    grpc.backend = Some(Backend::Grpc);
    assert!(ngf_linter_input(&grpc, "127.0.0.1:9").contains("kind: GRPCRoute"));
}

/// The FastCGI echo's params decoding (one- and four-byte lengths) and the head it writes.
#[test]
fn fastcgi_params_become_a_head() {
    let long = "v".repeat(300);
    let mut buf = Vec::new();
    for (name, value) in [
        ("REQUEST_METHOD", "GET"),
        ("REQUEST_URI", "/c/x/"),
        ("HTTP_X_FORWARDED_PROTO", long.as_str()),
    ] {
        buf.push(u8::try_from(name.len()).expect("short name"));
        if value.len() < 128 {
            buf.push(u8::try_from(value.len()).expect("short value"));
        } else {
            let len = u32::try_from(value.len()).expect("small value") | 0x8000_0000;
            buf.extend_from_slice(&len.to_be_bytes());
        }
        buf.extend_from_slice(name.as_bytes());
        buf.extend_from_slice(value.as_bytes());
    }
    let pairs = fcgi_pairs(&buf).expect("well-formed params");
    assert_eq!(pairs.len(), 3);
    assert_eq!(pairs[2].1.len(), 300);
    let head = fcgi_head(&pairs);
    assert!(head.starts_with("GET /c/x/ FastCGI/1.0\r\n"), "{head}");
    let counts = count_headers(&head);
    assert_eq!(counts.get("x-forwarded-proto"), Some(&1));
    assert_eq!(counts.get("request_method"), Some(&1));
    assert!(fcgi_pairs(&buf[..buf.len() - 1]).is_err());
    // HTTP/2 pseudo-header fields count under their own name.
    let h2 = count_headers("GET / HTTP/2\r\n:authority: a:1\r\nhost: a\r\nhost: b\r\n\r\n");
    assert_eq!(h2.get(":authority"), Some(&1));
    assert_eq!(h2.get("host"), Some(&2));
}

/// Serve `valid` (cases of one controller family) from one nginx and send each its request:
/// what the upstream received, per case.
fn serve_cases(
    info: &NginxInfo,
    fixtures: &Fixtures,
    dir: &Path,
    valid: &[&Case],
    upstreams: &Upstreams,
) -> BTreeMap<String, NginxVerdict> {
    let mut verdicts = BTreeMap::new();
    if valid.is_empty() {
        return verdicts;
    }
    fs::create_dir_all(dir.join("temp")).expect("create dir");
    let conf = dir.join("nginx.conf");
    let mut started = None;
    for attempt in 1..=3 {
        let port = free_port();
        fs::write(
            &conf,
            render_conf(fixtures, info, dir, valid, port, upstreams),
        )
        .expect("write nginx.conf");
        let (ok, out) = nginx_test(info, dir, &conf);
        if !ok {
            // Name the cases nginx refuses, one config each.
            let mut culprits = Vec::new();
            for case in valid {
                let d = dir.join("bisect").join(&case.name);
                fs::create_dir_all(d.join("temp")).expect("create dir");
                let c = d.join("nginx.conf");
                fs::write(
                    &c,
                    render_conf(fixtures, info, &d, &[case], port, upstreams),
                )
                .expect("write nginx.conf");
                let (ok, out) = nginx_test(info, &d, &c);
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
        match start_nginx(info, dir, &conf, port) {
            Ok(n) => {
                started = Some((n, port));
                break;
            }
            Err(e) if attempt < 3 && e.contains("Address already in use") => {}
            Err(e) => panic!("{e}"),
        }
    }
    let (nginx, port) = started.expect("nginx started");
    for case in valid {
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
        verdicts.insert(case.name.clone(), verdict);
    }
    drop(nginx);
    verdicts
}

#[test]
fn nginx_agrees_with_the_linter() {
    let Some(info) = require_nginx() else {
        return;
    };
    let fixtures = Fixtures::load();
    let tmp = tempfile::Builder::new()
        .prefix("snippet-guard-ground-truth")
        .tempdir()
        .expect("temporary directory");
    let root = tmp.path();
    let echo = Echo::start(serve_echo);
    let fcgi = Echo::start(serve_fcgi);
    let h2c = H2cEcho::start(&root.join("h2c-echo.log"));
    let upstreams = Upstreams {
        http: echo.addr.to_string(),
        grpc: h2c.as_ref().map(|e| e.addr.to_string()),
        fcgi: fcgi.addr.to_string(),
    };
    let (cases, skipped): (Vec<Case>, Vec<Case>) = load_cases()
        .into_iter()
        .partition(|c| c.backend() != Backend::Grpc || upstreams.grpc.is_some());
    if !skipped.is_empty() {
        println!(
            "ground truth: {} gRPC cases skipped: {} not found (scripts/test.sh creates .venv from tests/chart/requirements.txt)",
            skipped.len(),
            H2cEcho::python().display()
        );
    }

    let mut nginx_verdicts: BTreeMap<String, NginxVerdict> = BTreeMap::new();

    // 1. Snippets nginx rejects: each in a config of its own, `nginx -t` only.
    for case in cases.iter().filter(|c| c.category() == Category::Invalid) {
        let dir = root.join("invalid").join(&case.name);
        fs::create_dir_all(dir.join("temp")).expect("create case dir");
        let conf = dir.join("nginx.conf");
        let rendered = render_conf(&fixtures, &info, &dir, &[case], free_port(), &upstreams);
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

    // 2. Everything else, and the fixed duplicates: one nginx per controller (its own http
    // block) for all its cases.
    let fixed: Vec<(Case, Names)> = cases
        .iter()
        .filter(|c| c.category() != Category::Invalid)
        .filter_map(|c| fixed_case(c, upstreams.for_case(c)))
        .collect();
    for family in ["ingress-nginx", "nic", "ngf"] {
        let valid: Vec<&Case> = cases
            .iter()
            .filter(|c| c.category() != Category::Invalid)
            .chain(fixed.iter().map(|(c, _)| c))
            .filter(|c| c.controller().family() == family)
            .collect();
        nginx_verdicts.extend(serve_cases(
            &info,
            &fixtures,
            &root.join(family),
            &valid,
            &upstreams,
        ));
    }
    drop(echo);
    drop(fcgi);
    drop(h2c);

    // 3. The linter on the same cases, and the comparison.
    let shown: Names = std::env::var(SHOW_ENV)
        .map(|v| v.split(',').map(|n| n.trim().to_string()).collect())
        .unwrap_or_default();
    let mut report = String::new();
    let mut disagreements = 0;
    // The fixed cases: the duplicates the fixes removed are gone on the wire.
    let mut still_duplicated = Vec::new();
    for (case, headers) in &fixed {
        let nginx = &nginx_verdicts[&case.name];
        let left: Names = headers.intersection(&nginx.duplicates).cloned().collect();
        let ok = nginx.error.is_none() && left.is_empty();
        println!(
            "{} {:<48} {:<24} nginx: {:<36} fixed: {}",
            if ok { "ok  " } else { "FAIL" },
            case.name,
            "fixed",
            show(&nginx.duplicates),
            show(headers)
        );
        if !ok {
            still_duplicated.push(format!(
                "{}: after the fix nginx still sends {} ({:?})\n  upstream received:\n{}",
                case.name,
                show(&left),
                nginx.error,
                indent(&nginx.head, "    | ")
            ));
        }
    }
    let mut per_category: BTreeMap<Category, usize> = BTreeMap::new();
    let mut per_backend: BTreeMap<Backend, usize> = BTreeMap::new();
    let mut per_controller: BTreeMap<Controller, usize> = BTreeMap::new();
    for case in &cases {
        *per_controller.entry(case.controller()).or_default() += 1;
        *per_category.entry(case.category()).or_default() += 1;
        *per_backend.entry(case.backend()).or_default() += 1;
        let nginx = &nginx_verdicts[&case.name];
        let echo = upstreams.for_case(case);
        let yaml = linter_input(case, echo);
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
            report.push_str(&describe(case, nginx, &linter, &problems, echo));
            let _ = writeln!(report, "  linter input:\n{}", indent(&yaml, "    | "));
        } else if shown.contains(&case.name) {
            print!("{}", describe(case, nginx, &linter, &problems, echo));
        }
    }
    let categories: Vec<String> = per_category
        .iter()
        .map(|(c, n)| format!("{} {n}", c.name()))
        .collect();
    let backends: Vec<String> = per_backend
        .iter()
        .map(|(b, n)| format!("{} {n}", b.name()))
        .collect();
    let controllers: Vec<String> = per_controller
        .iter()
        .map(|(c, n)| format!("{} {n}", c.name()))
        .collect();
    let mut summary = format!(
        "ground truth: {} cases, {disagreements} disagreements ({}; backends: {}; controllers: {})",
        cases.len(),
        categories.join(", "),
        backends.join(", "),
        controllers.join(", ")
    );
    if !skipped.is_empty() {
        let _ = write!(
            summary,
            "; {} gRPC cases skipped without .venv",
            skipped.len()
        );
    }
    let _ = write!(
        summary,
        "; {} fixed cases re-run, {} still send a fixed header twice",
        fixed.len(),
        still_duplicated.len()
    );
    println!("{summary}");
    assert!(disagreements == 0, "{summary}\n\n{report}");
    assert!(
        still_duplicated.is_empty(),
        "{summary}\n\n{}",
        still_duplicated.join("\n")
    );
    assert!(!fixed.is_empty(), "no case has a fix");
}
