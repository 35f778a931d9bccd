//! The scaling policy shared by the agent, the coordinator and `simulate`.
//!
//! Rule (chosen by measurement with shared/eval/sim_eval.py; see the README's "Choosing the
//! shortfall budget"):
//! - plan at full capacity for every horizon up to the lead (warm-up + decision interval), and
//!   spend capacity where it pays: a short sample is priced from the operator's
//!   `shortfall_budget` and each horizon's forecast is covered as far as one more instance still
//!   buys its price's worth of certainty (`newsvendor.rs`); the count covers the largest of those;
//! - demand that comes in whole counts is covered in whole counts: what is worth covering is
//!   rounded down to the count below it, since capacity for a fraction of a count serves
//!   nothing more (`lattice.rs`);
//! - horizons before the warm-up, and demand now, are served by instances already asked for: a
//!   higher count now would arrive after them, so they only hold a scale-in back (a floor on
//!   current demand at full capacity), they never cause a scale-out;
//! - saturation means demand is censored (at least what is served now): scale out by a step,
//!   one per warm-up: the step's instances cannot lift the censoring before they serve, so a
//!   host still saturated meanwhile is no reason for another (each decision stepping again
//!   took a group to its maximum while the first step was warming);
//! - scale out at once; scale in only to the largest count planned during the stabilisation
//!   window, by at most `max_scale_in_step` instances per decision (or `max_scale_in_fraction`
//!   of the count, half by default, when more); with `scale_in = reactive` the plan only ever
//!   adds to what target tracking keeps ([`reactive`]), whose own hold is then the only
//!   stabilisation, as AWS's predictive scaling leaves scale-in to its dynamic policy;
//! - while the forecast is in cold start or its recent error is worse than the naive
//!   forecast's by `max_error_ratio`, fall back to target tracking at `target_utilization` and
//!   say so;
//! - while the plan's recent spend runs above `spend_ceiling` times what target tracking would
//!   spend on the same demand, target tracking decides (`price.rs` says why), and says so.
//!
//! `target_utilization` has one meaning: the utilisation target tracking runs at, in that
//! fallback, in `scale_in = reactive` and in the ledger's shadow policy.

mod config;
mod lattice;
mod memory;
mod newsvendor;
mod price;
pub mod reactive;

pub use config::{
    DEFAULT_SHORTFALL_BUDGET, DEFAULT_SPEND_CEILING, MAX_DECISION_INTERVAL, MAX_WARMUP,
    PolicyConfig, PolicyMode, ScaleIn, bounds_problem, capacity_problem, decision_interval_problem,
    scale_in_fraction_problem, scale_in_step_problem, shortfall_budget_problem,
    spend_ceiling_problem, target_utilization_problem, warmup_problem,
};

pub use memory::{Learned, MEMORY_LAYOUT, MemoryError, PolicyMemory};
use serde::Serialize;

use crate::forecast::Forecast;
use crate::schedule::Raise;
use crate::window::{Largest, LeastInForce};
use lattice::Lattice;
use newsvendor::{price_of_budget, worth_covering};
use price::Price;
use reactive::Reactive;

/// Appends the horizons the policy plans over to `out`: every step of a series of cadence
/// `step_s` up to the lead, the last one the lead itself (just the lead before the cadence is
/// known). The live agent and `simulate` both forecast these.
///
/// At most [`MAX_LEAD_HORIZONS`]: a longer lead is planned over that many horizons evenly
/// spaced up to it, so a huge lead (a replay's argument, say) cannot exhaust memory.
pub fn lead_horizons(step_s: f64, lead_s: f64, out: &mut Vec<f64>) {
    if step_s <= 0.0 {
        out.push(lead_s);
        return;
    }
    let steps = (lead_s / step_s).ceil().max(1.0) as usize;
    if steps > MAX_LEAD_HORIZONS {
        let step = lead_s / MAX_LEAD_HORIZONS as f64;
        out.extend((1..=MAX_LEAD_HORIZONS).map(|k| (k as f64 * step).min(lead_s)));
        return;
    }
    out.extend((1..=steps).map(|k| (k as f64 * step_s).min(lead_s)));
}

/// Most horizons [`lead_horizons`] gives: as many steps as the forecaster looks ahead.
pub const MAX_LEAD_HORIZONS: usize = crate::forecast::MAX_STEPS;

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
    /// Add instances.
    ScaleOut,
    /// Keep the count.
    Hold,
    /// Remove instances.
    ScaleIn,
}

