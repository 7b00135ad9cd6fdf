//! The ingress-nginx profile: reads the controller ConfigMap(s), the `proxy-set-headers`
//! ConfigMap and the IngressClasses once ([`IngressNginx::prepare`]), then judges one Ingress at a
//! time against that configuration.
//!
//! The controller ConfigMap's snippets are parsed once, in `prepare`: the header lines of its
//! `location-snippet` and of the `proxy-set-headers` ConfigMap are kept, and every Ingress's
//! locations are built from them. Findings on those lines that every location has (the *base*
//! location: no annotation) belong to the ConfigMap and are made once; an Ingress reports a
//! ConfigMap line only when the duplicate exists because of that Ingress's own annotations.

use std::collections::HashSet;

use crate::diagnostic::Diagnostic;
use crate::headers::{Family, Voice};
use crate::model::{ConfigMap, Entry, Ingress, Meta, Object, ObjectRef, Provenance};
use crate::nginx::context::Ctx;
use crate::profile::{Prepared, Profile, SnippetRole};
use crate::rules::{
    self, HeaderLine, LocationKind, LocationModel, Origin, ParsedSnippet, RuleSet, UserLine,
    run_location_rules, template_lines,
};
use crate::settings::Settings;
use crate::source::Location;

use super::{
    CONTROLLER_NAME, Gates, Global, LOCATION_DIRECTIVES, LocationFacts, SnippetSource, Version,
    auth_location, proxied_location, voice,
};

/// Names ingress-nginx installs its ConfigMap under (Helm chart, static manifests, old releases).
pub const CONTROLLER_CONFIGMAP_NAMES: [&str; 4] = [
    "ingress-nginx-controller",
    "nginx-configuration",
    "nginx-ingress-controller",
    "ingress-nginx",
];

/// ConfigMap keys only the ingress-nginx controller ConfigMap carries.
pub const CONTROLLER_KEYS: [&str; 12] = [
    "location-snippet",
    "server-snippet",
    "http-snippet",
    "main-snippet",
    "stream-snippet",
    "proxy-set-headers",
    "allow-snippet-annotations",
    "annotations-risk-level",
    "use-forwarded-headers",
    "compute-full-forwarded-for",
    "global-auth-url",
    "use-proxy-protocol",
];

/// The label the ingress-nginx Helm chart puts on its ConfigMap and IngressClass alike: a
/// ConfigMap and a class of one release belong together.
const INSTANCE_LABEL: &str = "app.kubernetes.io/instance";

/// The ingress-nginx profile.
#[derive(Debug, Clone, Copy, Default)]
pub struct IngressNginx;

fn is_true(v: Option<&Entry>) -> bool {
    v.is_some_and(|e| e.value.value.trim().eq_ignore_ascii_case("true"))
}

fn list(v: Option<&Entry>) -> Vec<String> {
    v.map(|e| {
        e.value
            .value
            .split(',')
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .map(str::to_string)
            .collect()
    })
    .unwrap_or_default()
}

fn ns_name(meta: &Meta) -> String {
    format!(
        "{}/{}",
        meta.object.namespace.as_deref().unwrap_or("default"),
        meta.object.name
    )
}

fn configmaps(config: &[Object]) -> impl Iterator<Item = &ConfigMap> {
    config.iter().filter_map(|o| match o {
        Object::ConfigMap(cm) => Some(cm),
        _ => None,
    })
}

/// Whether `cm` is an ingress-nginx controller ConfigMap: named by the settings, else
/// recognised by its name, its chart labels or its keys.
fn is_controller_configmap(cm: &ConfigMap, settings: &Settings) -> bool {
    let named = &settings.controller_configmaps;
    let m = &cm.meta;
    if !named.is_empty() {
        return named
            .iter()
            .any(|n| *n == ns_name(m) || *n == m.object.name);
    }
    CONTROLLER_CONFIGMAP_NAMES.contains(&m.object.name.as_str())
        || (m.label("app.kubernetes.io/name") == Some("ingress-nginx")
            && m.label("app.kubernetes.io/component") == Some("controller"))
        || cm
            .data
            .iter()
            .any(|e| CONTROLLER_KEYS.contains(&e.key.as_str()))
}

