use crate::diagnostic::Diagnostic;
use crate::rules::{
    LocationModel, declare_rule, joined, removal_applicability, remove_advice, when_both_sent,
};

declare_rule! {
    /// ## What it does
    /// Finds a `proxy_set_header` (or `grpc_set_header` on gRPC backends) in a snippet or in the
    /// `proxy-set-headers` ConfigMap for a header that ingress-nginx already sets in the same
    /// location: Host, X-Forwarded-For, X-Real-IP, X-Forwarded-Host, X-Forwarded-Port,
    /// X-Forwarded-Scheme, X-Scheme, X-Request-ID, Upgrade, Connection, X-Original-Forwarded-For,
    /// and the conditional ones (X-Original-URI, ssl-client-*, auth response headers,
    /// X-Forwarded-Prefix). X-Forwarded-Proto has its own rule, `redundant-forwarded-proto`.
    ///
    /// ## Why is this bad?
    /// nginx sends every [`proxy_set_header`](https://nginx.org/en/docs/http/ngx_http_proxy_module.html#proxy_set_header)
    /// line of a location; a second line for the same name is a second header, not a
    /// replacement. Backends join the two (`203.0.113.7,203.0.113.7`), reject them, or pick one
    /// depending on the framework. Two `Host` lines are worse: RFC 9112 §3.2 requires the backend
    /// to answer **400 Bad Request** (gunicorn and Django do).
    ///
    /// ## Example
    /// ```nginx
    /// # nginx.ingress.kubernetes.io/configuration-snippet
    /// proxy_set_header Host $host;
    /// proxy_set_header X-Forwarded-For $proxy_add_x_forwarded_for;
    /// ```
    ///
    /// ## Use instead
    /// ```yaml
    /// metadata:
    ///   annotations:
    ///     nginx.ingress.kubernetes.io/upstream-vhost: internal.example.com
    /// ```
    /// and, for the address chain, `use-forwarded-headers: "true"` with
    /// `compute-full-forwarded-for: "true"` in the controller ConfigMap.
    ///
    /// ## Fix
    /// Remove the line and use the annotation or ConfigMap key that controls the controller's own
    /// value. `lint --fix` removes it when the line sends the controller's own value
    /// (`X-Real-IP $remote_addr`); with another value (`Host $host` against `$best_http_host`)
    /// the fix is unsafe (`--unsafe-fixes`): a backend that read the last copy sees the
    /// controller's value afterwards. For an entry of the `proxy-set-headers` ConfigMap the fix
    /// removes the entry.
    ///
    /// ## Known limits
    /// The custom-default-backend headers (`X-Code`, `X-Namespace`, ...) depend on endpoints at run
    /// time and are not modelled. A value that is an empty variable at run time sends no line.
    pub static DUPLICATE_CONTROLLER_HEADER = {
        id: "duplicate-controller-header",
        name: "DuplicateControllerHeader",
        severity: Error,
        summary: "a header ingress-nginx already sets in the location is set again, so nginx sends it twice",
        since: "0.1.0",
    }
}

/// Report user lines (other than X-Forwarded-Proto) that repeat a controller header.
pub fn check(model: &LocationModel, out: &mut Vec<Diagnostic>) {
    for (_, line) in model.effective_user_lines() {
        if line.value.is_empty() || line.is("x-forwarded-proto") {
            continue;
        }
        let Some(t) = model.template_for(line) else {
            continue;
        };
        let when = when_both_sent(&t.value, &line.value);
        let name = &line.name;
        let controller = model.voice.controller;
        let message = if line.is("host") && model.family == crate::headers::Family::Grpc {
            format!(
                "Host is already set by {controller} here: nginx sends two `host` fields{when} to the gRPC backend"
            )
        } else if line.is("host") {
            format!(
                "Host is already set by {controller} here: nginx sends two Host lines{when} and the backend answers 400 Bad Request"
            )
        } else {
            format!(
                "{name} is already set by {controller} here: nginx sends both lines{when} and the backend sees `{name}: {}`",
                joined(&t.value, &line.value)
            )
        };
        let help = match (model.voice.knob_for)(name) {
            Some(knob) => format!("{}; {knob}", remove_advice(line)),
            None => format!("{}; {controller} already sends {name}", remove_advice(line)),
        };
        out.push(
            line.diagnostic(&DUPLICATE_CONTROLLER_HEADER, message)
                .help(help)
                .label(format!("second {name} line"))
                .note(model.template_note(t))
                .related_opt(t.location, "set first here")
                .note_opt(line.colon_note())
                .fix_opt(line.removal(removal_applicability(&t.value, &line.value))),
        );
    }
}
