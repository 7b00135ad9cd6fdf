use crate::diagnostic::Diagnostic;
use crate::rules::{
    LocationModel, declare_rule, joined, removal_applicability, remove_advice, when_both_sent,
};

declare_rule! {
    /// ## What it does
    /// Finds a `proxy_set_header X-Forwarded-Proto` (or `grpc_set_header` on gRPC backends) that
    /// lands in a location where ingress-nginx already sets X-Forwarded-Proto: in a
    /// `configuration-snippet` annotation, the controller ConfigMap's `location-snippet`, or the
    /// ConfigMap named by `proxy-set-headers`.
    ///
    /// ## Why is this bad?
    /// ingress-nginx renders `proxy_set_header X-Forwarded-Proto $pass_access_scheme;` in every
    /// location, before the snippets. nginx does not replace a header set twice on one level: it
    /// sends every [`proxy_set_header`](https://nginx.org/en/docs/http/ngx_http_proxy_module.html#proxy_set_header)
    /// line, so the backend receives two `X-Forwarded-Proto` lines and joins them into
    /// `https,https`. Django up to 4.0 then answers `request.is_secure() == False` and builds
    /// `http://` links; every Django version does so when the first value is `http` (TLS ended at
    /// a load balancer); gunicorn answers 400 "Contradictory scheme headers" when the values
    /// differ; uvicorn takes the last one. `nginx -t` accepts the configuration.
    ///
    /// ## Example
    /// ```nginx
    /// # nginx.ingress.kubernetes.io/configuration-snippet
    /// proxy_set_header X-Forwarded-Proto $scheme;
    /// ```
    ///
    /// ## Use instead
    /// ```nginx
    /// # nothing: ingress-nginx already sends X-Forwarded-Proto
    /// ```
    /// To pass on the scheme a load balancer in front of ingress-nginx saw, set
    /// `use-forwarded-headers: "true"` in the controller ConfigMap.
    ///
    /// ## Fix
    /// Remove the line (`lint --fix`). The fix is safe when the line sends what ingress-nginx
    /// sends (`$pass_access_scheme`, or `$scheme`, which it is unless `use-forwarded-headers` is
    /// on). Any other value (`https`, `$http_x_forwarded_proto`) makes the fix unsafe
    /// (`--unsafe-fixes`): it changes behaviour for backends that took the *last* value
    /// (uvicorn) and relied on the snippet's; for them, `use-forwarded-headers` is the supported
    /// way.
    ///
    /// ## Known limits
    /// A value that is a variable which is empty at run time (`$http_x_forwarded_proto` with no
    /// such request header) sends no line; the finding says so but still fires.
    pub static REDUNDANT_FORWARDED_PROTO = {
        id: "redundant-forwarded-proto",
        name: "RedundantForwardedProto",
        severity: Error,
        summary: "X-Forwarded-Proto is set again where ingress-nginx already sets it: the backend sees `https,https`",
        since: "0.1.0",
    }
}

/// Report every user X-Forwarded-Proto line that repeats the controller's.
pub fn check(model: &LocationModel, out: &mut Vec<Diagnostic>) {
    for (_, line) in model.effective_user_lines() {
        if line.value.is_empty() || !line.is("x-forwarded-proto") {
            continue;
        }
        let Some(t) = model.template_for(line) else {
            continue;
        };
        let when = when_both_sent(&t.value, &line.value);
        let message = format!(
            "X-Forwarded-Proto is already set by {} here: nginx sends both lines{when} and the backend sees `X-Forwarded-Proto: {}`",
            model.voice.controller,
            joined(&t.value, &line.value)
        );
        let help = format!(
            "{}: {} already sends X-Forwarded-Proto; {}",
            remove_advice(line),
            model.voice.controller,
            (model.voice.knob_for)(&line.name).unwrap_or_default()
        );
        out.push(
            line.diagnostic(&REDUNDANT_FORWARDED_PROTO, message)
                .help(help)
                .label("second X-Forwarded-Proto line")
                .note(model.template_note(t))
                .related_opt(t.location, "set first here")
                .note_opt(line.colon_note())
                .fix_opt(line.removal(removal_applicability(&t.value, &line.value))),
        );
    }
}