/// The ConfigMap a controller ConfigMap's `proxy-set-headers` names, among `config`.
/// ingress-nginx looks the value up as-is in its `namespace/name` store: a value without a
/// namespace finds nothing (see [`unresolved_header_map`]).
fn header_map<'a>(controller: &ConfigMap, config: &'a [Object]) -> Option<&'a ConfigMap> {
    let entry = controller.get("proxy-set-headers")?;
    let (ns, name) = entry.value.value.trim().split_once('/')?;
    configmaps(config).find(|c| {
        c.meta.object.name == name && c.meta.object.namespace.as_deref().unwrap_or("default") == ns
    })
}

/// The finding for a `proxy-set-headers` value without a namespace: ingress-nginx renders no
/// header from it.
fn unresolved_header_map(controller: &ConfigMap) -> Option<Diagnostic> {
    let entry = controller.get("proxy-set-headers")?;
    let value = entry.value.value.trim();
    if value.is_empty() || value.contains('/') {
        return None;
    }
    let namespace = controller
        .meta
        .object
        .namespace
        .as_deref()
        .unwrap_or("<namespace>");
    let mut d = rules::ignored_snippet::setting(
        entry.value.location(),
        format!(
            "`proxy-set-headers: {value}` names no namespace: ingress-nginx looks `{value}` up as `namespace/name`, finds nothing and adds none of its headers"
        ),
        &format!("write `{namespace}/{value}` (the ConfigMap's namespace and name)"),
        crate::diagnostic::Severity::Warning,
    );
    d.object = Some(controller.meta.object.clone());
    d.source = Some(Provenance::ConfigMapKey("proxy-set-headers".into()));
    Some(d)
}

/// An entry of the `proxy-set-headers` ConfigMap: a header line in every location.
#[derive(Debug, Clone)]
struct HeaderMapEntry {
    name: String,
    value: String,
    location: Location,
}

/// One controller ConfigMap, read once.
#[derive(Debug, Default)]
struct ControllerConfig {
    /// `namespace/name` of the ConfigMap.
    name: Option<String>,
    /// `app.kubernetes.io/instance` of the ConfigMap.
    instance: Option<String>,
    global: Global,
    /// `None` when there is no ConfigMap: the gates are unknown, snippets are judged.
    gates: Option<Gates>,
    header_map: Option<(ObjectRef, Vec<HeaderMapEntry>)>,
    /// The header lines of `location-snippet`, parsed once.
    location_snippet: Vec<HeaderLine>,
    /// (rule, place, header) of the findings of the location every Ingress gets: an Ingress
    /// does not report these again.
    base: HashSet<(&'static str, Location, Option<String>)>,
}

impl ControllerConfig {
    fn header_map_lines(&self, family: Family) -> Vec<HeaderLine> {
        let Some((object, entries)) = &self.header_map else {
            return Vec::new();
        };
        let source = Provenance::HeaderMap(format!(
            "{}/{}",
            object.namespace.as_deref().unwrap_or("default"),
            object.name
        ));
        entries
            .iter()
            .map(|e| HeaderLine {
                name: e.name.clone(),
                value: e.value.clone(),
                family,
                origin: Origin::User(UserLine {
                    location: e.location,
                    source: source.clone(),
                    object: Some(object.clone()),
                    snippet_line: None,
                    inline_ignores: Vec::new(),
                    specificity: 0,
                    from_header_map: true,
                }),
            })
            .collect()
    }
}

/// ingress-nginx's configuration as far as the configuration objects reveal it.
#[derive(Debug)]
struct PreparedIngressNginx {
    settings: Settings,
    rules: RuleSet,
    voice: Voice,
    owned: HashSet<String>,
    /// Controller ConfigMaps, in `namespace/name` order (never in document order).
    controllers: Vec<ControllerConfig>,
    /// No controller ConfigMap: defaults.
    none: ControllerConfig,
    /// IngressClass name -> its `app.kubernetes.io/instance` label.
    class_instances: Vec<(String, String)>,
    findings: Vec<Diagnostic>,
}

/// Header names ingress-nginx sets in proxied locations of `version` in any configuration.
#[must_use]
pub fn controller_owned_names(version: Version) -> HashSet<String> {
    let facts = LocationFacts {
        auth_tls: true,
        auth_tls_pass_certificate: true,
        x_forwarded_prefix: Some(String::new()),
        ..LocationFacts::default()
    };
    let global = Global {
        proxy_add_original_uri_header: true,
        ..Global::default()
    };
    proxied_location(version, &facts, &global)
        .into_iter()
        .filter(|t| !t.is_empty() || t.after_snippets)
        .map(|t| t.name.to_ascii_lowercase())
        .collect()
}

impl Profile for IngressNginx {
    fn name(&self) -> &'static str {
        "ingress-nginx"
    }

