//! What ingress-nginx (v1.9 to v1.15) renders around user snippets.
//!
//! Facts from `rootfs/etc/nginx/template/nginx.tmpl` and `internal/ingress/controller/config`
//! at controller-v1.9.6 and controller-v1.15.1, as collected in the project's
//! `nginx-controllers.md`: the request headers of a proxied location and of the external-auth
//! location (with the annotation or ConfigMap key that switches each conditional row), where every
//! snippet source is inserted, and the gates that decide whether annotation snippets render.

use crate::headers::Voice;
pub use crate::headers::{Family, TemplateHeader};
use crate::model::Provenance;
use crate::nginx::context::Ctx;

mod check;

pub use check::{CONTROLLER_CONFIGMAP_NAMES, CONTROLLER_KEYS, IngressNginx};

pub use crate::settings::{CONTROLLER_NAME, DEFAULT_ANNOTATION_PREFIX, Version, VersionError};

/// Where a snippet comes from.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum SnippetSource {
    /// Annotation `configuration-snippet`: each location of the Ingress, after the controller's headers.
    ConfigurationSnippet,
    /// Annotation `server-snippet`: the Ingress host's `server`, before its locations.
    ServerSnippetAnnotation,
    /// Annotation `auth-snippet`: the `/_external-auth-*` location, when `auth-url` is set.
    AuthSnippet,
    /// Annotation `stream-snippet`: the end of `stream {}`.
    StreamSnippetAnnotation,
    /// ConfigMap `location-snippet`: every location, right after `configuration-snippet`.
    LocationSnippet,
    /// ConfigMap `server-snippet`: every `server`, after its locations.
    ServerSnippetConfigMap,
    /// ConfigMap `http-snippet`: inside `http {}`.
    HttpSnippet,
    /// ConfigMap `main-snippet`: the main context.
    MainSnippet,
    /// ConfigMap `stream-snippet`: the end of `stream {}`.
    StreamSnippetConfigMap,
    /// ConfigMap `global-auth-snippet`: the global external-auth location.
    GlobalAuthSnippet,
}

impl SnippetSource {
    pub const ANNOTATIONS: [SnippetSource; 4] = [
        SnippetSource::ConfigurationSnippet,
        SnippetSource::ServerSnippetAnnotation,
        SnippetSource::AuthSnippet,
        SnippetSource::StreamSnippetAnnotation,
    ];
    pub const CONFIGMAP: [SnippetSource; 6] = [
        SnippetSource::LocationSnippet,
        SnippetSource::ServerSnippetConfigMap,
        SnippetSource::HttpSnippet,
        SnippetSource::MainSnippet,
        SnippetSource::StreamSnippetConfigMap,
        SnippetSource::GlobalAuthSnippet,
    ];

    /// The annotation suffix or ConfigMap key.
    #[must_use]
    pub fn key(self) -> &'static str {
        match self {
            SnippetSource::ConfigurationSnippet => "configuration-snippet",
            SnippetSource::ServerSnippetAnnotation | SnippetSource::ServerSnippetConfigMap => {
                "server-snippet"
            }
            SnippetSource::AuthSnippet => "auth-snippet",
            SnippetSource::StreamSnippetAnnotation | SnippetSource::StreamSnippetConfigMap => {
                "stream-snippet"
            }
            SnippetSource::LocationSnippet => "location-snippet",
            SnippetSource::HttpSnippet => "http-snippet",
            SnippetSource::MainSnippet => "main-snippet",
            SnippetSource::GlobalAuthSnippet => "global-auth-snippet",
        }
    }

    #[must_use]
    pub fn is_annotation(self) -> bool {
        Self::ANNOTATIONS.contains(&self)
    }

    /// The nginx context the controller inserts the snippet into.
    #[must_use]
    pub fn context(self) -> Ctx {
        match self {
            SnippetSource::ConfigurationSnippet
            | SnippetSource::AuthSnippet
            | SnippetSource::LocationSnippet
            | SnippetSource::GlobalAuthSnippet => Ctx::LOCATION,
            SnippetSource::ServerSnippetAnnotation | SnippetSource::ServerSnippetConfigMap => {
                Ctx::SERVER
            }
            SnippetSource::StreamSnippetAnnotation | SnippetSource::StreamSnippetConfigMap => {
                Ctx::STREAM
            }
            SnippetSource::HttpSnippet => Ctx::HTTP,
            SnippetSource::MainSnippet => Ctx::MAIN,
        }
    }

    /// Where users write it: the annotation `nginx.ingress.kubernetes.io/configuration-snippet`
    /// or the ConfigMap key `location-snippet`.
    #[must_use]
    pub fn provenance(self, prefix: &str) -> Provenance {
        if self.is_annotation() {
            Provenance::Annotation(format!("{prefix}/{}", self.key()))
        } else {
            Provenance::ConfigMapKey(self.key().to_string())
        }
    }
}

