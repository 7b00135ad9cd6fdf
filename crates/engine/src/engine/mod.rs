//! The engine's entry points: a [`Context`] built once from the configuration objects, and a
//! check of one object at a time against it.
//!
//! ```text
//! config objects (controller ConfigMaps, IngressClasses, referenced ConfigMaps) + Settings
//!     -> Context::build            each profile reads its configuration once (Prepared)
//! object (Ingress, ConfigMap...)
//!     -> Context::check            routed by class to the profile that serves it
//!     -> Vec<Diagnostic>           suppressions applied, sorted
//! ```
//!
//! `lint` builds one context from its inputs and checks each object once ([`check`]); the webhook
//! and the controller keep a context up to date as the configuration changes and check one object
//! per request or event.

use std::collections::HashSet;

use crate::diagnostic::Diagnostic;
use crate::model::{Object, ObjectRef, Workspace};
use crate::profile::{self, Prepared, Profile};
use crate::rules::RuleSet;
use crate::source::{FileId, SourceFile};

pub mod conf;

pub use crate::settings::Settings;

/// Annotation that silences one rule (`ignore-<id>`) or all (`ignore-all`) on an object.
pub const SUPPRESSION_PREFIX: &str = "snippet-guard.io/ignore-";

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

/// One profile and its configuration.
#[derive(Debug)]
struct Controller {
    profile: Box<dyn Profile>,
    prepared: Box<dyn Prepared>,
    /// Class names it serves by convention or by the settings.
    classes: Vec<String>,
    /// Class names the settings give it.
    configured: Vec<String>,
    /// `<prefix>/` of its annotations.
    annotation_prefix: String,
}

/// The configuration of the cluster as the engine needs it, built once; then objects are
/// checked one at a time. Cheap to share (`Arc`) between threads.
#[derive(Debug)]
pub struct Context {
    settings: Settings,
    rules: RuleSet,
    /// The configuration objects, as given.
    config: Vec<Object>,
    /// Profiles with their prepared configuration; the first judges objects of unknown class.
    controllers: Vec<Controller>,
    /// IngressClass name -> `spec.controller`.
    classes: Vec<(String, String)>,
    /// (object, rule id or `all`) silenced by an annotation on a configuration object.
    silenced: HashSet<(ObjectRef, String)>,
}

impl Context {
    /// Read the configuration objects among `objects` (the others are ignored) once.
    #[must_use]
    pub fn build(objects: &[Object], settings: &Settings) -> Self {
        let profiles = profile::all()
            .into_iter()
            .filter(|p| settings.profile_enabled(p.name()))
            .collect();
        Self::with_profiles(profiles, objects, settings)
    }

    /// [`Context::build`] with the configuration objects of a workspace.
    #[must_use]
    pub fn from_workspace(ws: &Workspace, settings: &Settings) -> Self {
        Self::build(&ws.objects, settings)
    }

    fn with_profiles(
        profiles: Vec<Box<dyn Profile>>,
        objects: &[Object],
        settings: &Settings,
    ) -> Self {
        let config: Vec<Object> = objects
            .iter()
            .filter(|o| profiles.iter().any(|p| p.is_config(o, objects, settings)))
            .cloned()
            .collect();
        let rules = RuleSet::new(&settings.select, &settings.ignore);
        let controllers = profiles
            .into_iter()
            .map(|profile| Controller {
                prepared: profile.prepare(&config, settings, rules),
                classes: profile.class_names(settings),
                configured: profile.configured_classes(settings),
                annotation_prefix: format!("{}/", profile.annotation_prefix(settings)),
                profile,
            })
            .collect();
        let classes = config
            .iter()
            .filter_map(|o| match o {
                Object::IngressClass(ic) => {
                    Some((ic.meta.object.name.clone(), ic.controller.clone()))
                }
                _ => None,
            })
            .collect();
        let silenced = if settings.annotation_suppressions {
            config.iter().flat_map(silences).collect()
        } else {
            HashSet::new()
        };
        Self {
            settings: settings.clone(),
            rules,
            config,
            controllers,
            classes,
            silenced,
        }
    }

    #[must_use]
    pub fn settings(&self) -> &Settings {
        &self.settings
    }

    /// What the configuration leaves undecided, once per run (`lint` prints these on stderr).
    #[must_use]
    pub fn warnings(&self) -> Vec<String> {
        self.controllers
            .iter()
            .flat_map(|c| c.prepared.warnings())
            .collect()
    }

    /// The configuration objects the context was built from.
    #[must_use]
    pub fn config(&self) -> &[Object] {
        &self.config
    }

