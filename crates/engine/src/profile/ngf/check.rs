//! The NGINX Gateway Fabric profile: reads the HTTPRoutes and GRPCRoutes (which rules reference
//! which SnippetsFilter, with which RequestHeaderModifier) and the SnippetsFilters once, then
//! judges one SnippetsFilter, SnippetsPolicy or route at a time.
//!
//! A SnippetsFilter's location snippet is judged in the location of every route rule that
//! references it, and its findings go on the SnippetsFilter (naming the routes). A route gets a
//! finding only for its own RequestHeaderModifier lines. Where no route is among the inputs (the
//! webhook reviewing one SnippetsFilter), the snippet is judged as an HTTPRoute and a GRPCRoute
//! location would render it.

use std::collections::HashSet;

use crate::diagnostic::{Diagnostic, Severity};
use crate::headers::{Family, Voice};
use crate::model::{Node, Object, ObjectRef, Provenance, Resource, Text};
use crate::nginx::context::Ctx;
use crate::profile::{Prepared, Profile, SnippetRole};
use crate::rules::{
    self, HeaderLine, LocationKind, LocationModel, Origin, ParsedSnippet, RuleSet, UserLine,
    run_location_rules, template_lines,
};
use crate::settings::Settings;
use crate::source::Location;

use super::{API_VERSION, CONTROLLER_NAME, DISPLAY_NAME, owned_names, route_location, voice};

/// API group of the routes.
const ROUTE_GROUP: &str = "gateway.networking.k8s.io/";

/// The NGINX Gateway Fabric profile.
#[derive(Debug, Clone, Copy, Default)]
pub struct Ngf;

fn kind_of(object: &Object) -> Option<&str> {
    let Object::Resource(r) = object else {
        return None;
    };
    let o = &r.meta.object;
    match o.kind.as_str() {
        "SnippetsFilter" | "SnippetsPolicy" if o.api_version == API_VERSION => Some(&o.kind),
        "HTTPRoute" | "GRPCRoute" if o.api_version.starts_with(ROUTE_GROUP) => Some(&o.kind),
        _ => None,
    }
}

/// The nginx context of a snippet's `context`.
fn context(name: &str) -> Option<Ctx> {
    Some(match name {
        "main" => Ctx::MAIN,
        "http" => Ctx::HTTP,
        "http.server" => Ctx::SERVER,
        "http.server.location" => Ctx::LOCATION,
        _ => return None,
    })
}

impl Profile for Ngf {
    fn name(&self) -> &'static str {
        "nginx-gateway-fabric"
    }

    fn display_name(&self) -> &'static str {
        DISPLAY_NAME
    }

    fn annotation_prefix(&self, _: &Settings) -> String {
        "gateway.nginx.org".to_string()
    }

    fn snippet_annotations(&self, _: &Settings) -> Vec<(String, SnippetRole)> {
        Vec::new()
    }

    fn configured_classes(&self, _: &Settings) -> Vec<String> {
        Vec::new()
    }

    fn controller_names(&self) -> &'static [&'static str] {
        &[CONTROLLER_NAME]
    }

    fn class_names(&self, _: &Settings) -> Vec<String> {
        Vec::new()
    }

    fn is_config(&self, object: &Object, _: &[Object], _: &Settings) -> bool {
        matches!(
            kind_of(object),
            Some("SnippetsFilter" | "HTTPRoute" | "GRPCRoute")
        )
    }

    fn checks(&self, object: &Object) -> bool {
        kind_of(object).is_some()
    }

    fn prepare(&self, config: &[Object], settings: &Settings, rules: RuleSet) -> Box<dyn Prepared> {
        let mut p = PreparedNgf {
            settings: settings.clone(),
            rules,
            voice: voice(),
            owned: owned_names(),
            routes: Vec::new(),
            routes_known: false,
            filters: Vec::new(),
        };
        for o in config {
            let Object::Resource(r) = o else { continue };
            match kind_of(o) {
                Some("HTTPRoute" | "GRPCRoute") => {
                    p.routes_known = true;
                    p.routes.extend(route_rules(r));
                }
                Some("SnippetsFilter") => p.filters.push(r.clone()),
                _ => {}
            }
        }
        Box::new(p)
    }
}

