//! `lint --fix` on generated manifests: snippets of redundant, conflicting and unrelated lines,
//! written as every kind of YAML scalar (block `|`/`|-`/`|+`/`>` with or without an indentation
//! indicator, double- and single-quoted, plain), as JSON, in flow style, with LF or CRLF, between
//! other documents. Whatever the mix:
//!
//! - the fixed file reads as YAML (and JSON stays JSON), and the safety net that undoes a fix
//!   which breaks a file never fires;
//! - the re-check reports none of the findings that were fixed, and no fix is left to apply;
//! - every byte outside the snippet's value is unchanged, except the key's line when the
//!   snippet became empty and was removed with its key.

use proptest::prelude::*;
use snippet_guard::fix::{self, Input};
use snippet_guard::input::{Format, add_text};
use snippet_guard::model::Workspace;
use snippet_guard::{Settings, check};

/// Lines a snippet is made of: safe and unsafe fixes, findings without a fix, and lines the
/// fixes must leave alone.
const LINES: [&str; 11] = [
    "proxy_set_header X-Forwarded-Proto $scheme;",
    "proxy_set_header X-Real-IP $remote_addr;",
    "proxy_set_header Host $host;",
    "more_set_headers \"X-Frame-Options: DENY\";",
    "# a comment",
    "proxy_set_header X-Tenant blue;",
    "proxy_set_header X-Forwarded-Proto \"\";",
    "proxy_set_header X-Forwarded-Proto https; more_set_headers \"A: b\";",
    "  proxy_set_header X-Forwarded-Proto $scheme;  # indented, with a comment",
    "",
    "proxy_set_header X-Forwarded-Proto\n    https;",
];

const KEY: &str = "nginx.ingress.kubernetes.io/configuration-snippet";

#[derive(Clone, Copy, Debug)]
enum Style {
    Block {
        folded: bool,
        chomp: &'static str,
        indicator: bool,
    },
    Double,
    Single,
    Plain,
    Json,
    Flow,
}

fn style() -> impl Strategy<Value = Style> {
    prop_oneof![
        (
            any::<bool>(),
            prop::sample::select(vec!["", "-", "+"]),
            any::<bool>()
        )
            .prop_map(|(folded, chomp, indicator)| Style::Block {
                folded,
                chomp,
                indicator
            }),
        Just(Style::Double),
        Just(Style::Single),
        Just(Style::Plain),
        Just(Style::Json),
        Just(Style::Flow),
    ]
}

/// Text a plain scalar can hold as it is.
fn plain_ok(s: &str) -> bool {
    !s.is_empty()
        && !s.contains(['\n', '\t'])
        && !s.contains(": ")
        && !s.contains(" #")
        && !s.ends_with(' ')
        && !s.starts_with(|c: char| "-?:,[]{}#&*!|>'\"%@` ".contains(c))
}

/// A manifest (head, value, tail): the head ends with the annotation's key, the value is the
/// snippet as the style writes it. None when the style cannot write this snippet.
fn manifest(
    snippet: &str,
    style: Style,
    other_annotation: bool,
    docs: bool,
) -> Option<(String, String, String)> {
    let before = if docs {
        "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: other, namespace: default}\ndata: {k: \"proxy_set_header X-Forwarded-Proto $scheme;\"}\n---\n"
    } else {
        ""
    };
    let after = if docs {
        "---\nkind: Service\napiVersion: v1\nmetadata: {name: p}\n"
    } else {
        ""
    };
    let other = if other_annotation {
        "    cert-manager.io/cluster-issuer: letsencrypt\n"
    } else {
        ""
    };
    let head = format!(
        "{before}apiVersion: networking.k8s.io/v1\nkind: Ingress\nmetadata:\n  name: p\n  namespace: default\n  annotations:\n{other}    {KEY}: "
    );
    let tail = format!("spec:\n  ingressClassName: nginx\n{after}");
    match style {
        Style::Block {
            folded,
            chomp,
            indicator,
        } => {
            let lines: Vec<&str> = snippet.split('\n').collect();
            // A first line that starts with a blank needs the indicator; so does a snippet
            // that starts with an empty line.
            let indicator = indicator || snippet.starts_with([' ', '\n']);
            if snippet.trim().is_empty() {
                return None;
            }
            let mut value = format!(
                "{}{}{}\n",
                if folded { '>' } else { '|' },
                if indicator { "2" } else { "" },
                chomp
            );
            for l in lines {
                if !l.is_empty() {
                    value.push_str("      ");
                    value.push_str(l);
                }
                value.push('\n');
            }
            Some((head, value, tail))
        }
        Style::Double => Some((
            head,
            serde_json::to_string(snippet).expect("a string"),
            format!("\n{tail}"),
        )),
        Style::Single => (!snippet.contains('\n')).then(|| {
            (
                head,
                format!("'{}'", snippet.replace('\'', "''")),
                format!("\n{tail}"),
            )
        }),
        Style::Plain => plain_ok(snippet).then(|| (head, snippet.to_string(), format!("\n{tail}"))),
        Style::Flow => {
            let value = serde_json::to_string(snippet).expect("a string");
            let other = if other_annotation {
                ", cert-manager.io/cluster-issuer: letsencrypt"
            } else {
                ""
            };
            Some((
                format!(
                    "{before}apiVersion: networking.k8s.io/v1\nkind: Ingress\nmetadata: {{name: p, namespace: default, annotations: {{{KEY}: "
                ),
                value,
                format!("{other}}}}}\nspec: {{ingressClassName: nginx}}\n{after}"),
            ))
        }
        Style::Json => {
            let value = serde_json::to_string(snippet).expect("a string");
            let other = if other_annotation {
                ", \"cert-manager.io/cluster-issuer\": \"letsencrypt\""
            } else {
                ""
            };
            Some((
                format!(
                    "{{\"apiVersion\": \"networking.k8s.io/v1\", \"kind\": \"Ingress\",\n \"metadata\": {{\"name\": \"p\", \"namespace\": \"default\", \"annotations\": {{\"{KEY}\": "
                ),
                value,
                format!("{other}}}}},\n \"spec\": {{\"ingressClassName\": \"nginx\"}}}}\n"),
            ))
        }
    }
}

