use crate::diagnostic::{Applicability, Diagnostic};
use std::collections::HashMap;
use std::collections::hash_map::Entry;

use crate::headers::{Family, Voice};
use crate::rules::{
    HeaderLine, LocationKind, LocationModel, ParsedSnippet, declare_rule, joined, normalized_name,
    unbraced_eq, when_both_sent,
};

declare_rule! {
    /// ## What it does
    /// Finds a header that user sources set twice in one location: twice in one snippet, or once
    /// in the `configuration-snippet` annotation and again in the ConfigMap `location-snippet` or
    /// the `proxy-set-headers` ConfigMap. Headers ingress-nginx sets itself are reported by
    /// `duplicate-controller-header` and `redundant-forwarded-proto` instead.
    ///
    /// ## Why is this bad?
    /// All three sources land in the same `location`, and nginx sends every
    /// [`proxy_set_header`](https://nginx.org/en/docs/http/ngx_http_proxy_module.html#proxy_set_header)
    /// line: the backend gets the header twice (`a,b` once joined). Which copy "wins" depends on
    /// the backend framework.
    ///
    /// ## Example
    /// ```nginx
    /// proxy_set_header X-Tenant blue;
    /// proxy_set_header X-Tenant green;
    /// ```
    ///
    /// ## Use instead
    /// ```nginx
    /// proxy_set_header X-Tenant green;
    /// ```
    ///
    /// ## Fix
    /// Keep one line. When the two come from an annotation and the ConfigMap, decide which owner
    /// the header has; the ConfigMap applies to every Ingress. When both lines send the same
    /// value, `lint --fix` removes the reported one (a safe fix); with two values, choosing is
    /// left to you.
    ///
    /// ## Known limits
    /// An empty value (`""`) sends nothing and is not counted; a variable that is empty at run time
    /// is counted.
    pub static DUPLICATE_SNIPPET_HEADER = {
        id: "duplicate-snippet-header",
        name: "DuplicateSnippetHeader",
        severity: Warning,
        summary: "user snippets set the same header twice in one location, so nginx sends it twice",
        since: "0.1.0",
    }
}

/// Report the later of two user lines for a header the controller does not set.
pub fn check(model: &LocationModel, out: &mut Vec<Diagnostic>) {
    // The first user line of each name; a later one with the same name is the duplicate.
    let mut first: HashMap<String, &HeaderLine> = HashMap::new();
    for (_, later) in model.effective_user_lines() {
        if later.value.is_empty() || model.template_for(later).is_some() {
            continue;
        }
        let earlier = match first.entry(normalized_name(&later.name)) {
            Entry::Vacant(v) => {
                v.insert(later);
                continue;
            }
            Entry::Occupied(o) => *o.get(),
        };
        let (e, l) = (earlier.user().expect("user"), later.user().expect("user"));
        // Report on the line of the more specific source (an Ingress over the ConfigMap).
        let (primary, other) = if e.specificity > l.specificity {
            (earlier, later)
        } else {
            (later, earlier)
        };
        let other_user = other.user().expect("user");
        let message = format!(
            "{} is set twice in this location: nginx sends both lines{} and the backend sees `{}: {}`",
            primary.name,
            when_both_sent(&earlier.value, &later.value),
            primary.name.trim_end_matches(':'),
            joined(&earlier.value, &later.value)
        );
        let help = if e.source == l.source {
            "keep one of the two lines".to_string()
        } else {
            format!(
                "keep the header in one place: this line or the one in {}",
                other_user.source
            )
        };
        out.push(
            primary
                .diagnostic(&DUPLICATE_SNIPPET_HEADER, message)
                .help(help)
                .label(format!("{} set again", primary.name))
                .related(
                    other_user.location,
                    format!("{} also set here ({})", other.name, other_user.source),
                )
                // Two lines with one value: deleting one sends it once. With two values, which
                // one the backend should get is not a tool's choice.
                .fix_opt(
                    unbraced_eq(&other.value, &primary.value)
                        .then(|| primary.removal(Applicability::Safe))
                        .flatten(),
                ),
        );
    }
}

/// Duplicates inside the blocks a snippet writes itself: every `location`, `server` or `http`
/// block in it and, when `root_is_block` (a `server-snippet` or `http-snippet`), its top level.
/// nginx sends every header line of such a block to the backends of the locations that use
/// it, twice when the block names a header twice.
pub fn check_blocks(
    snippet: &ParsedSnippet<'_>,
    root_is_block: bool,
    voice: Voice,
    out: &mut Vec<Diagnostic>,
) {
    let src = snippet.src();
    let mut blocks = Vec::new();
    if root_is_block {
        blocks.push(snippet.config.directives.as_slice());
    }
    let mut stack = vec![snippet.config.directives.as_slice()];
    while let Some(dirs) = stack.pop() {
        for d in dirs.iter().filter(|d| d.block.is_some()) {
            if matches!(d.name(src), "location" | "server" | "http") {
                blocks.push(d.children());
            }
            stack.push(d.children());
        }
    }
    for dirs in blocks {
        let lines = snippet.header_lines(dirs, 1);
        if lines.len() < 2 {
            continue;
        }
        for family in [Family::Proxy, Family::Grpc] {
            if lines.iter().filter(|l| l.family == family).count() < 2 {
                continue;
            }
            let model = LocationModel::new(LocationKind::Proxied, family, voice, lines.clone());
            check(&model, out);
        }
    }
}
