//! A rendered `nginx.conf` (`kubectl exec <controller-pod> -- cat /etc/nginx/nginx.conf`):
//! every location that sends a header twice, attributed to its Ingress through the
//! `set $namespace` / `set $ingress_name` lines ingress-nginx writes into each location.
//!
//! In a dump the controller's lines and the snippets' lines are indistinguishable, but the template
//! always writes its own lines first. So for each name, the first line is taken as the controller's
//! when ingress-nginx owns that name, and every later line is judged with the same rules and
//! messages as a snippet.

use std::collections::HashSet;
use std::hash::BuildHasher;

use crate::diagnostic::{Diagnostic, ObjectRef};
use crate::headers::{Family, TemplateHeader, Voice};
use crate::model::Provenance;
use crate::nginx::ast::{Block, Body, Config, Directive};
use crate::nginx::context::{Ctx, validate};
use crate::nginx::parser::PARALLEL_MIN;
use crate::rules::{
    self, HeaderLine, LocationKind, LocationModel, Origin, ParsedSnippet, RuleSet, UserLine,
    run_location_rules,
};
use crate::source::{FileId, SourceFile, SourceMap};

/// Check one `nginx.conf` file (`f`, whose id is `file`).
///
/// The whole-tree rules (syntax and contexts, inherited headers) and the per-location rules read
/// the same tree and nothing of each other's: on a large file they run side by side, and the
/// file's line index (which the report needs) is built beside them.
pub fn check<S: BuildHasher + Sync>(
    f: &SourceFile,
    file: FileId,
    voice: Voice,
    owned: &HashSet<String, S>,
    rules: RuleSet,
    out: &mut Vec<Diagnostic>,
) {
    let map = SourceMap::identity(file, 0, f.text.len() as u32);
    let snippet = ParsedSnippet::whole_file(Provenance::NginxConf, f, &map, None);
    let root = root_context(snippet.src(), &snippet.config);
    let whole_tree = |out: &mut Vec<Diagnostic>| {
        if rules.has(&rules::invalid_snippet::INVALID_SNIPPET) {
            rules::invalid_snippet::check(&snippet, root, &voice, out);
        }
        if rules.has(&rules::ineffective_inherited_header::INEFFECTIVE_INHERITED_HEADER) {
            rules::ineffective_inherited_header::check(
                &snippet,
                root,
                &|h: &str| owned.contains(&h.to_ascii_lowercase()),
                &voice,
                out,
            );
        }
    };
    let settings = (voice, rules);
    let settings = &settings;
    if f.text.len() < PARALLEL_MIN {
        whole_tree(out);
        check_locations(&snippet, root, settings, owned, out);
        return;
    }
    let whole_tree = &whole_tree;
    std::thread::scope(|scope| {
        let beside = crate::threads::spawn_or_run(scope, "nginx-conf-check", || {
            let mut found = Vec::new();
            whole_tree(&mut found);
            let _ = f.line_of(0);
            found
        });
        check_locations(&snippet, root, settings, owned, out);
        out.extend(beside.join());
    });
    // Freeing the tree of a large file takes milliseconds the caller need not wait for. (With
    // no thread to be had, the closure and the tree are dropped here.)
    let tree = snippet.config;
    let _ = std::thread::Builder::new()
        .name("nginx-conf-free".into())
        .spawn(move || drop(tree));
}

/// The context a file's top level stands in: `main` for a whole `nginx.conf`; for a fragment
/// meant to be included elsewhere (a `conf.d/*.conf` of `server` blocks, a file of `location`
/// blocks), the context that accepts its top-level directives.
///
/// Each of main, http, server and location is tried on the top-level directives alone (their
/// blocks are not looked into: what is inside does not depend on where the file is included);
/// the one nginx would refuse the fewest of wins, and main wins a tie. So a whole configuration
/// is read as one, with its misplaced directives reported, and only a file that is plainly a
/// fragment is read as one.
#[must_use]
pub fn root_context(src: &str, config: &Config) -> Ctx {
    let top = Config {
        directives: config
            .directives
            .iter()
            .map(|d| Directive {
                name: d.name,
                args: d.args.clone(),
                block: d.block.as_ref().map(|b| {
                    Box::new(Block {
                        span: b.span,
                        body: Body::Opaque,
                    })
                }),
                span: d.span,
            })
            .collect(),
        ..Config::default()
    };
    let refused = |ctx| validate(src, &top, ctx).len();
    let main = refused(Ctx::MAIN);
    if main == 0 {
        return Ctx::MAIN;
    }
    let mut best = (main, Ctx::MAIN);
    for ctx in [Ctx::HTTP, Ctx::SERVER, Ctx::LOCATION] {
        let n = refused(ctx);
        if n < best.0 {
            best = (n, ctx);
        }
    }
    best.1
}

