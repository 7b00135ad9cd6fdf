//! What F5 NGINX Ingress Controller (NIC, `nginx/kubernetes-ingress`, v3.7 to v5.5) renders
//! around user snippets.
//!
//! Facts from `internal/configs/version1/nginx.ingress.tmpl` (Ingress) and
//! `internal/configs/version2/nginx.virtualserver.tmpl` (VirtualServer, VirtualServerRoute) at
//! v5.5.4, with v5.4.0, v4.0.1 and v3.7.2 compared, as collected in the project's
//! `nginx-controllers.md` section 4:
//!
//! - An Ingress location writes its snippets (`nginx.org/location-snippets`, else the ConfigMap's
//!   `location-snippets`) *before* its own `proxy_set_header` lines, the opposite of
//!   ingress-nginx, and removes nothing when a user sets the same name: nginx sends both.
//! - A VirtualServer route writes its `location-snippets` first too, then its defaults, except
//!   those named in `action.proxy.requestHeaders.set` (compared case-insensitively): that field
//!   is the clean override, a snippet line is not.
//! - Snippets on Ingresses and custom resources render only with `-enable-snippets`, a
//!   command-line flag no object shows (a setting here); the ConfigMap's snippets always render.

use crate::headers::{TemplateHeader, Voice};
use crate::settings::NicVersion;

mod check;

pub use check::Nic;

/// `spec.controller` of NIC's IngressClass.
pub const CONTROLLER_NAME: &str = "nginx.org/ingress-controller";

/// NIC's annotation prefix (fixed: NIC has no flag to change it).
pub const ANNOTATION_PREFIX: &str = "nginx.org";

/// The controller's name in messages.
pub const DISPLAY_NAME: &str = "F5 NGINX Ingress Controller";

/// The API group and version of VirtualServer, VirtualServerRoute and Policy.
pub const API_VERSION: &str = "k8s.nginx.org/v1";

/// Names NIC's ConfigMap is installed under (static manifests; Helm chart).
pub const CONFIGMAP_NAMES: [&str; 2] = ["nginx-config", "nginx-ingress"];

/// ConfigMap keys that only NIC's ConfigMap carries (ingress-nginx spells its snippet keys in the
/// singular).
pub const CONFIGMAP_KEYS: [&str; 5] = [
    "location-snippets",
    "server-snippets",
    "http-snippets",
    "main-snippets",
    "stream-snippets",
];

/// What decides the header lines of one Ingress location.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct IngressLocation {
    /// The path's Service is in `nginx.org/grpc-services`: `grpc_set_header`.
    pub grpc: bool,
    /// The path's Service is in `nginx.org/websocket-services`.
    pub websocket: bool,
    /// Upstream keepalive is on (`nginx.org/keepalive` or ConfigMap `keepalive` above 0).
    pub keepalive: bool,
    /// `nginx.org/redirect-to-https` (or ConfigMap `redirect-to-https`) is true.
    pub redirect_to_https: bool,
}

fn after(name: &str, value: &str, reason: &str) -> TemplateHeader {
    TemplateHeader {
        after_snippets: true,
        ..TemplateHeader::new(name, value, reason)
    }
}

/// The controller's request-header lines of an Ingress location, in template order: the
/// Upgrade/Connection lines come before the snippets, the forwarding headers after them.
#[must_use]
pub fn ingress_location(facts: &IngressLocation) -> Vec<TemplateHeader> {
    let mut out = Vec::new();
    if !facts.grpc {
        if facts.websocket {
            out.push(TemplateHeader::new(
                "Upgrade",
                "$http_upgrade",
                "nginx.org/websocket-services",
            ));
            out.push(TemplateHeader::new(
                "Connection",
                "$connection_upgrade",
                "nginx.org/websocket-services",
            ));
        } else if facts.keepalive {
            out.push(TemplateHeader::new("Connection", "", "keepalive"));
        }
    }
    out.push(after("Host", "$host", "always"));
    out.push(after("X-Real-IP", "$remote_addr", "always"));
    out.push(after(
        "X-Forwarded-For",
        "$proxy_add_x_forwarded_for",
        "always",
    ));
    out.push(after("X-Forwarded-Host", "$host", "always"));
    out.push(after("X-Forwarded-Port", "$server_port", "always"));
    out.push(if facts.redirect_to_https {
        after("X-Forwarded-Proto", "https", "nginx.org/redirect-to-https")
    } else {
        after("X-Forwarded-Proto", "$scheme", "always")
    });
    out
}