    fn display_name(&self) -> &'static str {
        "ingress-nginx"
    }

    fn annotation_prefix(&self, settings: &Settings) -> String {
        settings.annotation_prefix.clone()
    }

    fn snippet_annotations(&self, settings: &Settings) -> Vec<(String, SnippetRole)> {
        let p = &settings.annotation_prefix;
        vec![
            (format!("{p}/configuration-snippet"), SnippetRole::Location),
            (format!("{p}/server-snippet"), SnippetRole::Server),
            (format!("{p}/stream-snippet"), SnippetRole::Stream),
            (format!("{p}/auth-snippet"), SnippetRole::Auth),
        ]
    }

    fn configured_classes(&self, settings: &Settings) -> Vec<String> {
        settings.ingress_classes.clone()
    }

    fn controller_names(&self) -> &'static [&'static str] {
        &[CONTROLLER_NAME]
    }

    fn class_names(&self, settings: &Settings) -> Vec<String> {
        let mut names = vec!["nginx".to_string()];
        names.extend(settings.ingress_classes.iter().cloned());
        names
    }

    fn is_config(&self, object: &Object, config: &[Object], settings: &Settings) -> bool {
        let Object::ConfigMap(cm) = object else {
            return matches!(object, Object::IngressClass(_));
        };
        is_controller_configmap(cm, settings)
            || configmaps(config)
                .filter(|c| is_controller_configmap(c, settings))
                .filter_map(|c| header_map(c, config))
                .any(|m| m.meta.object == cm.meta.object)
    }

    fn checks(&self, object: &Object) -> bool {
        matches!(object, Object::Ingress(_))
    }

    fn prepare(&self, config: &[Object], settings: &Settings, rules: RuleSet) -> Box<dyn Prepared> {
        let mut p = PreparedIngressNginx {
            settings: settings.clone(),
            rules,
            voice: voice(settings.version),
            owned: controller_owned_names(settings.version),
            controllers: Vec::new(),
            none: ControllerConfig::default(),
            class_instances: config
                .iter()
                .filter_map(|o| match o {
                    Object::IngressClass(ic) => ic
                        .meta
                        .label(INSTANCE_LABEL)
                        .map(|i| (ic.meta.object.name.clone(), i.to_string())),
                    _ => None,
                })
                .collect(),
            findings: Vec::new(),
        };
        let mut maps: Vec<&ConfigMap> = configmaps(config)
            .filter(|cm| is_controller_configmap(cm, settings))
            .collect();
        maps.sort_by_key(|cm| ns_name(&cm.meta));
        maps.dedup_by_key(|cm| ns_name(&cm.meta));
        let mut seen = HashSet::new();
        for cm in maps {
            let mut found = Vec::new();
            let c = p.read_controller(cm, config, &mut found);
            p.findings.extend(
                found
                    .into_iter()
                    .filter(|d| seen.insert((d.rule.id, d.primary, d.header.clone()))),
            );
            p.controllers.push(c);
        }
        Box::new(p)
    }
}

impl Prepared for PreparedIngressNginx {
    fn config_findings(&self) -> &[Diagnostic] {
        &self.findings
    }

    fn check(&self, object: &Object, out: &mut Vec<Diagnostic>) {
        if let Object::Ingress(ing) = object {
            self.check_ingress(ing, self.config_for(ing), out);
        }
    }

    fn owned_names(&self) -> &HashSet<String> {
        &self.owned
    }

