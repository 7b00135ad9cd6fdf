//! Leader handover: what the leader has published survives it.
//!
//! The leader keeps, per object with findings, the rule ids, a digest of the Events it
//! published and when, in one ConfigMap it owns in the release namespace (`--state-configmap`,
//! rendered empty by the chart; the controller only `get`s and `update`s it, RBAC limited by
//! `resourceNames`). It saves the state a few seconds after it changed, and once more when it
//! stops.
//!
//! A replica that gains the Lease reads the state *before* it reports as leader (the
//! [`Handover`] task sits between the Lease and [`Context::leader`]), so the re-check of
//! everything that follows:
//! - publishes no Warning the previous leader published less than `reminder` ago unchanged
//!   (same Events: the digest covers type, reason, action and note);
//! - sends the `Normal` "findings resolved" Event for an object fixed during the handover (the
//!   previous findings are known);
//! - drops what it inherited about Ingresses deleted meanwhile, without an Event.
//!
//! Without the ConfigMap (absent, unreadable, or no `--state-configmap`) the new leader
//! publishes every finding again, as a fresh Event, and misses the `Normal` Event of objects
//! fixed meanwhile; it says so once in the log.
//!
//! Updates carry the `resourceVersion` last read or written, so a replica that lost the Lease
//! without noticing cannot overwrite the new leader's state (it gets a 409 and re-reads).

use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use k8s_openapi::api::core::v1::ConfigMap;
use k8s_openapi::api::networking::v1::Ingress;
use kube::Api;
use kube::api::PostParams;
use kube::runtime::events::{Event, EventType};
use kube::runtime::reflector::Store;
use serde::{Deserialize, Serialize};
use tokio::sync::watch;
use tokio::task::JoinHandle;

use super::Context;
use crate::diagnostic::ObjectRef;

/// The ConfigMap key that holds the state (JSON).
pub const STATE_KEY: &str = "published.json";
/// A ConfigMap holds at most 1 MiB; the newest entries that fit below this are saved.
pub const MAX_STATE_BYTES: usize = 900 * 1024;
/// How often the leader saves a changed state.
pub const SAVE_EVERY: Duration = Duration::from_secs(2);

/// What was last published about one object.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Record {
    /// [`digest`] of its Events.
    pub digest: u64,
    /// When they were published.
    pub at: SystemTime,
    /// Read from the state of a previous leader and not checked since.
    pub inherited: bool,
}

impl Record {
    #[must_use]
    pub fn age(&self) -> Duration {
        SystemTime::now()
            .duration_since(self.at)
            .unwrap_or(Duration::ZERO)
    }
}

/// FNV-1a, 64 bits: stable across replicas and releases (unlike `DefaultHasher`).
fn fnv1a64(bytes: impl IntoIterator<Item = u8>, mut h: u64) -> u64 {
    for b in bytes {
        h = (h ^ u64::from(b)).wrapping_mul(0x0000_0100_0000_01b3);
    }
    h
}

/// A digest of the Events of one object's findings, whatever their order.
#[must_use]
pub fn digest(events: &[Event]) -> u64 {
    let mut lines: Vec<String> = events
        .iter()
        .map(|e| {
            let type_ = match e.type_ {
                EventType::Normal => "Normal",
                EventType::Warning => "Warning",
            };
            format!(
                "{type_}\u{1f}{}\u{1f}{}\u{1f}{}",
                e.reason,
                e.action,
                e.note.as_deref().unwrap_or_default()
            )
        })
        .collect();
    lines.sort_unstable();
    lines.iter().fold(0xcbf2_9ce4_8422_2325, |h, line| {
        fnv1a64(line.bytes().chain(std::iter::once(0x1e)), h)
    })
}

/// One watched Ingress scope: its store and whether it has listed.
#[derive(Clone)]
pub struct Scope {
    /// `None`: all namespaces.
    pub namespace: Option<String>,
    pub store: Store<Ingress>,
    pub synced: Arc<AtomicBool>,
}

impl std::fmt::Debug for Scope {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Scope")
            .field("namespace", &self.namespace)
            .finish_non_exhaustive()
    }
}

impl Scope {
    /// `Some(exists)` when this scope covers `namespace` and has listed, else `None`.
    fn knows(&self, namespace: &str, name: &str) -> Option<bool> {
        let covers = self.namespace.as_deref().is_none_or(|s| s == namespace);
        (covers && self.synced.load(Ordering::SeqCst)).then(|| {
            self.store
                .get(&kube::runtime::reflector::ObjectRef::new(name).within(namespace))
                .is_some()
        })
    }
}

/// One object in the saved state.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Entry {
    pub api_version: String,
    pub kind: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub namespace: Option<String>,
    pub name: String,
    /// Rule ids of its findings.
    pub rules: Vec<String>,
    /// [`digest`] of the Events published, 16 hex digits.
    pub digest: String,
    /// Seconds since the Unix epoch.
    pub published_at: u64,
}

