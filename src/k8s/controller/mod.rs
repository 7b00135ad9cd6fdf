//! `snippet-guard controller`: watch Ingresses and the ingress-nginx configuration, publish each
//! finding as an Event on the object that carries the offending line.
//!
//! - **Ingresses**: a kube-runtime [`Controller`] per watched scope (all namespaces, or one per
//!   `--namespace`). Objects are trimmed as they arrive ([`objects::trim_ingress`]) before the
//!   reflector stores them, and only changes to what the rules read trigger a reconcile.
//! - **Configuration** ([`config`]): the controller ConfigMap(s), the `proxy-set-headers`
//!   ConfigMap and the IngressClasses, as one immutable [`ConfigSnapshot`]. A change re-checks
//!   every Ingress (`reconcile_all_on`), and re-checks the ConfigMaps themselves
//!   ([`reconcile_config`]): findings in `location-snippet` and friends are published on the
//!   ConfigMap.
//! - **One reconcile** = the engine context of the snapshot (built once per configuration
//!   change) checks the one Ingress, keeping the findings about that object
//!   ([`judge_ingress`]); each becomes a `Warning` Event
//!   ([`crate::k8s::events`]); when an object that had findings has none left, one `Normal`
//!   Event says so. Events go through a bounded [`queue`]: in order per object, `Retry-After`
//!   honoured, retried until written, dropped (and counted) only when the object goes away,
//!   the Lease is lost or the API server refuses the Event itself.
//! - **High availability**: every replica watches (warm cache), only the Lease holder
//!   ([`crate::k8s::leader`]) reconciles; gaining the Lease re-checks everything.
//! - **Handover** ([`handover`]): the leader keeps what it has published in a state ConfigMap;
//!   a new leader reads it before re-checking, so it publishes no Warning the previous leader
//!   already published and sends the `Normal` Event for objects fixed meanwhile.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::fmt;
use std::hash::{DefaultHasher, Hash, Hasher};
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime};

use futures::future::BoxFuture;
use futures::{FutureExt, Stream, StreamExt, TryStreamExt};
use k8s_openapi::api::core::v1::ObjectReference;
use k8s_openapi::api::networking::v1::Ingress;
use kube::runtime::WatchStreamExt;
use kube::runtime::controller::{Action, Controller};
use kube::runtime::events::{Event, EventType, Recorder};
use kube::runtime::reflector::{Store, store::Writer};
use kube::runtime::utils::Backoff;
use kube::runtime::watcher;
use kube::{Resource, ResourceExt};
use tokio::sync::watch;
use tracing::{Span, field, instrument};

use crate::diagnostic::{Diagnostic, ObjectRef};
use crate::engine::Settings;
use crate::input::api::Values;
use crate::model::Object;

pub mod config;
pub mod handover;
pub mod metrics;
pub mod objects;
pub mod queue;
pub mod resources;
pub mod run;
pub mod server;

pub use config::{ConfigObject, ConfigSnapshot};
pub use metrics::Metrics;

/// Everything that can go wrong in the controller.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// An Event write failed on every retry.
    #[error("publishing an Event failed: {0}")]
    PublishEvent(#[source] kube::Error),
    /// A watch failed (it is retried with backoff).
    #[error("watch failed: {0}")]
    Watch(#[source] watcher::Error),
    /// The engine panicked on an object (a bug; the object is retried later).
    #[error("the engine failed on {object}: {message}")]
    Engine { object: String, message: String },
    /// Leader election could not talk to the API server.
    #[error("leader election failed: {0}")]
    Leader(#[source] kube_lease_manager::LeaseManagerError),
    /// `--exclude-namespace-selector` is not a label selector.
    #[error("invalid --exclude-namespace-selector `{selector}`: {message}")]
    Selector { selector: String, message: String },
    /// The HTTP listener could not start.
    #[error("cannot listen on {addr}: {source}")]
    Listen {
        addr: String,
        #[source]
        source: std::io::Error,
    },
}

impl Error {
    /// The `error` label of `reconcile_failures`.
    #[must_use]
    pub fn metric_label(&self) -> &'static str {
        match self {
            Error::PublishEvent(_) => "publish_event",
            Error::Watch(_) => "watch",
            Error::Engine { .. } => "engine",
            Error::Leader(_) => "leader",
            Error::Selector { .. } => "selector",
            Error::Listen { .. } => "listen",
        }
    }
}

pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Where Events go: kube-runtime's [`Recorder`], or a counter in benchmarks.
pub trait Publish: Send + Sync + fmt::Debug {
    fn publish<'a>(
        &'a self,
        event: &'a Event,
        regarding: &'a ObjectReference,
    ) -> BoxFuture<'a, Result<(), kube::Error>>;
}

