//! The objects every Ingress is judged against: the controller ConfigMap(s) named with
//! `--controller-configmap`, the ConfigMap each one's `proxy-set-headers` key names, and every
//! IngressClass. Each ConfigMap is followed by a reflector on a watch narrowed to its name
//! (`fieldSelector=metadata.name=NAME`, so only `get`/`list`/`watch` on ConfigMaps in those
//! namespaces is needed); a `proxy-set-headers` watch starts and stops as the reference changes.
//! IngressClasses come from one cluster-wide reflector. Every object is trimmed on arrival.
//!
//! Readers see an immutable [`ConfigSnapshot`] through a `tokio::sync::watch` channel; it is
//! replaced only when the serialized texts change, so a resync that changes nothing re-checks
//! nothing, and every real change re-checks every Ingress (each one depends on all of it).

use std::sync::{Arc, OnceLock};

use k8s_openapi::api::core::v1::{ConfigMap, ObjectReference};
use std::collections::BTreeMap;
use std::sync::Mutex;

use futures::StreamExt;
use k8s_openapi::api::networking::v1::IngressClass;
use kube::api::{ApiResource, DynamicObject, GroupVersionKind};
use kube::runtime::watcher;
use kube::{Api, Client, Resource};
use tokio::sync::{mpsc, watch};

use super::objects;
use crate::engine::{Context, Settings};
use crate::input::api::Values;
use crate::k8s::reflected::{ConfigMapWatches, reflected};
use crate::model::{Object, ObjectRef};

pub use crate::k8s::refs::{NsName, parse_ns_name, proxy_set_headers_ref};

/// One configuration object, as the engine reads it.
#[derive(Debug, Clone)]
pub struct ConfigObject {
    /// The engine's reference (findings carry it).
    pub object: ObjectRef,
    /// The reference Events point at (`regarding`), uid included.
    pub reference: ObjectReference,
    /// The object as the engine reads it (trimmed; values detached from any file).
    pub engine: Object,
}

/// Equal when the engine would read the same (uids and resourceVersions aside).
impl PartialEq for ConfigObject {
    fn eq(&self, other: &Self) -> bool {
        self.engine == other.engine
    }
}

impl ConfigObject {
    #[must_use]
    pub fn configmap(cm: &ConfigMap) -> Self {
        let engine = crate::k8s::objects::configmap(cm, Values::Detached);
        Self {
            object: engine.meta().object.clone(),
            reference: cm.object_ref(&()),
            engine,
        }
    }

    #[must_use]
    pub fn ingress_class(ic: &IngressClass) -> Self {
        let engine = crate::k8s::objects::ingress_class(ic, Values::Detached);
        Self {
            object: engine.meta().object.clone(),
            reference: ic.object_ref(&()),
            engine,
        }
    }

    /// A custom resource other objects are judged against (a SnippetsFilter, a route that
    /// references one); `None` for a kind the engine does not read.
    #[must_use]
    pub fn resource(obj: &DynamicObject, ar: &ApiResource) -> Option<Self> {
        let engine = crate::k8s::objects::resource(obj, ar, Values::Detached)?;
        Some(Self {
            object: engine.meta().object.clone(),
            reference: obj.object_ref(ar),
            engine,
        })
    }

    #[must_use]
    pub fn is_configmap(&self) -> bool {
        self.object.kind == "ConfigMap"
    }

    fn sort_key(&self) -> (bool, Option<&str>, &str) {
        (
            !self.is_configmap(),
            self.object.namespace.as_deref(),
            self.object.name.as_str(),
        )
    }
}

/// What reconciles see: the configuration objects and the engine context built from them
/// (once per snapshot: every Ingress reconcile reuses it).
#[derive(Debug, Default, Clone)]
pub struct ConfigSnapshot {
    /// ConfigMaps first, then IngressClasses, each sorted by namespace and name.
    pub objects: Vec<ConfigObject>,
    /// Every watch has listed once.
    pub synced: bool,
    context: OnceLock<Arc<Context>>,
}

