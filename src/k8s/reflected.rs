//! Reflectors the webhook and the controller share: one kube-runtime reflector feeding a store
//! ([`Reflected`]), and the set of ConfigMap watches both keep ([`ConfigMapWatches`]): each
//! `--controller-configmap NS/NAME`, plus the ConfigMap its `proxy-set-headers` key names, each
//! on a watch narrowed to that one name (`fieldSelector=metadata.name=NAME`, so only
//! `get`/`list`/`watch` on ConfigMaps in those namespaces is needed).

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use futures::StreamExt;
use k8s_openapi::api::core::v1::ConfigMap;
use kube::runtime::reflector::{self, Store};
use kube::runtime::watcher::{self, Event};
use kube::runtime::{WatchStreamExt, reflector as reflect};

use crate::k8s::backoff::{WatchBackoff, resilient};
use kube::{Api, Client, Resource};
use tokio::sync::mpsc;

use crate::k8s::refs::{NsName, proxy_set_headers_ref};

/// A reflector feeding a store; its task stops when this is dropped.
pub struct Reflected<K: Resource + Clone + 'static>
where
    K::DynamicType: std::hash::Hash + Eq + Clone,
{
    pub store: Store<K>,
    synced: Arc<AtomicBool>,
    task: tokio::task::JoinHandle<()>,
}

impl<K: Resource + Clone + 'static> Drop for Reflected<K>
where
    K::DynamicType: std::hash::Hash + Eq + Clone,
{
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl<K: Resource + Clone + 'static> std::fmt::Debug for Reflected<K>
where
    K::DynamicType: std::hash::Hash + Eq + Clone,
{
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Reflected")
            .field("objects", &self.store.len())
            .field("synced", &self.is_synced())
            .finish_non_exhaustive()
    }
}

impl<K: Resource + Clone + 'static> Reflected<K>
where
    K::DynamicType: std::hash::Hash + Eq + Clone,
{
    /// The watch has listed once (it stays true across relists).
    #[must_use]
    pub fn is_synced(&self) -> bool {
        self.synced.load(Ordering::SeqCst)
    }
}

/// Reflect `api` (narrowed by `config`) into a store, every object passed through `trim` first.
/// `notify` gets a signal (coalesced: a full channel already has one pending) after the first
/// list and on every change. The watcher relists at once after `410 Gone` and reconnects after
/// other errors with the shared bounded backoff ([`crate::k8s::backoff::resilient`]); errors are
/// only logged, as `what`.
pub fn reflected<K>(
    api: Api<K>,
    config: watcher::Config,
    trim: fn(&mut K),
    what: String,
    notify: mpsc::Sender<()>,
) -> Reflected<K>
where
    K: Resource<DynamicType = ()>
        + Clone
        + serde::de::DeserializeOwned
        + std::fmt::Debug
        + Send
        + Sync
        + 'static,
{
    let (store, writer) = reflector::store();
    let synced = Arc::new(AtomicBool::new(false));
    let flag = synced.clone();
    let stream = reflect(
        writer,
        resilient(
            watcher::watcher(api, config).modify(trim),
            WatchBackoff::default(),
        ),
    );
    let task = tokio::spawn(async move {
        let mut stream = std::pin::pin!(stream);
        while let Some(event) = stream.next().await {
            match event {
                Ok(Event::InitDone) => {
                    flag.store(true, Ordering::SeqCst);
                    tracing::debug!(watch = %what, "listed");
                    let _ = notify.try_send(());
                }
                Ok(Event::Apply(_) | Event::Delete(_)) => {
                    tracing::debug!(watch = %what, "changed");
                    let _ = notify.try_send(());
                }
                Ok(Event::Init | Event::InitApply(_)) => {}
                Err(e) => {
                    tracing::warn!(watch = %what, error = %e, "watch failed; retrying with backoff");
                }
            }
        }
    });
    Reflected {
        store,
        synced,
        task,
    }
}