    /// Whether `object` is configuration (a controller ConfigMap, the ConfigMap one names, an
    /// IngressClass): a change to it needs a new context.
    #[must_use]
    pub fn is_config(&self, object: &Object) -> bool {
        let mut config = self.config.clone();
        replace(&mut config, object);
        self.controllers
            .iter()
            .any(|c| c.profile.is_config(object, &config, &self.settings))
    }

    /// The context with `object` added, or replacing the configuration object of the same
    /// name and kind.
    #[must_use]
    pub fn with(&self, object: &Object) -> Self {
        let mut config = self.config.clone();
        replace(&mut config, object);
        Self::build(&config, &self.settings)
    }

    /// The findings about one object (an Ingress, a ConfigMap...), suppressions applied, sorted
    /// by place. A configuration object that differs from the one the context holds is judged
    /// in a context that has it instead.
    #[must_use]
    pub fn check(&self, object: &Object) -> Vec<Diagnostic> {
        let mut out = Vec::new();
        match object {
            Object::Ingress(_) | Object::Resource(_) => {
                if let Some(c) = self.controller_for(object) {
                    c.prepared.check(object, &mut out);
                    if self
                        .rules
                        .has(&crate::rules::ignored_snippet::IGNORED_SNIPPET)
                    {
                        self.foreign_annotations(c, object, &mut out);
                    }
                }
            }
            Object::ConfigMap(cm) => {
                let me = &cm.meta.object;
                if self.config.contains(object) {
                    out.extend(self.config_findings(me));
                } else if self.is_config(object) {
                    out.extend(self.with(object).config_findings(me));
                }
            }
            Object::IngressClass(_) => {}
        }
        if self
            .rules
            .has(&crate::rules::unknown_suppression::UNKNOWN_SUPPRESSION)
        {
            crate::rules::unknown_suppression::annotations(
                object.meta(),
                SUPPRESSION_PREFIX,
                &mut out,
            );
        }
        self.finish(object, out)
    }

    /// The findings of a rendered `nginx.conf` (`file`, whose id is `id` in its database).
    #[must_use]
    pub fn check_conf(&self, file: &SourceFile, id: FileId) -> Vec<Diagnostic> {
        let Some(default) = self.controllers.first() else {
            return Vec::new();
        };
        let mut out = Vec::new();
        conf::check(
            file,
            id,
            default.prepared.voice(),
            default.prepared.owned_names(),
            self.rules,
            &mut out,
        );
        finish_inline(&mut out);
        out
    }

    fn config_findings<'a>(
        &'a self,
        object: &'a ObjectRef,
    ) -> impl Iterator<Item = Diagnostic> + 'a {
        self.controllers.iter().flat_map(move |c| {
            c.prepared
                .config_findings()
                .iter()
                .filter(move |d| d.object.as_ref() == Some(object))
                .cloned()
        })
    }

    /// The controller that serves an object (an Ingress, a VirtualServer...): among the
    /// profiles that read its kind, by the classes the settings give, else by the IngressClass
    /// of its class, else by each profile's conventional class names; an unknown class goes to
    /// the default profile, unless it is one that other controllers use. Where that leaves more
    /// than one (two controllers both call their class `nginx`), the one whose annotations the
    /// object carries.
    fn controller_for(&self, object: &Object) -> Option<&Controller> {
        let candidates: Vec<&Controller> = self
            .controllers
            .iter()
            .filter(|c| c.profile.checks(object))
            .collect();
        let class = match object {
            Object::Ingress(ing) => ing.class.clone(),
            Object::Resource(r) => r.spec.str_at("ingressClassName").map(str::to_string),
            _ => None,
        };
        let Some(class) = class else {
            return Self::by_annotations(object, &candidates);
        };
        let configured: Vec<&Controller> = candidates
            .iter()
            .copied()
            .filter(|c| c.configured.contains(&class))
            .collect();
        if !configured.is_empty() {
            return Self::by_annotations(object, &configured);
        }
        if let Some((_, controller)) = self.classes.iter().find(|(name, _)| *name == class) {
            return candidates
                .into_iter()
                .find(|c| c.profile.controller_names().contains(&controller.as_str()));
        }
        let conventional: Vec<&Controller> = candidates
            .iter()
            .copied()
            .filter(|c| c.classes.contains(&class))
            .collect();
        if !conventional.is_empty() {
            return Self::by_annotations(object, &conventional);
        }
        if OTHER_CLASSES.contains(&class.as_str()) {
            return None;
        }
        Self::by_annotations(object, &candidates)
    }

    /// The one of `candidates` whose annotations `object` carries, else the first.
    fn by_annotations<'a>(
        object: &Object,
        candidates: &[&'a Controller],
    ) -> Option<&'a Controller> {
        let annotations = &object.meta().annotations;
        let mut claiming = candidates.iter().filter(|c| {
            annotations
                .iter()
                .any(|a| a.key.starts_with(&c.annotation_prefix))
        });
        match (claiming.next(), claiming.next()) {
            (Some(c), None) => Some(*c),
            _ => candidates.first().copied(),
        }
    }

    /// Snippet annotations of the other controllers on an object `serving` judges: that
    /// controller never reads them.
    fn foreign_annotations(
        &self,
        serving: &Controller,
        object: &Object,
        out: &mut Vec<Diagnostic>,
    ) {
        let ours = serving.profile.snippet_annotations(&self.settings);
        for other in profile::all() {
            if other.name() == serving.profile.name() {
                continue;
            }
            for (key, role) in other.snippet_annotations(&self.settings) {
                let Some(entry) = object.meta().annotation(&key) else {
                    continue;
                };
                let instead = ours
                    .iter()
                    .find(|(_, r)| *r == role)
                    .map(|(k, _)| k.as_str());
                out.push(crate::rules::ignored_snippet::foreign(
                    object,
                    entry,
                    other.display_name(),
                    serving.prepared.voice().controller,
                    instead,
                ));
            }
        }
    }

    /// Apply inline and annotation suppressions, drop repeats, sort.
    fn finish(&self, object: &Object, mut out: Vec<Diagnostic>) -> Vec<Diagnostic> {
        finish_inline(&mut out);
        if self.settings.annotation_suppressions {
            let own: HashSet<(ObjectRef, String)> = silences(object).collect();
            out.retain(|d| {
                let Some(o) = &d.object else { return true };
                let silenced = |id: &str| {
                    let key = (o.clone(), id.to_string());
                    own.contains(&key) || self.silenced.contains(&key)
                };
                !silenced(d.rule.id) && !silenced("all")
            });
        }
        out
    }
}