    fn voice(&self) -> Voice {
        self.voice
    }

    fn warnings(&self) -> Vec<String> {
        if self.controllers.len() < 2 {
            return Vec::new();
        }
        let names: Vec<&str> = self
            .controllers
            .iter()
            .filter_map(|c| c.name.as_deref())
            .collect();
        vec![format!(
            "{} ingress-nginx controller ConfigMaps ({}): an Ingress is judged against the one whose `app.kubernetes.io/instance` label its IngressClass shares, else against {}; name the right one with --controller-configmap",
            names.len(),
            names.join(", "),
            names[0]
        )]
    }
}

/// The `proxy_set_header`/`grpc_set_header` lines a snippet adds at its top level.
#[must_use]
pub fn snippet_lines(p: &ParsedSnippet<'_>, specificity: u8) -> Vec<HeaderLine> {
    p.header_lines(&p.config.directives, specificity)
}

impl PreparedIngressNginx {
    fn has(&self, rule: &rules::RuleMeta) -> bool {
        self.rules.has(rule)
    }

    fn invalid(&self, snippet: &ParsedSnippet<'_>, ctx: Ctx, out: &mut Vec<Diagnostic>) {
        if self.has(&rules::invalid_snippet::INVALID_SNIPPET) {
            rules::invalid_snippet::check(snippet, ctx, &self.voice, out);
        }
    }

    fn template_directives(&self, snippet: &ParsedSnippet<'_>, out: &mut Vec<Diagnostic>) {
        if self.has(&rules::invalid_snippet::INVALID_SNIPPET) {
            rules::invalid_snippet::check_template_directives(
                snippet,
                &self.settings.annotation_prefix,
                &LOCATION_DIRECTIVES,
                &self.voice,
                out,
            );
        }
    }

    fn inherited(&self, snippet: &ParsedSnippet<'_>, ctx: Ctx, out: &mut Vec<Diagnostic>) {
        if self.has(&rules::ineffective_inherited_header::INEFFECTIVE_INHERITED_HEADER) {
            let owned = &self.owned;
            rules::ineffective_inherited_header::check(
                snippet,
                ctx,
                &|h: &str| owned.contains(&h.to_ascii_lowercase()),
                &self.voice,
                out,
            );
        }
    }

    /// What any snippet can hold wherever it lands: `include` lines (not read) and
    /// suppression comments naming no rule.
    fn includes(&self, snippet: &ParsedSnippet<'_>, out: &mut Vec<Diagnostic>) {
        if self.has(&rules::ignored_snippet::IGNORED_SNIPPET) {
            rules::ignored_snippet::includes(snippet, out);
        }
        if self.has(&rules::unknown_suppression::UNKNOWN_SUPPRESSION) {
            rules::unknown_suppression::comments(snippet, out);
        }
    }

    /// Duplicates inside the blocks the snippet writes itself (a `location` in a snippet; the
    /// server level of a `server-snippet`).
    fn blocks(&self, snippet: &ParsedSnippet<'_>, ctx: Ctx, out: &mut Vec<Diagnostic>) {
        if self.has(&rules::duplicate_snippet_header::DUPLICATE_SNIPPET_HEADER) {
            let root_is_block = ctx == Ctx::SERVER || ctx == Ctx::HTTP;
            rules::duplicate_snippet_header::check_blocks(snippet, root_is_block, self.voice, out);
        }
    }

    fn location(
        &self,
        kind: LocationKind,
        family: Family,
        lines: Vec<HeaderLine>,
    ) -> LocationModel {
        LocationModel::new(kind, family, self.voice, lines)
    }

    /// The controller ConfigMap an Ingress is judged against: the only one; else the one of
    /// the Helm release whose IngressClass is the Ingress's class; else the first by
    /// `namespace/name`.
    fn config_for(&self, ing: &Ingress) -> &ControllerConfig {
        match self.controllers.as_slice() {
            [] => &self.none,
            [only] => only,
            all => ing
                .class
                .as_ref()
                .and_then(|class| self.class_instances.iter().find(|(name, _)| name == class))
                .and_then(|(_, instance)| {
                    let mut matching = all
                        .iter()
                        .filter(|c| c.instance.as_deref() == Some(instance.as_str()));
                    match (matching.next(), matching.next()) {
                        (Some(c), None) => Some(c),
                        _ => None,
                    }
                })
                .unwrap_or(&all[0]),
        }
    }