/// [`Publish`] through kube-runtime's [`Recorder`]: it keys repeats on (type, reason, action,
/// object) and turns them into an event series (a PATCH of the first Event) for 6 minutes.
#[derive(Clone)]
pub struct RecorderPublisher(pub Recorder);

impl fmt::Debug for RecorderPublisher {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("RecorderPublisher")
    }
}

impl Publish for RecorderPublisher {
    fn publish<'a>(
        &'a self,
        event: &'a Event,
        regarding: &'a ObjectReference,
    ) -> BoxFuture<'a, Result<(), kube::Error>> {
        self.0.publish(event, regarding).boxed()
    }
}

/// How Event writes ([`queue`]) and failed reconciles are retried.
#[derive(Debug, Clone)]
pub struct Retry {
    /// First pause before an Event write is sent again after no answer or a 5xx; doubles up
    /// to `max_delay`. (A throttled write waits its `Retry-After` instead.)
    pub initial_delay: Duration,
    pub max_delay: Duration,
    /// The longest `Retry-After` honoured as given (a longer one is cut to this).
    pub max_retry_after: Duration,
    /// Event writes that may wait; when full, reconciles wait for room.
    pub queue_capacity: usize,
    /// Event writes in flight at once (one per object at most).
    pub writers: usize,
    /// When a failed reconcile runs again.
    pub requeue: Duration,
}

impl Default for Retry {
    fn default() -> Self {
        Self {
            initial_delay: Duration::from_millis(200),
            max_delay: Duration::from_secs(5),
            max_retry_after: Duration::from_secs(60),
            queue_capacity: 10_000,
            writers: 4,
            requeue: Duration::from_secs(30),
        }
    }
}

/// Namespaces skipped by `--exclude-namespace-selector`; `None` until their watch has listed.
pub type Excluded = Option<Arc<BTreeSet<String>>>;

/// State shared by every reconcile.
pub struct Context {
    pub settings: Settings,
    pub publisher: Arc<dyn Publish>,
    pub config: watch::Receiver<Arc<ConfigSnapshot>>,
    pub leader: watch::Receiver<bool>,
    pub excluded: watch::Receiver<Excluded>,
    pub metrics: Arc<Metrics>,
    pub retry: Retry,
    /// Objects with findings are checked (and their Warnings published) again after this long,
    /// so they stay visible past the API server's Event TTL (1 h by default).
    pub reminder: Duration,
    /// Rule ids of the findings last published per object (leader only).
    findings: Mutex<HashMap<ObjectRef, Vec<&'static str>>>,
    /// What was last published per object with findings, and when ([`handover`]).
    published: Mutex<HashMap<ObjectRef, handover::Record>>,
    /// Bumped on every change to `findings` or `published` (the state is saved when it moved).
    generation: AtomicU64,
    /// The Ingress stores, to drop inherited state about Ingresses deleted meanwhile.
    scopes: Mutex<Vec<handover::Scope>>,
    /// Event writes on their way to the API server.
    pub queue: queue::EventQueue,
}

impl fmt::Debug for Context {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Context")
            .field("settings", &self.settings)
            .field("leader", &*self.leader.borrow())
            .finish_non_exhaustive()
    }
}

impl Context {
    #[must_use]
    pub fn new(
        settings: Settings,
        publisher: Arc<dyn Publish>,
        config: watch::Receiver<Arc<ConfigSnapshot>>,
        leader: watch::Receiver<bool>,
        excluded: watch::Receiver<Excluded>,
        metrics: Arc<Metrics>,
    ) -> Self {
        let queue = queue::EventQueue::new(publisher.clone(), metrics.clone());
        Self {
            settings,
            publisher,
            config,
            leader,
            excluded,
            metrics,
            queue,
            retry: Retry::default(),
            reminder: Duration::from_secs(30 * 60),
            findings: Mutex::new(HashMap::new()),
            published: Mutex::new(HashMap::new()),
            generation: AtomicU64::new(0),
            scopes: Mutex::new(Vec::new()),
        }
    }