/// Equal when the engine would read the same objects.
impl PartialEq for ConfigSnapshot {
    fn eq(&self, other: &Self) -> bool {
        self.synced == other.synced && self.objects == other.objects
    }
}

impl ConfigSnapshot {
    /// A synced snapshot of these objects (tests, benchmarks, audit).
    #[must_use]
    pub fn of(configmaps: &[ConfigMap], classes: &[IngressClass]) -> Self {
        let mut objects: Vec<ConfigObject> = configmaps
            .iter()
            .map(ConfigObject::configmap)
            .chain(classes.iter().map(ConfigObject::ingress_class))
            .collect();
        objects.sort_by(|a, b| a.sort_key().cmp(&b.sort_key()));
        Self {
            objects,
            synced: true,
            context: OnceLock::new(),
        }
    }

    /// The engine context of this configuration, built on first use (the settings of one
    /// process never change).
    pub fn context(&self, settings: &Settings) -> Arc<Context> {
        self.context
            .get_or_init(|| {
                let objects: Vec<Object> = self.objects.iter().map(|o| o.engine.clone()).collect();
                Arc::new(Context::build(&objects, settings))
            })
            .clone()
    }
}

/// A task stopped when this is dropped.
struct AbortOnDrop(tokio::task::JoinHandle<()>);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// Custom resources other objects are judged against, by (kind, namespace, name).
type Related = Arc<Mutex<BTreeMap<(String, String, String), ConfigObject>>>;

/// The kinds that are context for others: NGINX Gateway Fabric's SnippetsFilters and the routes
/// that reference them (a filter is judged in their locations, a route with their snippets).
#[must_use]
pub fn related_kinds(settings: &Settings) -> Vec<GroupVersionKind> {
    super::resources::watched_kinds(settings)
        .into_iter()
        .filter(|g| {
            matches!(
                g.kind.as_str(),
                "SnippetsFilter" | "HTTPRoute" | "GRPCRoute"
            )
        })
        .collect()
}

/// Whether a route's rules reference a SnippetsFilter (other routes change nothing).
fn references_snippets_filter(obj: &DynamicObject) -> bool {
    obj.data["spec"]["rules"]
        .as_array()
        .into_iter()
        .flatten()
        .flat_map(|r| r["filters"].as_array().into_iter().flatten())
        .any(|f| f["extensionRef"]["kind"] == "SnippetsFilter")
}

fn lock(
    r: &Related,
) -> std::sync::MutexGuard<'_, BTreeMap<(String, String, String), ConfigObject>> {
    r.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// Keep `related` equal to the objects of `gvk` that matter, once its CRD is served (discovery is
/// retried while it is not); `notify` on every change.
fn watch_related(
    client: Client,
    gvk: GroupVersionKind,
    related: Related,
    notify: mpsc::Sender<()>,
) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        let ar = super::resources::discover(&client, &gvk).await;
        let api: Api<DynamicObject> = Api::all_with(client, &ar);
        let kind = ar.kind.clone();
        let key = |o: &DynamicObject| {
            (
                kind.clone(),
                o.metadata.namespace.clone().unwrap_or_default(),
                o.metadata.name.clone().unwrap_or_default(),
            )
        };
        let keep = |o: &DynamicObject| kind == "SnippetsFilter" || references_snippets_filter(o);
        let stream = crate::k8s::backoff::resilient(
            watcher::watcher(api, watcher::Config::default()),
            crate::k8s::backoff::WatchBackoff::default(),
        );
        let mut stream = std::pin::pin!(stream);
        let mut listing: BTreeMap<(String, String, String), ConfigObject> = BTreeMap::new();
        while let Some(event) = stream.next().await {
            match event {
                Ok(watcher::Event::Apply(o)) => {
                    let mut map = lock(&related);
                    match ConfigObject::resource(&o, &ar).filter(|_| keep(&o)) {
                        Some(c) => map.insert(key(&o), c),
                        None => map.remove(&key(&o)),
                    };
                    drop(map);
                    let _ = notify.try_send(());
                }
                Ok(watcher::Event::Delete(o)) => {
                    lock(&related).remove(&key(&o));
                    let _ = notify.try_send(());
                }
                Ok(watcher::Event::Init) => listing.clear(),
                Ok(watcher::Event::InitApply(o)) => {
                    if let Some(c) = ConfigObject::resource(&o, &ar).filter(|_| keep(&o)) {
                        listing.insert(key(&o), c);
                    }
                }
                Ok(watcher::Event::InitDone) => {
                    let mut map = lock(&related);
                    map.retain(|k, _| k.0 != kind);
                    map.append(&mut listing);
                    drop(map);
                    let _ = notify.try_send(());
                }
                Err(e) => {
                    tracing::warn!(kind = %kind, error = %e, "watch failed; retrying with backoff");
                }
            }
        }
    })
}

