use crate::diagnostic::Diagnostic;
use crate::headers::{Family, Voice};
use crate::nginx::ast::Directive;
use crate::nginx::context::Ctx;
use crate::rules::{ParsedSnippet, declare_rule};

declare_rule! {
    /// ## What it does
    /// Finds `proxy_set_header` / `grpc_set_header` at server or http level (the `server-snippet`
    /// annotation, the ConfigMap `server-snippet` and `http-snippet`, or a `server`/`http` block of
    /// a rendered `nginx.conf`) that no proxying location will ever use.
    ///
    /// ## Why is this bad?
    /// nginx inherits `proxy_set_header` from the enclosing level "if and only if there are no
    /// `proxy_set_header` directives defined on the current level"
    /// ([nginx docs](https://nginx.org/en/docs/http/ngx_http_proxy_module.html#proxy_set_header)).
    /// Every location ingress-nginx generates defines its own list, so a server- or http-level line
    /// never reaches them: the configuration looks right, `nginx -t` accepts it, and the header is
    /// silently not sent.
    ///
    /// ## Example
    /// ```nginx
    /// # nginx.ingress.kubernetes.io/server-snippet
    /// proxy_set_header X-Tenant blue;
    /// ```
    ///
    /// ## Use instead
    /// ```nginx
    /// # nginx.ingress.kubernetes.io/configuration-snippet
    /// proxy_set_header X-Tenant blue;
    /// ```
    ///
    /// ## Fix
    /// Move the line into the `configuration-snippet` annotation (one Ingress) or the ConfigMap
    /// `location-snippet` (every Ingress). If ingress-nginx already sets the header, remove the
    /// line instead: moving it would create a duplicate.
    ///
    /// ## Known limits
    /// A location written inside the same snippet that proxies and has no `proxy_set_header` of its
    /// own does inherit the line; then nothing is reported.
    pub static INEFFECTIVE_INHERITED_HEADER = {
        id: "ineffective-inherited-header",
        name: "IneffectiveInheritedHeader",
        severity: Warning,
        summary: "proxy_set_header at server or http level never reaches ingress-nginx locations",
        since: "0.1.0",
    }
}

fn family_of(src: &str, d: &Directive) -> Option<Family> {
    if d.block.is_some() {
        return None;
    }
    Family::of_directive(d.name(src))
}

fn has_own(src: &str, dirs: &[Directive], family: Family) -> bool {
    dirs.iter().any(|d| family_of(src, d) == Some(family))
}

fn proxies(src: &str, dirs: &[Directive], family: Family) -> bool {
    let pass = match family {
        Family::Proxy => "proxy_pass",
        Family::Grpc => "grpc_pass",
    };
    dirs.iter().any(|d| {
        let name = d.name(src);
        name == pass
            || ((name == "if" || name == "limit_except") && proxies(src, d.children(), family))
    })
}

/// Whether some location below `dirs` proxies with the headers of this level.
fn inherited_below(src: &str, dirs: &[Directive], family: Family) -> bool {
    dirs.iter().any(|d| {
        let name = d.name(src);
        if d.block.is_none() || !(name == "location" || name == "server") {
            return false;
        }
        let children = d.children();
        if has_own(src, children, family) {
            return false;
        }
        (name == "location" && proxies(src, children, family))
            || inherited_below(src, children, family)
    })
}

/// Check the header lines of one level (the snippet's top level, or a block).
fn check_level(
    snippet: &ParsedSnippet<'_>,
    dirs: &[Directive],
    level: &str,
    controller_owns: &dyn Fn(&str) -> bool,
    voice: &Voice,
    out: &mut Vec<Diagnostic>,
) {
    let controller = voice.controller;
    let src = snippet.src();
    if !dirs.iter().any(|d| family_of(src, d).is_some()) {
        return;
    }
    // Whether some location uses this level's lines, per family (computed once: a level can hold
    // tens of thousands of lines).
    let proxy_used = inherited_below(src, dirs, Family::Proxy);
    let grpc_used = inherited_below(src, dirs, Family::Grpc);
    for d in dirs {
        let Some(family) = family_of(src, d) else {
            continue;
        };
        let Some(name_word) = d.args.first() else {
            continue;
        };
        let used = match family {
            Family::Proxy => proxy_used,
            Family::Grpc => grpc_used,
        };
        if used {
            continue;
        }
        let header = name_word.value(src).into_owned();
        let message = format!(
            "`{} {header}` at {level} level is never sent: every location {controller} generates sets its own {} lines, and nginx inherits from the {level} level only into locations that set none",
            family.directive(),
            family.directive()
        );
        let help = if controller_owns(&header) {
            match (voice.knob_for)(&header) {
                Some(knob) => format!(
                    "remove the line: {controller} already sends {header} in its locations, so moving it there would send it twice; {knob}"
                ),
                None => format!(
                    "remove the line: {controller} already sends {header} in its locations, so moving it there would send it twice"
                ),
            }
        } else {
            "move the line into the `configuration-snippet` annotation (one Ingress) or the ConfigMap `location-snippet` (every Ingress)".to_string()
        };
        let mut diag = snippet
            .diagnostic(&INEFFECTIVE_INHERITED_HEADER, d.head_span(), message)
            .help(help)
            .label("never inherited");
        diag.header = Some(header);
        out.push(diag);
    }
}

/// Check a snippet inserted at `root` (server or http) and the `server` blocks it defines.
pub fn check(
    snippet: &ParsedSnippet<'_>,
    root: Ctx,
    controller_owns: &dyn Fn(&str) -> bool,
    voice: &Voice,
    out: &mut Vec<Diagnostic>,
) {
    let src = snippet.src();
    match root {
        Ctx::SERVER => check_level(
            snippet,
            &snippet.config.directives,
            "server",
            controller_owns,
            voice,
            out,
        ),
        Ctx::HTTP => {
            check_level(
                snippet,
                &snippet.config.directives,
                "http",
                controller_owns,
                voice,
                out,
            );
            for server in snippet
                .config
                .directives
                .iter()
                .filter(|d| d.name(src) == "server")
            {
                check_level(
                    snippet,
                    server.children(),
                    "server",
                    controller_owns,
                    voice,
                    out,
                );
            }
        }
        Ctx::MAIN => {
            for http in snippet
                .config
                .directives
                .iter()
                .filter(|d| d.name(src) == "http")
            {
                check_level(
                    snippet,
                    http.children(),
                    "http",
                    controller_owns,
                    voice,
                    out,
                );
                for server in http.children().iter().filter(|d| d.name(src) == "server") {
                    check_level(
                        snippet,
                        server.children(),
                        "server",
                        controller_owns,
                        voice,
                        out,
                    );
                }
            }
        }
        _ => {}
    }
}