/// A RequestHeaderModifier header: `add`, `set`, or `remove` (value `""`).
#[derive(Debug, Clone)]
struct Modifier {
    name: String,
    value: String,
    location: Location,
    path: String,
}

/// One rule of a route.
#[derive(Debug, Clone)]
struct RouteRule {
    route: ObjectRef,
    /// `rules[i]`.
    index: usize,
    family: Family,
    /// SnippetsFilters its ExtensionRef filters name (same namespace).
    filters: Vec<(String, Location)>,
    modifiers: Vec<Modifier>,
}

impl RouteRule {
    fn describe(&self) -> String {
        format!(
            "{} {}/{} rule {}",
            self.route.kind,
            self.route.namespace.as_deref().unwrap_or("default"),
            self.route.name,
            self.index
        )
    }
}

fn route_rules(r: &Resource) -> Vec<RouteRule> {
    let family = if r.meta.object.kind == "GRPCRoute" {
        Family::Grpc
    } else {
        Family::Proxy
    };
    let mut out = Vec::new();
    for (i, rule) in r
        .spec
        .get("rules")
        .map(Node::items)
        .unwrap_or_default()
        .iter()
        .enumerate()
    {
        let mut filters = Vec::new();
        let mut modifiers = Vec::new();
        for (j, f) in rule
            .get("filters")
            .map(Node::items)
            .unwrap_or_default()
            .iter()
            .enumerate()
        {
            let at = format!("spec.rules[{i}].filters[{j}]");
            if let Some(ext) = f.get("extensionRef")
                && ext.str_at("kind") == Some("SnippetsFilter")
                && ext.str_at("group") == Some("gateway.nginx.org")
                && let Some(name) = ext.get("name")
                && let Some(n) = name.string()
            {
                filters.push((n.to_string(), name.location()));
            }
            let Some(m) = f.get("requestHeaderModifier") else {
                continue;
            };
            for op in ["add", "set"] {
                for (k, h) in m
                    .get(op)
                    .map(Node::items)
                    .unwrap_or_default()
                    .iter()
                    .enumerate()
                {
                    let Some(name) = h.get("name") else { continue };
                    let Some(n) = name.string() else { continue };
                    modifiers.push(Modifier {
                        name: n.to_string(),
                        value: h.str_at("value").unwrap_or_default().to_string(),
                        location: name.location(),
                        path: format!("{at}.requestHeaderModifier.{op}[{k}]"),
                    });
                }
            }
            for (k, name) in m
                .get("remove")
                .map(Node::items)
                .unwrap_or_default()
                .iter()
                .enumerate()
            {
                let Some(n) = name.string() else { continue };
                modifiers.push(Modifier {
                    name: n.to_string(),
                    value: String::new(),
                    location: name.location(),
                    path: format!("{at}.requestHeaderModifier.remove[{k}]"),
                });
            }
        }
        out.push(RouteRule {
            route: r.meta.object.clone(),
            index: i,
            family,
            filters,
            modifiers,
        });
    }
    out
}

#[derive(Debug)]
struct PreparedNgf {
    settings: Settings,
    rules: RuleSet,
    voice: Voice,
    owned: HashSet<String>,
    /// Every rule of every route among the configuration objects.
    routes: Vec<RouteRule>,
    /// Routes were given (else a SnippetsFilter's location snippet is judged as any route
    /// would render it).
    routes_known: bool,
    filters: Vec<Resource>,
}

impl Prepared for PreparedNgf {
    fn config_findings(&self) -> &[Diagnostic] {
        &[]
    }

