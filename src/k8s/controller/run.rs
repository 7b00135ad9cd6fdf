//! Wiring of `snippet-guard controller`: watches, controllers, leader election, the HTTP
//! server, and graceful shutdown (SIGTERM or Ctrl+C: running reconciles finish, the Lease is
//! released, the server stops).

use std::collections::BTreeSet;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::AtomicBool;
use std::time::Duration;

use futures::future::{BoxFuture, Shared};
use futures::{FutureExt, StreamExt};
use k8s_openapi::api::core::v1::Namespace;
use k8s_openapi::api::networking::v1::Ingress;
use kube::core::PartialObjectMeta;
use kube::runtime::events::{Recorder, Reporter};
use kube::runtime::reflector::{self};
use kube::runtime::utils::Backoff;
use kube::runtime::{WatchStreamExt, watcher};
use kube::{Api, Client};
use tokio::sync::watch;

use super::config::{self, ConfigSnapshot, NsName};
use super::handover::{self, Handover, StateStore};
use super::server::{self, Health};
use super::{Context, Error, Excluded, Metrics, RecorderPublisher, Result};
use crate::engine::Settings;
use crate::k8s::backoff::{NoPause, WatchBackoff, resilient};
use crate::k8s::leader::{Leadership, LeaseConfig};

/// Everything `snippet-guard controller` is told.
#[derive(Debug, Clone)]
pub struct Options {
    pub settings: Settings,
    /// Controller ConfigMaps (`--controller-configmap`).
    pub controllers: Vec<NsName>,
    /// Watch only these namespaces (empty: all).
    pub namespaces: Vec<String>,
    /// Skip namespaces matching this label selector.
    pub exclude_namespace_selector: Option<String>,
    pub lease: LeaseConfig,
    /// The handover state ConfigMap in the Lease's namespace (`--state-configmap`).
    pub state_configmap: Option<String>,
    pub listen: SocketAddr,
    /// `reportingController` of the Events.
    pub reporter: String,
}

/// A future that resolves once `shutdown` fires, usable by many (cheap to clone, `Sync`).
pub type ShutdownSignal = Shared<BoxFuture<'static, ()>>;

/// Resolves on SIGTERM or Ctrl+C.
pub fn os_signal() -> ShutdownSignal {
    async {
        #[cfg(unix)]
        {
            let mut term =
                tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
                    .expect("installing a SIGTERM handler works on Unix");
            tokio::select! {
                _ = tokio::signal::ctrl_c() => {}
                _ = term.recv() => {}
            }
        }
        #[cfg(not(unix))]
        let _ = tokio::signal::ctrl_c().await;
        tracing::info!("shutdown requested");
    }
    .boxed()
    .shared()
}

/// Follow the namespaces matching `selector` (metadata only) and publish their names.
async fn watch_excluded(client: Client, selector: String, tx: watch::Sender<Excluded>) {
    let api: Api<PartialObjectMeta<Namespace>> = Api::all(client);
    let (reader, writer) = reflector::store();
    let stream = resilient(
        watcher::watcher(api, watcher::Config::default().labels(&selector)),
        WatchBackoff::default(),
    )
    .reflect(writer);
    let mut stream = std::pin::pin!(stream);
    let mut listed = false;
    while let Some(event) = stream.next().await {
        match event {
            Ok(watcher::Event::InitDone) => listed = true,
            Ok(watcher::Event::Apply(_) | watcher::Event::Delete(_)) => {}
            Ok(_) => continue,
            Err(e) => {
                tracing::warn!(error = %Error::Watch(e), "Namespace watch failed; retrying with backoff");
                continue;
            }
        }
        if !listed {
            continue;
        }
        let names: BTreeSet<String> = reader
            .state()
            .iter()
            .filter_map(|ns| ns.metadata.name.clone())
            .collect();
        tx.send_if_modified(|current| {
            if current.as_deref() == Some(&names) {
                false
            } else {
                tracing::info!(excluded = ?names, "excluded namespaces");
                *current = Some(Arc::new(names));
                true
            }
        });
        if tx.is_closed() {
            break;
        }
    }
}

/// Re-check the ConfigMaps whenever the configuration or the leadership changes, and every
/// `ctx.reminder`; on failure retry with backoff. When the Lease is lost, forget all findings
/// (the next leader publishes them).
async fn config_loop(ctx: Arc<Context>, shutdown: ShutdownSignal) {
    let mut config = ctx.config.clone();
    let mut leader = ctx.leader.clone();
    let mut reminder = tokio::time::interval(ctx.reminder);
    let mut shutdown = std::pin::pin!(shutdown);
    loop {
        tokio::select! {
            () = &mut shutdown => return,
            r = config.changed() => if r.is_err() { return },
            r = leader.changed() => {
                if r.is_err() { return }
                if !*leader.borrow_and_update() {
                    ctx.retain(|_| false);
                }
            }
            _ = reminder.tick() => {}
        }
        let mut delay = ctx.retry.initial_delay;
        while let Err(e) = super::reconcile_config(&ctx).await {
            tracing::warn!(error = %e, "checking the controller ConfigMaps failed; retrying");
            tokio::select! {
                () = &mut shutdown => return,
                () = tokio::time::sleep(delay) => {}
            }
            delay = (delay * 2).min(ctx.retry.requeue);
        }
    }
}