    #[must_use]
    pub fn is_leader(&self) -> bool {
        *self.leader.borrow()
    }

    /// `None` while the excluded namespaces are not known yet.
    #[must_use]
    pub fn is_excluded(&self, namespace: &str) -> Option<bool> {
        self.excluded
            .borrow()
            .as_ref()
            .map(|set| set.contains(namespace))
    }

    /// Objects with findings now, and their rule ids (tests, logs).
    #[must_use]
    pub fn current_findings(&self) -> BTreeMap<ObjectRef, Vec<&'static str>> {
        self.lock()
            .iter()
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<ObjectRef, Vec<&'static str>>> {
        // A panic while holding the lock leaves a consistent map (every update is one insert or
        // remove), so a poisoned lock is still usable.
        self.findings
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Record `rules` as the object's findings and move the gauge accordingly.
    fn set_findings(&self, key: &ObjectRef, rules: Vec<&'static str>) {
        let namespace = key.namespace.clone().unwrap_or_default();
        let gauge = |rule: &str| {
            self.metrics
                .findings
                .get_or_create(&metrics::FindingLabels {
                    rule: rule.to_string(),
                    namespace: namespace.clone(),
                })
        };
        for rule in &rules {
            gauge(rule).inc();
        }
        let mut map = self.lock();
        let old = if rules.is_empty() {
            self.lock_published().remove(key);
            map.remove(key)
        } else {
            map.insert(key.clone(), rules)
        };
        drop(map);
        self.generation.fetch_add(1, Ordering::SeqCst);
        for rule in old.unwrap_or_default() {
            gauge(rule).dec();
        }
    }

    /// Drop what is known about an object (deleted, excluded), without an Event; Event writes
    /// about it still waiting are dropped.
    pub fn forget(&self, key: &ObjectRef) {
        self.queue.cancel(key);
        self.set_findings(key, Vec::new());
    }

    /// Forget every object `keep` rejects (after a relist, objects deleted meanwhile).
    pub fn retain(&self, keep: impl Fn(&ObjectRef) -> bool) {
        let gone: Vec<ObjectRef> = self.lock().keys().filter(|k| !keep(k)).cloned().collect();
        for key in gone {
            self.forget(&key);
        }
    }

    /// Queue an object's findings as Events, or the one `Normal` Event when its last findings
    /// are gone, and remember them; the [`queue`] writes them in order. Nothing when this
    /// replica does not lead. Findings the previous leader published less than `reminder` ago,
    /// unchanged, are not published again.
    pub async fn report(
        &self,
        key: &ObjectRef,
        regarding: &ObjectReference,
        findings: &[Diagnostic],
    ) -> Result<()> {
        if !self.is_leader() {
            return Ok(());
        }
        let mut events: Vec<Event> = findings
            .iter()
            .map(crate::k8s::events::finding_event)
            .collect();
        let digest = handover::digest(&events);
        let inherited = !events.is_empty() && self.take_inherited(key, digest);
        if inherited {
            tracing::debug!(object = %key, "findings already published by the previous leader");
            events.clear();
        }
        let rules: Vec<&'static str> = findings.iter().map(|d| d.rule.id).collect();
        let previous = self.lock().get(key).cloned().unwrap_or_default();
        if rules.is_empty() && !previous.is_empty() {
            events.push(crate::k8s::events::resolved_event(&previous));
            tracing::info!(object = %key, "findings resolved");
        }
        self.queue
            .push(key, regarding, events, &self.retry, &self.leader)
            .await;
        let published = !rules.is_empty() && !inherited;
        self.set_findings(key, rules);
        if published {
            self.set_published(key, digest, SystemTime::now());
        }
        Ok(())
    }

    fn lock_published(&self) -> std::sync::MutexGuard<'_, HashMap<ObjectRef, handover::Record>> {
        self.published
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    fn set_published(&self, key: &ObjectRef, digest: u64, at: SystemTime) {
        self.lock_published().insert(
            key.clone(),
            handover::Record {
                digest,
                at,
                inherited: false,
            },
        );
        self.generation.fetch_add(1, Ordering::SeqCst);
    }

