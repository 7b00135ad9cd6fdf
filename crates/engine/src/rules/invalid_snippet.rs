use crate::diagnostic::Diagnostic;
use crate::headers::Voice;
use crate::nginx::context::{Ctx, validate};
use crate::rules::{ParsedSnippet, declare_rule};

declare_rule! {
    /// ## What it does
    /// Reports a snippet that nginx will not load: unbalanced braces, a missing `;`, an
    /// unterminated quote, a directive where nginx rejects it (`proxy_set_header` inside `if`, or
    /// in a `stream-snippet` / `main-snippet`), or the wrong number of arguments. It also reports
    /// a manifest that cannot be read (not YAML, wrong types).
    ///
    /// ## Why is this bad?
    /// Since ingress-nginx v1.11.5 / v1.12.1 the admission webhook no longer runs `nginx -t`
    /// (the CVE-2025-1974 fix), so a broken snippet is accepted at `kubectl apply` and fails only
    /// when the controller reloads. From then on the controller keeps its old configuration and
    /// stops applying *every* later change, for every Ingress. See the
    /// [nginx docs on contexts](https://nginx.org/en/docs/beginners_guide.html#conf_structure).
    ///
    /// ## Example
    /// ```nginx
    /// if ($http_x_forwarded_proto = "") {
    ///     proxy_set_header X-Forwarded-Proto https;
    /// }
    /// ```
    ///
    /// ## Use instead
    /// ```nginx
    /// if ($http_x_forwarded_proto = "") {
    ///     more_set_input_headers "X-Forwarded-Proto: https";
    /// }
    /// ```
    ///
    /// ## Fix
    /// Correct the syntax, or move the directive to a context that accepts it. There is no
    /// automatic fix.
    ///
    /// ## Known limits
    /// Directives that snippet-guard does not know (third-party modules) are not checked for
    /// context or arguments, and `include`d files are not read.
    pub static INVALID_SNIPPET = {
        id: "invalid-snippet",
        name: "InvalidSnippet",
        severity: Error,
        summary: "the snippet does not parse, or a directive is not allowed where it lands",
        since: "0.1.0",
    }
}

/// Report directives of a snippet inserted into a proxied location that the template already
/// writes there once (nginx: "directive is duplicate").
pub fn check_template_directives(
    snippet: &ParsedSnippet<'_>,
    prefix: &str,
    directives: &[(&str, &str)],
    voice: &Voice,
    out: &mut Vec<Diagnostic>,
) {
    let reload = voice.reload_note;
    let controller = voice.controller;
    let src = snippet.src();
    for d in &snippet.config.directives {
        let name = d.name(src);
        let Some((_, knob)) = directives.iter().find(|(n, _)| *n == name) else {
            continue;
        };
        let help = if knob.starts_with("the ") {
            format!("remove the line and use {knob}; {reload}")
        } else {
            format!("remove the line and set the annotation `{prefix}/{knob}` instead; {reload}")
        };
        out.push(
            snippet
                .diagnostic(
                    &INVALID_SNIPPET,
                    d.head_span(),
                    format!("\"{name}\" directive is duplicate: {controller} already writes it in every location"),
                )
                .help(help)
                .label("rejected by nginx"),
        );
    }
}

/// Report syntax errors and directives nginx refuses in context `root`.
pub fn check(snippet: &ParsedSnippet<'_>, root: Ctx, voice: &Voice, out: &mut Vec<Diagnostic>) {
    let reload = voice.reload_note;
    for e in &snippet.config.errors {
        out.push(
            snippet
                .diagnostic(&INVALID_SNIPPET, e.span, e.kind.to_string())
                .help(format!("fix the syntax: {reload}"))
                .label("here"),
        );
    }
    let src = snippet.src();
    for e in validate(src, &snippet.config, root) {
        let help = if e.message.contains("\"proxy_set_header\"")
            || e.message.contains("\"grpc_set_header\"")
        {
            if e.message.contains("in a if block") {
                format!(
                    "move the line out of the `if` block, or use `more_set_input_headers` which is allowed in `if`; {reload}"
                )
            } else {
                format!(
                    "request headers can be set only in http, server or location blocks; {reload}"
                )
            }
        } else {
            format!("correct the directive; {reload}")
        };
        out.push(
            snippet
                .diagnostic(&INVALID_SNIPPET, e.span, e.message)
                .help(help)
                .label("rejected by nginx"),
        );
    }
}
