//! The F5 NGINX Ingress Controller profile: reads NIC's ConfigMap once, then judges one Ingress,
//! VirtualServer, VirtualServerRoute or Policy at a time.
//!
//! As for ingress-nginx, the ConfigMap's `location-snippets` are parsed once and their findings
//! in the location every Ingress gets belong to the ConfigMap; an Ingress or a route reports a
//! ConfigMap line only when the duplicate exists because of its own settings.

use std::collections::HashSet;

use crate::diagnostic::{Diagnostic, Severity};
use crate::headers::{Family, TemplateHeader, Voice};
use crate::model::{
    ConfigMap, Entry, Ingress, Meta, Node, Object, ObjectRef, Provenance, Resource,
};
use crate::nginx::context::Ctx;
use crate::profile::{Prepared, Profile, SnippetRole};
use crate::rules::{
    self, HeaderLine, LocationKind, LocationModel, Origin, ParsedSnippet, RuleSet, UserLine,
    run_location_rules, template_lines,
};
use crate::settings::{NicVersion, Settings};
use crate::source::Span;

use super::{
    ANNOTATION_PREFIX, API_VERSION, CONFIGMAP_KEYS, CONFIGMAP_NAMES, CONTROLLER_NAME, DISPLAY_NAME,
    IngressLocation, RouteLocation, auth_location, ingress_location, ingress_voice, owned_names,
    proxy_set_headers, route_location, route_voice,
};

/// The F5 NGINX Ingress Controller profile.
#[derive(Debug, Clone, Copy, Default)]
pub struct Nic;

fn ns_name(meta: &Meta) -> String {
    format!(
        "{}/{}",
        meta.object.namespace.as_deref().unwrap_or("default"),
        meta.object.name
    )
}

fn is_true(v: Option<&str>) -> bool {
    v.is_some_and(|v| v.trim().eq_ignore_ascii_case("true"))
}

/// `keepalive` above 0.
fn keepalive_on(v: Option<&str>) -> bool {
    v.and_then(|v| v.trim().parse::<u64>().ok())
        .is_some_and(|n| n > 0)
}

fn list(v: Option<&str>) -> Vec<String> {
    v.map(|v| {
        v.split(',')
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .map(str::to_string)
            .collect()
    })
    .unwrap_or_default()
}

/// Whether `cm` is NIC's ConfigMap: named by the settings, else recognised by its name, its
/// chart labels or its keys.
fn is_nic_configmap(cm: &ConfigMap, settings: &Settings) -> bool {
    let named = &settings.nic.configmaps;
    let m = &cm.meta;
    if !named.is_empty() {
        return named
            .iter()
            .any(|n| *n == ns_name(m) || *n == m.object.name);
    }
    (CONFIGMAP_NAMES.contains(&m.object.name.as_str())
        && m.label("app.kubernetes.io/name") != Some("ingress-nginx"))
        || m.label("app.kubernetes.io/name") == Some("nginx-ingress")
        || cm
            .data
            .iter()
            .any(|e| CONFIGMAP_KEYS.contains(&e.key.as_str()))
}

fn is_nic_resource(object: &Object, kind: &str) -> bool {
    matches!(object, Object::Resource(r)
        if r.meta.object.api_version == API_VERSION && r.meta.object.kind == kind)
}

