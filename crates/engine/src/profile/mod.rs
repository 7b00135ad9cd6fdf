//! One module per controller: which objects carry its snippets, where each snippet lands, which
//! headers the controller renders around it (by version and settings), which gates switch
//! snippets off, and which IngressClass controller names it serves.
//!
//! The engine knows controllers only through [`Profile`]: it asks each profile which objects
//! configure it, lets it read them once into a [`Prepared`] configuration, routes every other
//! object to the profile that serves its class, and runs the rules the profile's locations call
//! for. Adding a controller means adding a module here and listing it in [`all`].

use std::collections::HashSet;
use std::fmt;

use crate::diagnostic::Diagnostic;
use crate::headers::Voice;
use crate::model::Object;
use crate::rules::RuleSet;
use crate::settings::Settings;

pub mod ingress_nginx;
pub mod ngf;
pub mod nic;

/// Where a snippet annotation lands, to name one controller's equivalent of another's.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SnippetRole {
    Location,
    Server,
    Stream,
    Auth,
    /// A list of request headers (`nginx.org/proxy-set-headers`).
    Headers,
}

/// One controller's knowledge.
pub trait Profile: Send + Sync + fmt::Debug {
    /// Short name, as users write it: `ingress-nginx`.
    fn name(&self) -> &'static str;

    /// The controller's name in messages: `F5 NGINX Ingress Controller`.
    fn display_name(&self) -> &'static str {
        self.name()
    }

    /// The prefix of its annotations, without `/`.
    fn annotation_prefix(&self, settings: &Settings) -> String;

    /// Its snippet annotations (full keys) and where each lands.
    fn snippet_annotations(&self, settings: &Settings) -> Vec<(String, SnippetRole)>;

    /// Class names the settings say this controller serves.
    fn configured_classes(&self, settings: &Settings) -> Vec<String>;

    /// `spec.controller` values of the IngressClasses this controller serves.
    fn controller_names(&self) -> &'static [&'static str];

    /// Class names this controller serves when no IngressClass of that name says otherwise
    /// (its conventional default, plus those the settings name).
    fn class_names(&self, settings: &Settings) -> Vec<String>;

    /// Whether `object` configures this controller (given the other configuration objects, since
    /// one ConfigMap can name another): such objects are read once into [`Prepared`] and their
    /// findings are made there.
    fn is_config(&self, object: &Object, config: &[Object], settings: &Settings) -> bool;

    /// Whether this controller reads snippets from objects of this kind (an Ingress, a
    /// VirtualServer...).
    fn checks(&self, object: &Object) -> bool;

    /// Read the configuration objects once.
    fn prepare(&self, config: &[Object], settings: &Settings, rules: RuleSet) -> Box<dyn Prepared>;
}

/// A controller's configuration, read once from the configuration objects, ready to judge the
/// objects it serves one at a time.
pub trait Prepared: Send + Sync + fmt::Debug {
    /// The findings on the configuration objects themselves (each carries its object).
    fn config_findings(&self) -> &[Diagnostic];

    /// Check one object this controller serves.
    fn check(&self, object: &Object, out: &mut Vec<Diagnostic>);

    /// Header names the controller writes in its locations in some configuration (lowercase):
    /// in a rendered `nginx.conf`, the first line of such a name is the controller's.
    fn owned_names(&self) -> &HashSet<String>;

    /// How findings name this controller.
    fn voice(&self) -> Voice;

    /// What the configuration leaves undecided (several controller ConfigMaps and no way to
    /// tell which serves an Ingress...): said once per run, as warnings.
    fn warnings(&self) -> Vec<String> {
        Vec::new()
    }
}

/// Names of every profile, as `--controller` takes them.
#[must_use]
pub fn names() -> Vec<&'static str> {
    all().iter().map(|p| p.name()).collect()
}

/// Every profile, the default (the one that judges objects of unknown class) first.
#[must_use]
pub fn all() -> Vec<Box<dyn Profile>> {
    vec![
        Box::new(ingress_nginx::IngressNginx),
        Box::new(nic::Nic),
        Box::new(ngf::Ngf),
    ]
}
