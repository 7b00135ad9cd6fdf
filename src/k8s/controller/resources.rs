//! Custom resources that carry snippets (F5 NGINX Ingress Controller's VirtualServer,
//! VirtualServerRoute and Policy): one watch and one kube-runtime [`Controller`] per kind, over
//! [`DynamicObject`]s, publishing findings as Events on the resource, as for Ingresses.
//!
//! A cluster may not have the CRD (yet): before watching, the kind is looked up with API
//! discovery. While it is absent one `info` line says so, and discovery is tried again every
//! [`DISCOVERY_INTERVAL`] (quietly); the watch starts when the CRD appears, without a restart.

use std::collections::HashMap;
use std::hash::{DefaultHasher, Hash, Hasher};
use std::sync::Arc;
use std::time::{Duration, Instant};

use futures::{Stream, StreamExt, TryStreamExt};
use kube::api::{ApiResource, DynamicObject, GroupVersionKind};
use kube::runtime::controller::{Action, Controller};
use kube::runtime::reflector::{self, ObjectRef as StoreRef};
use kube::runtime::{WatchStreamExt, watcher};
use kube::{Api, Client, Resource, ResourceExt};

use super::{Context, Error, Result, changes, check_guarded, metrics, turns_true};
use crate::diagnostic::{Diagnostic, ObjectRef};
use crate::input::api::Values;

/// How often a kind that is not installed is looked up again.
pub const DISCOVERY_INTERVAL: Duration = Duration::from_secs(60);

/// The kinds of the enabled profiles that the controller watches, as `group/version` and kind.
#[must_use]
pub fn watched_kinds(settings: &crate::Settings) -> Vec<GroupVersionKind> {
    crate::model::RESOURCE_KINDS
        .iter()
        .filter(|(api_version, _)| {
            let profile = if api_version.starts_with("k8s.nginx.org/") {
                "f5-nginx-ingress"
            } else {
                // gateway.nginx.org and the Gateway API routes.
                "nginx-gateway-fabric"
            };
            settings.profile_enabled(profile)
        })
        .filter_map(|(api_version, kind)| {
            let (group, version) = api_version.split_once('/')?;
            Some(GroupVersionKind::gvk(group, version, kind))
        })
        .collect()
}

/// Find `gvk` on the API server, waiting (and saying so once) while its CRD is not installed.
pub async fn discover(client: &Client, gvk: &GroupVersionKind) -> ApiResource {
    let mut said = false;
    loop {
        match kube::discovery::pinned_kind(client, gvk).await {
            Ok((ar, _)) => {
                if said {
                    tracing::info!(kind = %gvk.kind, group = %gvk.group, "the CRD is installed now; watching");
                }
                return ar;
            }
            Err(e) => {
                if said {
                    tracing::debug!(kind = %gvk.kind, error = %e, "still not served");
                } else {
                    tracing::info!(
                        kind = %gvk.kind,
                        group = %gvk.group,
                        version = %gvk.version,
                        error = %e,
                        "this kind is not served (its CRD is not installed?); not watching it, looking again every {} s",
                        DISCOVERY_INTERVAL.as_secs()
                    );
                    said = true;
                }
                tokio::time::sleep(DISCOVERY_INTERVAL).await;
            }
        }
    }
}

/// The engine's reference to a resource.
fn resource_ref(obj: &DynamicObject, ar: &ApiResource) -> ObjectRef {
    ObjectRef {
        api_version: ar.api_version.clone(),
        kind: ar.kind.clone(),
        namespace: obj.metadata.namespace.clone(),
        name: obj.name_any(),
    }
}

/// What a resource's check depends on: its annotations and spec.
fn relevant_hash(obj: &DynamicObject) -> u64 {
    let mut h = DefaultHasher::new();
    obj.metadata.uid.hash(&mut h);
    obj.metadata.annotations.hash(&mut h);
    obj.data.get("spec").map(ToString::to_string).hash(&mut h);
    h.finish()
}

/// Keep what the engine reads of a resource: name, namespace, uid, annotations and `spec`.
fn trim(obj: &mut DynamicObject) {
    obj.metadata.managed_fields = None;
    obj.metadata.labels = None;
    if let Some(a) = obj.metadata.annotations.as_mut() {
        a.remove("kubectl.kubernetes.io/last-applied-configuration");
    }
    let spec = obj.data.get_mut("spec").map(serde_json::Value::take);
    obj.data = serde_json::json!({});
    if let Some(spec) = spec {
        obj.data["spec"] = spec;
    }
}