impl Profile for Nic {
    fn name(&self) -> &'static str {
        "f5-nginx-ingress"
    }

    fn display_name(&self) -> &'static str {
        DISPLAY_NAME
    }

    fn annotation_prefix(&self, _: &Settings) -> String {
        ANNOTATION_PREFIX.to_string()
    }

    fn snippet_annotations(&self, _: &Settings) -> Vec<(String, SnippetRole)> {
        vec![
            (
                format!("{ANNOTATION_PREFIX}/location-snippets"),
                SnippetRole::Location,
            ),
            (
                format!("{ANNOTATION_PREFIX}/server-snippets"),
                SnippetRole::Server,
            ),
            (
                format!("{ANNOTATION_PREFIX}/proxy-set-headers"),
                SnippetRole::Headers,
            ),
        ]
    }

    fn configured_classes(&self, settings: &Settings) -> Vec<String> {
        settings.nic.ingress_classes.clone()
    }

    fn controller_names(&self) -> &'static [&'static str] {
        &[CONTROLLER_NAME]
    }

    fn class_names(&self, settings: &Settings) -> Vec<String> {
        let mut names = vec!["nginx".to_string()];
        names.extend(settings.nic.ingress_classes.iter().cloned());
        names
    }

    fn is_config(&self, object: &Object, _: &[Object], settings: &Settings) -> bool {
        match object {
            Object::ConfigMap(cm) => is_nic_configmap(cm, settings),
            Object::IngressClass(_) => true,
            _ => false,
        }
    }

    fn checks(&self, object: &Object) -> bool {
        matches!(object, Object::Ingress(_))
            || ["VirtualServer", "VirtualServerRoute", "Policy"]
                .iter()
                .any(|k| is_nic_resource(object, k))
    }

    fn prepare(&self, config: &[Object], settings: &Settings, rules: RuleSet) -> Box<dyn Prepared> {
        let version = settings.nic.version;
        let mut p = PreparedNic {
            settings: settings.clone(),
            rules,
            ingress_voice: ingress_voice(version),
            route_voice: route_voice(version),
            owned: owned_names(),
            config: NicConfig::default(),
            findings: Vec::new(),
            warnings: Vec::new(),
        };
        let mut maps: Vec<&ConfigMap> = config
            .iter()
            .filter_map(|o| match o {
                Object::ConfigMap(cm) if is_nic_configmap(cm, settings) => Some(cm),
                _ => None,
            })
            .collect();
        maps.sort_by_key(|cm| ns_name(&cm.meta));
        maps.dedup_by_key(|cm| ns_name(&cm.meta));
        if maps.len() > 1 {
            let names: Vec<String> = maps.iter().map(|cm| ns_name(&cm.meta)).collect();
            p.warnings.push(format!(
                "{} F5 NGINX Ingress Controller ConfigMaps ({}): objects are judged against {}; name the right one with --nic-configmap",
                names.len(),
                names.join(", "),
                names[0]
            ));
        }
        if let Some(cm) = maps.first() {
            let mut found = Vec::new();
            p.config = p.read_configmap(cm, &mut found);
            p.findings = found;
        }
        Box::new(p)
    }
}

/// NIC's ConfigMap, read once.
#[derive(Debug, Default)]
struct NicConfig {
    redirect_to_https: bool,
    keepalive: bool,
    /// The header lines of `location-snippets`, parsed once; `None` without the key.
    location_snippets: Option<Vec<HeaderLine>>,
    /// (rule, place, header) of the findings of the location every object gets.
    base: HashSet<(&'static str, crate::source::Location, Option<String>)>,
}

#[derive(Debug)]
struct PreparedNic {
    settings: Settings,
    rules: RuleSet,
    ingress_voice: Voice,
    route_voice: Voice,
    owned: HashSet<String>,
    config: NicConfig,
    findings: Vec<Diagnostic>,
    warnings: Vec<String>,
}

impl Prepared for PreparedNic {
    fn config_findings(&self) -> &[Diagnostic] {
        &self.findings
    }

    fn check(&self, object: &Object, out: &mut Vec<Diagnostic>) {
        match object {
            Object::Ingress(ing) => self.check_ingress(ing, out),
            Object::Resource(r) => match r.meta.object.kind.as_str() {
                "VirtualServer" => self.check_routes(r, "routes", out),
                "VirtualServerRoute" => self.check_routes(r, "subroutes", out),
                "Policy" => self.check_policy(r, out),
                _ => {}
            },
            _ => {}
        }
    }

    fn owned_names(&self) -> &HashSet<String> {
        &self.owned
    }

    fn voice(&self) -> Voice {
        self.ingress_voice
    }

    fn warnings(&self) -> Vec<String> {
        self.warnings.clone()
    }
}

/// The `proxy_set_header`/`grpc_set_header` lines at the top of a snippet, as written (a
/// `proxy_set_header` in a gRPC location is not applied, and the rules skip it).
fn snippet_lines(p: &ParsedSnippet<'_>, specificity: u8) -> Vec<HeaderLine> {
    p.header_lines(&p.config.directives, specificity)
}

/// A user line that is not a snippet directive (a `requestHeaders.set` entry, an entry of
/// `nginx.org/proxy-set-headers`).
fn field_line(
    name: &str,
    value: &str,
    family: Family,
    location: crate::source::Location,
    source: Provenance,
    object: &ObjectRef,
    specificity: u8,
) -> HeaderLine {
    HeaderLine {
        name: name.to_string(),
        value: value.to_string(),
        family,
        origin: Origin::User(UserLine {
            location,
            source,
            object: Some(object.clone()),
            snippet_line: None,
            inline_ignores: Vec::new(),
            specificity,
            from_header_map: false,
        }),
    }
}

/// The snippets-gate wording.
const GATE_HELP: &str = "remove the snippet, or start the controller with `-enable-snippets` (and tell snippet-guard with `--nic-enable-snippets true`), knowing that snippets let resource authors inject nginx configuration";

impl PreparedNic {
    fn has(&self, rule: &rules::RuleMeta) -> bool {
        self.rules.has(rule)
    }

