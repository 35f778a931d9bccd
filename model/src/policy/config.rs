//! What configures a policy, and the rules every reader of a configuration checks it by: the
//! agent's and the coordinator's config files and `simulate`'s flags all report a bad value
//! with the same `*_problem` reason, so the three cannot drift apart.

use serde::{Deserialize, Serialize};

use super::newsvendor::price_of_budget;
use super::reactive::Reactive;
use crate::schedule::Schedule;

/// Predictive, purely reactive, or forecast-only (decides but recommends no change).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum PolicyMode {
    /// Plans from the forecast.
    Predictive,
    /// Target tracking on current demand only.
    Reactive,
    /// Computes the predictive plan and reports it, but recommends keeping the current count.
    ForecastOnly,
}

/// What decides a scale-in (`scale_in = "predictive" | "reactive"` in a configuration).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ScaleIn {
    /// The plan, after the stabilisation window.
    Predictive,
    /// Target tracking alone: the plan only ever adds capacity.
    Reactive,
}

/// Capacity, budget and limits for one scaled group (or one host's share of it).
#[derive(Debug, Clone, PartialEq)]
pub struct PolicyConfig {
    /// Demand one instance serves at full capacity (same unit as the demand signal).
    pub capacity_per_instance: f64,
    /// Target tracking's utilisation, 0 < u <= 1 (fallback, `scale_in = reactive`, shadow).
    pub target_utilization: f64,
    /// Instance warm-up, seconds.
    pub warmup_s: f64,
    /// Decision interval, seconds; lead = warmup + interval.
    pub decision_interval_s: f64,
    /// Fewest instances.
    pub min_instances: u32,
    /// Most instances.
    pub max_instances: u32,
    /// Largest scale-in step, instances per decision (or `max_scale_in_fraction` of the
    /// current count, whichever is larger).
    pub max_scale_in_step: u32,
    /// Largest scale-in step as a share of the current count per decision, 0 to 1 (0: only
    /// `max_scale_in_step`). Half by default: measured with sim_eval, a step of one instance a
    /// decision costs about 1.45 times target tracking where half costs 0.9 (scale-in is what
    /// a plan saves on).
    pub max_scale_in_fraction: f64,
    /// Scale in only after demand allowed it for this long.
    pub scale_in_stabilization_s: f64,
    /// Predictive, reactive or forecast-only.
    pub mode: PolicyMode,
    /// Fall back to target tracking when the forecast's recent error exceeds the naive
    /// forecast's by this factor.
    pub max_error_ratio: f64,
    /// The share of time the group may run short of full capacity, 0 < b < 0.5 (it prices a
    /// short sample, see `newsvendor.rs`).
    pub shortfall_budget: f64,
    /// What decides a scale-in.
    pub scale_in: ScaleIn,
    /// The most the plan spends, over the last hours, per instance target tracking would run;
    /// past it, target tracking decides (`price.rs`). 0: derived from the budget
    /// ([`PolicyConfig::spend_ceiling_in_force`]).
    pub spend_ceiling: f64,
    /// Scheduled events: each raises the plan from its start − lead to its end.
    pub schedule: Schedule,
}

/// The default shortfall budget: see the README's "Choosing the shortfall budget" for the
/// measurements it was chosen by.
pub const DEFAULT_SHORTFALL_BUDGET: f64 = 0.05;

/// The default spend ceiling: derived from the budget.
pub const DEFAULT_SPEND_CEILING: f64 = 0.0;

/// The spend ceiling derived from the default budget, chosen with it by measurement (same
/// README section); other budgets scale it by the price they put on a short sample.
const SPEND_CEILING_AT_DEFAULT_BUDGET: f64 = 1.4;

/// Why `u` is no target utilisation, if it is not (every reader of one uses this rule).
pub fn target_utilization_problem(u: f64) -> Option<String> {
    (!(u > 0.0 && u <= 1.0)).then(|| format!("{u} is outside (0, 1]"))
}

/// Why `budget` is no shortfall budget, if it is not (every reader of one uses this rule).
pub fn shortfall_budget_problem(budget: f64) -> Option<String> {
    (!(budget > 0.0 && budget < 0.5)).then(|| format!("{budget} is outside (0, 0.5)"))
}

/// Why `c` is no capacity per instance, if it is not.
pub fn capacity_problem(c: f64) -> Option<String> {
    (!(c.is_finite() && c > 0.0)).then(|| format!("{c} must be a positive number"))
}

