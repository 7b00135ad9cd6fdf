//! The ConfigMaps an Ingress is judged against: each `--controller-configmap NS/NAME`, and the
//! ConfigMap its `proxy-set-headers` key names. Each is followed by a kube-runtime reflector on a
//! watch narrowed to that one name (`fieldSelector=metadata.name=NAME`), so the webhook needs
//! only `get`/`list`/`watch` on ConfigMaps in those namespaces. When a controller ConfigMap
//! starts or stops naming a `proxy-set-headers` ConfigMap, that watch is started or stopped.
//! The IngressClasses are followed too (one cluster-wide reflector), so that an Ingress whose
//! class another controller owns is not judged; readiness does not wait for them.
//!
//! Readers get an immutable [`Snapshot`] (the objects already read into engine objects), so a
//! request never waits on the watches. The cache is *synced* once every watch has finished its
//! first list; it stays synced afterwards (a later `proxy-set-headers` change does not make the
//! webhook unready while its new watch lists).

use std::sync::{Arc, OnceLock};

use k8s_openapi::api::core::v1::ConfigMap;
use k8s_openapi::api::networking::v1::IngressClass;
use kube::Api;
use kube::runtime::watcher;
use kube::{Client, ResourceExt};
use tokio::sync::{mpsc, watch};

use crate::engine::Context;
use crate::input::api::Values;
use crate::k8s::reflected::{ConfigMapWatches, reflected};
use crate::k8s::webhook::{ContextObject, Policy};
use crate::model::Object;

pub use crate::k8s::refs::{NsName, parse_ns_name, proxy_set_headers_ref};

/// What requests see: the cached ConfigMaps, read into engine objects, and the engine context
/// built from them on the first request after a change (then shared by every request).
#[derive(Debug, Default, Clone)]
pub struct Snapshot {
    pub objects: Vec<ContextObject>,
    /// The IngressClasses, read into engine objects (an Ingress whose class another controller
    /// owns is not judged), sorted by name; empty until their watch has listed.
    pub classes: Vec<Object>,
    /// Every ConfigMap watch has listed once.
    pub synced: bool,
    context: OnceLock<Arc<Context>>,
}

impl PartialEq for Snapshot {
    fn eq(&self, other: &Self) -> bool {
        self.objects == other.objects
            && self.classes == other.classes
            && self.synced == other.synced
    }
}

impl Eq for Snapshot {}

impl Snapshot {
    /// A snapshot of these objects.
    #[must_use]
    pub fn new(objects: Vec<ContextObject>, synced: bool) -> Self {
        Self {
            objects,
            classes: Vec::new(),
            synced,
            context: OnceLock::new(),
        }
    }

    /// This snapshot with these IngressClasses.
    #[must_use]
    pub fn with_classes(mut self, classes: Vec<Object>) -> Self {
        self.classes = classes;
        self
    }

    /// The engine context of these objects under `policy`'s settings (one process, one policy),
    /// built once per snapshot.
    pub fn context(&self, policy: &Policy) -> Arc<Context> {
        self.context
            .get_or_init(|| {
                let mut objects: Vec<Object> =
                    self.objects.iter().map(|c| c.object.clone()).collect();
                objects.extend(self.classes.iter().cloned());
                Arc::new(Context::build(&objects, &policy.settings))
            })
            .clone()
    }
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
        let (tx, rx) = watch::channel(Arc::new(Snapshot::new(objects, true)));
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

/// Drop what the engine never reads and what changes on every write.
fn trim(cm: &mut ConfigMap) {
    cm.managed_fields_mut().clear();
}

async fn manage(client: Client, controllers: Vec<NsName>, tx: watch::Sender<Arc<Snapshot>>) {
    let (notify, mut changes) = mpsc::channel::<()>(1);
    // Readiness waits for the ConfigMaps only: without the right to list IngressClasses (an
    // older RBAC) the webhook still serves, judging classes by name, and the watch logs why.
    let classes = reflected(
        Api::<IngressClass>::all(client.clone()),
        watcher::Config::default(),
        crate::k8s::controller::objects::trim_ingress_class,
        "IngressClasses".to_string(),
        notify.clone(),
    );
    let mut watches = ConfigMapWatches::start(client, controllers, trim, notify);
    let mut ever_synced = false;
    loop {
        let objects: Vec<ContextObject> = watches
            .refresh()
            .iter()
            .map(|cm| ContextObject::from_configmap(cm))
            .collect();
        if watches.is_synced() && !ever_synced {
            ever_synced = true;
            let names: Vec<String> = objects
                .iter()
                .map(|o| format!("{}/{}", o.namespace, o.name))
                .collect();
            tracing::info!(configmaps = ?names, "ConfigMap cache synced");
            watches.warn_missing();
        }
        let mut classes: Vec<Object> = classes
            .store
            .state()
            .iter()
            .map(|ic| crate::k8s::objects::ingress_class(ic, Values::Detached))
            .collect();
        classes.sort_by(|a, b| a.meta().object.name.cmp(&b.meta().object.name));
        let snapshot = Snapshot::new(objects, ever_synced).with_classes(classes);
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