    /// Whether the previous leader published exactly these Events (`digest`) for `key` less
    /// than `reminder` ago. Answers once per inherited record: afterwards the object is this
    /// leader's own.
    fn take_inherited(&self, key: &ObjectRef, digest: u64) -> bool {
        let mut published = self.lock_published();
        let Some(record) = published.get_mut(key).filter(|r| r.inherited) else {
            return false;
        };
        record.inherited = false;
        record.digest == digest && record.age() < self.reminder
    }

    /// When an object with findings is checked (and its Warnings published) again: `reminder`
    /// after they were last published.
    #[must_use]
    pub fn reminder_for(&self, key: &ObjectRef) -> Duration {
        let age = self
            .lock_published()
            .get(key)
            .map_or(Duration::ZERO, handover::Record::age);
        // Whole seconds: the state keeps seconds, and a fresh record means a full reminder.
        let age = Duration::from_secs(age.as_secs());
        self.reminder
            .saturating_sub(age)
            .max(Duration::from_secs(1).min(self.reminder))
    }

    fn observe(&self, kind: &str, started: Instant) {
        let labels = metrics::KindLabels {
            kind: kind.to_string(),
        };
        self.metrics.reconciles.get_or_create(&labels).inc();
        self.metrics
            .duration
            .get_or_create(&labels)
            .observe(started.elapsed().as_secs_f64());
    }
}

fn event_type(event: &Event) -> &'static str {
    match event.type_ {
        EventType::Normal => "Normal",
        EventType::Warning => "Warning",
    }
}

/// Run the engine, turning a panic (a bug) into an error instead of a dead worker.
fn check_guarded(context: &crate::engine::Context, object: &Object) -> Result<Vec<Diagnostic>> {
    catch_unwind(AssertUnwindSafe(|| context.check(object))).map_err(|panic| Error::Engine {
        object: object.meta().object.to_string(),
        message: panic
            .downcast_ref::<&str>()
            .map(ToString::to_string)
            .or_else(|| panic.downcast_ref::<String>().cloned())
            .unwrap_or_else(|| "panic".into()),
    })
}

/// The findings about one Ingress, judged with the controller configuration (its context is
/// built once per configuration change, not per Ingress).
pub fn judge_ingress(
    config: &ConfigSnapshot,
    ing: &Ingress,
    settings: &Settings,
) -> Result<Vec<Diagnostic>> {
    let context = config.context(settings);
    let object = crate::k8s::objects::ingress(ing, Values::Detached);
    let me = object.meta().object.clone();
    let mut diags = check_guarded(&context, &object)?;
    diags.retain(|d| d.object.as_ref() == Some(&me));
    Ok(diags)
}

/// The findings about each ConfigMap of the configuration (none for a clean one).
pub fn judge_config(
    config: &ConfigSnapshot,
    settings: &Settings,
) -> Result<BTreeMap<ObjectRef, Vec<Diagnostic>>> {
    let context = config.context(settings);
    let mut out: BTreeMap<ObjectRef, Vec<Diagnostic>> = BTreeMap::new();
    for o in config.objects.iter().filter(|o| o.is_configmap()) {
        for d in check_guarded(&context, &o.engine)? {
            if let Some(object) = d.object.clone().filter(|x| x.kind == "ConfigMap") {
                out.entry(object).or_default().push(d);
            }
        }
    }
    Ok(out)
}

/// Check one Ingress and publish its findings.
#[instrument(skip(ing, ctx), fields(namespace, name, findings))]
pub async fn reconcile(ing: Arc<Ingress>, ctx: Arc<Context>) -> Result<Action> {
    let namespace = ing.namespace().unwrap_or_default();
    let span = Span::current();
    span.record("namespace", field::display(&namespace));
    span.record("name", field::display(ing.name_any()));
    if !ctx.is_leader() {
        // Gaining the Lease re-checks everything.
        return Ok(Action::await_change());
    }
    let config = ctx.config.borrow().clone();
    if !config.synced {
        // The first complete snapshot re-checks everything.
        return Ok(Action::await_change());
    }
    let key = objects::ingress_ref(&ing);
    match ctx.is_excluded(&namespace) {
        // Known once the Namespace watch has listed; that re-checks everything.
        None => return Ok(Action::await_change()),
        Some(true) => {
            ctx.forget(&key);
            return Ok(Action::await_change());
        }
        Some(false) => {}
    }
    let started = Instant::now();
    let result = async {
        let findings = judge_ingress(&config, &ing, &ctx.settings)?;
        ctx.report(&key, &ing.object_ref(&()), &findings).await?;
        Ok::<_, Error>(findings.len())
    }
    .await;
    ctx.observe("Ingress", started);
    let findings = result?;
    span.record("findings", findings);
    tracing::info!(findings, "checked");
    Ok(if findings == 0 {
        Action::await_change()
    } else {
        Action::requeue(ctx.reminder_for(&key))
    })
}