/// A scaling decision with its reason and inputs.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Decision {
    /// Unix seconds of the observation decided on.
    pub t: f64,
    /// Direction relative to `current`.
    pub action: Action,
    /// Instances in service when deciding.
    pub current: u32,
    /// Instances recommended.
    pub desired: u32,
    /// Seconds ahead the decision planned for.
    pub lead_s: f64,
    /// Demand observed at `t`.
    pub demand_now: f64,
    /// Forecast P50 at the lead (largest up to the lead).
    pub p50_at_lead: Option<f64>,
    /// Forecast P90 at the lead (largest up to the lead).
    pub p90_at_lead: Option<f64>,
    /// The forecast at the lead itself, (P50, P90), to score the forecast against the demand
    /// that comes (the ledger).
    pub at_lead: Option<(f64, f64)>,
    /// Reactive fallback was used.
    pub fallback: bool,
    /// Why, in words, with the numbers that decided it.
    pub reason: String,
    /// What the rule computed before forecast-only mode kept the current count.
    pub planned: u32,
    /// The scheduled entry that raised the plan, by name, if one did.
    pub schedule: Option<String>,
}

/// A policy with its stabilisation state.
#[derive(Debug, Clone)]
pub struct Policy {
    config: PolicyConfig,
    /// Recent recommendations, for the largest of the stabilisation window.
    window: Largest,
    /// Target tracking, for the fallback's and `scale_in = reactive`'s count.
    tracking: Reactive,
    /// The plan's counts over the last warm-up: capacity asked for at t serves from
    /// t + warm-up, so what serves demand now is the least in force since then.
    asked: LeastInForce,
    /// What a short sample is priced at now, over the budget's own price.
    price: Price,
    /// Whether demand comes in whole units: covering a fraction of one buys nothing.
    lattice: Lattice,
    /// The last scale-out step saturation asked for: when, and the count it asked.
    stepped: Option<(f64, u32)>,
}

/// The plan's counts from a forecast.
struct Plan {
    /// Worth asking for now: the largest covered demand from the warm-up to the lead.
    ask: u32,
    /// Must stay in service until new instances are ready: demand now and the horizons before
    /// the warm-up.
    keep: u32,
    /// The covered demand at those horizons, for the reason.
    covered: f64,
    /// The largest P50 and P90 up to the lead.
    p50: f64,
    p90: f64,
}

impl Policy {
    /// A policy with fresh state.
    pub fn new(config: PolicyConfig) -> Self {
        let tracking = config.target_tracking();
        Policy {
            config,
            window: Largest::default(),
            tracking,
            asked: LeastInForce::default(),
            price: Price::default(),
            lattice: Lattice::default(),
            stepped: None,
        }
    }

    /// What this policy learned, to restore after a restart ([`memory`] says what it holds);
    /// taken after the decision at `at`.
    pub fn memory(&self, at: f64) -> PolicyMemory {
        PolicyMemory {
            layout: MEMORY_LAYOUT,
            at,
            window: self.window.clone(),
            asked: self.asked.clone(),
            tracking: self.tracking.clone(),
            price: self.price.clone(),
            lattice: self.lattice,
            stepped: self.stepped,
        }
    }

    /// What it learned, as an operator reads it.
    pub fn learned(&self) -> Learned {
        Learned {
            price_factor: self.price.factor(),
            spend_ratio: self.price.spend_ratio(),
            spend_ceiling: self.config.spend_ceiling_in_force(),
            demand_unit: self.lattice.unit(),
        }
    }

    /// Takes back what [`Policy::memory`] gave, at `now` (when the policy decides again). The
    /// configuration stays this policy's own: a memory carries no settings.
    pub fn restore(&mut self, memory: PolicyMemory, now: f64) -> Result<(), MemoryError> {
        if memory.layout != MEMORY_LAYOUT {
            return Err(MemoryError::Layout {
                found: memory.layout,
                known: MEMORY_LAYOUT,
            });
        }
        if memory.at.is_nan() || memory.at > now {
            return Err(MemoryError::FromTheFuture { at: memory.at, now });
        }
        self.window = memory.window;
        self.asked = memory.asked;
        if self.tracking.same_rule(&memory.tracking) {
            self.tracking = memory.tracking;
        }
        self.price = memory.price;
        self.price.resume(now);
        self.lattice = memory.lattice;
        self.stepped = memory.stepped;
        Ok(())
    }

    /// Updates the surcharge with whether `demand` at `t` found the capacity the plan had made
    /// ready (the least it asked for over the last warm-up).
    fn account(&mut self, t: f64, demand: f64) {
        let Some(ready) = self.asked.since(t - self.config.warmup_s) else {
            return;
        };
        let cap = self.config.capacity_per_instance.max(f64::MIN_POSITIVE);
        self.price
            .judge(demand > f64::from(ready) * cap, &self.config);
    }

