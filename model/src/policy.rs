//! The scaling policy shared by the agent, the coordinator and `simulate`.

use serde::Serialize;

use crate::forecast::Forecast;

/// Predictive, purely reactive, or forecast-only (decides but recommends no change).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum PolicyMode {
    Predictive,
    Reactive,
    ForecastOnly,
}

/// Capacity, target and limits for one scaled group (or one host's share of it).
#[derive(Debug, Clone, PartialEq)]
pub struct PolicyConfig {
    /// Demand one instance serves at full capacity (same unit as the demand signal).
    pub capacity_per_instance: f64,
    /// Target utilisation of expected demand, 0 < u <= 1.
    pub target_utilization: f64,
    /// Instance warm-up, seconds.
    pub warmup_s: f64,
    /// Decision interval, seconds; lead = warmup + interval.
    pub decision_interval_s: f64,
    pub min_instances: u32,
    pub max_instances: u32,
    /// Largest scale-in step.
    pub max_scale_in_step: u32,
    /// Scale in only after demand allowed it for this long.
    pub scale_in_stabilization_s: f64,
    pub mode: PolicyMode,
}

impl Default for PolicyConfig {
    fn default() -> Self {
        PolicyConfig {
            capacity_per_instance: 1.0,
            target_utilization: 0.7,
            warmup_s: 300.0,
            decision_interval_s: 10.0,
            min_instances: 1,
            max_instances: 100,
            max_scale_in_step: 1,
            scale_in_stabilization_s: 300.0,
            mode: PolicyMode::Predictive,
        }
    }
}

impl PolicyConfig {
    /// Seconds ahead a decision must plan for.
    pub fn lead_s(&self) -> f64 {
        self.warmup_s + self.decision_interval_s
    }
}

/// What the policy sees at decision time.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Observation {
    /// Unix seconds.
    pub t: f64,
    /// Current demand.
    pub demand: f64,
    /// Demand is censored (CPU at its limit, accept queue overflowing).
    pub saturated: bool,
    /// Instances in service now.
    pub current_instances: u32,
}

/// Direction of a decision.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Action {
    ScaleOut,
    Hold,
    ScaleIn,
}

/// A scaling decision with its reason and inputs.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Decision {
    pub t: f64,
    pub action: Action,
    pub current: u32,
    pub desired: u32,
    pub lead_s: f64,
    pub demand_now: f64,
    pub p50_at_lead: Option<f64>,
    pub p90_at_lead: Option<f64>,
    /// Reactive fallback was used.
    pub fallback: bool,
    pub reason: String,
}

/// A policy with its stabilisation state.
#[derive(Debug, Clone)]
pub struct Policy {
    config: PolicyConfig,
}

impl Policy {
    /// A policy with fresh state.
    pub fn new(config: PolicyConfig) -> Self {
        Policy { config }
    }

    /// The configuration in force.
    pub fn config(&self) -> &PolicyConfig {
        &self.config
    }

    /// Decides the desired instance count at `obs.t`.
    pub fn decide(&mut self, obs: &Observation, forecast: Option<&Forecast>) -> Decision {
        let c = &self.config;
        let per = (c.capacity_per_instance * c.target_utilization).max(f64::MIN_POSITIVE);
        let need = (obs.demand / per).ceil() as u32;
        let desired = need.clamp(c.min_instances, c.max_instances.max(c.min_instances));
        let action = match desired.cmp(&obs.current_instances) {
            std::cmp::Ordering::Greater => Action::ScaleOut,
            std::cmp::Ordering::Less => Action::ScaleIn,
            std::cmp::Ordering::Equal => Action::Hold,
        };
        let at = forecast.and_then(|f| f.at(c.lead_s()));
        Decision {
            t: obs.t,
            action,
            current: obs.current_instances,
            desired,
            lead_s: c.lead_s(),
            demand_now: obs.demand,
            p50_at_lead: at.map(|p| p.p50),
            p90_at_lead: at.map(|p| p.p90),
            fallback: true,
            reason: "skeleton policy: reactive on current demand".into(),
        }
    }
}