    fn check(&self, object: &Object, out: &mut Vec<Diagnostic>) {
        let Object::Resource(r) = object else { return };
        match kind_of(object) {
            Some("SnippetsFilter") => self.check_filter(r, out),
            Some("SnippetsPolicy") => self.check_policy(r, out),
            Some("HTTPRoute" | "GRPCRoute") => self.check_route(r, out),
            _ => {}
        }
    }

    fn owned_names(&self) -> &HashSet<String> {
        &self.owned
    }

    fn voice(&self) -> Voice {
        self.voice
    }
}

/// The snippets of a SnippetsFilter or SnippetsPolicy: context, value and where.
fn snippets(r: &Resource) -> Vec<(String, &Text, Provenance)> {
    r.spec
        .get("snippets")
        .map(Node::items)
        .unwrap_or_default()
        .iter()
        .enumerate()
        .filter_map(|(i, s)| {
            Some((
                s.str_at("context")?.to_string(),
                s.get("value")?.text()?,
                Provenance::Field(format!("spec.snippets[{i}].value")),
            ))
        })
        .collect()
}

const GATE_WHY: &str = "NGINX Gateway Fabric runs without `--snippets` (its default): it does not watch SnippetsFilters, an ExtensionRef to one does not resolve and the route rule answers 500";
const GATE_HELP: &str = "start NGINX Gateway Fabric with `--snippets` (Helm `nginxGateway.snippets.enable`) and tell snippet-guard with `--ngf-snippets true`, or remove the filter and its references";

impl PreparedNgf {
    fn has(&self, rule: &rules::RuleMeta) -> bool {
        self.rules.has(rule)
    }

    fn snippets_off(&self) -> bool {
        self.settings.ngf.snippets == Some(false)
    }

    fn common(&self, snippet: &ParsedSnippet<'_>, ctx: Ctx, out: &mut Vec<Diagnostic>) {
        rules::check_snippet(snippet, ctx, self.voice, &self.owned, self.rules, out);
    }

    /// The location of a route rule of `family` with `snippet` lines (the include comes first)
    /// and the rule's modifiers, judged.
    fn judge(
        &self,
        family: Family,
        snippet: Vec<HeaderLine>,
        modifiers: &[Modifier],
        route: Option<&ObjectRef>,
        out: &mut Vec<Diagnostic>,
    ) {
        let mut lines = snippet;
        for m in modifiers {
            lines.push(HeaderLine {
                name: m.name.clone(),
                value: m.value.clone(),
                family,
                origin: Origin::User(UserLine {
                    location: m.location,
                    source: Provenance::Field(m.path.clone()),
                    object: route.cloned(),
                    snippet_line: None,
                    inline_ignores: Vec::new(),
                    specificity: 1,
                    from_header_map: false,
                }),
            });
        }
        let modified: Vec<String> = modifiers.iter().map(|m| m.name.clone()).collect();
        lines.extend(template_lines(&route_location(family, &modified), family));
        if !lines.iter().any(|l| l.user().is_some()) {
            return;
        }
        let model = LocationModel::new(LocationKind::Proxied, family, self.voice, lines);
        run_location_rules(&model, self.rules, out);
    }

    /// A location snippet judged as an HTTPRoute and a GRPCRoute would render it.
    fn judge_anywhere(&self, p: &ParsedSnippet<'_>, out: &mut Vec<Diagnostic>) {
        for family in [Family::Proxy, Family::Grpc] {
            self.judge(
                family,
                p.header_lines(&p.config.directives, 2),
                &[],
                None,
                out,
            );
        }
    }

