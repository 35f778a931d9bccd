//! The coordinator's Prometheus metrics (`GET /metrics`, text exposition format).

use std::sync::atomic::AtomicU64;

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::registry::Registry;

/// Labels naming a group.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct GroupLabel {
    /// Group name.
    pub group: String,
}

/// Labels naming why a request was refused.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ReasonLabel {
    /// `unauthorized`, `malformed`, `invalid`, `too_large` or `internal`.
    pub reason: String,
}

/// Labels of an actuation.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ActuationLabel {
    /// Group name.
    pub group: String,
    /// `set_capacity` or `replace`.
    pub kind: String,
    /// `ok` or `error`.
    pub outcome: String,
}

/// Every metric the coordinator exports.
pub struct Metrics {
    registry: Registry,
    /// Signals received in well-formed, authorised requests.
    pub received: Counter,
    /// Signals applied (new and fresh), per group.
    pub applied: Family<GroupLabel, Counter>,
    /// Signals stored for audit only (older than the signal TTL), per group.
    pub stored: Family<GroupLabel, Counter>,
    /// Duplicate signals acknowledged but not applied, per group.
    pub duplicate: Family<GroupLabel, Counter>,
    /// Requests refused, by reason.
    pub rejected: Family<ReasonLabel, Counter>,
    /// Actuations by group, kind and outcome.
    pub actuations: Family<ActuationLabel, Counter>,
    /// Time to handle `POST /v1/signals`, seconds.
    pub ingest_latency: Histogram,
    /// Desired instances per group.
    pub desired: Family<GroupLabel, Gauge>,
    /// Actual instances per group (as the actuator reports, else the last set).
    pub actual: Family<GroupLabel, Gauge>,
    /// Summed current demand per group.
    pub demand: Family<GroupLabel, Gauge<f64, AtomicU64>>,
    /// Live hosts per group.
    pub hosts: Family<GroupLabel, Gauge>,
}

impl Metrics {
    /// Registers every metric.
    pub fn new() -> Metrics {
        let mut registry = Registry::with_prefix("headroom_coordinator");
        let m = Metrics {
            received: Counter::default(),
            applied: Family::default(),
            stored: Family::default(),
            duplicate: Family::default(),
            rejected: Family::default(),
            actuations: Family::default(),
            ingest_latency: Histogram::new([
                0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1.0,
            ]),
            desired: Family::default(),
            actual: Family::default(),
            demand: Family::default(),
            hosts: Family::default(),
            registry: Registry::default(),
        };
        registry.register(
            "signals_received",
            "Signals received in accepted requests",
            m.received.clone(),
        );
        registry.register(
            "signals_applied",
            "Signals applied (new and fresh)",
            m.applied.clone(),
        );
        registry.register(
            "signals_stored",
            "Signals stored for audit only (older than the TTL)",
            m.stored.clone(),
        );
        registry.register(
            "signals_duplicate",
            "Duplicate signals acknowledged, not applied",
            m.duplicate.clone(),
        );
        registry.register(
            "requests_rejected",
            "Signal requests refused, by reason",
            m.rejected.clone(),
        );
        registry.register(
            "actuations",
            "Actuations by group, kind and outcome",
            m.actuations.clone(),
        );
        registry.register(
            "ingest_seconds",
            "Time to handle POST /v1/signals",
            m.ingest_latency.clone(),
        );
        registry.register(
            "desired_instances",
            "Desired instances per group",
            m.desired.clone(),
        );
        registry.register(
            "actual_instances",
            "Actual instances per group",
            m.actual.clone(),
        );
        registry.register(
            "demand",
            "Summed current demand per group",
            m.demand.clone(),
        );
        registry.register("hosts", "Live hosts per group", m.hosts.clone());
        Metrics { registry, ..m }
    }

    /// Counts a refused request.
    pub fn reject(&self, reason: &str) {
        self.rejected
            .get_or_create(&ReasonLabel {
                reason: reason.into(),
            })
            .inc();
    }

    /// The text exposition.
    pub fn render(&self) -> String {
        let mut out = String::new();
        if prometheus_client::encoding::text::encode(&mut out, &self.registry).is_err() {
            out.clear();
        }
        out
    }
}

impl Default for Metrics {
    fn default() -> Self {
        Metrics::new()
    }
}