/// Directives the template writes once in every proxied location, with the annotation that sets
/// each. nginx accepts each only once per level, so the same directive in a `configuration-snippet`
/// or `location-snippet` makes `nginx -t` fail with "directive is duplicate".
pub const LOCATION_DIRECTIVES: [(&str, &str); 14] = [
    ("port_in_redirect", "use-port-in-redirects"),
    ("client_max_body_size", "proxy-body-size"),
    ("proxy_connect_timeout", "proxy-connect-timeout"),
    ("proxy_send_timeout", "proxy-send-timeout"),
    ("proxy_read_timeout", "proxy-read-timeout"),
    ("proxy_buffering", "proxy-buffering"),
    ("proxy_buffer_size", "proxy-buffer-size"),
    ("proxy_buffers", "proxy-buffers-number"),
    ("proxy_request_buffering", "proxy-request-buffering"),
    ("proxy_http_version", "proxy-http-version"),
    ("proxy_next_upstream", "proxy-next-upstream"),
    ("proxy_next_upstream_timeout", "proxy-next-upstream-timeout"),
    ("proxy_next_upstream_tries", "proxy-next-upstream-tries"),
    (
        "proxy_pass",
        "the Ingress backend (ingress-nginx writes proxy_pass itself)",
    ),
];

/// ConfigMap settings that change what the template renders.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Global {
    pub use_forwarded_headers: bool,
    pub compute_full_forwarded_for: bool,
    pub proxy_add_original_uri_header: bool,
    /// `forwarded-for-header`, default `X-Forwarded-For`.
    pub forwarded_for_header: Option<String>,
    /// `forwarded-host-header`, default `X-Forwarded-Host`.
    pub forwarded_host_header: Option<String>,
    /// `global-auth-url` is set.
    pub global_auth_url: bool,
    /// `global-auth-response-headers`.
    pub global_auth_response_headers: Vec<String>,
}

/// Ingress annotations that change what the template renders in its locations.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct LocationFacts {
    /// `backend-protocol` is `GRPC` or `GRPCS`.
    pub grpc: bool,
    /// `backend-protocol` is `FCGI`: the location uses `fastcgi_pass`, and no
    /// `proxy_set_header` or `grpc_set_header` line reaches the backend.
    pub fastcgi: bool,
    pub upstream_vhost: Option<String>,
    /// `auth-tls-secret` is set.
    pub auth_tls: bool,
    /// `auth-tls-pass-certificate-to-upstream: "true"`.
    pub auth_tls_pass_certificate: bool,
    pub connection_proxy_header: Option<String>,
    /// `auth-type` basic/digest with `auth-secret`.
    pub basic_auth: bool,
    /// `auth-url` is set (or global auth applies).
    pub auth_url: bool,
    /// `auth-method` is set.
    pub auth_method: bool,
    /// `auth-request-redirect`.
    pub auth_request_redirect: Option<String>,
    /// `auth-response-headers` names.
    pub auth_response_headers: Vec<String>,
    /// `x-forwarded-prefix` together with a `rewrite-target` that differs from the path.
    pub x_forwarded_prefix: Option<String>,
}

/// Header variable name for a configurable incoming header (`X-Forwarded-For` -> `$http_x_forwarded_for`).
fn http_var(header: &str) -> String {
    format!("$http_{}", header.to_ascii_lowercase().replace('-', "_"))
}

