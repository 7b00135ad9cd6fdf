//! No input makes the engine panic: random bytes and random mutations of valid snippets go
//! through the parser, the context check and the whole lint path, and always come back as a tree
//! or diagnostics whose spans lie inside their file.

use std::fmt::Write as _;

use proptest::prelude::*;
use snippet_guard::input::{Format, add_bytes, add_text};
use snippet_guard::model::Workspace;
use snippet_guard::nginx::{context, parser};
use snippet_guard::{Settings, check};

const SEEDS: [&str; 6] = [
    "proxy_set_header X-Forwarded-Proto $scheme;",
    "proxy_set_header \"Host\" '$host'; # trailing\nmore_set_input_headers \"X-A: b\";",
    "if ($http_x = \"\") { more_set_input_headers 'X-Forwarded-Proto: https'; }",
    "access_by_lua_block { local s = \"}\" -- }\n local t = [[ { ]] }\nproxy_set_header X-A ${host}b;",
    "location /x { proxy_pass http://a; proxy_set_header X-Tenant blue; }",
    "set $a \"multi\nline\"; return 200 \"ok\\\"\";",
];

const TRICKY: &[char] = &[
    '{', '}', ';', '"', '\'', '\\', '$', '#', '\n', ' ', '(', ')', '\0', 'é',
];

fn mutate(seed: &str, edits: &[(usize, usize, usize)]) -> String {
    let mut chars: Vec<char> = seed.chars().collect();
    for &(kind, pos, c) in edits {
        let pos = if chars.is_empty() {
            0
        } else {
            pos % (chars.len() + 1)
        };
        let c = TRICKY[c % TRICKY.len()];
        match kind % 3 {
            0 => chars.insert(pos, c),
            1 if pos < chars.len() => {
                chars.remove(pos);
            }
            _ if pos < chars.len() => chars[pos] = c,
            _ => chars.push(c),
        }
    }
    chars.into_iter().collect()
}

fn assert_spans_in_bounds(ws: &Workspace, diags: &[snippet_guard::Diagnostic]) {
    for d in diags {
        let f = ws.sources.get(d.primary.file);
        assert!(d.primary.span.start <= d.primary.span.end);
        assert!(d.primary.span.end as usize <= f.text.len(), "{d:?}");
        let _ = snippet_guard::render::text::render_one(&ws.sources, d, false);
    }
}

fn lint_snippet(snippet: &str) {
    // JSON keeps any snippet text intact inside the manifest.
    let doc = serde_json::json!({
        "apiVersion": "networking.k8s.io/v1",
        "kind": "Ingress",
        "metadata": {"name": "p", "annotations": {
            "nginx.ingress.kubernetes.io/configuration-snippet": snippet,
            "nginx.ingress.kubernetes.io/server-snippet": snippet,
        }},
    });
    let mut ws = Workspace::new();
    add_text(&mut ws, "p.json", &doc.to_string(), Format::Yaml);
    let diags = check(&ws, &Settings::default());
    assert_spans_in_bounds(&ws, &diags);
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 512, ..ProptestConfig::default() })]

    #[test]
    fn random_bytes_parse(bytes in proptest::collection::vec(any::<u8>(), 0..400)) {
        let text = String::from_utf8_lossy(&bytes);
        let config = parser::parse(&text);
        for e in &config.errors {
            prop_assert!(e.span.end as usize <= text.len());
        }
        let _ = context::validate(&text, &config, context::Ctx::LOCATION);
        let mut ws = Workspace::new();
        add_bytes(&mut ws, "r.conf", &bytes, Format::Conf);
        add_bytes(&mut ws, "r.yaml", &bytes, Format::Yaml);
        let diags = check(&ws, &Settings::default());
        assert_spans_in_bounds(&ws, &diags);
    }

    #[test]
    fn mutated_snippets_lint(seed in 0..SEEDS.len(), edits in proptest::collection::vec((0..3usize, 0..200usize, 0..64usize), 0..12)) {
        let snippet = mutate(SEEDS[seed], &edits);
        let config = parser::parse(&snippet);
        let _ = context::validate(&snippet, &config, context::Ctx::SERVER);
        lint_snippet(&snippet);
    }

    /// A configuration read in pieces (as a large `nginx.conf` is, one thread per piece) is
    /// either exactly what one reading gives or refused, wherever the cuts fall and whatever
    /// the mutations broke.
    #[test]
    fn split_reading_is_exact_or_refused(
        servers in 1..6usize,
        edits in proptest::collection::vec((0..3usize, 0..2000usize, 0..64usize), 0..6),
        cuts in proptest::collection::vec(any::<prop::sample::Index>(), 1..4),
        at_servers in any::<bool>(),
    ) {
        let mut conf = String::from("events {}\nhttp {\n");
        for (i, seed) in SEEDS.iter().cycle().take(servers).enumerate() {
            let _ = writeln!(conf, "\tserver {{\n\t\tserver_name s{i};\n\t\tlocation / {{\n{seed}\n\t\t}}\n\t}}");
        }
        conf.push_str("}\n");
        let conf = mutate(&conf, &edits);
        let starts: Vec<usize> = snippet_guard::source::line_starts(conf.as_bytes())
            .into_iter()
            .map(|o| o as usize)
            .filter(|&o| o > 0 && o < conf.len())
            .filter(|&o| !at_servers || conf[o..].starts_with("\tserver {"))
            .collect();
        prop_assume!(!starts.is_empty());
        let mut cuts: Vec<usize> = cuts.iter().map(|i| starts[i.index(starts.len())]).collect();
        cuts.sort_unstable();
        cuts.dedup();
        if let Some(split) = parser::parse_split(&conf, &cuts) {
            prop_assert!(split == parser::parse(&conf), "cuts {:?} in {:?}", cuts, conf);
        }
    }
}

