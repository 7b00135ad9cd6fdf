//! The Event write queue: reconciles hand their Events to it and go on; writers send them.
//!
//! - **Order per object**: at most one write per object is in flight, and an object's writes
//!   leave in the order they were queued. Different objects are written concurrently
//!   ([`Retry::writers`] writers).
//! - **Throttling**: a write answered `429` (or `503`) waits the `Retry-After` the API server
//!   gave (capped at [`Retry::max_retry_after`]), else the backoff below, then is sent again.
//!   Every writer waits, so a 429 storm never turns into a hot loop.
//! - **Other failures**: no answer or a 5xx are retried with a backoff doubling from
//!   [`Retry::initial_delay`] to [`Retry::max_delay`], for as long as the object exists and this
//!   replica leads. Nothing is dropped for being slow.
//! - **Dropped**, each counted by reason and logged: the object was deleted or is no longer
//!   watched (`deleted`: its pending writes go with it, so no Event is written about an object
//!   that no longer exists), this replica lost the Lease (`not_leader`: the next leader
//!   re-publishes), or the API server refused the Event itself (`rejected`: a 4xx other than
//!   408/409/429, which a retry would not change).
//! - **Bounded**: at most [`Retry::queue_capacity`] writes wait. When full, the reconcile that
//!   queues waits for room (back-pressure on the Controller, nothing dropped); each time is
//!   counted (`event_queue_full`) and the start of each full spell is logged.
//!
//! Metrics: `event_writes_queued` (waiting now), `event_writes_enqueued_total`,
//! `event_write_retries_total{reason}` (`throttled`, `error`), `event_writes_dropped_total{reason}`,
//! `event_queue_full_total`, besides `events_published` and `event_publish_failures`.
//!
//! `Retry-After` lives in a response header, which `kube::Error` does not keep:
//! [`throttle_aware`] wraps the client the Recorder writes with, and copies the header into the
//! `Status` body (`details.retryAfterSeconds`, where the API server's own JSON errors put it).

use std::collections::{HashMap, HashSet, VecDeque};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

use k8s_openapi::api::core::v1::ObjectReference;
use kube::Client;
use kube::client::Body;
use kube::runtime::events::Event;
use tokio::sync::{Notify, watch};

use super::{Publish, Retry, metrics};
use crate::diagnostic::ObjectRef;

/// One Event to write about one object.
struct Write {
    event: Event,
    regarding: ObjectReference,
}

#[derive(Default)]
struct State {
    /// Writes waiting, per object, in order.
    pending: HashMap<ObjectRef, VecDeque<Write>>,
    /// Objects with writes waiting and none in flight, oldest first.
    ready: VecDeque<ObjectRef>,
    in_flight: HashSet<ObjectRef>,
    /// In-flight objects forgotten meanwhile: their write stops at its next retry.
    cancelled: HashSet<ObjectRef>,
    /// Writes waiting (not in flight).
    len: usize,
    /// In a spell of a full queue (logged once per spell).
    full: bool,
}

struct Inner {
    publisher: Arc<dyn Publish>,
    metrics: Arc<metrics::Metrics>,
    /// The Context's leadership flag, taken when the writers start.
    leader: OnceLock<watch::Receiver<bool>>,
    state: Mutex<State>,
    /// A write became ready.
    work: Notify,
    /// A write left the queue.
    room: Notify,
    /// Nothing waiting and nothing in flight.
    idle: Notify,
}

/// The queue (owned by the [`super::Context`]); its writers stop when it is dropped.
pub struct EventQueue {
    inner: Arc<Inner>,
    writers: OnceLock<(Retry, Vec<tokio::task::JoinHandle<()>>)>,
}

impl std::fmt::Debug for EventQueue {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let s = self.inner.lock();
        f.debug_struct("EventQueue")
            .field("waiting", &s.len)
            .field("in_flight", &s.in_flight.len())
            .finish_non_exhaustive()
    }
}

impl Drop for EventQueue {
    fn drop(&mut self) {
        if let Some((_, writers)) = self.writers.get() {
            for w in writers {
                w.abort();
            }
        }
    }
}

impl Inner {
    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        // Every update leaves the state consistent before anything can panic.
        self.state
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    fn dropped(&self, reason: &str, n: usize) {
        self.metrics
            .event_writes_dropped
            .get_or_create(&metrics::DropLabels {
                reason: reason.to_string(),
            })
            .inc_by(n as u64);
    }

    /// The next ready write, marked in flight.
    fn take(&self) -> Option<(ObjectRef, Write)> {
        let mut s = self.lock();
        let key = s.ready.pop_front()?;
        let queue = s.pending.get_mut(&key).expect("ready objects have writes");
        let write = queue.pop_front().expect("ready objects have writes");
        if queue.is_empty() {
            s.pending.remove(&key);
        }
        s.len -= 1;
        s.in_flight.insert(key.clone());
        self.metrics
            .event_writes_queued
            .set(i64::try_from(s.len).unwrap_or(i64::MAX));
        drop(s);
        self.room.notify_waiters();
        Some((key, write))
    }

