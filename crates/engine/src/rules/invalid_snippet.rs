use crate::diagnostic::Diagnostic;
use crate::headers::Voice;
use crate::nginx::ast::TextKind;
use crate::nginx::context::{Ctx, validate};
use crate::rules::{ParsedSnippet, declare_rule};

declare_rule! {
    /// ## What it does
    /// Reports a snippet that nginx will not load: unbalanced braces, a missing `;`, an
    /// unterminated quote, a directive where nginx rejects it (`proxy_set_header` inside `if`, or
    /// in a `stream-snippet` / `main-snippet`), the wrong number of arguments, or a known directive
    /// spelt with capitals or `-` (`PROXY_SET_HEADER`: nginx names are case-sensitive). It also
    /// reports a manifest that cannot be read (not YAML, wrong types).
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
    /// context or arguments, nor reported as unknown unless they are a known directive spelt with
    /// capitals or `-`; other typos (`proxy_set_headers`) are not found. `include`d files are not
    /// read. Blocks nested more than 64 deep are reported and not read.
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
    // A whole `nginx.conf` ends as a file does; a snippet is a part of one.
    let text = if snippet.file.is_some() {
        TextKind::File
    } else {
        TextKind::Snippet
    };
    for e in &snippet.config.errors {
        let mut d = snippet
            .diagnostic(&INVALID_SNIPPET, e.span, e.kind.message(text))
            .help(format!("fix the syntax: {reload}"))
            .label("here");
        if let Some(opened) = e.opened_at {
            d = d.related(
                snippet.locate(opened),
                "the quoted string opens here: is its closing quote missing?",
            );
        }
        out.push(d);
    }
    // A directive with a syntax error in or right after its words is not judged again: its
    // arguments are not what the user meant (one mistake, one finding).
    let mut broken: Vec<u32> = snippet.config.errors.iter().map(|e| e.span.start).collect();
    broken.sort_unstable();
    let src = snippet.src();
    for e in validate(src, &snippet.config, root) {
        let first = broken.partition_point(|&at| at < e.span.start);
        if broken.get(first).is_some_and(|&at| at <= e.span.end) {
            continue;
        }
        if let Some(right) = &e.spelling {
            let written = &src[e.span.range()];
            let why = if written.contains('-') {
                "directive names are lowercase, with `_` between words"
            } else {
                "directive names are case-sensitive"
            };
            out.push(
                snippet
                    .diagnostic(&INVALID_SNIPPET, e.span, e.message)
                    .help(format!("write `{right}`: {why}; {reload}"))
                    .label("rejected by nginx"),
            );
            continue;
        }
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
