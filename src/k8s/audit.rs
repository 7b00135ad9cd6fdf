//! `snippet-guard audit`: list what the controller would watch, once, and lint it in context.
//!
//! Lists the Ingresses (one namespace or all), every IngressClass, the custom resources of the
//! enabled profiles whose CRDs are installed (VirtualServer, VirtualServerRoute, Policy), and the
//! controller ConfigMaps: those named with `--controller-configmap` / `--nic-configmap` (read
//! with `get`), else every ConfigMap the engine would recognise as one (listed cluster-wide,
//! kept by name, labels or keys), plus the ConfigMaps their `proxy-set-headers` keys name. Each typed object goes to
//! the engine through the same mapping as the controller's ([`crate::k8s::objects`]), each
//! value a source of its own, so a finding's frame shows the snippet line as the cluster holds
//! it (`Ingress shop/web annotation nginx.ingress.kubernetes.io/configuration-snippet:2:1`).
//! Objects are judged in the order `lint` would walk them saved as `<kind>/<ns>/<name>.yaml`.

use std::collections::BTreeSet;

use k8s_openapi::api::core::v1::ConfigMap;
use k8s_openapi::api::networking::v1::{Ingress, IngressClass};
use kube::api::{ApiResource, DynamicObject, ListParams};
use kube::{Api, Client};
use serde::de::DeserializeOwned;

use crate::engine::Settings;
use crate::input::api::Values;
use crate::k8s::controller::config::{NsName, parse_ns_name, proxy_set_headers_ref};
use crate::k8s::controller::objects;
use crate::model::Workspace;
use crate::profile::ingress_nginx::{CONTROLLER_CONFIGMAP_NAMES, CONTROLLER_KEYS};

/// Which Ingresses to list.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Scope {
    /// `-A`.
    AllNamespaces,
    /// `-n NS`, or the context's namespace.
    Namespace(String),
}

/// What can go wrong talking to the cluster.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// An API call failed.
    #[error("cannot {what}: {source}")]
    Api {
        what: String,
        #[source]
        source: kube::Error,
    },
}

impl Error {
    #[must_use]
    pub fn metric_label(&self) -> &'static str {
        match self {
            Error::Api { .. } => "api",
        }
    }
}

pub type Result<T, E = Error> = std::result::Result<T, E>;

/// One object the audit judges.
#[derive(Debug, Clone)]
pub enum Listed {
    Ingress(Ingress),
    ConfigMap(ConfigMap),
    IngressClass(IngressClass),
    /// A custom resource of a kind an enabled profile reads (VirtualServer...).
    Resource(Box<DynamicObject>, ApiResource),
}

impl Listed {
    /// `ingress/<ns>/<name>`, `ingressclass/<name>`: the order of the report.
    fn sort_key(&self) -> Vec<String> {
        let (kind, meta) = match self {
            Listed::Ingress(o) => ("ingress".to_string(), &o.metadata),
            Listed::ConfigMap(o) => ("configmap".to_string(), &o.metadata),
            Listed::IngressClass(o) => ("ingressclass".to_string(), &o.metadata),
            Listed::Resource(o, ar) => (ar.kind.to_ascii_lowercase(), &o.metadata),
        };
        let mut key = vec![kind];
        key.extend(meta.namespace.clone());
        key.push(meta.name.clone().unwrap_or_default());
        key
    }
}

const PAGE: u32 = 500;

async fn list_all<K>(api: &Api<K>, what: &str) -> Result<Vec<K>>
where
    K: Clone + DeserializeOwned + std::fmt::Debug,
{
    let mut out = Vec::new();
    let mut token: Option<String> = None;
    loop {
        let mut lp = ListParams::default().limit(PAGE);
        if let Some(t) = &token {
            lp = lp.continue_token(t);
        }
        let page = api.list(&lp).await.map_err(|source| Error::Api {
            what: format!("list {what}"),
            source,
        })?;
        out.extend(page.items);
        token = page.metadata.continue_.filter(|t| !t.is_empty());
        if token.is_none() {
            return Ok(out);
        }
    }
}

