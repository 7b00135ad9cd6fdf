//! The walker: finds the controller ConfigMap, decides which Ingresses ingress-nginx serves,
//! builds one [`LocationModel`] per location a snippet lands in, parses every snippet in the
//! context the controller inserts it, and runs the rules. Then it drops repeats, applies
//! suppressions and `--select`/`--ignore`, and sorts.

use std::collections::HashSet;

use crate::diagnostic::{Diagnostic, ObjectRef};
use crate::model::{ConfigMap, Entry, Ingress, Meta, Object, Workspace};
use crate::nginx::context::Ctx;
use crate::profile::ingress_nginx::{
    self as profile, Family, Gates, Global, LocationFacts, SnippetSource, Version,
};
use crate::rules::{
    self, HeaderLine, LocationKind, LocationModel, Origin, ParsedSnippet, UserLine,
};

/// What a run is told from outside the inputs.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Settings {
    pub version: Version,
    /// ingress-nginx `--annotations-prefix`.
    pub annotation_prefix: String,
    /// `namespace/name` of controller ConfigMaps; when empty they are recognised by name, labels
    /// and keys.
    pub controller_configmaps: Vec<String>,
    /// Ingress class names served by ingress-nginx, besides `nginx` and those whose IngressClass
    /// names `k8s.io/ingress-nginx`.
    pub ingress_classes: Vec<String>,
    /// Only these rule ids (all when empty).
    pub select: Vec<String>,
    /// Never these rule ids.
    pub ignore: Vec<String>,
    /// Honour `snippet-guard.io/ignore-*` annotations.
    pub annotation_suppressions: bool,
}

impl Default for Settings {
    fn default() -> Self {
        Self {
            version: Version::NEWEST,
            annotation_prefix: profile::DEFAULT_ANNOTATION_PREFIX.to_string(),
            controller_configmaps: Vec::new(),
            ingress_classes: Vec::new(),
            select: Vec::new(),
            ignore: Vec::new(),
            annotation_suppressions: true,
        }
    }
}

/// Annotation that silences one rule (`ignore-<id>`) or all (`ignore-all`) on an object.
pub const SUPPRESSION_PREFIX: &str = "snippet-guard.io/ignore-";

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

/// Ingress classes that belong to other controllers.
const OTHER_CLASSES: [&str; 12] = [
    "traefik",
    "alb",
    "gce",
    "gce-internal",
    "haproxy",
    "kong",
    "istio",
    "contour",
    "cilium",
    "azure-application-gateway",
    "openshift-default",
    "ambassador",
];

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

/// The controller's configuration as far as the inputs reveal it.
struct Controller<'a> {
    configmap: Option<&'a ConfigMap>,
    header_map: Option<&'a ConfigMap>,
    global: Global,
    gates: Option<Gates>,
}

struct Run<'a> {
    ws: &'a Workspace,
    settings: &'a Settings,
    out: Vec<Diagnostic>,
    owned_names: HashSet<String>,
}

/// Run every rule over the workspace.
#[must_use]
pub fn check(ws: &Workspace, settings: &Settings) -> Vec<Diagnostic> {
    let mut run = Run {
        ws,
        settings,
        out: ws.load_diagnostics.clone(),
        owned_names: controller_owned_names(settings.version),
    };
    let controller_maps = run.controller_configmaps();
    let controller = run.controller(controller_maps.first().copied());
    for cm in &controller_maps {
        let c = run.controller(Some(cm));
        run.check_controller_configmap(&c);
    }
    let (nginx_classes, other_classes) = run.classes();
    for object in &ws.objects {
        if let Object::Ingress(ing) = object {
            let served = match &ing.class {
                None => true,
                Some(c) if nginx_classes.contains(c) => true,
                Some(c) => !other_classes.contains(c) && !OTHER_CLASSES.contains(&c.as_str()),
            };
            if served {
                run.check_ingress(ing, &controller);
            }
        }
    }
    for &file in &ws.confs {
        crate::input::conf_dump::check(ws, file, settings, &run.owned_names, &mut run.out);
    }
    finish(ws, settings, run.out)
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
    profile::proxied_location(version, &facts, &global)
        .into_iter()
        .filter(|t| !t.is_empty() || t.after_snippets)
        .map(|t| t.name.to_ascii_lowercase())
        .collect()
}

