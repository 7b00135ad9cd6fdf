//! Prometheus metrics of the webhook, served as text on `--metrics-listen` `/metrics`.

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;

use super::review::Outcome;

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct AdmissionLabels {
    operation: String,
    kind: String,
    decision: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct FindingLabels {
    rule: String,
    severity: String,
    decision: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ErrorLabels {
    error: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ResultLabels {
    result: String,
}

/// The webhook's metrics and their registry.
#[derive(Debug)]
pub struct Metrics {
    registry: Registry,
    admissions: Family<AdmissionLabels, Counter>,
    findings: Family<FindingLabels, Counter>,
    errors: Family<ErrorLabels, Counter>,
    duration: Histogram,
    tls_reloads: Family<ResultLabels, Counter>,
    configmaps: Gauge,
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

impl Metrics {
    #[must_use]
    pub fn new() -> Self {
        let mut registry = Registry::with_prefix("snippet_guard_webhook");
        let admissions = Family::<AdmissionLabels, Counter>::default();
        registry.register(
            "admissions",
            "Admission requests answered, by operation, kind and decision (allow, deny, warn, audit, skip, error)",
            admissions.clone(),
        );
        let findings = Family::<FindingLabels, Counter>::default();
        registry.register(
            "findings",
            "Findings on reviewed objects, by rule, effective severity and decision",
            findings.clone(),
        );
        let errors = Family::<ErrorLabels, Counter>::default();
        registry.register(
            "errors",
            "Requests answered with HTTP 400/413 or with an internal error, by error",
            errors.clone(),
        );
        // 50 µs .. ~0.8 s
        let duration = Histogram::new(exponential_buckets(0.000_05, 2.0, 15));
        registry.register(
            "admission_duration_seconds",
            "Time to judge one AdmissionReview, from the body read to the response built",
            duration.clone(),
        );
        let tls_reloads = Family::<ResultLabels, Counter>::default();
        registry.register(
            "tls_reloads",
            "Loads of the serving certificate from disk, by result (ok, error)",
            tls_reloads.clone(),
        );
        let configmaps = Gauge::default();
        registry.register(
            "context_configmaps",
            "Controller and proxy-set-headers ConfigMaps held in the watch cache",
            configmaps.clone(),
        );
        Self {
            registry,
            admissions,
            findings,
            errors,
            duration,
            tls_reloads,
            configmaps,
        }
    }

    /// Count one answered review and its findings.
    pub fn observe(&self, outcome: &Outcome, seconds: f64) {
        let decision = outcome.decision.as_str().to_string();
        self.admissions
            .get_or_create(&AdmissionLabels {
                operation: outcome.operation.to_string(),
                kind: outcome.kind.clone(),
                decision: decision.clone(),
            })
            .inc();
        for f in &outcome.findings {
            self.findings
                .get_or_create(&FindingLabels {
                    rule: f.rule.to_string(),
                    severity: f.effective.as_str().to_string(),
                    decision: decision.clone(),
                })
                .inc();
        }
        if outcome.internal_error.is_some() {
            self.error("internal");
        }
        self.duration.observe(seconds);
    }

    /// Count a request refused with an error (its `metric_label`).
    pub fn error(&self, label: &str) {
        self.errors
            .get_or_create(&ErrorLabels {
                error: label.to_string(),
            })
            .inc();
    }

    /// Count a certificate (re)load.
    pub fn tls_reload(&self, ok: bool) {
        self.tls_reloads
            .get_or_create(&ResultLabels {
                result: if ok { "ok" } else { "error" }.to_string(),
            })
            .inc();
    }

    /// Number of ConfigMaps in the cache.
    pub fn set_configmaps(&self, n: usize) {
        self.configmaps.set(i64::try_from(n).unwrap_or(i64::MAX));
    }

    /// OpenMetrics text.
    #[must_use]
    pub fn encode(&self) -> String {
        let mut out = String::new();
        prometheus_client::encoding::text::encode(&mut out, &self.registry)
            .expect("writing to a String cannot fail");
        out
    }
}