/// The findings about one resource, judged with the controller configuration.
pub fn judge_resource(
    config: &super::ConfigSnapshot,
    obj: &DynamicObject,
    ar: &ApiResource,
    settings: &crate::Settings,
) -> Result<Vec<Diagnostic>> {
    let Some(object) = crate::k8s::objects::resource(obj, ar, Values::Detached) else {
        return Ok(Vec::new());
    };
    let context = config.context(settings);
    let me = object.meta().object.clone();
    let mut diags = check_guarded(&context, &object)?;
    diags.retain(|d| d.object.as_ref() == Some(&me));
    Ok(diags)
}

struct ResourceCtx {
    ctx: Arc<Context>,
    ar: ApiResource,
}

async fn reconcile(obj: Arc<DynamicObject>, rc: Arc<ResourceCtx>) -> Result<Action> {
    let ctx = &rc.ctx;
    if !ctx.is_leader() {
        return Ok(Action::await_change());
    }
    let config = ctx.config.borrow().clone();
    if !config.synced {
        return Ok(Action::await_change());
    }
    let namespace = obj.namespace().unwrap_or_default();
    let key = resource_ref(&obj, &rc.ar);
    match ctx.is_excluded(&namespace) {
        None => return Ok(Action::await_change()),
        Some(true) => {
            ctx.forget(&key);
            return Ok(Action::await_change());
        }
        Some(false) => {}
    }
    let started = Instant::now();
    let result = async {
        let findings = judge_resource(&config, &obj, &rc.ar, &ctx.settings)?;
        ctx.report(&key, &obj.object_ref(&rc.ar), &findings).await?;
        Ok::<_, Error>(findings.len())
    }
    .await;
    ctx.observe(&rc.ar.kind, started);
    let findings = result?;
    tracing::info!(
        kind = %rc.ar.kind,
        namespace,
        name = obj.name_any(),
        findings,
        "checked"
    );
    Ok(if findings == 0 {
        Action::await_change()
    } else {
        Action::requeue(ctx.reminder)
    })
}

#[allow(
    clippy::needless_pass_by_value,
    reason = "Controller::run passes Arcs by value"
)]
fn error_policy(obj: Arc<DynamicObject>, error: &Error, rc: Arc<ResourceCtx>) -> Action {
    tracing::warn!(
        kind = %rc.ar.kind,
        namespace = obj.namespace().unwrap_or_default(),
        name = obj.name_any(),
        error = %error,
        "reconcile failed"
    );
    rc.ctx
        .metrics
        .failures
        .get_or_create(&metrics::FailureLabels {
            kind: rc.ar.kind.clone(),
            error: error.metric_label().into(),
        })
        .inc();
    Action::requeue(rc.ctx.retry.requeue)
}

/// Watch events -> trimmed -> store -> the objects whose annotations or spec changed (a status
/// update triggers nothing; a re-list triggers only what changed meanwhile).
fn trigger<S>(
    events: S,
    writer: reflector::store::Writer<DynamicObject>,
    ctx: Arc<Context>,
    ar: ApiResource,
) -> impl Stream<Item = Result<DynamicObject, watcher::Error>> + Send + 'static
where
    S: Stream<Item = Result<watcher::Event<DynamicObject>, watcher::Error>> + Send + 'static,
{
    let reader = writer.as_reader();
    let live = writer.as_reader();
    let kind = ar.kind.clone();
    let ar2 = ar.clone();
    let mut checked: HashMap<StoreRef<DynamicObject>, u64> = HashMap::new();
    events
        .modify(trim)
        .reflect(writer)
        .inspect_ok(move |event| match event {
            watcher::Event::Delete(obj) => ctx.forget(&resource_ref(obj, &ar2)),
            watcher::Event::InitDone => {
                ctx.retain(|k| {
                    k.kind != kind
                        || reader
                            .get(
                                &StoreRef::new_with(&k.name, ar2.clone())
                                    .within(k.namespace.as_deref().unwrap_or_default()),
                            )
                            .is_some()
                });
            }
            _ => {}
        })
        .try_filter(move |event| {
            let key = |o: &DynamicObject| {
                StoreRef::new_with(&o.name_any(), ar.clone())
                    .within(&o.namespace().unwrap_or_default())
            };
            let changed = match event {
                watcher::Event::Apply(o) | watcher::Event::InitApply(o) => {
                    let hash = relevant_hash(o);
                    checked.insert(key(o), hash) != Some(hash)
                }
                watcher::Event::Delete(o) => {
                    checked.remove(&key(o));
                    true
                }
                watcher::Event::InitDone => {
                    checked.retain(|k, _| live.get(k).is_some());
                    true
                }
                watcher::Event::Init => true,
            };
            std::future::ready(changed)
        })
        .applied_objects()
}