fn forbidden_or_missing(e: &Error) -> bool {
    matches!(e, Error::Api { source: kube::Error::Api(s), .. } if s.code == 403 || s.code == 404)
}

/// A ConfigMap the engine recognises as an ingress-nginx controller ConfigMap without
/// `--controller-configmap`: by name, by the chart's labels, or by a key only it carries.
#[must_use]
pub fn looks_like_controller_configmap(cm: &ConfigMap) -> bool {
    let name = cm.metadata.name.as_deref().unwrap_or_default();
    let label = |k: &str| {
        cm.metadata
            .labels
            .as_ref()
            .and_then(|l| l.get(k))
            .map(String::as_str)
    };
    CONTROLLER_CONFIGMAP_NAMES.contains(&name)
        || (label("app.kubernetes.io/name") == Some("ingress-nginx")
            && label("app.kubernetes.io/component") == Some("controller"))
        || cm
            .data
            .as_ref()
            .is_some_and(|d| d.keys().any(|k| CONTROLLER_KEYS.contains(&k.as_str())))
}

/// A ConfigMap the engine recognises as F5 NGINX Ingress Controller's without `--nic-configmap`:
/// by name, by the chart's label, or by a key only it carries.
#[must_use]
pub fn looks_like_nic_configmap(cm: &ConfigMap) -> bool {
    use crate::profile::nic::{CONFIGMAP_KEYS, CONFIGMAP_NAMES};
    let name = cm.metadata.name.as_deref().unwrap_or_default();
    let label = cm
        .metadata
        .labels
        .as_ref()
        .and_then(|l| l.get("app.kubernetes.io/name"))
        .map(String::as_str);
    (CONFIGMAP_NAMES.contains(&name) && label != Some("ingress-nginx"))
        || label == Some("nginx-ingress")
        || cm
            .data
            .as_ref()
            .is_some_and(|d| d.keys().any(|k| CONFIGMAP_KEYS.contains(&k.as_str())))
}

async fn get_configmap(client: &Client, (ns, name): &NsName) -> Result<Option<ConfigMap>> {
    let api: Api<ConfigMap> = Api::namespaced(client.clone(), ns);
    api.get_opt(name).await.map_err(|source| Error::Api {
        what: format!("get ConfigMap {ns}/{name}"),
        source,
    })
}

