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

use std::sync::Arc;

use k8s_openapi::api::core::v1::{ConfigMap, ObjectReference};
use k8s_openapi::api::networking::v1::IngressClass;
use kube::runtime::watcher;
use kube::{Api, Client, Resource};
use tokio::sync::{mpsc, watch};

use super::objects;
use crate::diagnostic::ObjectRef;
use crate::input::{self, Format};
use crate::k8s::reflected::{ConfigMapWatches, reflected};
use crate::model::Workspace;

pub use crate::k8s::refs::{NsName, parse_ns_name, proxy_set_headers_ref};

/// One context object, serialized for the engine, and read by it once.
#[derive(Debug, Clone)]
pub struct ConfigObject {
    /// The engine's reference (findings carry it).
    pub object: ObjectRef,
    /// The reference Events point at (`regarding`), uid included.
    pub reference: ObjectReference,
    /// [`objects::file_name`].
    pub file_name: String,
    /// [`objects::configmap_yaml`] / [`objects::ingress_class_yaml`].
    pub yaml: String,
    /// `yaml` as the engine reads it: every Ingress reconcile appends this instead of reading
    /// the text again (its load diagnostics stay with [`crate::k8s::controller::judge_config`]).
    pub prepared: Arc<Workspace>,
}

/// Equal when the texts are: what the engine reads.
impl PartialEq for ConfigObject {
    fn eq(&self, other: &Self) -> bool {
        self.object == other.object
            && self.reference == other.reference
            && self.file_name == other.file_name
            && self.yaml == other.yaml
    }
}

impl ConfigObject {
    fn new(object: ObjectRef, reference: ObjectReference, file_name: String, yaml: String) -> Self {
        let mut prepared = Workspace::new();
        input::add_text(&mut prepared, &file_name, &yaml, Format::Yaml);
        Self {
            object,
            reference,
            file_name,
            yaml,
            prepared: Arc::new(prepared),
        }
    }

    #[must_use]
    pub fn configmap(cm: &ConfigMap) -> Self {
        Self::new(
            objects::configmap_ref(cm),
            cm.object_ref(&()),
            objects::configmap_file_name(cm),
            objects::configmap_yaml(cm),
        )
    }

    #[must_use]
    pub fn ingress_class(ic: &IngressClass) -> Self {
        Self::new(
            ObjectRef {
                api_version: "networking.k8s.io/v1".into(),
                kind: "IngressClass".into(),
                namespace: None,
                name: ic.metadata.name.clone().unwrap_or_default(),
            },
            ic.object_ref(&()),
            objects::ingress_class_file_name(ic),
            objects::ingress_class_yaml(ic),
        )
    }

    #[must_use]
    pub fn is_configmap(&self) -> bool {
        self.object.kind == "ConfigMap"
    }
}

/// What reconciles see.
#[derive(Debug, Default, Clone)]
pub struct ConfigSnapshot {
    /// ConfigMaps first, then IngressClasses, each sorted by name.
    pub objects: Vec<ConfigObject>,
    /// Every watch has listed once.
    pub synced: bool,
}

/// Equal when the engine would see the same texts (uids and resourceVersions aside).
impl PartialEq for ConfigSnapshot {
    fn eq(&self, other: &Self) -> bool {
        self.synced == other.synced
            && self.objects.len() == other.objects.len()
            && self
                .objects
                .iter()
                .zip(&other.objects)
                .all(|(a, b)| a.file_name == b.file_name && a.yaml == b.yaml)
    }
}

impl ConfigSnapshot {
    /// A synced snapshot of these objects (tests, benchmarks, audit).
    #[must_use]
    pub fn of(configmaps: &[ConfigMap], classes: &[IngressClass]) -> Self {
        let mut objects: Vec<ConfigObject> =
            configmaps.iter().map(ConfigObject::configmap).collect();
        objects.sort_by(|a, b| a.file_name.cmp(&b.file_name));
        let mut cls: Vec<ConfigObject> = classes.iter().map(ConfigObject::ingress_class).collect();
        cls.sort_by(|a, b| a.file_name.cmp(&b.file_name));
        objects.extend(cls);
        Self {
            objects,
            synced: true,
        }
    }
}

/// Follow `controllers` (and what their `proxy-set-headers` name) and the IngressClasses;
/// publish snapshots on `tx` until every receiver is gone.
pub async fn watch_config(
    client: Client,
    controllers: Vec<NsName>,
    tx: watch::Sender<Arc<ConfigSnapshot>>,
) {
    let (notify, mut changes) = mpsc::channel::<()>(1);
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
    fn snapshots_compare_by_text() {
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