fn read(text: &str) -> Workspace {
    let mut ws = Workspace::new();
    add_text(&mut ws, "p.yaml", text, Format::Yaml);
    ws
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 400, ..ProptestConfig::default() })]

    #[test]
    fn fixes_keep_the_file_valid_and_touch_only_the_snippet(
        picks in proptest::collection::vec(0..LINES.len(), 1..7),
        trailing_newline in any::<bool>(),
        style in style(),
        other_annotation in any::<bool>(),
        docs in any::<bool>(),
        crlf in any::<bool>(),
        unsafe_fixes in any::<bool>(),
    ) {
        let mut snippet = picks.iter().map(|&i| LINES[i]).collect::<Vec<_>>().join("\n");
        if trailing_newline {
            snippet.push('\n');
        }
        let Some((head, value, tail)) = manifest(&snippet, style, other_annotation, docs) else {
            return Ok(());
        };
        let json = matches!(style, Style::Json);
        let crlf = crlf && !json;
        let eol = |s: &str| if crlf { s.replace('\n', "\r\n") } else { s.to_string() };
        let (head, value, tail) = (eol(&head), eol(&value), eol(&tail));
        let text = format!("{head}{value}{tail}");
        let original = read(&text);
        prop_assert!(original.load_errors.is_empty(), "{:?}\n{text}", original.load_errors);
        let before = check(&original, &Settings::default());

        let input = Input { name: "p.yaml".into(), text: text.clone(), format: Format::Yaml, fixable: true };
        let out = fix::run(&[input], &Settings::default(), unsafe_fixes);
        let fixed = &out.texts[0];
        prop_assert!(out.reverted.is_empty(), "a fix broke the file:\n{text}");
        prop_assert!(!out.unfinished);

        // A line that is alone on its line of a quoted value is always fixed.
        if matches!(style, Style::Double | Style::Json | Style::Flow) && picks.contains(&1) {
            prop_assert!(!out.fixed.is_empty(), "nothing fixed in\n{text}");
        }

        // Valid: YAML reads without errors, JSON stays JSON.
        let again = read(fixed);
        prop_assert!(again.load_errors.is_empty(), "{:?}\n--- from\n{text}\n--- to\n{fixed}", again.load_errors);
        if json {
            prop_assert!(serde_json::from_str::<serde_json::Value>(fixed).is_ok(), "{fixed}");
        }

        // Nothing fixed is reported again, and no applicable fix is left.
        let after = check(&again, &Settings::default());
        prop_assert_eq!(after.len() + out.fixed.len(), before.len(), "\n--- from\n{}\n--- to\n{}", text, fixed);
        let allowed = |d: &snippet_guard::Diagnostic| d.fix.as_ref().is_some_and(|f| unsafe_fixes || f.applicability == snippet_guard::diagnostic::Applicability::Safe);
        prop_assert!(!after.iter().any(allowed), "{:?}", after.iter().filter(|d| allowed(d)).map(snippet_guard::Diagnostic::one_line).collect::<Vec<_>>());

        // Only the snippet's bytes changed (or, emptied, it went with its key's line).
        if fixed.starts_with(&head) {
            prop_assert!(fixed.ends_with(&tail), "tail changed:\n{fixed}");
            prop_assert!(fixed.len() >= head.len() + tail.len());
        } else {
            // The key's line went, with the line break after the value.
            let nl = eol("\n");
            let key_line = head.rfind(&nl).map_or(0, |i| i + nl.len());
            let rest = tail.strip_prefix(&nl).unwrap_or(&tail);
            prop_assert_eq!(format!("{}{}", &head[..key_line], rest), fixed.clone(), "\n--- from\n{}", text);
        }
    }
}