/// Replace the configuration object of the same kind and name as `object`, or add it.
fn replace(config: &mut Vec<Object>, object: &Object) {
    let me = &object.meta().object;
    config.retain(|o| o.meta().object != *me);
    config.push(object.clone());
}

/// The (object, rule id or `all`) pairs an object's `snippet-guard.io/ignore-*` annotations
/// silence.
fn silences(object: &Object) -> impl Iterator<Item = (ObjectRef, String)> + '_ {
    let m = object.meta();
    m.annotations.iter().filter_map(move |a| {
        a.key
            .strip_prefix(SUPPRESSION_PREFIX)
            .map(|id| (m.object.clone(), id.to_string()))
    })
}

/// Drop findings silenced by `# snippet-guard: ignore` comments and repeats; sort by place.
fn finish_inline(out: &mut Vec<Diagnostic>) {
    out.retain(|d| {
        !d.inline_ignores
            .iter()
            .any(|i| i == d.rule.id || i == "all")
    });
    sort_dedup(out);
}

/// Sort by place and rule; drop a finding made twice (the same rule, place and header).
/// Values read from the API server point at no file ([`FileId::DETACHED`]): their place is the
/// annotation or key and the offset in its value.
fn sort_dedup(out: &mut Vec<Diagnostic>) {
    let mut seen = HashSet::new();
    out.retain(|d| {
        seen.insert((
            d.rule.id,
            d.primary,
            d.header.clone(),
            d.object.clone(),
            d.source.clone(),
        ))
    });
    let key = |d: &Diagnostic| {
        let source = (d.primary.file == FileId::DETACHED)
            .then(|| d.source.clone())
            .flatten();
        (d.primary.file, source, d.primary.span.start, d.rule.id)
    };
    out.sort_by_cached_key(key);
}

/// Check every object and `nginx.conf` of a workspace once: the `lint` path.
#[must_use]
pub fn check(ws: &Workspace, settings: &Settings) -> Vec<Diagnostic> {
    let context = Context::from_workspace(ws, settings);
    check_with(&context, ws)
}

/// [`check`] against a context already built.
#[must_use]
pub fn check_with(context: &Context, ws: &Workspace) -> Vec<Diagnostic> {
    let mut out = Vec::new();
    for object in &ws.objects {
        out.extend(context.check(object));
    }
    for &file in &ws.confs {
        out.extend(context.check_conf(ws.sources.get(file), file));
    }
    // Two Ingresses can each cause the same finding on a ConfigMap line.
    sort_dedup(&mut out);
    crate::edit::resolve(ws, &mut out);
    out
}