/// Log, count and requeue a failed reconcile (the signature kube-runtime's `Controller::run`
/// takes).
#[allow(
    clippy::needless_pass_by_value,
    reason = "Controller::run passes Arcs by value"
)]
pub fn error_policy(ing: Arc<Ingress>, error: &Error, ctx: Arc<Context>) -> Action {
    tracing::warn!(
        namespace = ing.namespace().unwrap_or_default(),
        name = ing.name_any(),
        error = %error,
        "reconcile failed"
    );
    ctx.metrics
        .failures
        .get_or_create(&metrics::FailureLabels {
            kind: "Ingress".into(),
            error: error.metric_label().into(),
        })
        .inc();
    Action::requeue(ctx.retry.requeue)
}

/// Check the configuration's ConfigMaps and publish their findings.
pub async fn reconcile_config(ctx: &Context) -> Result<()> {
    if !ctx.is_leader() {
        return Ok(());
    }
    let config = ctx.config.borrow().clone();
    if !config.synced {
        return Ok(());
    }
    let started = Instant::now();
    let result = async {
        let mut by_object = judge_config(&config, &ctx.settings)?;
        let mut total = 0;
        for o in config.objects.iter().filter(|o| o.is_configmap()) {
            let findings = by_object.remove(&o.object).unwrap_or_default();
            total += findings.len();
            ctx.report(&o.object, &o.reference, &findings).await?;
        }
        // ConfigMaps no longer part of the configuration.
        ctx.retain(|k| k.kind != "ConfigMap" || config.objects.iter().any(|o| &o.object == k));
        Ok::<_, Error>(total)
    }
    .await;
    ctx.observe("ConfigMap", started);
    match result {
        Ok(findings) => {
            tracing::info!(findings, "checked the controller ConfigMaps");
            Ok(())
        }
        Err(e) => {
            ctx.metrics
                .failures
                .get_or_create(&metrics::FailureLabels {
                    kind: "ConfigMap".into(),
                    error: e.metric_label().into(),
                })
                .inc();
            Err(e)
        }
    }
}

/// What a trimmed Ingress's check depends on: a change elsewhere (status, resourceVersion)
/// triggers nothing.
#[must_use]
pub fn relevant_hash(ing: &Ingress) -> Option<u64> {
    let mut h = DefaultHasher::new();
    ing.metadata.uid.hash(&mut h);
    ing.metadata.annotations.hash(&mut h);
    // The trimmed spec: the class and the backend Service names.
    ing.spec
        .as_ref()
        .and_then(|s| serde_json::to_string(s).ok())
        .hash(&mut h);
    Some(h.finish())
}