    /// Records the plan's count at `t`: it serves from `t` + warm-up.
    fn ask(&mut self, t: f64, count: u32) {
        self.asked.push(t, count);
    }

    /// The configuration in force.
    pub fn config(&self) -> &PolicyConfig {
        &self.config
    }

    /// Replaces the configuration (a new capacity per instance, a reload), keeping the
    /// stabilisation window: a change of settings must not undo a scale-in held back.
    pub fn reconfigure(&mut self, config: PolicyConfig) {
        // Target tracking keeps its hold window under a new rule too (a capacity per instance
        // measured again is no reason to forget the last five minutes of its needs: with
        // `scale_in = reactive` that would scale in at once).
        self.tracking.follow_rule(&config.target_tracking());
        self.config = config;
    }

    /// Records that `count` instances were in force at `t` (a start, a takeover): no scale-in
    /// below it within the stabilisation window after `t`, nor, with `scale_in = reactive`,
    /// within target tracking's hold.
    pub fn hold(&mut self, t: f64, count: u32) {
        self.remember(t, count);
        // Target tracking's hold is the stabilisation there; elsewhere its window is only the
        // shadow's rule, left as target tracking would have it.
        if self.config.scale_in == ScaleIn::Reactive {
            self.tracking.hold(t, count);
        }
    }

    /// Adds `count` at `t` to the stabilisation window and drops what fell out of it; returns
    /// the window's largest count.
    fn remember(&mut self, t: f64, count: u32) -> u32 {
        let since = t - self.config.scale_in_stabilization_s;
        self.window.push_since(t, count, since)
    }

    /// Why a short sample is priced away from the budget's own price, if it is.
    fn price_note(&self) -> Note {
        let factor = self.price.factor();
        if factor > 1.01 {
            Note::Priced(factor)
        } else {
            Note::Nothing
        }
    }

    /// That demand is covered in whole counts, if it is.
    fn count_note(&self) -> Note {
        self.lattice.unit().map_or(Note::Nothing, Note::Counted)
    }

    /// The plan's counts from `forecast`'s points up to the lead.
    fn plan(&self, forecast: &Forecast, demand: f64) -> Option<Plan> {
        let c = &self.config;
        let cap = c.capacity_per_instance.max(f64::MIN_POSITIVE);
        let lead = c.lead_s();
        let price = price_of_budget(c.shortfall_budget) * self.price.factor();
        let mut pts: Vec<&crate::forecast::ForecastPoint> = forecast
            .points
            .iter()
            .filter(|p| p.horizon_s <= lead + 1e-9)
            .collect();
        if pts.is_empty() {
            pts.extend(forecast.at(lead));
        }
        // What is asked now serves from the warm-up until what the next decision asks is
        // ready, one interval later: horizons in [warm-up, lead). The lead itself is the next
        // decision's to cover, unless no horizon falls before it.
        let before_lead = |h: f64| h >= c.warmup_s - 1e-9 && h < lead - 1e-9;
        let next_covers_lead = pts.iter().any(|p| before_lead(p.horizon_s));
        let (mut p50, mut p90) = (f64::NEG_INFINITY, f64::NEG_INFINITY);
        // With no warm-up, what is asked now serves now: demand now is asked for too.
        let now_served = c.warmup_s <= 1e-9;
        let (mut ask, mut keep) = (
            if now_served {
                demand
            } else {
                f64::NEG_INFINITY
            },
            demand,
        );
        for p in pts {
            p50 = p50.max(p.p50);
            p90 = p90.max(p.p90);
            if next_covers_lead && p.horizon_s >= lead - 1e-9 {
                continue;
            }
            let q = self.lattice.floor(worth_covering(p, cap, price));
            if p.horizon_s < c.warmup_s - 1e-9 {
                keep = keep.max(q);
            } else {
                ask = ask.max(q);
            }
        }
        // A lead shorter than any horizon (no warm-up): the nearest one is what is asked.
        if !ask.is_finite() {
            ask = keep;
        }
        (ask.is_finite() && p50.is_finite()).then(|| Plan {
            ask: count(ask / cap),
            keep: count(keep / cap),
            covered: ask,
            p50,
            p90,
        })
    }