/// What decides the header lines of one VirtualServer or VirtualServerRoute location.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct RouteLocation {
    /// The upstream has `type: grpc`: `grpc_set_header`, no Upgrade/Connection.
    pub grpc: bool,
    /// `spec.tls.redirect.basedOn: x-forwarded-proto`.
    pub proto_from_header: bool,
    /// Names in `action.proxy.requestHeaders.set`, lowercase: NIC leaves its own line of such a
    /// name out.
    pub set: Vec<String>,
}

/// The controller's request-header lines of a VirtualServer route location, in template order
/// (the `requestHeaders.set` entries, which come between the defaults and Host, are the user's).
#[must_use]
pub fn route_location(facts: &RouteLocation) -> Vec<TemplateHeader> {
    let unset = |name: &str| !facts.set.iter().any(|s| s.eq_ignore_ascii_case(name));
    let mut out = Vec::new();
    if !facts.grpc {
        out.push(after("Upgrade", "$http_upgrade", "always"));
        out.push(after("Connection", "$vs_connection_header", "always"));
    }
    let proto = if facts.proto_from_header {
        after(
            "X-Forwarded-Proto",
            "$http_x_forwarded_proto",
            "spec.tls.redirect.basedOn: x-forwarded-proto",
        )
    } else {
        after("X-Forwarded-Proto", "$scheme", "always")
    };
    for t in [
        after("X-Real-IP", "$remote_addr", "always"),
        after("X-Forwarded-For", "$proxy_add_x_forwarded_for", "always"),
        after("X-Forwarded-Host", "$host", "always"),
        after("X-Forwarded-Port", "$server_port", "always"),
        proto,
        after("Host", "$host", "always"),
    ] {
        if unset(&t.name) {
            out.push(t);
        }
    }
    out
}

/// The lines of the external-auth location a Policy's `authSnippets` land in (v5.5+). A Policy
/// can serve Ingresses and VirtualServers; these are the lines both render.
#[must_use]
pub fn auth_location() -> Vec<TemplateHeader> {
    vec![
        after("Content-Length", "0", "externalAuth"),
        after("Host", "$host", "externalAuth"),
        after("X-Scheme", "$scheme", "externalAuth"),
    ]
}

/// Header names NIC writes in some location (lowercase).
#[must_use]
pub fn owned_names() -> std::collections::HashSet<String> {
    let ws = IngressLocation {
        websocket: true,
        ..IngressLocation::default()
    };
    ingress_location(&ws)
        .into_iter()
        .chain(route_location(&RouteLocation::default()))
        .chain(auth_location())
        .filter(|t| !t.is_empty())
        .map(|t| t.name.to_ascii_lowercase())
        .collect()
}

/// The supported way to change a header NIC sets, on an Ingress.
#[must_use]
pub fn ingress_knob(header: &str) -> Option<&'static str> {
    let h = header.trim_end_matches(':').to_ascii_lowercase();
    Some(match h.as_str() {
        "x-forwarded-proto" => {
            "on an Ingress it sends `https` with `nginx.org/redirect-to-https: \"true\"` and `$scheme` otherwise; to send another value, serve the host with a VirtualServer and set the header in the route's `action.proxy.requestHeaders.set`, which replaces the controller's line"
        }
        "host" | "x-real-ip" | "x-forwarded-for" | "x-forwarded-host" | "x-forwarded-port" => {
            "an Ingress cannot replace this line (NIC issue #8992); to send another value, serve the host with a VirtualServer and set the header in the route's `action.proxy.requestHeaders.set`, which replaces the controller's line"
        }
        "connection" | "upgrade" => {
            "the controller writes it for `nginx.org/websocket-services` and upstream keepalive"
        }
        _ => return None,
    })
}

/// The supported way to change a header NIC sets, on a VirtualServer route.
#[must_use]
pub fn route_knob(header: &str) -> Option<&'static str> {
    let h = header.trim_end_matches(':').to_ascii_lowercase();
    Some(match h.as_str() {
        "x-forwarded-proto" | "host" | "x-real-ip" | "x-forwarded-for" | "x-forwarded-host"
        | "x-forwarded-port" => {
            "to send another value, set it in this route's `action.proxy.requestHeaders.set`: the controller then leaves its own line out"
        }
        _ => return None,
    })
}