/// The client-certificate headers `auth-tls-secret` adds (same rows in both locations).
fn client_cert_headers(loc: &LocationFacts, h: &mut Vec<TemplateHeader>) {
    if !loc.auth_tls {
        return;
    }
    if loc.auth_tls_pass_certificate {
        h.push(TemplateHeader::new(
            "ssl-client-cert",
            "$ssl_client_escaped_cert",
            "auth-tls-pass-certificate-to-upstream",
        ));
    }
    for (name, var) in [
        ("ssl-client-verify", "$ssl_client_verify"),
        ("ssl-client-subject-dn", "$ssl_client_s_dn"),
        ("ssl-client-issuer-dn", "$ssl_client_i_dn"),
    ] {
        h.push(TemplateHeader::new(name, var, "annotation auth-tls-secret"));
    }
}

/// X-Forwarded-For: the full chain only with both ConfigMap switches on.
fn forwarded_for(global: &Global) -> TemplateHeader {
    if global.use_forwarded_headers && global.compute_full_forwarded_for {
        TemplateHeader::new(
            "X-Forwarded-For",
            "$full_x_forwarded_for",
            "use-forwarded-headers and compute-full-forwarded-for",
        )
    } else {
        TemplateHeader::new("X-Forwarded-For", "$remote_addr", "always")
    }
}

/// The headers rendered in each proxied location of an Ingress, in template order.
#[must_use]
pub fn proxied_location(
    version: Version,
    loc: &LocationFacts,
    global: &Global,
) -> Vec<TemplateHeader> {
    let mut h = Vec::with_capacity(20);
    if loc.auth_url || global.global_auth_url {
        let names = if loc.auth_response_headers.is_empty() {
            &global.global_auth_response_headers
        } else {
            &loc.auth_response_headers
        };
        for (i, name) in names.iter().enumerate() {
            h.push(TemplateHeader::new(
                name,
                &format!("$authHeader{i}"),
                "listed in auth-response-headers",
            ));
        }
    }
    if loc.basic_auth {
        h.push(TemplateHeader::new(
            "Authorization",
            "",
            "basic/digest auth (auth-type)",
        ));
    }
    // gRPC locations get Host too since v1.10.0 ("Set grpc :authority header from request
    // header", #8912); before, the template skipped it for `grpc_set_header`.
    if !loc.grpc || version.minor >= 10 {
        match &loc.upstream_vhost {
            Some(v) => h.push(TemplateHeader::new("Host", v, "annotation upstream-vhost")),
            None => h.push(TemplateHeader::new("Host", "$best_http_host", "always")),
        }
    }
    client_cert_headers(loc, &mut h);
    h.push(TemplateHeader::new("Upgrade", "$http_upgrade", "always"));
    match &loc.connection_proxy_header {
        Some(v) => h.push(TemplateHeader::new(
            "Connection",
            v,
            "annotation connection-proxy-header",
        )),
        None => h.push(TemplateHeader::new(
            "Connection",
            "$connection_upgrade",
            "always",
        )),
    }
    h.push(TemplateHeader::new("X-Request-ID", "$req_id", "always"));
    h.push(TemplateHeader::new("X-Real-IP", "$remote_addr", "always"));
    h.push(forwarded_for(global));
    h.push(TemplateHeader::new(
        "X-Forwarded-Host",
        "$best_http_host",
        "always",
    ));
    h.push(TemplateHeader::new(
        "X-Forwarded-Port",
        "$pass_port",
        "always",
    ));
    h.push(TemplateHeader::new(
        "X-Forwarded-Proto",
        "$pass_access_scheme",
        "always",
    ));
    h.push(TemplateHeader::new(
        "X-Forwarded-Scheme",
        "$pass_access_scheme",
        "always",
    ));
    if global.proxy_add_original_uri_header {
        h.push(TemplateHeader::new(
            "X-Original-URI",
            "$request_uri",
            "ConfigMap key proxy-add-original-uri-header",
        ));
    }
    h.push(TemplateHeader::new(
        "X-Scheme",
        "$pass_access_scheme",
        "always",
    ));
    let ffh = global
        .forwarded_for_header
        .as_deref()
        .unwrap_or("X-Forwarded-For");
    h.push(TemplateHeader::new(
        "X-Original-Forwarded-For",
        &http_var(ffh),
        "always",
    ));
    if version.minor >= 13 {
        let fhh = global
            .forwarded_host_header
            .as_deref()
            .unwrap_or("X-Forwarded-Host");
        h.push(TemplateHeader::new(
            "X-Original-Forwarded-Host",
            &http_var(fhh),
            "always (v1.13 and later)",
        ));
    }
    h.push(TemplateHeader::new(
        "Proxy",
        "",
        "always (httpoxy mitigation)",
    ));
    if let Some(prefix) = &loc.x_forwarded_prefix {
        let mut t = TemplateHeader::new(
            "X-Forwarded-Prefix",
            prefix,
            "annotations x-forwarded-prefix and rewrite-target",
        );
        t.after_snippets = true;
        h.push(t);
    }
    h
}