/// Every `location` of the file, with the server it is in (a file of server level: its own
/// `server_name`).
fn check_locations<S: BuildHasher>(
    snippet: &ParsedSnippet<'_>,
    root: Ctx,
    settings: &(Voice, RuleSet),
    owned: &HashSet<String, S>,
    out: &mut Vec<Diagnostic>,
) {
    let src = snippet.src();
    let top = &snippet.config.directives;
    let name_of = |dirs: &[Directive]| {
        dirs.iter()
            .find(|c| c.name(src) == "server_name")
            .and_then(|c| c.args.first())
            .map(|w| w.inner(src))
    };
    let top_server = if root == Ctx::SERVER {
        name_of(top)
    } else {
        None
    };
    let mut stack: Vec<(&[Directive], Option<&str>)> = vec![(top, top_server)];
    while let Some((dirs, server_name)) = stack.pop() {
        for d in dirs {
            if d.block.is_none() {
                continue;
            }
            match d.name(src) {
                "http" => stack.push((d.children(), None)),
                "server" => stack.push((d.children(), name_of(d.children()))),
                "location" => {
                    check_location(snippet, d, server_name, settings, owned, out);
                    stack.push((d.children(), server_name));
                }
                _ => {}
            }
        }
    }
}

/// A header line of a location: the directive, its family and the header it names (raw text,
/// trailing `:` dropped, as [`HeaderLine::same_name`] compares).
type Line<'a> = (&'a Directive, Family, &'a str);