#[test]
fn hostile_inputs_end_in_diagnostics() {
    // 100,000 nested braces
    let deep = format!("{}{}", "location / {".repeat(100_000), "}".repeat(100_000));
    let c = parser::parse(&deep);
    assert!(!c.errors.is_empty());
    lint_snippet(&deep);
    // a 1 MiB annotation
    let big = "proxy_set_header X-A b;\n".repeat(1 << 16);
    lint_snippet(&big);
    // NUL bytes
    lint_snippet("proxy_set_header X-Forwarded-Proto \0;");
    // a YAML alias bomb is refused by the reader's budget
    let mut bomb = String::from(
        "a: &a [\"lol\",\"lol\",\"lol\",\"lol\",\"lol\",\"lol\",\"lol\",\"lol\",\"lol\"]\n",
    );
    for i in 1..12u8 {
        let (name, prev) = ((b'a' + i) as char, (b'a' + i - 1) as char);
        let refs = vec![format!("*{prev}"); 9].join(", ");
        writeln!(bomb, "{name}: &{name} [{refs}]").unwrap();
    }
    let mut ws = Workspace::new();
    add_text(&mut ws, "bomb.yaml", &bomb, Format::Yaml);
    assert!(check(&ws, &Settings::default()).is_empty());
    assert_eq!(ws.load_errors.len(), 1, "{:#?}", ws.load_errors);
    // 10,000 documents
    let doc = "apiVersion: networking.k8s.io/v1\nkind: Ingress\nmetadata:\n  name: n\n  annotations:\n    nginx.ingress.kubernetes.io/configuration-snippet: proxy_set_header X-Real-IP $remote_addr;\n---\n";
    let mut ws = Workspace::new();
    add_text(&mut ws, "many.yaml", &doc.repeat(10_000), Format::Yaml);
    assert_eq!(ws.objects.len(), 10_000);
    let diags = check(&ws, &Settings::default());
    assert_eq!(diags.len(), 10_000);
    // JSON with duplicate keys
    let mut ws = Workspace::new();
    add_text(
        &mut ws,
        "dup.json",
        r#"{"kind":"Ingress","kind":"ConfigMap"}"#,
        Format::Yaml,
    );
    assert!(check(&ws, &Settings::default()).is_empty());
    assert_eq!(ws.load_errors.len(), 1);
    assert!(
        ws.load_errors[0].message.contains("cannot read"),
        "{}",
        ws.load_errors[0].message
    );
}

#[test]
fn wrong_types_for_annotations_are_input_errors() {
    let doc = |annotations: &str| {
        format!(
            "apiVersion: networking.k8s.io/v1\nkind: Ingress\nmetadata:\n  name: n\n  annotations:\n{annotations}"
        )
    };
    let run = |text: &str| {
        let mut ws = Workspace::new();
        add_text(&mut ws, "wrong.yaml", text, Format::Yaml);
        let diags = check(&ws, &Settings::default());
        assert_spans_in_bounds(&ws, &diags);
        assert!(diags.is_empty(), "{diags:#?}");
        ws.load_errors
            .iter()
            .map(|e| format!("input error: {}", e.message))
            .collect::<Vec<_>>()
    };
    for (value, kind) in [
        ("5", "a number"),
        ("true", "a boolean"),
        ("[a, b]", "a list"),
        ("{a: b}", "a mapping"),
    ] {
        let got = run(&doc(&format!(
            "    nginx.ingress.kubernetes.io/configuration-snippet: {value}\n"
        )));
        assert_eq!(
            got,
            [format!(
                "input error: annotation `nginx.ingress.kubernetes.io/configuration-snippet` is {kind}, not a string; the API server rejects this object"
            )]
        );
    }
    // A null value is no annotation at all.
    assert!(
        run(&doc(
            "    nginx.ingress.kubernetes.io/configuration-snippet: null\n"
        ))
        .is_empty()
    );
    // Annotations that are not a mapping: the document cannot be read; one clear finding.
    let got = run(&doc("    5\n"));
    assert_eq!(got.len(), 1, "{got:?}");
    assert!(
        got[0].starts_with("input error: cannot read this file"),
        "{got:?}"
    );
}