    /// Decides the desired instance count at `obs.t`.
    pub fn decide(&mut self, obs: &Observation, forecast: Option<&Forecast>) -> Decision {
        let demand = if obs.demand.is_finite() {
            obs.demand.max(0.0)
        } else {
            0.0
        };
        let tracked = self.tracking.decide(obs.t, demand);
        self.account(obs.t, demand);
        self.lattice.observe(demand);
        let c = &self.config;
        let u = c.target_utilization.clamp(0.01, 1.0);
        let lead = c.lead_s();
        let current = obs.current_instances;
        let mut why: Vec<String> = Vec::new();
        let distrust = forecast.and_then(|f| {
            if let Some(why) = &f.fallback {
                return Some(format!("forecast in fallback ({why})"));
            }
            match f.error_ratio {
                Some(r) if r > c.max_error_ratio => Some(format!(
                    "forecast error {r:.2}x the naive forecast's (limit {:.2})",
                    c.max_error_ratio
                )),
                _ => None,
            }
        });
        let plan = forecast.and_then(|f| self.plan(f, demand));
        let c = &self.config;
        let (mut raw, fallback, basis) = match (c.mode, &plan, &distrust) {
            (PolicyMode::Reactive, ..) => {
                why.push(format!(
                    "reactive: demand {demand:.3} at {:.0}% of {:.3} per instance needs {}",
                    u * 100.0,
                    c.capacity_per_instance,
                    self.tracking.need(demand)
                ));
                (self.tracking.need(demand), false, Basis::Tracking)
            }
            (_, Some(_), None)
                if self
                    .price
                    .over_ceiling(self.config.spend_ceiling_in_force()) =>
            {
                let need = self.tracking.need(demand);
                why.push(format!(
                    "the plan spent {:.2}x what target tracking would over the last hours \
                     (ceiling {:.2}x): following target tracking, demand {demand:.3} \
                     at {:.0}% needs {need}",
                    self.price.spend_ratio(),
                    c.spend_ceiling_in_force(),
                    u * 100.0
                ));
                (need, false, Basis::Tracking)
            }
            (_, Some(p), None) => {
                let planned = p.ask.max(p.keep.min(current));
                why.push(format!(
                    "planned for {lead:.0} s ahead at full capacity: {:.3} worth covering{} \
                     needs {} (P50 {:.3}, P90 {:.3}; shortfall budget {:.1}%{}); {} must stay \
                     until new instances are ready",
                    p.covered,
                    self.count_note(),
                    p.ask,
                    p.p50,
                    p.p90,
                    c.shortfall_budget * 100.0,
                    self.price_note(),
                    p.keep
                ));
                (planned, false, Basis::Plan(p.covered))
            }
            _ => {
                let need = self.tracking.need(demand);
                why.push(format!(
                    "reactive fallback ({}): demand {demand:.3} at {:.0}% needs {need}",
                    distrust.as_deref().unwrap_or("no forecast"),
                    u * 100.0
                ));
                (need, true, Basis::Tracking)
            }
        };
        if obs.saturated {
            let warming = self
                .stepped
                // A clock stepped back is no warm-up still running.
                .filter(|&(at, _)| (0.0..self.config.warmup_s).contains(&(obs.t - at)));
            let bump = match warming {
                // The last step still warms: what it asked for, not another step on top.
                Some((_, asked)) => asked,
                None => current.saturating_add((current / 10).max(1)),
            };
            if bump > raw {
                match warming {
                    Some(_) => why.push(format!(
                        "saturated: demand is censored; the step to {bump} is still warming"
                    )),
                    None => {
                        why.push(format!(
                            "saturated: demand is censored, scaling out to {bump}"
                        ));
                        self.stepped = Some((obs.t, bump));
                    }
                }
                raw = bump;
            }
        }
        let scheduled = self.scheduled(obs.t, demand, basis, raw);
        if let Some((n, why_scheduled, _)) = &scheduled {
            why.push(why_scheduled.clone());
            raw = *n;
        }
        let c = &self.config;
        let hi = c.max_instances.max(c.min_instances);
        let raw = raw.clamp(c.min_instances, hi);

        // Stabilisation: the largest recommendation of the window.
        let held = self.remember(obs.t, raw);
        let c = &self.config;
        let step = c.scale_in_step(current);
        let desired = if c.scale_in == ScaleIn::Reactive {
            // The plan adds to target tracking's count, whose own hold is the only
            // stabilisation: what the plan asked for earlier is no reason to keep more.
            // Target tracking's count is within the same bounds (`Reactive::decide`).
            let floor = raw.max(tracked);
            if raw < tracked {
                why.push(format!(
                    "target tracking keeps {tracked} (scale_in = reactive: the plan only adds)"
                ));
            }
            if floor >= current {
                floor
            } else {
                limited(floor, current, step, &mut why)
            }
        } else if raw >= current {
            raw
        } else if held >= current {
            why.push(format!(
                "scale-in to {raw} held: {held} was needed within the last {:.0} s",
                c.scale_in_stabilization_s
            ));
            current
        } else {
            limited(held, current, step, &mut why)
        };
        let desired = desired.clamp(c.min_instances, hi);
        if desired == c.max_instances && raw >= hi {
            why.push(format!("capped at max {hi}"));
        }
        let planned = desired;
        self.ask(obs.t, planned);
        let interval_s = self.config.decision_interval_s;
        self.price.spent(obs.t, planned, tracked, interval_s);
        let c = &self.config;
        let desired = if c.mode == PolicyMode::ForecastOnly {
            why.push(format!(
                "forecast-only: would set {planned}, keeping {current}"
            ));
            current
        } else {
            desired
        };
        let action = match desired.cmp(&current) {
            std::cmp::Ordering::Greater => Action::ScaleOut,
            std::cmp::Ordering::Less => Action::ScaleIn,
            std::cmp::Ordering::Equal => Action::Hold,
        };
        Decision {
            t: obs.t,
            action,
            current,
            desired,
            lead_s: lead,
            demand_now: demand,
            at_lead: forecast.and_then(|f| f.at(lead)).map(|p| (p.p50, p.p90)),
            p50_at_lead: plan.as_ref().map(|p| p.p50),
            p90_at_lead: plan.as_ref().map(|p| p.p90),
            fallback,
            reason: why.join("; "),
            planned,
            schedule: scheduled.map(|(_, _, name)| name),
        }
    }