/// The controller ConfigMaps and the `proxy-set-headers` ConfigMaps they name, each on its own
/// reflector; a `proxy-set-headers` watch starts and stops as the reference changes.
pub struct ConfigMapWatches {
    client: Client,
    controllers: Vec<NsName>,
    trim: fn(&mut ConfigMap),
    notify: mpsc::Sender<()>,
    maps: BTreeMap<NsName, Reflected<ConfigMap>>,
    /// The controller ConfigMaps that existed at the last refresh, once the first sync was
    /// reported ([`ConfigMapWatches::warn_missing`]): one log line when one appears or goes.
    present: Option<BTreeSet<NsName>>,
}

impl std::fmt::Debug for ConfigMapWatches {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ConfigMapWatches")
            .field("controllers", &self.controllers)
            .field("watches", &self.maps)
            .finish_non_exhaustive()
    }
}

impl ConfigMapWatches {
    /// Start one watch per controller ConfigMap; `notify` is signalled on every change.
    #[must_use]
    pub fn start(
        client: Client,
        controllers: Vec<NsName>,
        trim: fn(&mut ConfigMap),
        notify: mpsc::Sender<()>,
    ) -> Self {
        let mut watches = Self {
            client,
            controllers: Vec::new(),
            trim,
            notify,
            maps: BTreeMap::new(),
            present: None,
        };
        for c in &controllers {
            let w = watches.watch(c);
            watches.maps.insert(c.clone(), w);
        }
        watches.controllers = controllers;
        watches
    }

    fn watch(&self, (ns, name): &NsName) -> Reflected<ConfigMap> {
        reflected(
            Api::namespaced(self.client.clone(), ns),
            watcher::Config::default().fields(&format!("metadata.name={name}")),
            self.trim,
            format!("ConfigMap {ns}/{name}"),
            self.notify.clone(),
        )
    }

    /// Start and stop `proxy-set-headers` watches as the controller ConfigMaps now say, and
    /// return the ConfigMaps in the stores: the controllers' first, in the order given, then
    /// the `proxy-set-headers` ones, by name.
    pub fn refresh(&mut self) -> Vec<Arc<ConfigMap>> {
        let mut configmaps = Vec::new();
        let mut header_maps = BTreeSet::new();
        let mut present = BTreeSet::new();
        for c in &self.controllers {
            for cm in self.maps[c].store.state() {
                header_maps.extend(proxy_set_headers_ref(&cm));
                configmaps.push(cm);
                present.insert(c.clone());
            }
        }
        if let Some(before) = &mut self.present {
            for c in present.difference(before) {
                tracing::info!(namespace = %c.0, name = %c.1, "controller ConfigMap found; judging with it from now on");
            }
            for c in before.difference(&present) {
                tracing::warn!(namespace = %c.0, name = %c.1, "controller ConfigMap gone; judging with the controller's defaults");
            }
            *before = present;
        }
        let controllers = &self.controllers;
        self.maps
            .retain(|k, _| controllers.contains(k) || header_maps.contains(k));
        for h in header_maps.iter().filter(|h| !self.controllers.contains(h)) {
            if !self.maps.contains_key(h) {
                tracing::info!(namespace = %h.0, name = %h.1, "watching the proxy-set-headers ConfigMap");
                let w = self.watch(h);
                self.maps.insert(h.clone(), w);
            }
            configmaps.extend(self.maps[h].store.state());
        }
        configmaps
    }

    /// Every watch has listed once.
    #[must_use]
    pub fn is_synced(&self) -> bool {
        self.maps.values().all(Reflected::is_synced)
    }

    /// Log a warning for each controller ConfigMap that does not exist (call once synced);
    /// from then on, [`ConfigMapWatches::refresh`] logs one line when one appears or goes.
    pub fn warn_missing(&mut self) {
        let mut present = BTreeSet::new();
        for c in &self.controllers {
            if self.maps[c].store.is_empty() {
                tracing::warn!(namespace = %c.0, name = %c.1, "controller ConfigMap not found; judging with the controller's defaults until it appears");
            } else {
                present.insert(c.clone());
            }
        }
        self.present = Some(present);
    }
}