/// What happens when nginx rejects a snippet NIC renders.
pub const RELOAD_NOTE: &str = "nginx -t rejects this; F5 NGINX Ingress Controller does not check snippet content, so the reload with this configuration fails and the resource is reported invalid";

/// How findings on an Ingress speak of NIC `version`.
#[must_use]
pub fn ingress_voice(version: NicVersion) -> Voice {
    Voice {
        controller: DISPLAY_NAME,
        version: version.as_static(),
        knob_for: ingress_knob,
        reload_note: RELOAD_NOTE,
    }
}

/// How findings on a VirtualServer or VirtualServerRoute speak of NIC `version`.
#[must_use]
pub fn route_voice(version: NicVersion) -> Voice {
    Voice {
        controller: DISPLAY_NAME,
        version: version.as_static(),
        knob_for: route_knob,
        reload_note: RELOAD_NOTE,
    }
}

/// The entries of `nginx.org/proxy-set-headers`: `Name: value` separated by commas; a bare name
/// means `$http_<name>` (lowercase, `-` as `_`). Each with its byte range in the value.
#[must_use]
pub fn proxy_set_headers(value: &str) -> Vec<(String, String, std::ops::Range<usize>)> {
    let mut out = Vec::new();
    let mut start = 0;
    for part in value.split(',') {
        let range_start = start + (part.len() - part.trim_start().len());
        let range = range_start..start + part.trim_end().len();
        start += part.len() + 1;
        let part = part.trim();
        if part.is_empty() {
            continue;
        }
        let (name, value) = match part.split_once(':') {
            Some((n, v)) => (n.trim().to_string(), v.trim().to_string()),
            None => (
                part.to_string(),
                format!("$http_{}", part.to_ascii_lowercase().replace('-', "_")),
            ),
        };
        if name.is_empty() {
            continue;
        }
        out.push((name, value, range));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn names(h: &[TemplateHeader]) -> Vec<&str> {
        h.iter().map(|t| t.name.as_str()).collect()
    }

    #[test]
    fn ingress_locations_follow_the_template() {
        let h = ingress_location(&IngressLocation::default());
        assert_eq!(
            names(&h),
            [
                "Host",
                "X-Real-IP",
                "X-Forwarded-For",
                "X-Forwarded-Host",
                "X-Forwarded-Port",
                "X-Forwarded-Proto"
            ]
        );
        assert!(h.iter().all(|t| t.after_snippets));
        assert_eq!(h[5].value, "$scheme");
        let redirect = ingress_location(&IngressLocation {
            redirect_to_https: true,
            ..IngressLocation::default()
        });
        assert_eq!(redirect[5].value, "https");
        let ws = ingress_location(&IngressLocation {
            websocket: true,
            ..IngressLocation::default()
        });
        assert_eq!(names(&ws)[..2], ["Upgrade", "Connection"]);
        assert!(!ws[0].after_snippets);
        let grpc = ingress_location(&IngressLocation {
            grpc: true,
            websocket: true,
            ..IngressLocation::default()
        });
        assert_eq!(grpc.len(), 6);
    }

    #[test]
    fn request_headers_set_removes_the_default_case_insensitively() {
        let all = route_location(&RouteLocation::default());
        assert_eq!(all.len(), 8);
        let set = route_location(&RouteLocation {
            set: vec!["x-forwarded-proto".into(), "host".into()],
            ..RouteLocation::default()
        });
        assert!(!names(&set).contains(&"X-Forwarded-Proto"));
        assert!(!names(&set).contains(&"Host"));
        assert!(names(&set).contains(&"Upgrade"));
        let grpc = route_location(&RouteLocation {
            grpc: true,
            ..RouteLocation::default()
        });
        assert!(!names(&grpc).contains(&"Upgrade"));
    }

    #[test]
    fn proxy_set_headers_entries() {
        let e = proxy_set_headers("X-Tenant: blue, X-Forwarded-Proto:https ,X-Trace");
        assert_eq!(e.len(), 3);
        assert_eq!((e[0].0.as_str(), e[0].1.as_str()), ("X-Tenant", "blue"));
        assert_eq!(
            (e[1].0.as_str(), e[1].1.as_str()),
            ("X-Forwarded-Proto", "https")
        );
        assert_eq!(e[2].1, "$http_x_trace");
        let src = "X-Tenant: blue, X-Forwarded-Proto:https ,X-Trace";
        assert_eq!(&src[e[1].2.clone()], "X-Forwarded-Proto:https");
    }
}