    /// The largest count an entry of the schedule raises the plan to at `t`, above `raw`:
    /// (count, reason, entry name). A demand factor scales what the count was computed from
    /// (the plan's covered demand, or demand for target tracking).
    fn scheduled(
        &self,
        t: f64,
        demand: f64,
        basis: Basis,
        raw: u32,
    ) -> Option<(u32, String, String)> {
        let c = &self.config;
        if c.schedule.is_empty() {
            return None;
        }
        let cap = c.capacity_per_instance.max(f64::MIN_POSITIVE);
        let mut best: Option<(u32, &crate::schedule::Entry, crate::schedule::Occurrence)> = None;
        for (entry, occurrence) in c.schedule.raising_at(t, c.lead_s()) {
            let n = match entry.raise {
                Raise::MinInstances(n) => n,
                Raise::DemandFactor(f) => match basis {
                    Basis::Plan(covered) => count(covered * f / cap),
                    Basis::Tracking => self.tracking.need(demand * f),
                },
            };
            if n > raw && best.is_none_or(|(b, ..)| n > b) {
                best = Some((n, entry, occurrence));
            }
        }
        best.map(|(n, entry, o)| {
            (
                n,
                format!(
                    "scheduled: {} from {}: {} raises the plan to {n}",
                    entry.describe(),
                    crate::schedule::rfc3339(o.start),
                    entry.raise
                ),
                entry.name.clone(),
            )
        })
    }
}

/// A remark in a plan's reason, written straight into it (a decision is made every few
/// seconds; the reason need not allocate for what it may leave out).
enum Note {
    /// Nothing to remark.
    Nothing,
    /// The price's factor over the budget's own.
    Priced(f64),
    /// The unit demand is counted in.
    Counted(u64),
}

impl std::fmt::Display for Note {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Note::Priced(factor) => write!(f, ", short more often than it: priced {factor:.1}x"),
            Note::Counted(unit) => write!(f, " in whole counts of {unit}"),
            Note::Nothing => Ok(()),
        }
    }
}

/// What a decision's count was computed from, for a scheduled demand factor to scale.
#[derive(Debug, Clone, Copy)]
enum Basis {
    /// Target tracking on demand now.
    Tracking,
    /// The plan: this much demand was worth covering.
    Plan(f64),
}

/// The instances `x` instances' worth of demand needs: 0 for nothing or nonsense (NaN), the
/// most there are for more than can be counted (a capacity too small for its demand).
fn count(x: f64) -> u32 {
    let n = (x - 1e-9).ceil();
    if n > 0.0 {
        n.min(u32::MAX as f64) as u32
    } else {
        0
    }
}

/// A scale-in from `current` toward `to`, by at most `step`; says so when the step limits it.
fn limited(to: u32, current: u32, step: u32, why: &mut Vec<String>) -> u32 {
    let d = to.max(current.saturating_sub(step));
    if d > to {
        why.push(format!("scale-in limited to {step} per decision"));
    }
    d
}

#[cfg(test)]
mod tests;