/// The headers of the internal `/_external-auth-*` location (always `proxy_set_header`).
#[must_use]
pub fn auth_location(loc: &LocationFacts, global: &Global) -> Vec<TemplateHeader> {
    let mut h = vec![
        TemplateHeader::new("Content-Length", "", "always"),
        TemplateHeader::new("X-Forwarded-Proto", "", "always"),
        TemplateHeader::new("X-Request-ID", "$req_id", "always"),
    ];
    if loc.auth_method {
        h.push(TemplateHeader::new(
            "X-Original-URI",
            "$request_uri",
            "annotation auth-method",
        ));
        h.push(TemplateHeader::new(
            "X-Scheme",
            "$pass_access_scheme",
            "annotation auth-method",
        ));
    }
    h.push(TemplateHeader::new("Host", "<host of auth-url>", "always"));
    h.push(TemplateHeader::new(
        "X-Original-URL",
        "$scheme://$http_host$request_uri",
        "always",
    ));
    h.push(TemplateHeader::new(
        "X-Original-Method",
        "$request_method",
        "always",
    ));
    h.push(TemplateHeader::new(
        "X-Sent-From",
        "nginx-ingress-controller",
        "always",
    ));
    h.push(TemplateHeader::new("X-Real-IP", "$remote_addr", "always"));
    h.push(forwarded_for(global));
    match &loc.auth_request_redirect {
        Some(v) => h.push(TemplateHeader::new(
            "X-Auth-Request-Redirect",
            v,
            "annotation auth-request-redirect",
        )),
        None => h.push(TemplateHeader::new(
            "X-Auth-Request-Redirect",
            "$request_uri",
            "always",
        )),
    }
    client_cert_headers(loc, &mut h);
    h
}

/// The gates on annotation snippets, from the controller ConfigMap and the version defaults.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Gates {
    pub allow_snippet_annotations: bool,
    /// `annotations-risk-level` admits Critical annotations (all snippet annotations are Critical).
    pub risk_level_allows_snippets: bool,
}

impl Gates {
    /// `allow-snippet-annotations` defaults to false from v1.9.0; `annotations-risk-level`
    /// defaults to `Critical` before v1.12.0 and `High` from v1.12.0.
    #[must_use]
    pub fn from_config(version: Version, allow: Option<&str>, risk: Option<&str>) -> Self {
        let allow = allow.is_some_and(|v| v.trim().eq_ignore_ascii_case("true"));
        let risk = match risk.map(|r| r.trim().to_ascii_lowercase()) {
            Some(r) => r == "critical",
            None => version.minor < 12,
        };
        Self {
            allow_snippet_annotations: allow,
            risk_level_allows_snippets: risk,
        }
    }

    #[must_use]
    pub fn annotation_snippets_render(&self) -> bool {
        self.allow_snippet_annotations && self.risk_level_allows_snippets
    }
}

/// The supported knob for a header the controller owns, if there is one.
#[must_use]
pub fn knob_for(header: &str) -> Option<&'static str> {
    let h = header.trim_end_matches(':').to_ascii_lowercase();
    Some(match h.as_str() {
        "x-forwarded-proto" | "x-forwarded-scheme" | "x-scheme" | "x-forwarded-port"
        | "x-forwarded-host" => {
            "to pass on what a load balancer in front of ingress-nginx sent, set `use-forwarded-headers: \"true\"` in the controller ConfigMap (with `proxy-real-ip-cidr`), or `use-proxy-protocol: \"true\"` for a PROXY-protocol load balancer"
        }
        "x-forwarded-for" | "x-real-ip" => {
            "to keep the client address chain, set `use-forwarded-headers: \"true\"` and `compute-full-forwarded-for: \"true\"` in the controller ConfigMap"
        }
        "host" => {
            "to send a different Host, use the `nginx.ingress.kubernetes.io/upstream-vhost` annotation"
        }
        "connection" => {
            "to change Connection, use the `nginx.ingress.kubernetes.io/connection-proxy-header` annotation"
        }
        "x-original-uri" => {
            "ingress-nginx sends it because `proxy-add-original-uri-header` is \"true\""
        }
        "x-request-id" => {
            "ingress-nginx passes the client's X-Request-ID or generates one (`generate-request-id`)"
        }
        "x-forwarded-prefix" => {
            "the `nginx.ingress.kubernetes.io/x-forwarded-prefix` annotation already sends it"
        }
        _ => return None,
    })
}