/// List and trim everything the audit judges; sorted as `lint` walks files.
pub async fn collect(client: &Client, scope: &Scope, settings: &Settings) -> Result<Vec<Listed>> {
    let prefix = &settings.annotation_prefix;
    let mut texts = Vec::new();

    let ingresses: Api<Ingress> = match scope {
        Scope::AllNamespaces => Api::all(client.clone()),
        Scope::Namespace(ns) => Api::namespaced(client.clone(), ns),
    };
    for mut ing in list_all(&ingresses, "Ingresses").await? {
        objects::trim_ingress(&mut ing, prefix);
        texts.push(Listed::Ingress(ing));
    }

    match list_all(&Api::<IngressClass>::all(client.clone()), "IngressClasses").await {
        Ok(classes) => {
            for mut ic in classes {
                objects::trim_ingress_class(&mut ic);
                texts.push(Listed::IngressClass(ic));
            }
        }
        Err(e) if forbidden_or_missing(&e) => {
            tracing::warn!(error = %e, "IngressClasses not read: Ingresses are judged by class name only");
        }
        Err(e) => return Err(e),
    }

    let mut configmaps: Vec<ConfigMap> = Vec::new();
    let nic = settings.profile_enabled("f5-nginx-ingress");
    let recognise_ingress_nginx = settings.controller_configmaps.is_empty();
    let recognise_nic = nic && settings.nic.configmaps.is_empty();
    if recognise_ingress_nginx || recognise_nic {
        match list_all(&Api::<ConfigMap>::all(client.clone()), "ConfigMaps").await {
            Ok(all) => configmaps.extend(all.into_iter().filter(|cm| {
                (recognise_ingress_nginx && looks_like_controller_configmap(cm))
                    || (recognise_nic && looks_like_nic_configmap(cm))
            })),
            Err(e) if forbidden_or_missing(&e) => {
                tracing::warn!(error = %e, "ConfigMaps not read: judging with the controllers' defaults; name the controller ConfigMaps with --controller-configmap and --nic-configmap");
            }
            Err(e) => return Err(e),
        }
    }
    {
        let named = settings
            .controller_configmaps
            .iter()
            .chain(settings.nic.configmaps.iter().filter(|_| nic));
        for reference in named.filter_map(|s| parse_ns_name(s)) {
            if let Some(cm) = get_configmap(client, &reference).await? {
                configmaps.push(cm);
            } else {
                tracing::warn!(
                    namespace = %reference.0,
                    name = %reference.1,
                    "controller ConfigMap not found"
                );
            }
        }
    }
    let have = |cms: &[ConfigMap], r: &NsName| {
        cms.iter().any(|c| {
            c.metadata.namespace.as_deref() == Some(r.0.as_str())
                && c.metadata.name.as_deref() == Some(r.1.as_str())
        })
    };
    let refs: BTreeSet<NsName> = configmaps
        .iter()
        .filter_map(proxy_set_headers_ref)
        .collect();
    for r in refs {
        if !have(&configmaps, &r)
            && let Some(cm) = get_configmap(client, &r).await?
        {
            configmaps.push(cm);
        }
    }
    for mut cm in configmaps {
        objects::trim_configmap(&mut cm);
        texts.push(Listed::ConfigMap(cm));
    }

    for gvk in crate::k8s::controller::resources::watched_kinds(settings) {
        let Ok((ar, _)) = kube::discovery::pinned_kind(client, &gvk).await else {
            tracing::info!(kind = %gvk.kind, group = %gvk.group, "this kind is not served (its CRD is not installed?); not read");
            continue;
        };
        let api: Api<DynamicObject> = match scope {
            Scope::AllNamespaces => Api::all_with(client.clone(), &ar),
            Scope::Namespace(ns) => Api::namespaced_with(client.clone(), ns, &ar),
        };
        match list_all(&api, &ar.plural).await {
            Ok(items) => texts.extend(
                items
                    .into_iter()
                    .map(|o| Listed::Resource(Box::new(o), ar.clone())),
            ),
            Err(e) if forbidden_or_missing(&e) => {
                tracing::warn!(error = %e, kind = %ar.kind, "not read");
            }
            Err(e) => return Err(e),
        }
    }
    sort_like_a_walk(&mut texts);
    Ok(texts)
}

/// The order `lint DIR` would visit the objects saved as `<kind>/<ns>/<name>.yaml`.
pub fn sort_like_a_walk(objects: &mut [Listed]) {
    objects.sort_by_key(Listed::sort_key);
}

/// The objects as a workspace: each value a source of its own, so reports show its lines.
#[must_use]
pub fn workspace(objects: &[Listed]) -> Workspace {
    let mut ws = Workspace::new();
    for o in objects {
        let values = Values::Sources(&mut ws.sources);
        let object = match o {
            Listed::Ingress(i) => crate::k8s::objects::ingress(i, values),
            Listed::ConfigMap(c) => crate::k8s::objects::configmap(c, values),
            Listed::IngressClass(c) => crate::k8s::objects::ingress_class(c, values),
            Listed::Resource(r, ar) => match crate::k8s::objects::resource(r, ar, values) {
                Some(o) => o,
                None => continue,
            },
        };
        ws.files += 1;
        ws.objects.push(object);
    }
    ws
}
