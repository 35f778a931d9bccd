//! The coordinator's Prometheus metrics (`GET /metrics`, text exposition format).

use std::sync::atomic::AtomicU64;

use headroom_model::ledger::Hour;
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

/// Labels of a ledger figure kept for the plan and for target tracking alike.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct PolicyLabel {
    /// Group name.
    pub group: String,
    /// `plan` or `target_tracking`.
    pub policy: String,
}

/// A counter of seconds or sums (not whole).
type Sum = Counter<f64, AtomicU64>;

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
    /// Seconds the ledger judged, per group.
    pub ledger_observed: Family<GroupLabel, Sum>,
    /// Instance-seconds asked for, per group and policy.
    pub ledger_instance: Family<PolicyLabel, Sum>,
    /// Seconds short of demand, per group and policy.
    pub ledger_short: Family<PolicyLabel, Sum>,
    /// Forecasts at the lead scored, per group.
    pub ledger_scored: Family<GroupLabel, Counter>,
    /// Scored forecasts with zero actual demand, per group.
    pub ledger_zero_actuals: Family<GroupLabel, Counter>,
    /// Summed |actual - P50|, per group.
    pub ledger_abs_error: Family<GroupLabel, Sum>,
    /// Summed actual demand of scored forecasts, per group.
    pub ledger_actual: Family<GroupLabel, Sum>,
    /// Summed |actual - P50| / actual over actuals above zero, per group.
    pub ledger_pct_error: Family<GroupLabel, Sum>,
    /// Scored forecasts at or below their P90, per group.
    pub ledger_p90_covered: Family<GroupLabel, Counter>,
    /// 1 while this replica actuates the group, 0 on a standby.
    pub leader: Family<GroupLabel, Gauge>,
    /// Actuations this replica decided and its fencing refused, per group.
    pub fenced: Family<GroupLabel, Counter>,
    /// The instance warm-up the group plans with, seconds.
    pub warmup: Family<GroupLabel, Gauge<f64, AtomicU64>>,
    /// Instances asked for that have not sent a healthy signal yet.
    pub warming: Family<GroupLabel, Gauge>,
    /// What a short sample is priced at over the shortfall budget's own, per group.
    pub price_factor: Family<GroupLabel, Gauge<f64, AtomicU64>>,
    /// The plan's recent spend per instance target tracking would run, per group.
    pub spend_ratio: Family<GroupLabel, Gauge<f64, AtomicU64>>,
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
            ledger_observed: Family::default(),
            ledger_instance: Family::default(),
            ledger_short: Family::default(),
            ledger_scored: Family::default(),
            ledger_zero_actuals: Family::default(),
            ledger_abs_error: Family::default(),
            ledger_actual: Family::default(),
            ledger_pct_error: Family::default(),
            ledger_p90_covered: Family::default(),
            leader: Family::default(),
            fenced: Family::default(),
            warmup: Family::default(),
            warming: Family::default(),
            price_factor: Family::default(),
            spend_ratio: Family::default(),
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
        registry.register(
            "leader",
            "1 while this replica actuates the group (holds its election in etcd, or runs alone)",
            m.leader.clone(),
        );
        registry.register(
            "fenced_actuations",
            "Actuations decided here and refused by fencing: the lease's deadline passed or etcd no longer confirmed the leadership",
            m.fenced.clone(),
        );
        registry.register(
            "instance_warmup_seconds",
            "The instance warm-up the group plans with (configured, or measured from its launches)",
            m.warmup.clone(),
        );
        registry.register(
            "instances_warming",
            "Instances asked for that have not sent a healthy signal yet",
            m.warming.clone(),
        );
        registry.register(
            "policy_price_factor",
            "What a short sample is priced at over the shortfall budget's own (above 1 while the group runs short more often than its budget)",
            m.price_factor.clone(),
        );
        registry.register(
            "policy_spend_ratio",
            "The plan's recent spend per instance target tracking would run; past the group's spend_ceiling, target tracking decides",
            m.spend_ratio.clone(),
        );
        registry.register(
            "ledger_observed_seconds",
            "Seconds the ledger judged",
            m.ledger_observed.clone(),
        );
        registry.register(
            "ledger_instance_seconds",
            "Instance-seconds asked for: the plan, and target tracking on the same demand",
            m.ledger_instance.clone(),
        );
        registry.register(
            "ledger_short_seconds",
            "Seconds demand exceeded the instances ready (asked for at least a warm-up before)",
            m.ledger_short.clone(),
        );
        registry.register(
            "ledger_forecasts_scored",
            "Forecasts at the lead scored against the demand that came",
            m.ledger_scored.clone(),
        );
        registry.register(
            "ledger_forecast_zero_actuals",
            "Scored forecasts whose actual demand was zero (left out of MAPE)",
            m.ledger_zero_actuals.clone(),
        );
        registry.register(
            "ledger_forecast_abs_error",
            "Summed |actual - P50| of scored forecasts",
            m.ledger_abs_error.clone(),
        );
        registry.register(
            "ledger_forecast_actual",
            "Summed actual demand of scored forecasts",
            m.ledger_actual.clone(),
        );
        registry.register(
            "ledger_forecast_pct_error",
            "Summed |actual - P50| / actual over scored forecasts with actual > 0",
            m.ledger_pct_error.clone(),
        );
        registry.register(
            "ledger_p90_covered",
            "Scored forecasts whose actual demand was at most the P90",
            m.ledger_p90_covered.clone(),
        );
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

    /// Counts what a group's ledger gained.
    pub fn count_ledger(&self, group: &str, gained: &Hour) {
        let g = GroupLabel {
            group: group.to_string(),
        };
        let p = |policy: &str| PolicyLabel {
            group: group.to_string(),
            policy: policy.to_string(),
        };
        let add = |c: &Sum, v: f64| {
            if v > 0.0 {
                c.inc_by(v);
            }
        };
        add(&self.ledger_observed.get_or_create(&g), gained.observed_s);
        add(
            &self.ledger_instance.get_or_create(&p("plan")),
            gained.plan_instance_s,
        );
        add(
            &self.ledger_instance.get_or_create(&p("target_tracking")),
            gained.shadow_instance_s,
        );
        add(
            &self.ledger_short.get_or_create(&p("plan")),
            gained.plan_short_s,
        );
        add(
            &self.ledger_short.get_or_create(&p("target_tracking")),
            gained.shadow_short_s,
        );
        self.ledger_scored.get_or_create(&g).inc_by(gained.scored);
        self.ledger_zero_actuals
            .get_or_create(&g)
            .inc_by(gained.zero_actuals);
        add(&self.ledger_abs_error.get_or_create(&g), gained.abs_error);
        add(&self.ledger_actual.get_or_create(&g), gained.actual);
        add(&self.ledger_pct_error.get_or_create(&g), gained.pct_error);
        self.ledger_p90_covered
            .get_or_create(&g)
            .inc_by(gained.p90_covered);
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