    fn version(&self) -> NicVersion {
        self.settings.nic.version
    }

    fn snippets_off(&self) -> bool {
        self.settings.nic.snippets == Some(false)
    }

    fn common(
        &self,
        snippet: &ParsedSnippet<'_>,
        ctx: Ctx,
        voice: Voice,
        out: &mut Vec<Diagnostic>,
    ) {
        rules::check_snippet(snippet, ctx, voice, &self.owned, self.rules, out);
    }

    fn judge(
        &self,
        kind: LocationKind,
        family: Family,
        voice: Voice,
        lines: Vec<HeaderLine>,
        own: &ObjectRef,
        out: &mut Vec<Diagnostic>,
    ) {
        if !lines.iter().any(|l| l.user().is_some()) {
            return;
        }
        let model = LocationModel::new(kind, family, voice, lines);
        let mut found = Vec::new();
        run_location_rules(&model, self.rules, &mut found);
        let base = &self.config.base;
        out.extend(found.into_iter().filter(|d| {
            d.object.as_ref() == Some(own)
                || !base.contains(&(d.rule.id, d.primary, d.header.clone()))
        }));
    }

    fn read_configmap(&self, cm: &ConfigMap, out: &mut Vec<Diagnostic>) -> NicConfig {
        let get = |k: &str| cm.get(k).map(|e| e.value.value.as_str());
        let mut c = NicConfig {
            redirect_to_https: is_true(get("redirect-to-https")),
            keepalive: keepalive_on(get("keepalive")),
            location_snippets: None,
            base: HashSet::new(),
        };
        let object = Some(cm.meta.object.clone());
        let voice = self.ingress_voice;
        for (key, ctx) in [
            ("location-snippets", Ctx::LOCATION),
            ("server-snippets", Ctx::SERVER),
            ("http-snippets", Ctx::HTTP),
            ("main-snippets", Ctx::MAIN),
            ("stream-snippets", Ctx::STREAM),
        ] {
            let Some(e) = cm.get(key) else { continue };
            let snippet = ParsedSnippet::new(
                Provenance::ConfigMapKey(key.into()),
                &e.value,
                object.clone(),
            );
            self.common(&snippet, ctx, voice, out);
            if ctx == Ctx::LOCATION {
                c.location_snippets = Some(snippet_lines(&snippet, 1));
            }
        }
        // The location every Ingress and route gets, whatever it says.
        if let Some(lines) = &c.location_snippets {
            let facts = IngressLocation {
                redirect_to_https: c.redirect_to_https,
                keepalive: c.keepalive,
                ..IngressLocation::default()
            };
            let mut base = Vec::new();
            let model = LocationModel::new(
                LocationKind::Proxied,
                Family::Proxy,
                voice,
                ingress_lines(
                    &ingress_location(&facts),
                    lines.clone(),
                    Vec::new(),
                    Family::Proxy,
                ),
            );
            run_location_rules(&model, self.rules, &mut base);
            c.base = base
                .iter()
                .map(|d| (d.rule.id, d.primary, d.header.clone()))
                .collect();
            out.extend(base);
        }
        c
    }