/// Whether two header lines of one family name the same header (case-insensitive); cheap, no
/// allocation. Every location rule needs such a pair: a duplicate, or an empty line after the
/// controller's line (`Proxy ""`, which the template writes in every location, is alone and not
/// a finding).
fn worth_modelling(lines: &[Line<'_>]) -> bool {
    lines.iter().enumerate().any(|(i, &(_, family, header))| {
        lines[..i]
            .iter()
            .any(|&(_, f, h)| f == family && h.eq_ignore_ascii_case(header))
    })
}

fn check_location<S: BuildHasher>(
    snippet: &ParsedSnippet<'_>,
    loc: &Directive,
    server_name: Option<&str>,
    settings: &(Voice, RuleSet),
    owned: &HashSet<String, S>,
    out: &mut Vec<Diagnostic>,
) {
    let src = snippet.src();
    let children = loc.children();
    let lines: smallvec::SmallVec<[Line<'_>; 32]> = children
        .iter()
        .filter(|d| d.block.is_none() && d.args.len() == 2)
        .filter_map(|d| {
            let family = Family::of_directive(d.name(src))?;
            Some((d, family, d.args[0].inner(src).trim_end_matches(':')))
        })
        .collect();
    if lines.len() < 2 || !worth_modelling(&lines) {
        return;
    }
    let var = |name: &str| {
        children
            .iter()
            .find(|d| d.name(src) == "set" && d.args.len() == 2 && d.args[0].inner(src) == name)
            .map(|d| d.args[1].value(src).into_owned())
    };
    let object = match (var("$namespace"), var("$ingress_name")) {
        (Some(ns), Some(name)) if !name.is_empty() && name != "-" => Some(ObjectRef {
            api_version: "networking.k8s.io/v1".into(),
            kind: "Ingress".into(),
            namespace: Some(ns),
            name,
        }),
        _ => None,
    };
    let path: Vec<String> = loc.args.iter().map(|w| w.value(src).into_owned()).collect();
    let source = Provenance::ConfLocation {
        path: path.join(" "),
        server: server_name.map(str::to_string),
    };
    let family = if children.iter().any(|d| d.name(src) == "grpc_pass") {
        Family::Grpc
    } else {
        Family::Proxy
    };
    let mut seen: Vec<(Family, String)> = Vec::new();
    let model_lines = lines
        .iter()
        .map(|&(d, fam, _)| {
            let name = d.args[0].value(src).into_owned();
            let value = d.args[1].value(src).into_owned();
            let lname = name.to_ascii_lowercase();
            let first = !seen.iter().any(|(f, n)| *f == fam && *n == lname);
            seen.push((fam, lname.clone()));
            let origin = if first && owned.contains(&lname) {
                let mut t = TemplateHeader::new(&name, &value, "always");
                t.location = Some(snippet.locate(d.span));
                Origin::Template(t)
            } else {
                Origin::User(UserLine {
                    location: snippet.locate(d.span),
                    source: source.clone(),
                    object: object.clone(),
                    snippet_line: None,
                    inline_ignores: snippet.inline_ignores(d.span),
                    specificity: 1,
                    from_header_map: false,
                })
            };
            HeaderLine {
                name,
                value,
                family: fam,
                origin,
            }
        })
        .collect();
    let (voice, rules) = *settings;
    let model = LocationModel::new(LocationKind::Proxied, family, voice, model_lines);
    run_location_rules(&model, rules, out);
}

#[cfg(test)]
mod tests {
    use crate::input::{Format, add_text};
    use crate::{Settings, check, model::Workspace};

    #[test]
    fn finds_the_duplicate_and_its_ingress() {
        let conf = "http {\n server {\n  server_name a.example.com;\n  location / {\n   set $namespace \"shop\";\n   set $ingress_name \"web\";\n   proxy_set_header X-Forwarded-Proto $pass_access_scheme;\n   proxy_set_header X-Tenant a;\n   proxy_set_header X-Forwarded-Proto $scheme;\n   proxy_pass http://u;\n  }\n }\n}\n";
        let mut ws = Workspace::new();
        add_text(&mut ws, "nginx.conf", conf, Format::Conf);
        let d = check(&ws, &Settings::default());
        assert_eq!(d.len(), 1, "{d:#?}");
        assert_eq!(d[0].rule.id, "redundant-forwarded-proto");
        let o = d[0].object.as_ref().unwrap();
        assert_eq!(
            (o.namespace.as_deref(), o.name.as_str()),
            (Some("shop"), "web")
        );
        assert_eq!(
            ws.sources
                .get(d[0].primary.file)
                .line_col(d[0].primary.span.start)
                .line,
            9
        );
    }

    #[test]
    fn a_large_file_is_checked_on_every_core_with_the_same_findings() {
        // Past PARALLEL_MIN the parse is split and the rule groups run side by side; every kind
        // of finding must still come out once, where it is.
        use std::fmt::Write as _;
        let mut conf = String::from("http {\n");
        let servers: usize = 4000;
        for i in 0..servers {
            let _ = write!(
                conf,
                "\t## start server s{i}\n\tserver {{\n\t\tserver_name s{i}.example.com;\n"
            );
            if i % 500 == 7 {
                conf += "\t\tproxy_set_header X-Server-Level 1;\n";
            }
            conf += "\t\tlocation / {\n\t\t\tset $namespace \"ns\";\n\t\t\tset $ingress_name \"web\";\n\t\t\tproxy_set_header X-Forwarded-Proto $pass_access_scheme;\n\t\t\tproxy_set_header X-Real-IP $remote_addr;\n";
            if i % 7 == 0 {
                conf += "\t\t\tproxy_set_header X-Forwarded-Proto $scheme;\n";
            }
            if i % 1000 == 3 {
                conf += "\t\t\tproxy_pass;\n";
            }
            conf += "\t\t\tproxy_pass http://upstream_balancer;\n\t\t}\n\t}\n";
        }
        conf += "}\n";
        assert!(conf.len() > crate::nginx::parser::PARALLEL_MIN);
        let mut ws = Workspace::new();
        add_text(&mut ws, "nginx.conf", &conf, Format::Conf);
        let d = check(&ws, &Settings::default());
        let count = |id: &str| d.iter().filter(|d| d.rule.id == id).count();
        assert_eq!(count("redundant-forwarded-proto"), servers.div_ceil(7));
        assert_eq!(count("ineffective-inherited-header"), servers / 500);
        assert_eq!(count("invalid-snippet"), servers / 1000);
        assert_eq!(
            d.len(),
            servers.div_ceil(7) + servers / 500 + servers / 1000
        );
        let f = ws.sources.get(d[0].primary.file);
        for d in &d {
            let line = &f.text[f.line_range(f.line_col(d.primary.span.start).line)];
            assert!(line.trim_start().starts_with("proxy_"), "{line:?}");
        }
        assert!(
            d.windows(2)
                .all(|w| w[0].primary.span.start < w[1].primary.span.start)
        );
    }

    fn ids(name: &str, conf: &str) -> Vec<(&'static str, String)> {
        let mut ws = Workspace::new();
        add_text(&mut ws, name, conf, Format::Conf);
        check(&ws, &Settings::default())
            .iter()
            .map(|d| (d.rule.id, d.message.clone()))
            .collect()
    }

    #[test]
    fn a_fragment_is_checked_where_it_is_included() {
        use super::root_context;
        use crate::nginx::context::Ctx;
        use crate::nginx::parser::parse;
        let root = |src: &str| root_context(src, &parse(src));
        assert_eq!(
            root("events {}\nhttp { server { listen 80; } }\n"),
            Ctx::MAIN
        );
        assert_eq!(
            root("server { listen 80; }\nupstream u { server a; }\n"),
            Ctx::HTTP
        );
        assert_eq!(
            root("listen 80;\nlocation / { proxy_pass http://a; }\n"),
            Ctx::SERVER
        );
        assert_eq!(root("proxy_pass http://a;\n"), Ctx::LOCATION);
        // A whole configuration with a misplaced line stays one: the line is reported.
        assert_eq!(
            root("events {}\nproxy_set_header X a;\nhttp { server { listen 80; } }\n"),
            Ctx::MAIN
        );

        // conf.d/default.conf: `server` at the top is in place inside http.
        let server = "server {\n  listen 80;\n  server_name a.example.com;\n  location / {\n    proxy_set_header X-Real-IP $remote_addr;\n    proxy_set_header X-Real-IP $remote_addr;\n    proxy_pass http://a;\n  }\n}\n";
        let found = ids("default.conf", server);
        assert_eq!(found.len(), 1, "{found:?}");
        assert_eq!(found[0].0, "duplicate-controller-header");
        // A file of server level: `location` and `listen` are in place.
        let locations = "listen 8080;\nserver_name b.example.com;\nlocation /api/ {\n  proxy_set_header X-Forwarded-Proto $scheme;\n  proxy_set_header X-Forwarded-Proto $scheme;\n  proxy_pass http://api;\n}\n";
        let found = ids("locations.conf", locations);
        assert_eq!(found.len(), 1, "{found:?}");
        assert_eq!(found[0].0, "redundant-forwarded-proto");
        // A whole configuration still reports a server block at the top level.
        let misplaced = "events {}\nhttp {}\nserver { listen 80; }\n";
        let found = ids("nginx.conf", misplaced);
        assert_eq!(found.len(), 1, "{found:?}");
        assert!(found[0].1.contains("not allowed here"), "{found:?}");
    }

    fn location(lines: &str) -> Vec<&'static str> {
        let conf = format!(
            "http {{\n server {{\n  location / {{\n   proxy_set_header X-Forwarded-Proto $pass_access_scheme;\n   proxy_set_header Proxy \"\";\n{lines}   proxy_pass http://u;\n  }}\n }}\n}}\n"
        );
        let mut ws = Workspace::new();
        add_text(&mut ws, "nginx.conf", &conf, Format::Conf);
        check(&ws, &Settings::default())
            .iter()
            .map(|d| d.rule.id)
            .collect()
    }

    #[test]
    fn only_a_repeated_name_is_modelled() {
        // The template's own empty `Proxy ""` line is no finding; an empty line after the
        // controller's non-empty line is.
        assert_eq!(location(""), Vec::<&str>::new());
        assert_eq!(
            location("   proxy_set_header X-Forwarded-Proto \"\";\n"),
            ["ineffective-empty-header"]
        );
        // A trailing colon names the same header for the backend.
        assert_eq!(
            location("   proxy_set_header X-Forwarded-Proto: https;\n"),
            ["redundant-forwarded-proto"]
        );
    }
}