#[derive(Debug, Deserialize)]
struct StateDoc {
    version: u32,
    #[serde(default)]
    objects: Vec<Entry>,
}

/// The state's JSON: the newest entries whose encoding fits in `max_bytes`.
#[must_use]
pub fn encode(mut entries: Vec<Entry>, max_bytes: usize) -> (String, usize) {
    entries.sort_by(|a, b| {
        b.published_at
            .cmp(&a.published_at)
            .then_with(|| (&a.kind, &a.namespace, &a.name).cmp(&(&b.kind, &b.namespace, &b.name)))
    });
    let mut out = String::from("{\"version\":1,\"objects\":[");
    let mut kept = 0;
    for entry in &entries {
        let json = serde_json::to_string(entry).expect("an Entry serializes");
        if out.len() + json.len() + 3 > max_bytes {
            break;
        }
        if kept > 0 {
            out.push(',');
        }
        out.push_str(&json);
        kept += 1;
    }
    out.push_str("]}");
    (out, entries.len() - kept)
}

/// Entries from the state's JSON.
pub fn decode(json: &str) -> Result<Vec<Entry>, String> {
    let doc: StateDoc = serde_json::from_str(json).map_err(|e| e.to_string())?;
    if doc.version != 1 {
        return Err(format!("unknown state version {}", doc.version));
    }
    Ok(doc.objects)
}

impl Context {
    /// Register a watched Ingress scope (see [`Scope`]).
    pub fn add_scope(&self, scope: Scope) {
        self.scopes
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .push(scope);
    }

    /// Moves whenever the findings or what was published change.
    #[must_use]
    pub fn generation(&self) -> u64 {
        self.generation.load(Ordering::SeqCst)
    }

    /// What this leader has published, as state entries.
    #[must_use]
    pub fn state_entries(&self) -> Vec<Entry> {
        let findings = self.lock();
        let published = self.lock_published();
        findings
            .iter()
            .filter_map(|(key, rules)| {
                let record = published.get(key)?;
                Some(Entry {
                    api_version: key.api_version.clone(),
                    kind: key.kind.clone(),
                    namespace: key.namespace.clone(),
                    name: key.name.clone(),
                    rules: rules.iter().map(ToString::to_string).collect(),
                    digest: format!("{:016x}", record.digest),
                    published_at: record
                        .at
                        .duration_since(UNIX_EPOCH)
                        .map_or(0, |d| d.as_secs()),
                })
            })
            .collect()
    }

    /// Take over what a previous leader published. Entries about objects this replica already
    /// knows, with unknown rules only, or about Ingresses its listed stores no longer hold are
    /// skipped. Returns how many were taken.
    pub fn inherit(&self, entries: Vec<Entry>) -> usize {
        let scopes = self
            .scopes
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .clone();
        let mut taken = 0;
        for entry in entries {
            let key = ObjectRef {
                api_version: entry.api_version,
                kind: entry.kind,
                namespace: entry.namespace,
                name: entry.name,
            };
            if key.kind == "Ingress" {
                let namespace = key.namespace.as_deref().unwrap_or_default();
                let known = scopes.iter().find_map(|s| s.knows(namespace, &key.name));
                if known == Some(false) {
                    tracing::debug!(object = %key, "deleted during the handover");
                    continue;
                }
            }
            let rules: Vec<&'static str> = entry
                .rules
                .iter()
                .filter_map(|id| crate::rules::by_id(id).map(|r| r.id))
                .collect();
            let Ok(digest) = u64::from_str_radix(&entry.digest, 16) else {
                continue;
            };
            if rules.is_empty() || self.lock().contains_key(&key) {
                continue;
            }
            self.set_findings(&key, rules);
            self.lock_published().insert(
                key,
                Record {
                    digest,
                    at: UNIX_EPOCH + Duration::from_secs(entry.published_at),
                    inherited: true,
                },
            );
            taken += 1;
        }
        taken
    }
}

/// The state ConfigMap: read when the Lease is gained, updated while it is held.
#[derive(Debug, Clone)]
pub struct StateStore {
    api: Api<ConfigMap>,
    namespace: String,
    name: String,
    /// The object last read or written (its `resourceVersion` guards the next update).
    last: Option<ConfigMap>,
    /// The last failure was logged (log the next one at debug level only).
    failing: bool,
}

impl StateStore {
    #[must_use]
    pub fn new(client: kube::Client, namespace: &str, name: &str) -> Self {
        Self {
            api: Api::namespaced(client, namespace),
            namespace: namespace.to_string(),
            name: name.to_string(),
            last: None,
            failing: false,
        }
    }

    fn describe(&self) -> String {
        format!("{}/{}", self.namespace, self.name)
    }

