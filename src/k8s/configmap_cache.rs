//! The ConfigMaps an Ingress is judged against: each `--controller-configmap NS/NAME`, and the
//! ConfigMap its `proxy-set-headers` key names. Each is followed by a kube-runtime reflector on a
//! watch narrowed to that one name (`fieldSelector=metadata.name=NAME`), so the webhook needs
//! only `get`/`list`/`watch` on ConfigMaps in those namespaces. When a controller ConfigMap
//! starts or stops naming a `proxy-set-headers` ConfigMap, that watch is started or stopped.
//!
//! Readers get an immutable [`Snapshot`] (the objects already serialized for the engine), so a
//! request never waits on the watches. The cache is *synced* once every watch has finished its
//! first list; it stays synced afterwards (a later `proxy-set-headers` change does not make the
//! webhook unready while its new watch lists).

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use futures::StreamExt;
use k8s_openapi::api::core::v1::ConfigMap;
use kube::runtime::reflector::{self, Store};
use kube::runtime::watcher::{self, Event};
use kube::runtime::{WatchStreamExt, reflector as reflect};
use kube::{Api, Client, ResourceExt};
use tokio::sync::{mpsc, watch};

use crate::k8s::webhook::ContextObject;

pub use crate::k8s::refs::{NsName, parse_ns_name, proxy_set_headers_ref};

/// What requests see: the cached ConfigMaps, ready for the engine.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Snapshot {
    pub objects: Vec<ContextObject>,
    /// Every watch has listed once.
    pub synced: bool,
}

/// A cheap handle on the cache (clone freely). The watch tasks stop when every handle is gone.
#[derive(Debug, Clone)]
pub struct ConfigMapCache {
    rx: watch::Receiver<Arc<Snapshot>>,
    /// Keeps the sender alive for caches that never change.
    _fixed: Option<Arc<watch::Sender<Arc<Snapshot>>>>,
}

impl ConfigMapCache {
    /// No controller ConfigMap to follow: empty and synced.
    #[must_use]
    pub fn empty() -> Self {
        Self::fixed(Vec::new())
    }

    /// A cache that never changes (tests, benchmarks): synced.
    #[must_use]
    pub fn fixed(objects: Vec<ContextObject>) -> Self {
        let (tx, rx) = watch::channel(Arc::new(Snapshot {
            objects,
            synced: true,
        }));
        Self {
            rx,
            _fixed: Some(Arc::new(tx)),
        }
    }

    /// Follow `controllers` (and what their `proxy-set-headers` name) through `client`.
    /// Spawns tasks on the current tokio runtime.
    #[must_use]
    pub fn watch(client: Client, controllers: Vec<NsName>) -> Self {
        let (tx, rx) = watch::channel(Arc::new(Snapshot::default()));
        tokio::spawn(manage(client, controllers, tx));
        Self { rx, _fixed: None }
    }

    /// The current objects.
    #[must_use]
    pub fn snapshot(&self) -> Arc<Snapshot> {
        self.rx.borrow().clone()
    }

    #[must_use]
    pub fn is_synced(&self) -> bool {
        self.rx.borrow().synced
    }

    /// Wait until the first snapshot that satisfies `f` (tests use it with a timeout).
    pub async fn wait_for(&self, f: impl FnMut(&Arc<Snapshot>) -> bool) -> Arc<Snapshot> {
        let mut rx = self.rx.clone();
        match rx.wait_for(f).await {
            Ok(s) => s.clone(),
            Err(_) => self.snapshot(),
        }
    }
}

