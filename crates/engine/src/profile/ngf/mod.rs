//! What NGINX Gateway Fabric (NGF, `nginx/nginx-gateway-fabric`, v2.x; facts at v2.6.7 and main
//! of 2026-08) renders around SnippetsFilter and SnippetsPolicy snippets, as collected in the
//! project's `nginx-gateway-fabric.md`:
//!
//! - A generated location `include`s the SnippetsFilter's `http.server.location` snippet
//!   *before* its own inline `proxy_set_header` lines (`grpc_set_header` for a GRPCRoute), so a
//!   snippet line for one of NGF's headers is a second line.
//! - Those lines are the route's RequestHeaderModifier `add`, `set` and `remove` (as `""`), then
//!   NGF's base headers whose name is not among them, compared **case-sensitively**: a filter's
//!   `x-forwarded-proto` does not replace NGF's `X-Forwarded-Proto`.
//! - HTTPRoute locations add `Upgrade` and `Connection` (`$connection_keepalive`: empty on
//!   ordinary requests since every upstream has keepalive from v2.4); GRPCRoute ones `Authority`.
//! - `http` and `http.server` snippets never reach a generated location (each sets its own
//!   header lines): ineffective there, not duplicates.
//! - Snippets are off unless NGF runs with `--snippets` (a flag no object shows; a setting here).

use crate::headers::{Family, TemplateHeader, Voice};

mod check;

pub use check::Ngf;

/// `spec.controllerName` of NGF's GatewayClass.
pub const CONTROLLER_NAME: &str = "gateway.nginx.org/nginx-gateway-controller";

/// The controller's name in messages.
pub const DISPLAY_NAME: &str = "NGINX Gateway Fabric";

/// The API group and version of SnippetsFilter and SnippetsPolicy.
pub const API_VERSION: &str = "gateway.nginx.org/v1alpha1";

/// The release the lines are modelled on.
pub const VERSION: &str = "v2.6";

fn line(name: &str, value: &str, reason: &str) -> TemplateHeader {
    TemplateHeader {
        after_snippets: true,
        ..TemplateHeader::new(name, value, reason)
    }
}

/// NGF's own header lines of a route location, after the snippet include: the base headers
/// whose exact name no RequestHeaderModifier header has (`modified`), then the route kind's extra
/// lines.
#[must_use]
pub fn route_location(family: Family, modified: &[String]) -> Vec<TemplateHeader> {
    let kept = |name: &str| !modified.iter().any(|m| m == name);
    let mut out: Vec<TemplateHeader> = [
        line("Host", "$gw_api_compliant_host", "always"),
        line("X-Forwarded-For", "$proxy_add_x_forwarded_for", "always"),
        line("X-Real-IP", "$remote_addr", "always"),
        line("X-Forwarded-Proto", "$scheme", "always"),
        line("X-Forwarded-Host", "$host", "always"),
        line("X-Forwarded-Port", "$server_port", "always"),
    ]
    .into_iter()
    .filter(|t| kept(&t.name))
    .collect();
    match family {
        Family::Proxy => {
            out.push(line("Upgrade", "$http_upgrade", "HTTPRoute"));
            out.push(line("Connection", "$connection_keepalive", "HTTPRoute"));
        }
        Family::Grpc => out.push(line("Authority", "$gw_api_compliant_host", "GRPCRoute")),
    }
    out
}

/// Header names NGF writes in some location (lowercase).
#[must_use]
pub fn owned_names() -> std::collections::HashSet<String> {
    route_location(Family::Proxy, &[])
        .into_iter()
        .chain(route_location(Family::Grpc, &[]))
        .map(|t| t.name.to_ascii_lowercase())
        .collect()
}

/// The supported way to change a header NGF sets.
#[must_use]
pub fn knob_for(header: &str) -> Option<&'static str> {
    let h = header.trim_end_matches(':').to_ascii_lowercase();
    Some(match h.as_str() {
        "x-forwarded-proto" | "x-forwarded-for" | "x-real-ip" | "x-forwarded-host"
        | "x-forwarded-port" => {
            "to send another value, set it with a RequestHeaderModifier filter on the route rule, spelled exactly as NGINX Gateway Fabric spells it (it compares names case-sensitively): it then leaves its own line out"
        }
        "host" | "connection" | "upgrade" | "authority" => {
            "NGINX Gateway Fabric rejects this name in a RequestHeaderModifier filter; it sets the header itself"
        }
        _ => return None,
    })
}

/// What happens when nginx rejects a snippet NGF renders.
pub const RELOAD_NOTE: &str = "nginx -t rejects this; NGINX Gateway Fabric does not validate snippet values, so its agent's reload fails and nginx keeps the last valid configuration";

/// How findings speak of NGF.
#[must_use]
pub fn voice() -> Voice {
    Voice {
        controller: DISPLAY_NAME,
        version: VERSION,
        knob_for,
        reload_note: RELOAD_NOTE,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_modifier_replaces_only_the_exact_spelling() {
        let names = |h: Vec<TemplateHeader>| h.into_iter().map(|t| t.name).collect::<Vec<_>>();
        let all = names(route_location(Family::Proxy, &[]));
        assert_eq!(all.len(), 8);
        let exact = names(route_location(
            Family::Proxy,
            &["X-Forwarded-Proto".to_string()],
        ));
        assert!(!exact.contains(&"X-Forwarded-Proto".to_string()));
        let lower = names(route_location(
            Family::Proxy,
            &["x-forwarded-proto".to_string()],
        ));
        assert!(lower.contains(&"X-Forwarded-Proto".to_string()));
        let grpc = names(route_location(Family::Grpc, &[]));
        assert!(grpc.contains(&"Authority".to_string()));
        assert!(!grpc.contains(&"Upgrade".to_string()));
    }
}