    /// The entries the previous leader saved (none when it saved nothing).
    pub async fn load(&mut self) -> Result<Vec<Entry>, String> {
        let cm = self.api.get(&self.name).await.map_err(|e| e.to_string())?;
        let json = cm
            .data
            .as_ref()
            .and_then(|d| d.get(STATE_KEY))
            .cloned()
            .unwrap_or_default();
        self.last = Some(cm);
        if json.trim().is_empty() {
            return Ok(Vec::new());
        }
        decode(&json).map_err(|e| format!("`{STATE_KEY}` is not a saved state: {e}"))
    }

    /// Write `entries`; on a conflict, re-read (the next save uses the new `resourceVersion`).
    pub async fn save(&mut self, entries: Vec<Entry>) -> Result<(), String> {
        let mut cm = match self.last.take() {
            Some(cm) => cm,
            None => self.api.get(&self.name).await.map_err(|e| e.to_string())?,
        };
        let (json, dropped) = encode(entries, MAX_STATE_BYTES);
        if dropped > 0 {
            tracing::warn!(
                dropped,
                "the handover state is over {MAX_STATE_BYTES} bytes; the oldest entries are not saved"
            );
        }
        cm.data
            .get_or_insert_with(BTreeMap::new)
            .insert(STATE_KEY.into(), json);
        cm.metadata.managed_fields = None;
        match self
            .api
            .replace(&self.name, &PostParams::default(), &cm)
            .await
        {
            Ok(saved) => {
                self.last = Some(saved);
                Ok(())
            }
            Err(e) => {
                if matches!(&e, kube::Error::Api(s) if s.code == 409) {
                    self.last = self.api.get(&self.name).await.ok();
                }
                Err(e.to_string())
            }
        }
    }

    fn report(&mut self, result: Result<(), String>, what: &str) {
        match result {
            Ok(()) => {
                if std::mem::take(&mut self.failing) {
                    tracing::info!(state = %self.describe(), "{what}: working again");
                }
            }
            Err(error) => {
                if std::mem::replace(&mut self.failing, true) {
                    tracing::debug!(state = %self.describe(), %error, "{what} failed");
                } else {
                    tracing::warn!(state = %self.describe(), %error, "{what} failed");
                }
            }
        }
    }
}

/// The task between the Lease and [`Context::leader`].
#[derive(Debug)]
pub struct Handover {
    stop: watch::Sender<bool>,
    task: JoinHandle<()>,
}

impl Handover {
    /// Follow `lease` (the raw Lease flag): on gaining it, load the state into `ctx`, then set
    /// `gate` (the flag `ctx` reads); on losing it, clear `gate` at once. While leading, save
    /// the state every `save_every` when it changed.
    #[must_use]
    pub fn start(
        ctx: Arc<Context>,
        mut lease: watch::Receiver<bool>,
        gate: watch::Sender<bool>,
        mut store: Option<StateStore>,
        save_every: Duration,
    ) -> Self {
        let (stop, mut stopped) = watch::channel(false);
        let task = tokio::spawn(async move {
            let mut saved = ctx.generation();
            let mut tick = tokio::time::interval(save_every);
            tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            let mut leading = false;
            loop {
                tokio::select! {
                    changed = lease.changed() => {
                        if changed.is_err() {
                            break;
                        }
                        let now = *lease.borrow_and_update();
                        if now == leading {
                            continue;
                        }
                        leading = now;
                        if !now {
                            gate.send_replace(false);
                            continue;
                        }
                        if let Some(store) = store.as_mut() {
                            match store.load().await {
                                Ok(entries) => {
                                    let total = entries.len();
                                    let taken = ctx.inherit(entries);
                                    tracing::info!(state = %store.describe(), entries = total, taken, "read what the previous leader published");
                                    store.failing = false;
                                }
                                Err(e) => {
                                    store.report(Err(e), "reading the handover state (every finding is published again)");
                                }
                            }
                        } else {
                            tracing::info!("no --state-configmap: every finding is published again");
                        }
                        saved = ctx.generation();
                        gate.send_replace(true);
                    }
                    _ = tick.tick() => {
                        if leading && ctx.generation() != saved
                            && let Some(store) = store.as_mut() {
                            let generation = ctx.generation();
                            let result = store.save(ctx.state_entries()).await;
                            if result.is_ok() {
                                saved = generation;
                            }
                            store.report(result, "saving the handover state");
                        }
                    }
                    _ = stopped.changed() => break,
                }
            }
            // The last word: what this leader published, for the next one.
            if leading
                && *gate.borrow()
                && ctx.generation() != saved
                && let Some(store) = store.as_mut()
            {
                let result = store.save(ctx.state_entries()).await;
                store.report(result, "saving the handover state");
            }
            gate.send_replace(false);
        });
        Self { stop, task }
    }

    /// Save the state one last time (when leading) and stop (bounded: 5 s).
    pub async fn stop(self) {
        let _ = self.stop.send(true);
        let _ = tokio::time::timeout(Duration::from_secs(5), self.task).await;
    }
}