    fn check_filter(&self, r: &Resource, out: &mut Vec<Diagnostic>) {
        let me = &r.meta.object;
        let object = Some(me.clone());
        let refs: Vec<&RouteRule> = self
            .routes
            .iter()
            .filter(|rule| {
                rule.route.namespace == me.namespace
                    && rule.filters.iter().any(|(n, _)| *n == me.name)
            })
            .collect();
        for (ctx_name, text, provenance) in snippets(r) {
            let Some(ctx) = context(&ctx_name) else {
                continue;
            };
            let p = ParsedSnippet::new(provenance.clone(), text, object.clone());
            if self.snippets_off() || (self.routes_known && refs.is_empty()) {
                if !self.has(&rules::ignored_snippet::IGNORED_SNIPPET) {
                    continue;
                }
                let mut would = Vec::new();
                if ctx == Ctx::LOCATION {
                    self.judge_anywhere(&p, &mut would);
                }
                let headers = duplicates_in(&would, &provenance);
                let (why, help) = if self.snippets_off() {
                    (GATE_WHY.to_string(), GATE_HELP)
                } else {
                    (
                        "no HTTPRoute or GRPCRoute among the inputs references this SnippetsFilter (an ExtensionRef filter in its namespace), so NGINX Gateway Fabric renders nothing of it".to_string(),
                        "reference it from a route rule's `filters` (type ExtensionRef, group gateway.nginx.org, kind SnippetsFilter), or delete it",
                    )
                };
                let mut d = rules::ignored_snippet::not_rendered(&p, &why, help, &headers);
                if self.snippets_off() {
                    d.severity = Severity::Warning;
                }
                out.push(d);
                continue;
            }
            self.common(&p, ctx, out);
            if ctx != Ctx::LOCATION {
                continue;
            }
            let mut found = Vec::new();
            if refs.is_empty() {
                self.judge_anywhere(&p, &mut found);
                for d in &mut found {
                    d.notes.push(
                        "no route is among the inputs: judged as every HTTPRoute and GRPCRoute rule that references this SnippetsFilter renders it".to_string(),
                    );
                }
            } else {
                for rule in &refs {
                    let mut here = Vec::new();
                    self.judge(
                        rule.family,
                        p.header_lines(&p.config.directives, 2),
                        &rule.modifiers,
                        Some(&rule.route),
                        &mut here,
                    );
                    for mut d in here.into_iter().filter(|d| d.object.as_ref() == Some(me)) {
                        d.notes
                            .push(format!("in the location of {}", rule.describe()));
                        found.push(d);
                    }
                }
                // One finding per line and header, naming every route rule it happens in (in
                // the message, which Events and admission answers carry).
                found = merge_routes(found);
                for d in &mut found {
                    let rules: Vec<String> = d
                        .notes
                        .iter()
                        .filter_map(|n| n.strip_prefix("in the location of "))
                        .map(str::to_string)
                        .collect();
                    d.notes.retain(|n| !n.starts_with("in the location of "));
                    if !rules.is_empty() {
                        d.message = format!("{} (in {})", d.message, rules.join(", "));
                    }
                }
            }
            out.extend(found);
        }
    }

    fn check_policy(&self, r: &Resource, out: &mut Vec<Diagnostic>) {
        let object = Some(r.meta.object.clone());
        for (ctx_name, text, provenance) in snippets(r) {
            let Some(ctx) = context(&ctx_name) else {
                continue;
            };
            let p = ParsedSnippet::new(provenance, text, object.clone());
            if self.snippets_off() {
                if self.has(&rules::ignored_snippet::IGNORED_SNIPPET) {
                    out.push(rules::ignored_snippet::not_rendered(
                        &p,
                        "NGINX Gateway Fabric runs without `--snippets` (its default) and does not render SnippetsPolicies",
                        GATE_HELP,
                        &[],
                    ));
                }
                continue;
            }
            self.common(&p, ctx, out);
            if ctx == Ctx::LOCATION {
                let mut found = Vec::new();
                self.judge_anywhere(&p, &mut found);
                for d in &mut found {
                    d.notes.push(
                        "a SnippetsPolicy's location snippet lands in every location of the Gateways it targets".to_string(),
                    );
                }
                out.extend(found);
            }
        }
    }