/// What happens when nginx rejects a snippet ingress-nginx renders.
pub const RELOAD_NOTE: &str = "nginx -t rejects this; ingress-nginx (v1.12.1 and later) no longer tests snippets at admission, so the controller fails at reload and stops applying every later change";

impl Version {
    /// `v1.15`, as a static string for [`Voice`].
    #[must_use]
    pub fn as_static(self) -> &'static str {
        const NAMES: [&str; 7] = ["v1.9", "v1.10", "v1.11", "v1.12", "v1.13", "v1.14", "v1.15"];
        NAMES[usize::from(
            self.minor.clamp(Self::OLDEST.minor, Self::NEWEST.minor) - Self::OLDEST.minor,
        )]
    }
}

/// How findings speak of ingress-nginx `version`.
#[must_use]
pub fn voice(version: Version) -> Voice {
    Voice {
        controller: "ingress-nginx",
        version: version.as_static(),
        knob_for,
        reload_note: RELOAD_NOTE,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn names(h: &[TemplateHeader]) -> Vec<&str> {
        h.iter().map(|t| t.name.as_str()).collect()
    }

    #[test]
    fn versions_parse() {
        assert_eq!(Version::parse("1.15").unwrap().minor, 15);
        assert_eq!(Version::parse("v1.9.6").unwrap().minor, 9);
        assert_eq!(Version::parse("controller-v1.12.0").unwrap().minor, 12);
        assert!(Version::parse("1.8").is_err());
        assert!(Version::parse("2.0").is_err());
        assert!(Version::parse("1.15.x").is_err());
    }

    #[test]
    fn default_location_has_the_template_rows() {
        let h = proxied_location(
            Version::NEWEST,
            &LocationFacts::default(),
            &Global::default(),
        );
        assert_eq!(
            names(&h),
            [
                "Host",
                "Upgrade",
                "Connection",
                "X-Request-ID",
                "X-Real-IP",
                "X-Forwarded-For",
                "X-Forwarded-Host",
                "X-Forwarded-Port",
                "X-Forwarded-Proto",
                "X-Forwarded-Scheme",
                "X-Scheme",
                "X-Original-Forwarded-For",
                "X-Original-Forwarded-Host",
                "Proxy"
            ]
        );
        let old = proxied_location(
            Version::OLDEST,
            &LocationFacts::default(),
            &Global::default(),
        );
        assert!(!names(&old).contains(&"X-Original-Forwarded-Host"));
    }

    #[test]
    fn grpc_locations_have_a_host_line_from_v1_10() {
        let loc = LocationFacts {
            grpc: true,
            ..LocationFacts::default()
        };
        let h = proxied_location(Version { minor: 9 }, &loc, &Global::default());
        assert!(!names(&h).contains(&"Host"));
        assert!(names(&h).contains(&"X-Forwarded-Proto"));
        for minor in 10..=Version::NEWEST.minor {
            let h = proxied_location(Version { minor }, &loc, &Global::default());
            assert!(names(&h).contains(&"Host"), "v1.{minor}");
        }
    }

    #[test]
    fn gates_follow_version_defaults() {
        assert!(!Gates::from_config(Version::NEWEST, None, None).annotation_snippets_render());
        assert!(
            !Gates::from_config(Version::NEWEST, Some("true"), None).annotation_snippets_render()
        );
        assert!(
            Gates::from_config(Version::NEWEST, Some("true"), Some("Critical"))
                .annotation_snippets_render()
        );
        assert!(
            Gates::from_config(Version { minor: 11 }, Some("true"), None)
                .annotation_snippets_render()
        );
    }
}