/// Why `min` and `max` are no bounds on the instance count, if they are not.
pub fn bounds_problem(min: u32, max: u32) -> Option<String> {
    (max == 0 || min > max).then(|| format!("need 0 < max and min <= max (min {min}, max {max})"))
}

/// The longest warm-up planned for: the forecaster looks no further ahead.
pub const MAX_WARMUP: std::time::Duration = std::time::Duration::from_secs(7200);

/// The longest decision interval: a plan is for warm-up plus one interval, and demand is not
/// watched between decisions for longer than this.
pub const MAX_DECISION_INTERVAL: std::time::Duration = std::time::Duration::from_secs(600);

/// Why `warmup` is no instance warm-up the policy can plan for, if it is not (said after the
/// value, formatted by the caller).
pub fn warmup_problem(warmup: std::time::Duration) -> Option<&'static str> {
    (warmup > MAX_WARMUP).then_some("is longer than 2h, past what the forecaster looks ahead")
}

/// Why `interval` is no decision interval, if it is too long (said after the value). The
/// shortest is each binary's own, tied to how it samples.
pub fn decision_interval_problem(interval: std::time::Duration) -> Option<&'static str> {
    (interval > MAX_DECISION_INTERVAL).then_some("is longer than 10m")
}

/// Why `step` is no largest scale-in step, if it is not.
pub fn scale_in_step_problem(step: u32) -> Option<String> {
    (step == 0).then(|| "must be at least 1".to_string())
}

/// Why `fraction` is no largest scale-in share of the count, if it is not.
pub fn scale_in_fraction_problem(fraction: f64) -> Option<String> {
    (!(0.0..=1.0).contains(&fraction)).then(|| {
        format!("{fraction} is outside 0..=1 (0: only max_scale_in_step instances a decision)")
    })
}

/// Why `ceiling` is no spend ceiling, if it is not: at least 1 (below, following target
/// tracking would itself break it), or 0 to derive it from the budget.
pub fn spend_ceiling_problem(ceiling: f64) -> Option<String> {
    (!(ceiling == 0.0 || (ceiling >= 1.0 && ceiling.is_finite()))).then(|| {
        format!(
            "{ceiling} is neither 0 (derived from the shortfall budget) nor at least 1 (times \
             target tracking's spend)"
        )
    })
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
            max_scale_in_fraction: 0.5,
            scale_in_stabilization_s: 300.0,
            mode: PolicyMode::Predictive,
            max_error_ratio: 1.25,
            shortfall_budget: DEFAULT_SHORTFALL_BUDGET,
            scale_in: ScaleIn::Predictive,
            spend_ceiling: DEFAULT_SPEND_CEILING,
            schedule: Schedule::default(),
        }
    }
}

impl PolicyConfig {
    /// The largest scale-in from `current` in one decision: `max_scale_in_step`, or
    /// `max_scale_in_fraction` of `current` when that is more, and at least 1.
    pub fn scale_in_step(&self, current: u32) -> u32 {
        let by_fraction = (f64::from(current) * self.max_scale_in_fraction.clamp(0.0, 1.0)).ceil();
        // A fraction of a u32 fits in one.
        self.max_scale_in_step.max(by_fraction as u32).max(1)
    }

    /// Seconds ahead a decision must plan for.
    pub fn lead_s(&self) -> f64 {
        self.warmup_s + self.decision_interval_s
    }

    /// The spend ceiling that applies: the configured one, or for 0 the one derived from the
    /// budget, 1.4 at the default and in proportion to the price a budget puts on a short
    /// sample (a budget that says a shortfall is worth more lets the plan spend more to avoid
    /// one: 3.0 at 2%, 5.4 at 1%), never below 1.
    pub fn spend_ceiling_in_force(&self) -> f64 {
        if self.spend_ceiling >= 1.0 {
            return self.spend_ceiling;
        }
        let scale =
            price_of_budget(self.shortfall_budget) / price_of_budget(DEFAULT_SHORTFALL_BUDGET);
        (SPEND_CEILING_AT_DEFAULT_BUDGET * scale).max(1.0)
    }

    /// Target tracking with this configuration's capacity, utilisation and bounds.
    pub fn target_tracking(&self) -> Reactive {
        Reactive::new(
            self.capacity_per_instance,
            self.target_utilization,
            self.min_instances,
            self.max_instances,
        )
    }
}