impl<'a> Run<'a> {
    fn configmaps(&self) -> impl Iterator<Item = &'a ConfigMap> + use<'a> {
        self.ws.objects.iter().filter_map(|o| match o {
            Object::ConfigMap(cm) => Some(cm),
            _ => None,
        })
    }

    fn controller_configmaps(&self) -> Vec<&'a ConfigMap> {
        let named = &self.settings.controller_configmaps;
        if !named.is_empty() {
            return self
                .configmaps()
                .filter(|cm| {
                    named
                        .iter()
                        .any(|n| *n == ns_name(&cm.meta) || *n == cm.meta.object.name)
                })
                .collect();
        }
        self.configmaps()
            .filter(|cm| {
                let m = &cm.meta;
                CONTROLLER_CONFIGMAP_NAMES.contains(&m.object.name.as_str())
                    || (m.label("app.kubernetes.io/name") == Some("ingress-nginx")
                        && m.label("app.kubernetes.io/component") == Some("controller"))
                    || cm
                        .data
                        .iter()
                        .any(|e| CONTROLLER_KEYS.contains(&e.key.as_str()))
            })
            .collect()
    }

    fn controller(&self, configmap: Option<&'a ConfigMap>) -> Controller<'a> {
        let Some(cm) = configmap else {
            return Controller {
                configmap: None,
                header_map: None,
                global: Global::default(),
                gates: None,
            };
        };
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
        let header_map = cm.get("proxy-set-headers").and_then(|e| {
            let reference = e.value.value.trim();
            let (ns, name) = match reference.split_once('/') {
                Some((ns, name)) => (ns.to_string(), name),
                None => (
                    cm.meta.object.namespace.clone().unwrap_or_default(),
                    reference,
                ),
            };
            self.configmaps().find(|c| {
                c.meta.object.name == name
                    && c.meta.object.namespace.as_deref().unwrap_or("default") == ns
            })
        });
        let gates = Gates::from_config(
            self.settings.version,
            cm.get("allow-snippet-annotations")
                .map(|e| e.value.value.as_str()),
            cm.get("annotations-risk-level")
                .map(|e| e.value.value.as_str()),
        );
        Controller {
            configmap: Some(cm),
            header_map,
            global,
            gates: Some(gates),
        }
    }

    fn classes(&self) -> (HashSet<String>, HashSet<String>) {
        let mut nginx: HashSet<String> = self.settings.ingress_classes.iter().cloned().collect();
        nginx.insert("nginx".to_string());
        let mut other = HashSet::new();
        for o in &self.ws.objects {
            if let Object::IngressClass(ic) = o {
                if ic.controller == profile::CONTROLLER_NAME {
                    nginx.insert(ic.meta.object.name.clone());
                } else {
                    other.insert(ic.meta.object.name.clone());
                }
            }
        }
        (nginx, other)
    }

    /// User lines from the `proxy-set-headers` ConfigMap, rendered with the location's directive.
    fn header_map_lines(controller: &Controller<'_>, family: Family) -> Vec<HeaderLine> {
        let Some(map) = controller.header_map else {
            return Vec::new();
        };
        let label = format!("proxy-set-headers ConfigMap {}", ns_name(&map.meta));
        map.data
            .iter()
            .map(|e| HeaderLine {
                name: e.key.clone(),
                value: e.value.value.clone(),
                family,
                origin: Origin::User(UserLine {
                    location: e.key_location,
                    source_label: label.clone(),
                    object: Some(map.meta.object.clone()),
                    snippet_line: None,
                    inline_ignores: Vec::new(),
                    specificity: 0,
                    from_header_map: true,
                }),
            })
            .collect()
    }

    fn check_controller_configmap(&mut self, c: &Controller<'_>) {
        let cm = c.configmap.expect("called with a ConfigMap");
        let object = Some(cm.meta.object.clone());
        let prefix = self.settings.annotation_prefix.clone();
        let snippets: Vec<(SnippetSource, ParsedSnippet<'_>)> = SnippetSource::CONFIGMAP
            .iter()
            .filter_map(|&source| {
                cm.get(source.key()).map(|e| {
                    (
                        source,
                        ParsedSnippet::new(source.describe(&prefix), &e.value, object.clone()),
                    )
                })
            })
            .collect();
        for (source, snippet) in &snippets {
            rules::invalid_snippet::check(snippet, source.context(), &mut self.out);
            if *source == SnippetSource::LocationSnippet {
                rules::invalid_snippet::check_template_directives(snippet, &prefix, &mut self.out);
            }
            match source {
                SnippetSource::ServerSnippetConfigMap | SnippetSource::HttpSnippet => {
                    let owned = &self.owned_names;
                    rules::ineffective_inherited_header::check(
                        snippet,
                        source.context(),
                        &|h: &str| owned.contains(&h.to_ascii_lowercase()),
                        &mut self.out,
                    );
                }
                SnippetSource::GlobalAuthSnippet if c.global.global_auth_url => {
                    let mut lines = template_lines(
                        &profile::auth_location(&LocationFacts::default(), &c.global),
                        Family::Proxy,
                    );
                    lines.extend(snippet_lines(snippet, 1));
                    let model = LocationModel::new(
                        LocationKind::Auth,
                        Family::Proxy,
                        self.settings.version,
                        lines,
                    );
                    run_location_rules(&model, &mut self.out);
                }
                _ => {}
            }
        }
        // The base location: every Ingress gets these lines, whatever its annotations.
        let location_snippet = snippets
            .iter()
            .find(|(s, _)| *s == SnippetSource::LocationSnippet)
            .map(|(_, p)| p);
        for family in [Family::Proxy, Family::Grpc] {
            let facts = LocationFacts {
                grpc: family == Family::Grpc,
                ..LocationFacts::default()
            };
            let mut lines = template_lines(
                &profile::proxied_location(self.settings.version, &facts, &c.global),
                family,
            );
            lines.extend(Self::header_map_lines(c, family));
            if let Some(p) = location_snippet {
                lines.extend(snippet_lines(p, 1));
            }
            let model =
                LocationModel::new(LocationKind::Proxied, family, self.settings.version, lines);
            run_location_rules(&model, &mut self.out);
        }
    }

    fn check_ingress(&mut self, ing: &Ingress, c: &Controller<'_>) {
        let prefix = self.settings.annotation_prefix.clone();
        let meta = &ing.meta;
        let ann = |key: &str| meta.annotation(&format!("{prefix}/{key}"));
        let ann_value = |key: &str| ann(key).map(|e| e.value.value.trim().to_string());
        if is_true(ann("canary")) {
            // A canary Ingress takes every annotation but a few from its main Ingress: its snippets
            // are never rendered.
            return;
        }
        if let Some(g) = &c.gates
            && !g.annotation_snippets_render()
        {
            return;
        }
        let object = Some(meta.object.clone());
        let mut global = c.global.clone();
        if ann_value("enable-global-auth").is_some_and(|v| v.eq_ignore_ascii_case("false")) {
            global.global_auth_url = false;
        }
        let facts = LocationFacts {
            grpc: ann_value("backend-protocol")
                .is_some_and(|v| v.eq_ignore_ascii_case("grpc") || v.eq_ignore_ascii_case("grpcs")),
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
                .map(|e| ParsedSnippet::new(source.describe(&prefix), &e.value, object.clone()))
        };
        let configuration = snippet(SnippetSource::ConfigurationSnippet);
        if let Some(p) = &configuration {
            rules::invalid_snippet::check(p, Ctx::LOCATION, &mut self.out);
            rules::invalid_snippet::check_template_directives(p, &prefix, &mut self.out);
        }
        let location_snippet = c.configmap.and_then(|cm| {
            cm.get(SnippetSource::LocationSnippet.key()).map(|e| {
                ParsedSnippet::new(
                    SnippetSource::LocationSnippet.describe(&prefix),
                    &e.value,
                    Some(cm.meta.object.clone()),
                )
            })
        });
        let mut lines = template_lines(
            &profile::proxied_location(self.settings.version, &facts, &global),
            family,
        );
        lines.extend(Self::header_map_lines(c, family));
        if let Some(p) = &configuration {
            lines.extend(snippet_lines(p, 2));
        }
        if let Some(p) = &location_snippet {
            lines.extend(snippet_lines(p, 1));
        }
        if lines.iter().any(|l| l.user().is_some()) {
            let model =
                LocationModel::new(LocationKind::Proxied, family, self.settings.version, lines);
            run_location_rules(&model, &mut self.out);
        }
        if let Some(p) = snippet(SnippetSource::ServerSnippetAnnotation) {
            rules::invalid_snippet::check(&p, Ctx::SERVER, &mut self.out);
            let owned = &self.owned_names;
            rules::ineffective_inherited_header::check(
                &p,
                Ctx::SERVER,
                &|h: &str| owned.contains(&h.to_ascii_lowercase()),
                &mut self.out,
            );
        }
        if let Some(p) = snippet(SnippetSource::StreamSnippetAnnotation) {
            rules::invalid_snippet::check(&p, Ctx::STREAM, &mut self.out);
        }
        if facts.auth_url
            && let Some(p) = snippet(SnippetSource::AuthSnippet)
        {
            rules::invalid_snippet::check(&p, Ctx::LOCATION, &mut self.out);
            let mut lines = template_lines(&profile::auth_location(&facts, &global), Family::Proxy);
            lines.extend(snippet_lines(&p, 2));
            let auth = LocationModel::new(
                LocationKind::Auth,
                Family::Proxy,
                self.settings.version,
                lines,
            );
            run_location_rules(&auth, &mut self.out);
        }
    }
}

fn template_lines(headers: &[profile::TemplateHeader], family: Family) -> Vec<HeaderLine> {
    headers
        .iter()
        .map(|t| HeaderLine {
            name: t.name.clone(),
            value: t.value.clone(),
            family,
            origin: Origin::Template(t.clone()),
        })
        .collect()
}

/// The `proxy_set_header`/`grpc_set_header` lines a snippet adds at its top level.
#[must_use]
pub fn snippet_lines(p: &ParsedSnippet<'_>, specificity: u8) -> Vec<HeaderLine> {
    let src = p.src();
    p.config
        .directives
        .iter()
        .filter(|d| d.block.is_none() && d.args.len() == 2)
        .filter_map(|d| {
            let family = Family::of_directive(d.name(src))?;
            Some(HeaderLine {
                name: d.args[0].value(src).into_owned(),
                value: d.args[1].value(src).into_owned(),
                family,
                origin: Origin::User(UserLine {
                    location: p.locate(d.span),
                    source_label: p.source_label.clone(),
                    object: p.object.clone(),
                    snippet_line: Some(p.line_of(d.span.start)),
                    inline_ignores: p.inline_ignores(d.span.start),
                    specificity,
                    from_header_map: false,
                }),
            })
        })
        .collect()
}

/// The four rules that judge the header lines of one location.
pub fn run_location_rules(model: &LocationModel, out: &mut Vec<Diagnostic>) {
    rules::redundant_forwarded_proto::check(model, out);
    rules::duplicate_controller_header::check(model, out);
    rules::duplicate_snippet_header::check(model, out);
    rules::ineffective_empty_header::check(model, out);
}

/// Drop repeats, apply suppressions and rule selection, and sort.
fn finish(ws: &Workspace, settings: &Settings, diags: Vec<Diagnostic>) -> Vec<Diagnostic> {
    let mut seen = HashSet::new();
    // (object, rule id or "all") silenced by an annotation; only objects that carry one.
    let silenced: HashSet<(&ObjectRef, &str)> = if settings.annotation_suppressions {
        ws.objects
            .iter()
            .map(Object::meta)
            .flat_map(|m| {
                m.annotations.iter().filter_map(move |a| {
                    a.key
                        .strip_prefix(SUPPRESSION_PREFIX)
                        .map(|id| (&m.object, id))
                })
            })
            .collect()
    } else {
        HashSet::new()
    };
    let suppressed_by_annotation = |object: &Option<ObjectRef>, id: &str| -> bool {
        object
            .as_ref()
            .is_some_and(|o| silenced.contains(&(o, id)) || silenced.contains(&(o, "all")))
    };
    let mut out: Vec<Diagnostic> = diags
        .into_iter()
        .filter(|d| seen.insert((d.rule.id, d.primary, d.header.clone())))
        .filter(|d| settings.select.is_empty() || settings.select.iter().any(|s| s == d.rule.id))
        .filter(|d| !settings.ignore.iter().any(|s| s == d.rule.id))
        .filter(|d| {
            !d.inline_ignores
                .iter()
                .any(|i| i == d.rule.id || i == "all")
        })
        .filter(|d| !suppressed_by_annotation(&d.object, d.rule.id))
        .collect();
    out.sort_by(|a, b| {
        (a.primary.file, a.primary.span.start, a.rule.id).cmp(&(
            b.primary.file,
            b.primary.span.start,
            b.rule.id,
        ))
    });
    out
}