    /// The in-flight write of `key` is over: its next write (if any) becomes ready.
    fn done(&self, key: &ObjectRef) {
        let mut s = self.lock();
        s.in_flight.remove(key);
        s.cancelled.remove(key);
        if s.pending.contains_key(key) {
            s.ready.push_back(key.clone());
            drop(s);
            self.work.notify_one();
        } else if s.len == 0 && s.in_flight.is_empty() {
            drop(s);
            self.idle.notify_waiters();
        }
    }

    fn is_cancelled(&self, key: &ObjectRef) -> bool {
        self.lock().cancelled.contains(key)
    }

    /// Send one write until it is written or dropped.
    async fn send(&self, key: &ObjectRef, write: &Write, policy: &Retry) {
        let mut delay = policy.initial_delay;
        loop {
            if self.is_cancelled(key) {
                self.dropped("deleted", 1);
                return;
            }
            if !self.leader.get().is_some_and(|l| *l.borrow()) {
                self.dropped("not_leader", 1);
                return;
            }
            let e = match self.publisher.publish(&write.event, &write.regarding).await {
                Ok(()) => {
                    self.metrics
                        .events
                        .get_or_create(&metrics::EventLabels {
                            event_type: super::event_type(&write.event).to_string(),
                            reason: write.event.reason.clone(),
                        })
                        .inc();
                    return;
                }
                Err(e) => e,
            };
            let (code, retry_after) = match &e {
                kube::Error::Api(s) => (
                    s.code,
                    s.details
                        .as_ref()
                        .map(|d| d.retry_after_seconds)
                        .filter(|s| *s > 0)
                        .map(|s| Duration::from_secs(u64::from(s))),
                ),
                _ => (0, None),
            };
            self.metrics
                .event_failures
                .get_or_create(&metrics::PublishFailureLabels {
                    reason: write.event.reason.clone(),
                    status: code.to_string(),
                })
                .inc();
            let throttled = code == 429 || (code == 503 && retry_after.is_some());
            let transient = throttled || code == 0 || code >= 500 || code == 408 || code == 409;
            if !transient {
                tracing::warn!(error = %e, reason = %write.event.reason, object = %key, "the API server refused the Event; dropped");
                self.dropped("rejected", 1);
                return;
            }
            let wait = match retry_after {
                Some(after) if throttled => after.min(policy.max_retry_after),
                _ => {
                    let d = delay;
                    delay = (delay * 2).min(policy.max_delay);
                    d
                }
            };
            let reason = if throttled { "throttled" } else { "error" };
            self.metrics
                .event_write_retries
                .get_or_create(&metrics::RetryLabels {
                    reason: reason.to_string(),
                })
                .inc();
            tracing::warn!(error = %e, retry_in = ?wait, reason = %write.event.reason, object = %key, "Event write failed; retrying");
            tokio::time::sleep(wait).await;
        }
    }
}

async fn writer(inner: Arc<Inner>, policy: Retry) {
    loop {
        let work = inner.work.notified();
        let mut work = std::pin::pin!(work);
        work.as_mut().enable();
        let Some((key, write)) = inner.take() else {
            work.await;
            continue;
        };
        inner.send(&key, &write, &policy).await;
        inner.done(&key);
    }
}

impl EventQueue {
    #[must_use]
    pub fn new(publisher: Arc<dyn Publish>, metrics: Arc<metrics::Metrics>) -> Self {
        Self {
            inner: Arc::new(Inner {
                publisher,
                metrics,
                leader: OnceLock::new(),
                state: Mutex::new(State::default()),
                work: Notify::new(),
                room: Notify::new(),
                idle: Notify::new(),
            }),
            writers: OnceLock::new(),
        }
    }

