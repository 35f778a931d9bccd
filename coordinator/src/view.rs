//! What `GET /v1/groups` and `GET /v1/groups/{name}` return (and `headroom groups` reads).

use serde::{Deserialize, Serialize};

use headroom_model::ledger::Figures;

use crate::lease::LeaseView;
use crate::state::{ActionRecord, SignalCounts};

/// `GET /v1/groups`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct GroupsView {
    /// The groups the token opens.
    pub groups: Vec<GroupView>,
}

/// One group: hosts, demand, forecast, desired vs actual and why, last actions.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct GroupView {
    /// Group name.
    pub name: String,
    /// Actuator kind.
    pub actuator: String,
    /// Policy limits in force.
    pub policy: PolicyView,
    /// Live hosts with their latest signal.
    pub hosts: Vec<HostView>,
    /// The latest evaluation, absent before the first.
    pub evaluation: Option<Evaluation>,
    /// Newest first.
    pub last_actions: Vec<ActionRecord>,
    /// Distinct signals stored for this group.
    pub signals: SignalCounts,
    /// The plan next to target tracking on the same demand (absent from a coordinator that
    /// predates it).
    #[serde(default)]
    pub ledger: Option<LedgerView>,
    /// The group's election, when replicas share it through etcd.
    #[serde(default)]
    pub lease: Option<LeaseView>,
}

/// A group's ledger as `headroom groups` shows it.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct LedgerView {
    /// The hour the view was taken in, if anything was recorded in it.
    pub this_hour: Option<Figures>,
    /// The 24 hours up to the view, this one included (hours by their start).
    pub last_day: Figures,
}

/// Policy settings of a group.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct PolicyView {
    /// Configured capacity per instance, if any (else the hosts' mean is used).
    pub capacity_per_instance: Option<f64>,
    /// Target utilisation of expected demand.
    pub target_utilization: f64,
    /// Fewest instances.
    pub min: u32,
    /// Most instances.
    pub max: u32,
    /// Instance warm-up, seconds.
    pub warmup_s: f64,
    /// Seconds between decisions.
    pub decision_interval_s: f64,
    /// Seconds demand must allow a scale-in before it happens.
    pub scale_in_stabilization_s: f64,
    /// Largest scale-in step per decision, instances.
    pub max_scale_in_step: u32,
    /// Largest scale-in step per decision as a share of the current count (absent from an
    /// older coordinator's answer: its share, half).
    #[serde(default = "half")]
    pub max_scale_in_fraction: f64,
    /// Seconds of silence after which a host leaves the group.
    pub host_ttl_s: f64,
    /// Signals decided longer ago than this are stored for audit only.
    pub signal_ttl_s: f64,
    /// 0 = replacement off.
    pub replace_unhealthy_after: u32,
    /// The share of time the group may run short of full capacity.
    #[serde(default)]
    pub shortfall_budget: f64,
    /// The most the plan spends per instance target tracking would run, as in force (0 from a
    /// coordinator without one).
    #[serde(default)]
    pub spend_ceiling: f64,
    /// `predictive` or `reactive`: what scales in.
    #[serde(default = "predictive")]
    pub scale_in: headroom_model::ScaleIn,
    /// The instance warm-up planned with (absent from a coordinator that predates it).
    #[serde(default)]
    pub warmup: Option<WarmupView>,
    /// What the group's policy learned: its price, spend against target tracking's, unit of
    /// demand (absent from a coordinator that predates it).
    #[serde(default)]
    pub learned: Option<headroom_model::Learned>,
}

/// The instance warm-up a group plans with, and what it rests on.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct WarmupView {
    /// `configured` or `measured`.
    pub mode: crate::warmup::InstanceWarmup,
    /// Seconds planned with now.
    pub in_force_s: f64,
    /// Measured launches it rests on (0: the configured value is in force).
    pub launches: usize,
    /// Measured launches held (the last 20).
    pub measured: usize,
    /// Instances asked for that have not sent a healthy signal yet.
    pub warming: usize,
}

/// A live host and its latest applied signal.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct HostView {
    /// Host id.
    pub host: String,
    /// Its store's epoch.
    pub epoch: String,
    /// Seq of its latest signal.
    pub seq: u64,
    /// Seconds since its latest signal was received.
    pub age_s: f64,
    /// When that signal was decided, unix seconds (the host's clock).
    pub decided_at: f64,
    /// Its demand metric.
    pub metric: String,
    /// Its current demand.
    pub demand_now: f64,
    /// Its capacity in the demand unit.
    pub capacity: f64,
    /// Its median forecast at its lead time.
    pub p50_at_lead: Option<f64>,
    /// Its 90th percentile forecast at its lead time.
    pub p90_at_lead: Option<f64>,
    /// Whether its demand is censored (full CPU, overflowing accept queue).
    pub saturated: bool,
    /// The host's own recommendation and reason (explains, is not summed).
    pub action: String,
    /// Why.
    pub reason: String,
    /// `healthy`, `degraded` or `unhealthy`.
    pub health: String,
    /// Why it is not healthy.
    pub health_reasons: Vec<String>,
    /// Consecutive unhealthy signals.
    pub unhealthy_streak: u32,
    /// Its EC2 instance id, when it reported one.
    pub instance_id: Option<String>,
    /// Work in progress the host reported (signal version 2).
    #[serde(default)]
    pub busy: Option<f64>,
    /// Seconds since signals of two agents last took turns under this host id (a cloned
    /// machine id): their demand is counted as one host's.
    #[serde(default)]
    pub shared_id_age_s: Option<f64>,
}

/// The forecast of a group's summed demand at the lead time.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ForecastView {
    /// Seconds ahead.
    pub lead_s: f64,
    /// Median of the summed demand.
    pub p50: f64,
    /// 90th percentile of the summed demand.
    pub p90: f64,
    /// Leading model.
    pub model: String,
    /// Why the forecaster distrusts itself, if it does.
    pub fallback: Option<String>,
}

/// One decision of a group.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Evaluation {
    /// Unix seconds.
    pub at: f64,
    /// Hosts that signalled within the host TTL.
    pub live_hosts: usize,
    /// Summed current demand of the live hosts.
    pub demand: f64,
    /// Whether its demand is censored (full CPU, overflowing accept queue).
    pub saturated: bool,
    /// Demand one instance serves (configured, else the hosts' mean).
    pub capacity_per_instance: f64,
    /// The forecast at the lead, once there is one.
    pub forecast: Option<ForecastView>,
    /// What the policy decided.
    pub policy_desired: u32,
    /// What the coordinator asks the actuator for (after scale-in guard and clamps).
    pub desired: u32,
    /// Capacity now.
    pub actual: u32,
    /// Where `actual` comes from: `actuator`, `last_set` or `hosts`.
    pub actual_source: String,
    /// Why.
    pub reason: String,
}

/// `scale_in` of an answer from a coordinator that predates it.
fn predictive() -> headroom_model::ScaleIn {
    headroom_model::ScaleIn::Predictive
}

/// The share of the count an older coordinator scaled in by at most.
fn half() -> f64 {
    0.5
}
