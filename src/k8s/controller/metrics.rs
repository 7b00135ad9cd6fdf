//! Prometheus metrics of the controller, served as text on `--listen` `/metrics`.

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct KindLabels {
    pub kind: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct FailureLabels {
    pub kind: String,
    pub error: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct EventLabels {
    /// `Warning` or `Normal`.
    pub event_type: String,
    pub reason: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct PublishFailureLabels {
    pub reason: String,
    pub status: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct RetryLabels {
    /// `throttled` (429, or 503 with Retry-After) or `error` (no answer, 5xx).
    pub reason: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct DropLabels {
    /// `deleted`, `not_leader` or `rejected`.
    pub reason: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct FindingLabels {
    pub rule: String,
    pub namespace: String,
}

type HistogramFamily = Family<KindLabels, Histogram, fn() -> Histogram>;

fn duration_histogram() -> Histogram {
    // 100 µs .. ~3.3 s
    Histogram::new(exponential_buckets(0.000_1, 2.0, 16))
}

/// The controller's metrics and their registry (prefix `snippet_guard_controller_`).
#[derive(Debug)]
pub struct Metrics {
    registry: Registry,
    /// Reconciles run, by kind (`Ingress`, `ConfigMap`).
    pub reconciles: Family<KindLabels, Counter>,
    /// Failed reconciles, by kind and error (`Error::metric_label`).
    pub failures: Family<FailureLabels, Counter>,
    /// Reconcile duration, by kind.
    pub duration: HistogramFamily,
    /// Events written, by type and reason.
    pub events: Family<EventLabels, Counter>,
    /// Event writes that failed (each retry counts), by reason and HTTP status (`0`: no answer).
    pub event_failures: Family<PublishFailureLabels, Counter>,
    /// Event writes waiting in the queue now.
    pub event_writes_queued: Gauge,
    /// Event writes ever queued.
    pub event_writes_queued_total: Counter,
    /// Event writes sent again, by reason (`throttled`, `error`).
    pub event_write_retries: Family<RetryLabels, Counter>,
    /// Event writes given up, by reason (`deleted`, `not_leader`, `rejected`).
    pub event_writes_dropped: Family<DropLabels, Counter>,
    /// Times a reconcile found the Event queue full and waited for room.
    pub event_queue_full: Counter,
    /// Current findings, by rule and namespace (leader only).
    pub findings: Family<FindingLabels, Gauge>,
    /// 1 while this replica holds the Lease.
    pub leader: Gauge,
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

impl Metrics {
    #[must_use]
    pub fn new() -> Self {
        let mut registry = Registry::with_prefix("snippet_guard_controller");
        let reconciles = Family::<KindLabels, Counter>::default();
        registry.register(
            "reconciles",
            "Reconciles run, by kind (Ingress, ConfigMap)",
            reconciles.clone(),
        );
        let failures = Family::<FailureLabels, Counter>::default();
        registry.register(
            "reconcile_failures",
            "Failed reconciles, by kind and error",
            failures.clone(),
        );
        let duration: HistogramFamily = Family::new_with_constructor(duration_histogram);
        registry.register(
            "reconcile_duration_seconds",
            "Time of one reconcile, by kind, Event writes included",
            duration.clone(),
        );
        let events = Family::<EventLabels, Counter>::default();
        registry.register(
            "events_published",
            "Events written (created or merged into a series), by type and reason",
            events.clone(),
        );
        let event_failures = Family::<PublishFailureLabels, Counter>::default();
        registry.register(
            "event_publish_failures",
            "Event writes that failed, each retry counted, by reason and HTTP status (0: no answer)",
            event_failures.clone(),
        );
        let event_writes_queued = Gauge::default();
        registry.register(
            "event_writes_queued",
            "Event writes waiting in the queue",
            event_writes_queued.clone(),
        );
        let event_writes_queued_total = Counter::default();
        registry.register(
            "event_writes_enqueued",
            "Event writes queued since the start",
            event_writes_queued_total.clone(),
        );
        let event_write_retries = Family::<RetryLabels, Counter>::default();
        registry.register(
            "event_write_retries",
            "Event writes sent again, by reason (throttled: 429 or 503 with Retry-After; error: no answer or 5xx)",
            event_write_retries.clone(),
        );
        let event_writes_dropped = Family::<DropLabels, Counter>::default();
        registry.register(
            "event_writes_dropped",
            "Event writes given up, by reason (deleted: the object went away; not_leader; rejected: a 4xx)",
            event_writes_dropped.clone(),
        );
        let event_queue_full = Counter::default();
        registry.register(
            "event_queue_full",
            "Times a reconcile found the Event queue full and waited for room",
            event_queue_full.clone(),
        );
        let findings = Family::<FindingLabels, Gauge>::default();
        registry.register(
            "findings",
            "Current findings by rule and namespace (on the leader)",
            findings.clone(),
        );
        let leader = Gauge::default();
        registry.register(
            "leader",
            "1 while this replica holds the Lease and publishes Events",
            leader.clone(),
        );
        Self {
            registry,
            reconciles,
            failures,
            duration,
            events,
            event_failures,
            event_writes_queued,
            event_writes_queued_total,
            event_write_retries,
            event_writes_dropped,
            event_queue_full,
            findings,
            leader,
        }
    }

    /// The OpenMetrics text of every metric.
    #[must_use]
    pub fn encode(&self) -> String {
        let mut out = String::new();
        prometheus_client::encoding::text::encode(&mut out, &self.registry)
            .expect("writing to a String cannot fail");
        out
    }

    /// Value of `events_published{type,reason}` (tests).
    #[must_use]
    pub fn events_published(&self, type_: &str, reason: &str) -> u64 {
        self.events
            .get_or_create(&EventLabels {
                event_type: type_.to_string(),
                reason: reason.to_string(),
            })
            .get()
    }

    /// Sum of `event_publish_failures` (tests).
    #[must_use]
    pub fn event_failures_total(&self) -> u64 {
        let text = self.encode();
        text.lines()
            .filter(|l| l.starts_with("snippet_guard_controller_event_publish_failures_total{"))
            .filter_map(|l| l.rsplit(' ').next()?.parse::<u64>().ok())
            .sum()
    }

    /// Value of `event_write_retries{reason}` (tests, benchmarks).
    #[must_use]
    pub fn event_retries(&self, reason: &str) -> u64 {
        self.event_write_retries
            .get_or_create(&RetryLabels {
                reason: reason.to_string(),
            })
            .get()
    }

    /// Value of `event_writes_dropped{reason}` (tests, benchmarks).
    #[must_use]
    pub fn event_drops(&self, reason: &str) -> u64 {
        self.event_writes_dropped
            .get_or_create(&DropLabels {
                reason: reason.to_string(),
            })
            .get()
    }

    /// Value of `findings{rule,namespace}` (tests).
    #[must_use]
    pub fn findings_of(&self, rule: &str, namespace: &str) -> i64 {
        self.findings
            .get_or_create(&FindingLabels {
                rule: rule.to_string(),
                namespace: namespace.to_string(),
            })
            .get()
    }
}