    /// An Ingress: its locations (one per kind of backend: HTTP, websocket, gRPC) and server
    /// snippet, or, without `-enable-snippets`, the rejection.
    fn check_ingress(&self, ing: &Ingress, out: &mut Vec<Diagnostic>) {
        let meta = &ing.meta;
        let ann = |key: &str| meta.annotation(&format!("{ANNOTATION_PREFIX}/{key}"));
        if self.snippets_off() {
            let snippets: Vec<&Entry> = ["location-snippets", "server-snippets"]
                .iter()
                .filter_map(|k| ann(k))
                .collect();
            if !snippets.is_empty() {
                if !self.has(&rules::ignored_snippet::IGNORED_SNIPPET) {
                    return;
                }
                let mut rendered = Vec::new();
                self.render_ingress(ing, &mut rendered);
                for e in snippets {
                    let provenance = Provenance::Annotation(e.key.clone());
                    let snippet =
                        ParsedSnippet::new(provenance.clone(), &e.value, Some(meta.object.clone()));
                    let mut d = rules::ignored_snippet::not_rendered(
                        &snippet,
                        "F5 NGINX Ingress Controller runs without `-enable-snippets` (its default), and then rejects every Ingress with a snippet annotation (\"snippet specified but snippets feature is not enabled\"): none of this Ingress is served",
                        GATE_HELP,
                        &duplicates_in(&rendered, &provenance),
                    );
                    d.severity = Severity::Warning;
                    out.push(d);
                }
                return;
            }
        }
        self.render_ingress(ing, out);
    }

    fn render_ingress(&self, ing: &Ingress, out: &mut Vec<Diagnostic>) {
        let meta = &ing.meta;
        let ann = |key: &str| meta.annotation(&format!("{ANNOTATION_PREFIX}/{key}"));
        let ann_value = |key: &str| ann(key).map(|e| e.value.value.as_str());
        let object = Some(meta.object.clone());
        let voice = self.ingress_voice;
        let c = &self.config;
        let location = ann("location-snippets").map(|e| {
            ParsedSnippet::new(
                Provenance::Annotation(e.key.clone()),
                &e.value,
                object.clone(),
            )
        });
        if let Some(p) = &location {
            self.common(p, Ctx::LOCATION, voice, out);
        }
        if let Some(e) = ann("server-snippets") {
            let p = ParsedSnippet::new(
                Provenance::Annotation(e.key.clone()),
                &e.value,
                object.clone(),
            );
            self.common(&p, Ctx::SERVER, voice, out);
        }
        let snippet_user_lines = match &location {
            Some(p) => snippet_lines(p, 2),
            None => c.location_snippets.clone().unwrap_or_default(),
        };
        let header_list: Vec<(String, String, crate::source::Location)> = ann("proxy-set-headers")
            .map(|e| {
                proxy_set_headers(&e.value.value)
                    .into_iter()
                    .map(|(n, v, range)| {
                        let span = Span::new(range.start, range.end);
                        (n, v, e.value.map.map_span(span))
                    })
                    .collect()
            })
            .unwrap_or_default();
        let grpc_services = list(ann_value("grpc-services"));
        let ws_services = list(ann_value("websocket-services"));
        let redirect = match ann_value("redirect-to-https") {
            Some(v) => is_true(Some(v)),
            None => c.redirect_to_https,
        };
        let keepalive = match ann_value("keepalive") {
            Some(v) => keepalive_on(Some(v)),
            None => c.keepalive,
        };
        let mut kinds: Vec<IngressLocation> = ing
            .services
            .iter()
            .map(|s| IngressLocation {
                grpc: grpc_services.contains(s),
                websocket: ws_services.contains(s),
                keepalive,
                redirect_to_https: redirect,
            })
            .collect();
        if kinds.is_empty() {
            kinds.push(IngressLocation {
                keepalive,
                redirect_to_https: redirect,
                ..IngressLocation::default()
            });
        }
        let mut seen = Vec::new();
        for facts in kinds {
            if seen.contains(&facts) {
                continue;
            }
            seen.push(facts);
            let family = if facts.grpc {
                Family::Grpc
            } else {
                Family::Proxy
            };
            // `nginx.org/proxy-set-headers` is rendered in HTTP locations only.
            let list_lines = if facts.grpc {
                Vec::new()
            } else {
                header_list
                    .iter()
                    .map(|(n, v, loc)| {
                        field_line(
                            n,
                            v,
                            Family::Proxy,
                            *loc,
                            Provenance::Annotation(format!(
                                "{ANNOTATION_PREFIX}/proxy-set-headers"
                            )),
                            &meta.object,
                            2,
                        )
                    })
                    .collect()
            };
            let lines = ingress_lines(
                &ingress_location(&facts),
                snippet_user_lines.clone(),
                list_lines,
                family,
            );
            self.judge(
                LocationKind::Proxied,
                family,
                voice,
                lines,
                &meta.object,
                out,
            );
        }
    }