    /// Queue `events` about `key`, in order; waits while the queue is full. Starts the writers
    /// (with `policy`; they write while `leader` is true) on first use.
    pub async fn push(
        &self,
        key: &ObjectRef,
        regarding: &ObjectReference,
        events: Vec<Event>,
        policy: &Retry,
        leader: &watch::Receiver<bool>,
    ) {
        if events.is_empty() {
            return;
        }
        let (policy, _) = self.writers.get_or_init(|| {
            let _ = self.inner.leader.set(leader.clone());
            let writers = (0..policy.writers.max(1))
                .map(|_| tokio::spawn(writer(self.inner.clone(), policy.clone())))
                .collect();
            (policy.clone(), writers)
        });
        let n = events.len();
        loop {
            let room = self.inner.room.notified();
            let mut room = std::pin::pin!(room);
            room.as_mut().enable();
            {
                let mut s = self.inner.lock();
                // An empty queue takes any batch, so one object's findings never wait forever.
                if s.len == 0 || s.len + n <= policy.queue_capacity {
                    if s.full {
                        s.full = false;
                        tracing::info!(waiting = s.len, "Event queue has room again");
                    }
                    let queue = s.pending.entry(key.clone()).or_default();
                    let was_idle = queue.is_empty();
                    queue.extend(events.into_iter().map(|event| Write {
                        event,
                        regarding: regarding.clone(),
                    }));
                    if was_idle && !s.in_flight.contains(key) {
                        s.ready.push_back(key.clone());
                    }
                    s.len += n;
                    self.inner
                        .metrics
                        .event_writes_queued
                        .set(i64::try_from(s.len).unwrap_or(i64::MAX));
                    self.inner
                        .metrics
                        .event_writes_queued_total
                        .inc_by(n as u64);
                    drop(s);
                    self.inner.work.notify_one();
                    return;
                }
                if !s.full {
                    s.full = true;
                    tracing::warn!(
                        waiting = s.len,
                        capacity = policy.queue_capacity,
                        "Event queue full; reconciles wait for room"
                    );
                }
                self.inner.metrics.event_queue_full.inc();
            }
            room.await;
        }
    }

    /// Drop the writes waiting for `key` (deleted, no longer watched), and stop its write in
    /// flight at its next retry.
    pub fn cancel(&self, key: &ObjectRef) {
        let mut s = self.inner.lock();
        let dropped = s.pending.remove(key).map_or(0, |q| q.len());
        if dropped > 0 {
            s.len -= dropped;
            s.ready.retain(|k| k != key);
            self.inner
                .metrics
                .event_writes_queued
                .set(i64::try_from(s.len).unwrap_or(i64::MAX));
        }
        if s.in_flight.contains(key) {
            s.cancelled.insert(key.clone());
        }
        let idle = s.len == 0 && s.in_flight.is_empty();
        drop(s);
        if dropped > 0 {
            self.inner.dropped("deleted", dropped);
            self.inner.room.notify_waiters();
            if idle {
                self.inner.idle.notify_waiters();
            }
        }
    }

    /// Writes waiting and in flight.
    #[must_use]
    pub fn backlog(&self) -> usize {
        let s = self.inner.lock();
        s.len + s.in_flight.len()
    }

    /// Wait until nothing waits and nothing is in flight (tests, benchmarks, shutdown).
    pub async fn flush(&self) {
        loop {
            let idle = self.inner.idle.notified();
            let mut idle = std::pin::pin!(idle);
            idle.as_mut().enable();
            if self.backlog() == 0 {
                return;
            }
            idle.await;
        }
    }
}

/// `client` with `Retry-After` kept: a `429` or `503` answer that carries the header gets it as
/// `details.retryAfterSeconds` of its `Status` body (a plain-text body, as API Priority and
/// Fairness sends, becomes a `Status`), so [`EventQueue`] can honour it.
#[must_use]
pub fn throttle_aware(client: Client) -> Client {
    let namespace = client.default_namespace().to_string();
    let service = tower::service_fn(move |request: http::Request<Body>| {
        let client = client.clone();
        async move {
            let response = client.send(request).await?;
            Ok::<_, kube::Error>(with_retry_after(response).await)
        }
    });
    Client::new(service, namespace)
}

async fn with_retry_after(response: http::Response<Body>) -> http::Response<Body> {
    let code = response.status().as_u16();
    let seconds = response
        .headers()
        .get(http::header::RETRY_AFTER)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().parse::<u32>().ok());
    let (Some(seconds), 429 | 503) = (seconds, code) else {
        return response;
    };
    let (mut parts, body) = response.into_parts();
    let bytes = body.collect_bytes().await.unwrap_or_default();
    let mut status = match serde_json::from_slice::<serde_json::Value>(&bytes) {
        Ok(v) if v["kind"] == "Status" => v,
        _ => serde_json::json!({
            "kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
            "message": String::from_utf8_lossy(&bytes).trim(),
            "reason": "TooManyRequests", "code": code,
        }),
    };
    if status["details"]["retryAfterSeconds"].as_u64().unwrap_or(0) == 0 {
        if !status["details"].is_object() {
            status["details"] = serde_json::json!({});
        }
        status["details"]["retryAfterSeconds"] = seconds.into();
    }
    let body = serde_json::to_vec(&status).unwrap_or_else(|_| bytes.to_vec());
    parts.headers.remove(http::header::CONTENT_LENGTH);
    parts.headers.insert(
        http::header::CONTENT_TYPE,
        http::HeaderValue::from_static("application/json"),
    );
    http::Response::from_parts(parts, Body::from(body))
}