/// A watch stream of Ingresses -> trimmed -> reflector store -> changed objects: what triggers
/// the Ingress controller. `scope` is the namespace the watch covers (`None`: all), `synced` is
/// set once it has listed.
///
/// "Changed" is against the [`relevant_hash`] of each live object when it last triggered, so a
/// re-list (after a 410 Gone) triggers only what changed while the watch was down, however
/// long ago an object last changed. Entries go with Delete events and with objects a list no
/// longer shows. (kube-runtime's `predicate_filter` forgets an object an hour after it last
/// saw it; an unchanged object is only seen again on a re-list, which then re-checked it and
/// published its findings a second time.)
pub fn ingress_trigger<S>(
    events: S,
    writer: Writer<Ingress>,
    ctx: Arc<Context>,
    scope: Option<String>,
    synced: Arc<AtomicBool>,
) -> impl Stream<Item = Result<Ingress, watcher::Error>> + Send + 'static
where
    S: Stream<Item = Result<watcher::Event<Ingress>, watcher::Error>> + Send + 'static,
{
    let prefix = ctx.settings.annotation_prefix.clone();
    ctx.add_scope(handover::Scope {
        namespace: scope.clone(),
        store: writer.as_reader(),
        synced: synced.clone(),
    });
    let reader = writer.as_reader();
    let live = writer.as_reader();
    let mut checked: HashMap<kube::runtime::reflector::ObjectRef<Ingress>, Option<u64>> =
        HashMap::new();
    events
        .modify(move |ing| objects::trim_ingress(ing, &prefix))
        .reflect(writer)
        .inspect_ok(move |event| match event {
            watcher::Event::Delete(ing) => ctx.forget(&objects::ingress_ref(ing)),
            watcher::Event::InitDone => {
                synced.store(true, Ordering::SeqCst);
                // Objects deleted while the watch was down got no Delete event.
                ctx.retain(|k| {
                    k.kind != "Ingress"
                        || scope
                            .as_deref()
                            .is_some_and(|s| k.namespace.as_deref() != Some(s))
                        || reader
                            .get(
                                &kube::runtime::reflector::ObjectRef::new(&k.name)
                                    .within(k.namespace.as_deref().unwrap_or_default()),
                            )
                            .is_some()
                });
            }
            _ => {}
        })
        .try_filter(move |event| {
            // Name and namespace only (`from_obj` would keep uid and resourceVersion copies).
            let key = |ing: &Ingress| {
                kube::runtime::reflector::ObjectRef::new(&ing.name_any())
                    .within(&ing.namespace().unwrap_or_default())
            };
            let changed = match event {
                watcher::Event::Apply(ing) | watcher::Event::InitApply(ing) => {
                    let hash = relevant_hash(ing);
                    checked.insert(key(ing), hash) != Some(hash)
                }
                watcher::Event::Delete(ing) => {
                    checked.remove(&key(ing));
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

/// `()` each time `rx` changes.
pub fn changes<T: Send + Sync + 'static>(
    rx: watch::Receiver<T>,
) -> impl Stream<Item = ()> + Send + 'static {
    futures::stream::unfold(rx, |mut rx| async move {
        rx.changed().await.ok().map(|()| ((), rx))
    })
}

/// `()` each time `rx` turns true.
pub fn turns_true(rx: watch::Receiver<bool>) -> impl Stream<Item = ()> + Send + 'static {
    futures::stream::unfold(rx, |mut rx| async move {
        loop {
            rx.changed().await.ok()?;
            if *rx.borrow_and_update() {
                return Some(((), rx));
            }
        }
    })
}

/// The Ingress controller over one trigger stream and its store: re-checks everything when the
/// configuration, the excluded namespaces or the leadership change; stops on `shutdown`
/// after the running reconciles finish.
pub fn ingress_controller(
    trigger: impl Stream<Item = Result<Ingress, watcher::Error>> + Send + 'static,
    reader: Store<Ingress>,
    ctx: Arc<Context>,
    shutdown: impl std::future::Future<Output = ()> + Send + Sync + 'static,
) -> impl Stream<Item = ()> + Send {
    ingress_controller_with(
        trigger,
        reader,
        ctx,
        shutdown,
        crate::k8s::backoff::WatchBackoff::default(),
    )
}

/// [`ingress_controller`] pausing its triggers for `trigger_backoff` after a failed watch
/// ([`crate::k8s::backoff::NoPause`] when the trigger stream is already paced).
pub fn ingress_controller_with(
    trigger: impl Stream<Item = Result<Ingress, watcher::Error>> + Send + 'static,
    reader: Store<Ingress>,
    ctx: Arc<Context>,
    shutdown: impl std::future::Future<Output = ()> + Send + Sync + 'static,
    trigger_backoff: impl Backoff + 'static,
) -> impl Stream<Item = ()> + Send {
    Controller::for_stream(trigger, reader)
        .trigger_backoff(trigger_backoff)
        .with_config(kube::runtime::controller::Config::default().concurrency(8))
        .reconcile_all_on(changes(ctx.config.clone()))
        .reconcile_all_on(changes(ctx.excluded.clone()))
        .reconcile_all_on(turns_true(ctx.leader.clone()))
        .graceful_shutdown_on(shutdown)
        .run(reconcile, error_policy, ctx)
        .map(|result| match result {
            Ok((object, _)) => tracing::trace!(%object, "reconciled"),
            Err(kube::runtime::controller::Error::ReconcilerFailed(..)) => {
                // Already logged and counted by error_policy.
            }
            Err(e) => tracing::warn!(error = %e, "controller"),
        })
}

#[cfg(test)]
mod fault_tests;
#[cfg(test)]
mod handover_tests;
#[cfg(test)]
mod tests;