    /// A VirtualServer (`routes`) or VirtualServerRoute (`subroutes`).
    fn check_routes(&self, r: &Resource, list_key: &str, out: &mut Vec<Diagnostic>) {
        let meta = &r.meta;
        let spec = &r.spec;
        let object = Some(meta.object.clone());
        let voice = self.route_voice;
        let off = self.snippets_off();
        let mut not_rendered: Vec<(Provenance, &crate::model::Text)> = Vec::new();
        for (key, ctx) in [
            ("http-snippets", Ctx::HTTP),
            ("server-snippets", Ctx::SERVER),
        ] {
            let Some(text) = spec.get(key).and_then(Node::text) else {
                continue;
            };
            let provenance = Provenance::Field(format!("spec.{key}"));
            if off {
                not_rendered.push((provenance, text));
                continue;
            }
            let p = ParsedSnippet::new(provenance, text, object.clone());
            self.common(&p, ctx, voice, out);
        }
        let grpc_upstreams: Vec<&str> = spec
            .get("upstreams")
            .map(Node::items)
            .unwrap_or_default()
            .iter()
            .filter(|u| {
                u.str_at("type")
                    .is_some_and(|t| t.eq_ignore_ascii_case("grpc"))
            })
            .filter_map(|u| u.str_at("name"))
            .collect();
        let proto_from_header = spec
            .at(&["tls", "redirect", "basedOn"])
            .and_then(Node::string)
            .is_some_and(|v| v.eq_ignore_ascii_case("x-forwarded-proto"));
        let mut rendered = Vec::new();
        for (i, route) in spec
            .get(list_key)
            .map(Node::items)
            .unwrap_or_default()
            .iter()
            .enumerate()
        {
            let path = format!("spec.{list_key}[{i}]");
            let snippet = route
                .get("location-snippets")
                .and_then(Node::text)
                .map(|t| (Provenance::Field(format!("{path}.location-snippets")), t));
            let parsed = match snippet {
                Some((provenance, text)) if off => {
                    not_rendered.push((provenance.clone(), text));
                    // Rendered as it would be, to say what turning the gate on would do.
                    Some((ParsedSnippet::new(provenance, text, object.clone()), false))
                }
                Some((provenance, text)) => {
                    let p = ParsedSnippet::new(provenance, text, object.clone());
                    self.common(&p, Ctx::LOCATION, voice, out);
                    Some((p, true))
                }
                None => None,
            };
            let snippet_user_lines = |rendering: bool| match &parsed {
                Some((p, live)) if *live || !rendering => snippet_lines(p, 2),
                _ => self.config.location_snippets.clone().unwrap_or_default(),
            };
            for (action_path, action) in actions(route, &path) {
                let upstream = action
                    .str_at("pass")
                    .or_else(|| action.at(&["proxy", "upstream"]).and_then(Node::string));
                let Some(upstream) = upstream else {
                    // A redirect or a return: no proxied request, no request headers.
                    continue;
                };
                let grpc = grpc_upstreams.contains(&upstream);
                let family = if grpc { Family::Grpc } else { Family::Proxy };
                let set: Vec<(String, String, crate::source::Location, String)> = action
                    .at(&["proxy", "requestHeaders", "set"])
                    .map(Node::items)
                    .unwrap_or_default()
                    .iter()
                    .enumerate()
                    .filter_map(|(j, h)| {
                        let name = h.get("name")?;
                        Some((
                            name.string()?.to_string(),
                            h.str_at("value").unwrap_or_default().to_string(),
                            name.location(),
                            format!("{action_path}.proxy.requestHeaders.set[{j}]"),
                        ))
                    })
                    .collect();
                let facts = RouteLocation {
                    grpc,
                    proto_from_header,
                    set: set.iter().map(|(n, ..)| n.to_ascii_lowercase()).collect(),
                };
                let set_lines: Vec<HeaderLine> = set
                    .iter()
                    .map(|(n, v, loc, field)| {
                        field_line(
                            n,
                            v,
                            family,
                            *loc,
                            Provenance::Field(field.clone()),
                            &meta.object,
                            1,
                        )
                    })
                    .collect();
                let template = route_location(&facts);
                let build = |user: Vec<HeaderLine>| {
                    let (host, rest): (Vec<&TemplateHeader>, Vec<&TemplateHeader>) =
                        template.iter().partition(|t| t.name == "Host");
                    let mut lines = user;
                    lines.extend(template_lines(rest, family));
                    lines.extend(set_lines.iter().cloned());
                    lines.extend(template_lines(host, family));
                    lines
                };
                self.judge(
                    LocationKind::Proxied,
                    family,
                    voice,
                    build(snippet_user_lines(true)),
                    &meta.object,
                    out,
                );
                if off && parsed.is_some() {
                    self.judge(
                        LocationKind::Proxied,
                        family,
                        voice,
                        build(snippet_user_lines(false)),
                        &meta.object,
                        &mut rendered,
                    );
                }
            }
        }
        if !not_rendered.is_empty() && self.has(&rules::ignored_snippet::IGNORED_SNIPPET) {
            for (provenance, text) in not_rendered {
                let p = ParsedSnippet::new(provenance.clone(), text, object.clone());
                out.push(rules::ignored_snippet::not_rendered(
                    &p,
                    &format!(
                        "F5 NGINX Ingress Controller runs without `-enable-snippets` (its default) and ignores the snippet fields of a {}",
                        meta.object.kind
                    ),
                    GATE_HELP,
                    &duplicates_in(&rendered, &provenance),
                ));
            }
        }
    }