/// The Ingress watch of one scope (`None`: all namespaces) and the controller it feeds:
/// watcher -> [`super::ingress_trigger`] -> [`super::ingress_controller_with`]. After a failed
/// list or watch the watcher pauses for `backoff()` ([`WatchBackoff`] in the product), paced by
/// [`resilient`] (re-list at once after `410`, reset on every object); the controller's
/// triggers add no pause of their own. `synced` is set once the watch has listed. Resolves
/// when the controller stops after `shutdown`.
pub fn ingress_scope<B: Backoff + Send + 'static>(
    client: Client,
    scope: Option<String>,
    ctx: Arc<Context>,
    synced: Arc<AtomicBool>,
    backoff: impl Fn() -> B,
    shutdown: impl Future<Output = ()> + Send + Sync + 'static,
) -> impl Future<Output = ()> + Send {
    let api: Api<Ingress> = match &scope {
        Some(ns) => Api::namespaced(client, ns),
        None => Api::all(client),
    };
    let (reader, writer) = reflector::store();
    let events = resilient(watcher::watcher(api, watcher::Config::default()), backoff());
    let trigger = super::ingress_trigger(events, writer, ctx.clone(), scope, synced);
    super::ingress_controller_with(trigger, reader, ctx, shutdown, NoPause)
        .for_each(|()| std::future::ready(()))
}

/// Run the controller until `shutdown` resolves.
pub async fn run(client: Client, opts: Options, shutdown: ShutdownSignal) -> Result<()> {
    let metrics = Arc::new(Metrics::new());
    let (config_tx, config_rx) = watch::channel(Arc::new(ConfigSnapshot::default()));
    tokio::spawn(config::watch_config(
        client.clone(),
        opts.controllers.clone(),
        config::related_kinds(&opts.settings),
        config_tx,
    ));
    let (excluded_tx, excluded_rx) = watch::channel::<Excluded>(None);
    match &opts.exclude_namespace_selector {
        Some(selector) => {
            tokio::spawn(watch_excluded(
                client.clone(),
                selector.clone(),
                excluded_tx,
            ));
        }
        None => {
            excluded_tx.send_replace(Some(Arc::default()));
        }
    }
    let leadership = Leadership::start(client.clone(), opts.lease.clone(), metrics.clone());
    let reporter = Reporter {
        controller: opts.reporter.clone(),
        instance: Some(opts.lease.identity.clone()),
    };
    // The context leads once the handover state is read (see `handover`).
    let (gate_tx, gate_rx) = watch::channel(false);
    let ctx = Arc::new(Context::new(
        opts.settings.clone(),
        Arc::new(RecorderPublisher(Recorder::new(
            super::queue::throttle_aware(client.clone()),
            reporter,
        ))),
        config_rx.clone(),
        gate_rx,
        excluded_rx.clone(),
        metrics.clone(),
    ));
    let handover = Handover::start(
        ctx.clone(),
        leadership.receiver(),
        gate_tx,
        opts.state_configmap
            .as_deref()
            .map(|name| StateStore::new(client.clone(), &opts.lease.namespace, name)),
        handover::SAVE_EVERY,
    );

    let scopes: Vec<Option<String>> = if opts.namespaces.is_empty() {
        vec![None]
    } else {
        opts.namespaces.iter().cloned().map(Some).collect()
    };
    let mut synced_flags = Vec::new();
    let mut controllers: Vec<futures::future::BoxFuture<'static, ()>> = Vec::new();
    let kinds = super::resources::watched_kinds(&opts.settings);
    for scope in scopes {
        let synced = Arc::new(AtomicBool::new(false));
        synced_flags.push(synced.clone());
        controllers.push(
            ingress_scope(
                client.clone(),
                scope.clone(),
                ctx.clone(),
                synced,
                WatchBackoff::default,
                shutdown.clone(),
            )
            .boxed(),
        );
        // Custom resources of the enabled profiles (VirtualServer...), once their CRDs exist.
        for gvk in &kinds {
            controllers.push(
                super::resources::resource_scope(
                    client.clone(),
                    gvk.clone(),
                    scope.clone(),
                    ctx.clone(),
                    shutdown.clone(),
                )
                .boxed(),
            );
        }
    }
    let config_task = tokio::spawn(config_loop(ctx.clone(), shutdown.clone()));

    let health = Health {
        metrics: metrics.clone(),
        config: config_rx,
        excluded: excluded_rx,
        ingress_synced: synced_flags,
    };
    let listener = tokio::net::TcpListener::bind(opts.listen)
        .await
        .map_err(|source| Error::Listen {
            addr: opts.listen.to_string(),
            source,
        })?;
    tracing::info!(listen = %opts.listen, "serving /healthz, /readyz and /metrics");
    let (server_stop, server_stopped) = tokio::sync::oneshot::channel::<()>();
    let server = tokio::spawn(
        axum::serve(listener, server::router(health))
            .with_graceful_shutdown(async {
                let _ = server_stopped.await;
            })
            .into_future(),
    );

    // A Controller whose store never listed (API server unreachable) holds its runner until
    // it has, so graceful shutdown gets a bound.
    let all = futures::future::join_all(controllers);
    let mut all = std::pin::pin!(all);
    tokio::select! {
        _ = &mut all => {}
        () = shutdown.clone() => {
            if tokio::time::timeout(Duration::from_secs(10), &mut all).await.is_err() {
                tracing::warn!("controllers did not stop within 10 s; stopping anyway");
            }
        }
    }
    tracing::info!("controllers stopped");
    let _ = tokio::time::timeout(Duration::from_secs(5), config_task).await;
    handover.stop().await;
    leadership.stop().await;
    let _ = server_stop.send(());
    let _ = tokio::time::timeout(Duration::from_secs(5), server).await;
    tracing::info!("bye");
    Ok(())
}
