use crate::diagnostic::{Diagnostic, Provenance, Severity};
use crate::model::{Entry, Object};
use crate::rules::{ParsedSnippet, declare_rule};
use crate::source::Location;

declare_rule! {
    /// ## What it does
    /// Finds snippets and header settings that the controller does not render, so that nothing
    /// of them reaches nginx while the user believes they work:
    /// - annotation snippets when the controller ConfigMap switches them off
    ///   (`allow-snippet-annotations: "false"`, the default since ingress-nginx v1.9, or an
    ///   `annotations-risk-level` below `Critical`, the default from v1.12);
    /// - the snippets of a canary Ingress (ingress-nginx renders the main Ingress's);
    /// - a `proxy-set-headers` value without a namespace (ingress-nginx looks `namespace/name` up
    ///   and finds nothing);
    /// - `include` inside a snippet: snippet-guard does not read the included file;
    /// - snippets the serving controller never reads: an `nginx.ingress.kubernetes.io/`
    ///   snippet on an Ingress whose class belongs to F5 NGINX Ingress Controller, or an
    ///   `nginx.org/` one on an ingress-nginx Ingress (teams moving between them copy both);
    /// - F5 NGINX Ingress Controller snippets when it runs without `-enable-snippets`
    ///   (`--nic-enable-snippets false`): it rejects such an Ingress and ignores the snippet
    ///   fields of a VirtualServer;
    /// - NGINX Gateway Fabric SnippetsFilters that no route among the inputs references (nothing
    ///   of them is rendered), and, without `--snippets` (`--ngf-snippets false`),
    ///   SnippetsFilters, SnippetsPolicies and the route rules that reference a SnippetsFilter
    ///   (NGF does not watch them and such a rule answers 500).
    ///
    /// ## Why is this bad?
    /// The object is accepted and nothing warns: the header the snippet was meant to set is
    /// silently not sent (or, for `include`, not checked). When the snippet would also have been
    /// a duplicate, turning the gate on later breaks the backend; the finding is then a warning.
    ///
    /// ## Example
    /// ```nginx
    /// # nginx.ingress.kubernetes.io/configuration-snippet, with allow-snippet-annotations: "false"
    /// proxy_set_header X-Tenant blue;
    /// ```
    ///
    /// ## Use instead
    /// ```nginx
    /// # a supported annotation, or allow-snippet-annotations: "true" and
    /// # annotations-risk-level: Critical in the controller ConfigMap (mind CVE-2025-1974)
    /// ```
    ///
    /// ## Fix
    /// Remove the snippet, or switch the gate on knowingly. For `proxy-set-headers`, write
    /// `namespace/name`.
    ///
    /// ## Known limits
    /// The gates are read from the controller ConfigMap given with the inputs; without it,
    /// snippets are judged as rendered.
    pub static IGNORED_SNIPPET = {
        id: "ignored-snippet",
        name: "IgnoredSnippet",
        severity: Info,
        summary: "a snippet or header setting that the controller does not render",
        since: "0.2.0",
    }
}

/// A whole snippet the controller does not render; a warning when it would also have sent a
/// header twice (`would_duplicate` names the headers).
#[must_use]
pub fn not_rendered(
    snippet: &ParsedSnippet<'_>,
    why: &str,
    help: &str,
    would_duplicate: &[String],
) -> Diagnostic {
    let whole = crate::source::Span::new(0, snippet.src().trim_end().len());
    let message = if would_duplicate.is_empty() {
        format!("this snippet is not rendered: {why}")
    } else {
        format!(
            "this snippet is not rendered: {why}; once rendered, it would send {} twice",
            would_duplicate.join(", ")
        )
    };
    let mut d = snippet
        .diagnostic(&IGNORED_SNIPPET, whole, message)
        .help(help.to_string())
        .label("never reaches nginx");
    if !would_duplicate.is_empty() {
        d.severity = Severity::Warning;
    }
    d
}

/// `include` lines of a snippet: their files are not read.
pub fn includes(snippet: &ParsedSnippet<'_>, out: &mut Vec<Diagnostic>) {
    let src = snippet.src();
    let mut stack = vec![snippet.config.directives.as_slice()];
    while let Some(dirs) = stack.pop() {
        for d in dirs {
            if d.name(src) == "include" {
                out.push(
                    snippet
                        .diagnostic(
                            &IGNORED_SNIPPET,
                            d.head_span(),
                            "the included file is not checked: snippet-guard reads only the snippet"
                                .to_string(),
                        )
                        .help("lint the included file too, or write its lines into the snippet")
                        .label("not read"),
                );
            }
            if d.block.is_some() {
                stack.push(d.children());
            }
        }
    }
}

/// A setting (at `location`) that the controller ignores, with its object and where it is written.
#[must_use]
pub fn setting(location: Location, message: String, help: &str, severity: Severity) -> Diagnostic {
    let mut d = Diagnostic::new(&IGNORED_SNIPPET, location, message)
        .help(help.to_string())
        .label("ignored");
    d.severity = severity;
    d
}

/// A snippet annotation of another controller (`owner`) on an object that `serving` judges:
/// `serving` never reads it; `instead` is its own annotation for the same place.
#[must_use]
pub fn foreign(
    object: &Object,
    entry: &Entry,
    owner: &str,
    serving: &str,
    instead: Option<&str>,
) -> Diagnostic {
    let meta = object.meta();
    let message = format!(
        "`{}` is an annotation of {owner}: {serving} serves this {} and ignores it, so nothing of this snippet reaches nginx",
        entry.key, meta.object.kind
    );
    let help = match instead {
        Some(key) => format!(
            "{serving} reads `{key}` for this place: move the lines there if they are still needed, checking each against the headers {serving} already sets"
        ),
        None => format!("{serving} has no annotation for this place: remove it"),
    };
    let mut d = Diagnostic::new(&IGNORED_SNIPPET, entry.key_location, message)
        .help(help)
        .label(format!("not read by {serving}"));
    d.object = Some(meta.object.clone());
    d.source = Some(Provenance::Annotation(entry.key.clone()));
    d
}