    fn check_route(&self, r: &Resource, out: &mut Vec<Diagnostic>) {
        let me = &r.meta.object;
        for rule in route_rules(r) {
            if self.snippets_off()
                && let Some((name, location)) = rule.filters.first()
                && self.has(&rules::ignored_snippet::IGNORED_SNIPPET)
            {
                let mut d = rules::ignored_snippet::setting(
                    *location,
                    format!(
                        "the ExtensionRef to SnippetsFilter `{name}` does not resolve: {GATE_WHY}"
                    ),
                    GATE_HELP,
                    Severity::Warning,
                );
                d.object = Some(me.clone());
                d.source = Some(Provenance::Field(format!(
                    "spec.rules[{}].filters",
                    rule.index
                )));
                out.push(d);
            }
            // The referenced filters' location snippets, as far as they are known.
            let parsed: Vec<(&Resource, Vec<(&Text, Provenance)>)> = self
                .filters
                .iter()
                .filter(|f| {
                    f.meta.object.namespace == me.namespace
                        && rule.filters.iter().any(|(n, _)| *n == f.meta.object.name)
                })
                .map(|f| {
                    (
                        f,
                        snippets(f)
                            .into_iter()
                            .filter(|(c, ..)| c == "http.server.location")
                            .map(|(_, t, p)| (t, p))
                            .collect(),
                    )
                })
                .collect();
            let snippets: Vec<ParsedSnippet<'_>> = if self.snippets_off() {
                Vec::new()
            } else {
                parsed
                    .iter()
                    .flat_map(|(f, s)| {
                        s.iter().map(|(t, p)| {
                            ParsedSnippet::new(p.clone(), t, Some(f.meta.object.clone()))
                        })
                    })
                    .collect()
            };
            let lines: Vec<HeaderLine> = snippets
                .iter()
                .flat_map(|p| p.header_lines(&p.config.directives, 2))
                .collect();
            let mut found = Vec::new();
            self.judge(rule.family, lines, &rule.modifiers, Some(me), &mut found);
            let base = route_location(rule.family, &[]);
            for mut d in found.into_iter().filter(|d| d.object.as_ref() == Some(me)) {
                // `x-forwarded-proto` next to NGF's `X-Forwarded-Proto`: the spelling is why.
                if let Some(h) = &d.header
                    && let Some(t) = base
                        .iter()
                        .find(|t| t.name.eq_ignore_ascii_case(h) && t.name != *h)
                {
                    d.notes.push(format!(
                        "NGINX Gateway Fabric leaves its own line out only for a modifier header spelled exactly `{}` (it compares names case-sensitively); `{h}` is another name to it, and a second header to the backend",
                        t.name
                    ));
                    d.help = Some(format!(
                        "spell the name `{}` in this RequestHeaderModifier: NGINX Gateway Fabric then sends only this value",
                        t.name
                    ));
                }
                out.push(d);
            }
        }
    }
}

/// Findings on the same line and header from several route rules: one, with every rule named.
fn merge_routes(found: Vec<Diagnostic>) -> Vec<Diagnostic> {
    let mut out: Vec<Diagnostic> = Vec::new();
    for d in found {
        if let Some(first) = out
            .iter_mut()
            .find(|o| o.rule.id == d.rule.id && o.primary == d.primary && o.header == d.header)
        {
            for n in d.notes {
                if n.starts_with("in the location of ") && !first.notes.contains(&n) {
                    first.notes.push(n);
                }
            }
        } else {
            out.push(d);
        }
    }
    out
}

/// The headers `rendered` findings of `source` would send twice.
fn duplicates_in(rendered: &[Diagnostic], source: &Provenance) -> Vec<String> {
    let mut out: Vec<String> = rendered
        .iter()
        .filter(|d| {
            d.source.as_ref() == Some(source)
                && [
                    &rules::redundant_forwarded_proto::REDUNDANT_FORWARDED_PROTO,
                    &rules::duplicate_controller_header::DUPLICATE_CONTROLLER_HEADER,
                    &rules::duplicate_snippet_header::DUPLICATE_SNIPPET_HEADER,
                ]
                .contains(&d.rule)
        })
        .filter_map(|d| d.header.clone())
        .collect();
    out.sort();
    out.dedup();
    out
}
