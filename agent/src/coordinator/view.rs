//! What `GET /v1/groups` and `GET /v1/groups/{name}` return (and `headroom groups` reads).

use serde::{Deserialize, Serialize};

use super::state::{ActionRecord, SignalCounts};

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
}

/// Policy settings of a group.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct PolicyView {
    /// Configured capacity per instance, if any (else the hosts' mean is used).
    pub capacity_per_instance: Option<f64>,
    pub target_utilization: f64,
    pub min: u32,
    pub max: u32,
    pub warmup_s: f64,
    pub decision_interval_s: f64,
    pub scale_in_stabilization_s: f64,
    pub max_scale_in_step: u32,
    pub host_ttl_s: f64,
    pub signal_ttl_s: f64,
    /// 0 = replacement off.
    pub replace_unhealthy_after: u32,
}

/// A live host and its latest applied signal.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct HostView {
    pub host: String,
    pub epoch: String,
    pub seq: u64,
    /// Seconds since its latest signal was received.
    pub age_s: f64,
    pub decided_at: f64,
    pub metric: String,
    pub demand_now: f64,
    pub capacity: f64,
    pub p50_at_lead: Option<f64>,
    pub p90_at_lead: Option<f64>,
    pub saturated: bool,
    /// The host's own recommendation and reason (explains, is not summed).
    pub action: String,
    pub reason: String,
    pub health: String,
    pub health_reasons: Vec<String>,
    /// Consecutive unhealthy signals.
    pub unhealthy_streak: u32,
    pub instance_id: Option<String>,
}

/// The forecast of a group's summed demand at the lead time.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ForecastView {
    pub lead_s: f64,
    pub p50: f64,
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
    pub live_hosts: usize,
    /// Summed current demand of the live hosts.
    pub demand: f64,
    pub saturated: bool,
    pub capacity_per_instance: f64,
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