/// Follow `controllers` (and what their `proxy-set-headers` name), the IngressClasses and the
/// `related` kinds; publish snapshots on `tx` until every receiver is gone.
pub async fn watch_config(
    client: Client,
    controllers: Vec<NsName>,
    related_kinds: Vec<GroupVersionKind>,
    tx: watch::Sender<Arc<ConfigSnapshot>>,
) {
    let (notify, mut changes) = mpsc::channel::<()>(1);
    let related: Related = Arc::default();
    let _related_tasks: Vec<AbortOnDrop> = related_kinds
        .into_iter()
        .map(|gvk| {
            AbortOnDrop(watch_related(
                client.clone(),
                gvk,
                related.clone(),
                notify.clone(),
            ))
        })
        .collect();
    // The watcher relists after `410 Gone` and reconnects with backoff after API server
    // restarts; errors are only logged.
    let classes = reflected(
        Api::<IngressClass>::all(client.clone()),
        watcher::Config::default(),
        objects::trim_ingress_class,
        "IngressClasses".to_string(),
        notify.clone(),
    );
    let mut maps = ConfigMapWatches::start(client, controllers, objects::trim_configmap, notify);
    let mut ever_synced = false;
    loop {
        let configmaps = maps.refresh();
        let synced = classes.is_synced() && maps.is_synced();
        if synced && !ever_synced {
            ever_synced = true;
            maps.warn_missing();
        }
        let configmaps: Vec<ConfigMap> = configmaps.iter().map(|c| (**c).clone()).collect();
        let classes: Vec<IngressClass> = classes
            .store
            .state()
            .iter()
            .map(|c| (**c).clone())
            .collect();
        let mut snapshot = ConfigSnapshot::of(&configmaps, &classes);
        snapshot.synced = ever_synced;
        // Not part of `synced`: their CRDs may never be installed.
        snapshot.objects.extend(lock(&related).values().cloned());
        tx.send_if_modified(|current| {
            if **current == snapshot {
                false
            } else {
                tracing::info!(
                    objects = snapshot.objects.len(),
                    synced = snapshot.synced,
                    "controller configuration changed; re-checking every Ingress"
                );
                *current = Arc::new(snapshot);
                true
            }
        });
        tokio::select! {
            () = tx.closed() => break,
            _ = changes.recv() => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn snapshots_compare_by_what_the_engine_reads() {
        let mut cm = ConfigMap::default();
        cm.metadata.name = Some("c".into());
        cm.metadata.namespace = Some("n".into());
        cm.metadata.resource_version = Some("1".into());
        let a = ConfigSnapshot::of(std::slice::from_ref(&cm), &[]);
        cm.metadata.resource_version = Some("2".into());
        assert_eq!(a, ConfigSnapshot::of(std::slice::from_ref(&cm), &[]));
        cm.data = Some([("k".to_string(), "v".to_string())].into());
        assert_ne!(a, ConfigSnapshot::of(&[cm], &[]));
    }
}