/// One reflector on one ConfigMap name; aborted when dropped.
struct Watched {
    store: Store<ConfigMap>,
    synced: Arc<AtomicBool>,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for Watched {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl Watched {
    fn start(client: Client, (namespace, name): NsName, notify: mpsc::Sender<()>) -> Self {
        let api: Api<ConfigMap> = Api::namespaced(client, &namespace);
        let (store, writer) = reflector::store();
        let synced = Arc::new(AtomicBool::new(false));
        let config = watcher::Config::default().fields(&format!("metadata.name={name}"));
        let stream = reflect(
            writer,
            watcher::watcher(api, config)
                .modify(|cm: &mut ConfigMap| cm.managed_fields_mut().clear()),
        )
        .default_backoff();
        let flag = synced.clone();
        let task = tokio::spawn(async move {
            let mut stream = std::pin::pin!(stream);
            while let Some(event) = stream.next().await {
                match event {
                    Ok(Event::InitDone) => {
                        flag.store(true, Ordering::SeqCst);
                        tracing::debug!(%namespace, %name, "ConfigMap watch listed");
                        // Full channel: a rebuild is already pending.
                        let _ = notify.try_send(());
                    }
                    Ok(Event::Apply(_) | Event::Delete(_)) => {
                        tracing::debug!(%namespace, %name, "ConfigMap changed");
                        let _ = notify.try_send(());
                    }
                    Ok(Event::Init | Event::InitApply(_)) => {}
                    Err(e) => {
                        let e = crate::k8s::webhook::Error::Watch(e);
                        tracing::warn!(%namespace, %name, error = %e, "ConfigMap watch failed; retrying");
                    }
                }
            }
        });
        Self {
            store,
            synced,
            task,
        }
    }
}

async fn manage(client: Client, controllers: Vec<NsName>, tx: watch::Sender<Arc<Snapshot>>) {
    let (notify, mut changes) = mpsc::channel::<()>(1);
    let mut watches: BTreeMap<NsName, Watched> = controllers
        .iter()
        .map(|c| {
            let w = Watched::start(client.clone(), c.clone(), notify.clone());
            (c.clone(), w)
        })
        .collect();
    let mut ever_synced = false;
    loop {
        let snapshot = rebuild(
            &client,
            &controllers,
            &mut watches,
            &notify,
            &mut ever_synced,
        );
        tx.send_if_modified(|current| {
            if **current == snapshot {
                false
            } else {
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

/// Start and stop `proxy-set-headers` watches and build the snapshot.
fn rebuild(
    client: &Client,
    controllers: &[NsName],
    watches: &mut BTreeMap<NsName, Watched>,
    notify: &mpsc::Sender<()>,
    ever_synced: &mut bool,
) -> Snapshot {
    let mut objects = Vec::new();
    let mut header_maps = BTreeSet::new();
    for c in controllers {
        for cm in watches[c].store.state() {
            objects.push(ContextObject::from_configmap(&cm));
            header_maps.extend(proxy_set_headers_ref(&cm));
        }
    }
    watches.retain(|k, _| controllers.contains(k) || header_maps.contains(k));
    for h in &header_maps {
        if controllers.contains(h) {
            continue;
        }
        let w = watches.entry(h.clone()).or_insert_with(|| {
            tracing::info!(namespace = %h.0, name = %h.1, "watching the proxy-set-headers ConfigMap");
            Watched::start(client.clone(), h.clone(), notify.clone())
        });
        objects.extend(
            w.store
                .state()
                .iter()
                .map(|cm| ContextObject::from_configmap(cm)),
        );
    }
    let synced_now = watches.values().all(|w| w.synced.load(Ordering::SeqCst));
    if synced_now && !*ever_synced {
        *ever_synced = true;
        let names: Vec<String> = objects
            .iter()
            .map(|o| format!("{}/{}", o.namespace, o.name))
            .collect();
        tracing::info!(configmaps = ?names, "ConfigMap cache synced");
        for c in controllers {
            if watches[c].store.is_empty() {
                tracing::warn!(namespace = %c.0, name = %c.1, "controller ConfigMap not found; judging with ingress-nginx defaults");
            }
        }
    }
    Snapshot {
        objects,
        synced: *ever_synced,
    }
}