    /// A Policy: the `authSnippets` of `externalAuth` land in the external-auth location.
    fn check_policy(&self, r: &Resource, out: &mut Vec<Diagnostic>) {
        let Some(text) = r
            .spec
            .at(&["externalAuth", "authSnippets"])
            .and_then(Node::text)
        else {
            return;
        };
        let provenance = Provenance::Field("spec.externalAuth.authSnippets".into());
        let p = ParsedSnippet::new(provenance, text, Some(r.meta.object.clone()));
        let why = if self.version() < NicVersion::EXTERNAL_AUTH {
            Some(format!(
                "Policy `externalAuth` appeared in F5 NGINX Ingress Controller v5.5; {} does not read it",
                self.version()
            ))
        } else if self.snippets_off() {
            Some("F5 NGINX Ingress Controller runs without `-enable-snippets` (its default) and ignores `authSnippets`".to_string())
        } else {
            None
        };
        if let Some(why) = why {
            if self.has(&rules::ignored_snippet::IGNORED_SNIPPET) {
                out.push(rules::ignored_snippet::not_rendered(
                    &p,
                    &why,
                    GATE_HELP,
                    &[],
                ));
            }
            return;
        }
        let voice = self.route_voice;
        self.common(&p, Ctx::LOCATION, voice, out);
        let mut lines = snippet_lines(&p, 2);
        lines.extend(template_lines(&auth_location(), Family::Proxy));
        self.judge(
            LocationKind::Auth,
            Family::Proxy,
            voice,
            lines,
            &r.meta.object,
            out,
        );
    }
}

/// The lines of an Ingress location in nginx order: the controller's lines before the snippets
/// (Upgrade, Connection), the snippet, `nginx.org/proxy-set-headers`, then the forwarding
/// headers.
fn ingress_lines(
    template: &[TemplateHeader],
    snippet: Vec<HeaderLine>,
    list: Vec<HeaderLine>,
    family: Family,
) -> Vec<HeaderLine> {
    let mut lines = template_lines(template.iter().filter(|t| !t.after_snippets), family);
    lines.extend(snippet);
    lines.extend(list);
    lines.extend(template_lines(
        template.iter().filter(|t| t.after_snippets),
        family,
    ));
    lines
}

/// The actions of a route (its own, its splits', its matches' and their splits'), each with its
/// path in the resource.
fn actions<'a>(route: &'a Node, path: &str) -> Vec<(String, &'a Node)> {
    let mut out = Vec::new();
    let of = |node: &'a Node, at: String, out: &mut Vec<(String, &'a Node)>| {
        if let Some(a) = node.get("action") {
            out.push((format!("{at}.action"), a));
        }
        for (k, split) in node
            .get("splits")
            .map(Node::items)
            .unwrap_or_default()
            .iter()
            .enumerate()
        {
            if let Some(a) = split.get("action") {
                out.push((format!("{at}.splits[{k}].action"), a));
            }
        }
    };
    of(route, path.to_string(), &mut out);
    for (m, matched) in route
        .get("matches")
        .map(Node::items)
        .unwrap_or_default()
        .iter()
        .enumerate()
    {
        of(matched, format!("{path}.matches[{m}]"), &mut out);
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
    out.dedup();
    out
}