/// Discover `gvk`, then watch it in `scope` (`None`: all namespaces) and publish findings,
/// until `shutdown`.
pub async fn resource_scope(
    client: Client,
    gvk: GroupVersionKind,
    scope: Option<String>,
    ctx: Arc<Context>,
    shutdown: impl std::future::Future<Output = ()> + Send + Sync + 'static,
) {
    let mut shutdown = Box::pin(shutdown);
    let ar = tokio::select! {
        ar = discover(&client, &gvk) => ar,
        () = &mut shutdown => return,
    };
    let api: Api<DynamicObject> = match &scope {
        Some(ns) => Api::namespaced_with(client, ns, &ar),
        None => Api::all_with(client, &ar),
    };
    let writer = reflector::store::Writer::new(ar.clone());
    let reader = writer.as_reader();
    // The shared bounded backoff (re-list at once after 410); the Controller adds no pause.
    let events = crate::k8s::backoff::resilient(
        watcher::watcher(api, watcher::Config::default()),
        crate::k8s::backoff::WatchBackoff::default(),
    );
    let trigger = trigger(events, writer, ctx.clone(), ar.clone());
    let rc = Arc::new(ResourceCtx {
        ctx: ctx.clone(),
        ar: ar.clone(),
    });
    Controller::for_stream_with(trigger, reader, ar)
        .trigger_backoff(crate::k8s::backoff::NoPause)
        .with_config(kube::runtime::controller::Config::default().concurrency(4))
        .reconcile_all_on(changes(ctx.config.clone()))
        .reconcile_all_on(changes(ctx.excluded.clone()))
        .reconcile_all_on(turns_true(ctx.leader.clone()))
        .graceful_shutdown_on(shutdown)
        .run(reconcile, error_policy, rc)
        .for_each(|result| {
            match result {
                Ok((object, _)) => tracing::trace!(%object, "reconciled"),
                Err(kube::runtime::controller::Error::ReconcilerFailed(..)) => {}
                Err(e) => tracing::warn!(error = %e, "controller"),
            }
            std::future::ready(())
        })
        .await;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_enabled_profiles_kinds_are_watched() {
        let all = watched_kinds(&crate::Settings::default());
        assert!(all.iter().any(|g| g.kind == "VirtualServer"));
        let only = crate::Settings {
            profiles: vec!["ingress-nginx".into()],
            ..crate::Settings::default()
        };
        assert!(watched_kinds(&only).is_empty());
    }

    #[test]
    fn trimming_keeps_what_the_engine_reads() {
        let mut obj: DynamicObject = serde_json::from_value(serde_json::json!({
            "apiVersion": "k8s.nginx.org/v1", "kind": "VirtualServer",
            "metadata": {"name": "vs", "namespace": "shop", "labels": {"a": "b"},
                "annotations": {"kubectl.kubernetes.io/last-applied-configuration": "{}",
                    "snippet-guard.io/ignore-all": "x"}},
            "spec": {"host": "a"}, "status": {"state": "Valid"}
        }))
        .unwrap();
        let before = relevant_hash(&obj);
        trim(&mut obj);
        assert_eq!(obj.data, serde_json::json!({"spec": {"host": "a"}}));
        assert!(obj.metadata.labels.is_none());
        assert_eq!(obj.metadata.annotations.as_ref().unwrap().len(), 1);
        assert_ne!(before, relevant_hash(&obj), "the annotations changed");
    }
}