    /// Read one controller ConfigMap: its settings, gates and header lines, and its own
    /// findings (into `out`).
    fn read_controller(
        &self,
        cm: &ConfigMap,
        config: &[Object],
        out: &mut Vec<Diagnostic>,
    ) -> ControllerConfig {
        let global = Global {
            use_forwarded_headers: is_true(cm.get("use-forwarded-headers")),
            compute_full_forwarded_for: is_true(cm.get("compute-full-forwarded-for")),
            proxy_add_original_uri_header: is_true(cm.get("proxy-add-original-uri-header")),
            forwarded_for_header: cm
                .get("forwarded-for-header")
                .map(|e| e.value.value.clone()),
            forwarded_host_header: cm
                .get("forwarded-host-header")
                .map(|e| e.value.value.clone()),
            global_auth_url: cm
                .get("global-auth-url")
                .is_some_and(|e| !e.value.value.trim().is_empty()),
            global_auth_response_headers: list(cm.get("global-auth-response-headers")),
        };
        let gates = Gates::from_config(
            self.settings.version,
            cm.get("allow-snippet-annotations")
                .map(|e| e.value.value.as_str()),
            cm.get("annotations-risk-level")
                .map(|e| e.value.value.as_str()),
        );
        let header_map = header_map(cm, config).map(|m| {
            (
                m.meta.object.clone(),
                m.data
                    .iter()
                    .map(|e| HeaderMapEntry {
                        name: e.key.clone(),
                        value: e.value.value.clone(),
                        location: e.key_location,
                    })
                    .collect(),
            )
        });
        let object = Some(cm.meta.object.clone());
        let prefix = &self.settings.annotation_prefix;
        let snippets: Vec<(SnippetSource, ParsedSnippet<'_>)> = SnippetSource::CONFIGMAP
            .iter()
            .filter_map(|&source| {
                cm.get(source.key()).map(|e| {
                    (
                        source,
                        ParsedSnippet::new(source.provenance(prefix), &e.value, object.clone()),
                    )
                })
            })
            .collect();
        let mut c = ControllerConfig {
            name: Some(ns_name(&cm.meta)),
            instance: cm.meta.label(INSTANCE_LABEL).map(str::to_string),
            global,
            gates: Some(gates),
            header_map,
            location_snippet: Vec::new(),
            base: HashSet::new(),
        };
        if self.has(&rules::ignored_snippet::IGNORED_SNIPPET)
            && let Some(d) = unresolved_header_map(cm)
        {
            out.push(d);
        }
        for (source, snippet) in &snippets {
            self.invalid(snippet, source.context(), out);
            self.includes(snippet, out);
            self.blocks(snippet, source.context(), out);
            match source {
                SnippetSource::LocationSnippet => {
                    self.template_directives(snippet, out);
                    c.location_snippet = snippet_lines(snippet, 1);
                }
                SnippetSource::ServerSnippetConfigMap | SnippetSource::HttpSnippet => {
                    self.inherited(snippet, source.context(), out);
                }
                SnippetSource::GlobalAuthSnippet if c.global.global_auth_url => {
                    let mut lines = template_lines(
                        &auth_location(&LocationFacts::default(), &c.global),
                        Family::Proxy,
                    );
                    lines.extend(snippet_lines(snippet, 1));
                    let model = self.location(LocationKind::Auth, Family::Proxy, lines);
                    run_location_rules(&model, self.rules, out);
                }
                _ => {}
            }
        }
        // The base location: every Ingress gets these lines, whatever its annotations.
        let mut base = Vec::new();
        for family in [Family::Proxy, Family::Grpc] {
            let facts = LocationFacts {
                grpc: family == Family::Grpc,
                ..LocationFacts::default()
            };
            let mut lines = template_lines(
                &proxied_location(self.settings.version, &facts, &c.global),
                family,
            );
            lines.extend(c.header_map_lines(family));
            lines.extend(c.location_snippet.iter().cloned());
            let model = self.location(LocationKind::Proxied, family, lines);
            run_location_rules(&model, self.rules, &mut base);
        }
        c.base = base
            .iter()
            .map(|d| (d.rule.id, d.primary, d.header.clone()))
            .collect();
        out.extend(base);
        c
    }

    /// Check an Ingress: its snippets as rendered, or, when the controller renders none of
    /// them (a canary Ingress; snippet annotations switched off), say so.
    fn check_ingress(&self, ing: &Ingress, c: &ControllerConfig, out: &mut Vec<Diagnostic>) {
        let prefix = self.settings.annotation_prefix.as_str();
        let ann = |key: &str| ing.meta.annotation(&format!("{prefix}/{key}"));
        let why = if is_true(ann("canary")) {
            // A canary Ingress takes every annotation but a few from its main Ingress.
            Some((
                "ingress-nginx renders the snippets of the main Ingress of a canary, never the canary's own".to_string(),
                "put the snippet on the main Ingress (the one without `canary: \"true\"`)".to_string(),
            ))
        } else {
            c.gates.as_ref().and_then(|g| gate_reason(g, c))
        };
        let Some((why, help)) = why else {
            self.render_ingress(ing, c, out);
            return;
        };
        if !self.has(&rules::ignored_snippet::IGNORED_SNIPPET) {
            return;
        }
        // What the snippets would do once rendered: a duplicate makes the finding a warning.
        let mut rendered = Vec::new();
        self.render_ingress(ing, c, &mut rendered);
        for source in SnippetSource::ANNOTATIONS {
            let Some(e) = ann(source.key()) else { continue };
            let provenance = source.provenance(prefix);
            let snippet =
                ParsedSnippet::new(provenance.clone(), &e.value, Some(ing.meta.object.clone()));
            let duplicates: Vec<String> = rendered
                .iter()
                .filter(|d| {
                    d.source.as_ref() == Some(&provenance)
                        && [
                            &rules::redundant_forwarded_proto::REDUNDANT_FORWARDED_PROTO,
                            &rules::duplicate_controller_header::DUPLICATE_CONTROLLER_HEADER,
                            &rules::duplicate_snippet_header::DUPLICATE_SNIPPET_HEADER,
                        ]
                        .contains(&d.rule)
                })
                .filter_map(|d| d.header.clone())
                .collect();
            out.push(rules::ignored_snippet::not_rendered(
                &snippet,
                &why,
                &help,
                &duplicates,
            ));
        }
    }

    /// The locations of an Ingress with its snippets rendered, judged.
    fn render_ingress(&self, ing: &Ingress, c: &ControllerConfig, out: &mut Vec<Diagnostic>) {
        let prefix = self.settings.annotation_prefix.as_str();
        let meta = &ing.meta;
        let ann = |key: &str| meta.annotation(&format!("{prefix}/{key}"));
        let ann_value = |key: &str| ann(key).map(|e| e.value.value.trim().to_string());
        let object = Some(meta.object.clone());
        let mut global = c.global.clone();
        if ann_value("enable-global-auth").is_some_and(|v| v.eq_ignore_ascii_case("false")) {
            global.global_auth_url = false;
        }
        let facts = LocationFacts {
            grpc: ann_value("backend-protocol")
                .is_some_and(|v| v.eq_ignore_ascii_case("grpc") || v.eq_ignore_ascii_case("grpcs")),
            fastcgi: ann_value("backend-protocol").is_some_and(|v| v.eq_ignore_ascii_case("fcgi")),
            upstream_vhost: ann_value("upstream-vhost").filter(|v| !v.is_empty()),
            auth_tls: ann_value("auth-tls-secret").is_some_and(|v| !v.is_empty()),
            auth_tls_pass_certificate: is_true(ann("auth-tls-pass-certificate-to-upstream")),
            connection_proxy_header: ann_value("connection-proxy-header").filter(|v| !v.is_empty()),
            basic_auth: ann_value("auth-type").is_some_and(|v| {
                v.eq_ignore_ascii_case("basic") || v.eq_ignore_ascii_case("digest")
            }) && ann("auth-secret").is_some(),
            auth_url: ann_value("auth-url").is_some_and(|v| !v.is_empty()),
            auth_method: ann_value("auth-method").is_some_and(|v| !v.is_empty()),
            auth_request_redirect: ann_value("auth-request-redirect"),
            auth_response_headers: list(ann("auth-response-headers")),
            x_forwarded_prefix: ann_value("x-forwarded-prefix")
                .filter(|v| !v.is_empty() && ann("rewrite-target").is_some()),
        };
        let family = if facts.grpc {
            Family::Grpc
        } else {
            Family::Proxy
        };
        let snippet = |source: SnippetSource| {
            ann(source.key())
                .map(|e| ParsedSnippet::new(source.provenance(prefix), &e.value, object.clone()))
        };
        let configuration = snippet(SnippetSource::ConfigurationSnippet);
        if let Some(p) = &configuration {
            self.invalid(p, Ctx::LOCATION, out);
            self.template_directives(p, out);
            self.includes(p, out);
            self.blocks(p, Ctx::LOCATION, out);
        }
        let mut lines = template_lines(
            &proxied_location(self.settings.version, &facts, &global),
            family,
        );
        lines.extend(c.header_map_lines(family));
        if let Some(p) = &configuration {
            lines.extend(snippet_lines(p, 2));
        }
        lines.extend(c.location_snippet.iter().cloned());
        // Under `fastcgi_pass` no proxy_set_header or grpc_set_header line reaches the backend.
        if !facts.fastcgi && lines.iter().any(|l| l.user().is_some()) {
            let model = self.location(LocationKind::Proxied, family, lines);
            let mut found = Vec::new();
            run_location_rules(&model, self.rules, &mut found);
            // A finding on a ConfigMap line that every location has is the ConfigMap's, made
            // once in `prepare`.
            out.extend(found.into_iter().filter(|d| {
                d.object.as_ref() == Some(&meta.object)
                    || !c.base.contains(&(d.rule.id, d.primary, d.header.clone()))
            }));
        }
        if let Some(p) = snippet(SnippetSource::ServerSnippetAnnotation) {
            self.invalid(&p, Ctx::SERVER, out);
            self.inherited(&p, Ctx::SERVER, out);
            self.includes(&p, out);
            self.blocks(&p, Ctx::SERVER, out);
        }
        if let Some(p) = snippet(SnippetSource::StreamSnippetAnnotation) {
            self.invalid(&p, Ctx::STREAM, out);
            self.includes(&p, out);
        }
        if facts.auth_url
            && let Some(p) = snippet(SnippetSource::AuthSnippet)
        {
            self.invalid(&p, Ctx::LOCATION, out);
            self.includes(&p, out);
            self.blocks(&p, Ctx::LOCATION, out);
            let mut lines = template_lines(&auth_location(&facts, &global), Family::Proxy);
            lines.extend(snippet_lines(&p, 2));
            let auth = self.location(LocationKind::Auth, Family::Proxy, lines);
            run_location_rules(&auth, self.rules, out);
        }
    }
}

/// Why the gates of the controller ConfigMap keep annotation snippets out, if they do.
fn gate_reason(g: &Gates, c: &ControllerConfig) -> Option<(String, String)> {
    if g.annotation_snippets_render() {
        return None;
    }
    let cm = c.name.as_deref().unwrap_or("the controller ConfigMap");
    let why = if g.allow_snippet_annotations {
        format!(
            "`annotations-risk-level` in ConfigMap {cm} is below `Critical` (the default is `High` since ingress-nginx v1.12), and snippet annotations are Critical"
        )
    } else {
        format!(
            "`allow-snippet-annotations` is not \"true\" in ConfigMap {cm} (it defaults to \"false\" since ingress-nginx v1.9)"
        )
    };
    let help = "remove the annotation, or set `allow-snippet-annotations: \"true\"` and `annotations-risk-level: Critical` in the controller ConfigMap, knowing that snippets let Ingress authors inject nginx configuration (CVE-2025-1974)".to_string();
    Some((why, help))
}
