//! The scaling policy shared by the agent, the coordinator and `simulate`.
//!
//! Rule (chosen by measurement with shared/eval/sim_eval.py):
//! - plan for every horizon up to the lead (warm-up + decision interval): an instance asked for
//!   now serves only after its warm-up, and the count must still cover demand until the next
//!   decision can act;
//! - need(h) = max(ceil(P50(h) / (C·U)), ceil(P90(h) / C)): the target utilisation applies to
//!   expected demand and the upper quantile must fit in full capacity; the headroom is not paid
//!   twice (the larger of the two wins, they are not stacked);
//! - a reactive floor: current demand must fit at the target utilisation;
//! - saturation means demand is censored (at least what is served now): scale out by a step;
//! - scale out at once; scale in only to the largest count recommended during the
//!   stabilisation window, and by at most `max_scale_in_step` instances per decision;
//! - while the forecast is in cold start or its recent error is worse than the naive
//!   forecast's by `max_error_ratio`, fall back to the reactive rule and say so.

use std::collections::VecDeque;

use serde::Serialize;

use crate::forecast::Forecast;

/// Predictive, purely reactive, or forecast-only (decides but recommends no change).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum PolicyMode {
    /// Plans from the forecast, with the reactive floor.
    Predictive,
    /// Target tracking on current demand only.
    Reactive,
    /// Computes the predictive plan and reports it, but recommends keeping the current count.
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
    /// Fewest instances.
    pub min_instances: u32,
    /// Most instances.
    pub max_instances: u32,
    /// Largest scale-in step, instances per decision (or `max_scale_in_fraction` of the
    /// current count, whichever is larger).
    pub max_scale_in_step: u32,
    /// Largest scale-in step as a fraction of the current count per decision.
    pub max_scale_in_fraction: f64,
    /// Scale in only after demand allowed it for this long.
    pub scale_in_stabilization_s: f64,
    /// Predictive, reactive or forecast-only.
    pub mode: PolicyMode,
    /// Fall back to reactive when the forecast's recent error exceeds the naive forecast's by
    /// this factor.
    pub max_error_ratio: f64,
    /// Quantile of the forecast that must fit in full capacity, 0.9..=0.99 (interpolated
    /// between P90 and P99).
    pub upper_quantile: f64,
    /// Extra headroom above the upper quantile, as a fraction of the P90→P99 spread: the
    /// decision must cover the largest demand over the whole lead, which per-horizon
    /// quantiles understate.
    pub tail_margin: f64,
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
            upper_quantile: 0.99,
            tail_margin: 0.1,
        }
    }
}

impl PolicyConfig {
    /// Seconds ahead a decision must plan for.
    pub fn lead_s(&self) -> f64 {
        self.warmup_s + self.decision_interval_s
    }
}

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

/// Most horizons [`lead_horizons`] gives (the forecaster looks no further steps ahead).
pub const MAX_LEAD_HORIZONS: usize = 1024;

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
    /// Reactive fallback was used.
    pub fallback: bool,
    /// Why, in words, with the numbers that decided it.
    pub reason: String,
    /// What the rule computed before forecast-only mode kept the current count.
    pub planned: u32,
}

/// A policy with its stabilisation state.
#[derive(Debug, Clone)]
pub struct Policy {
    config: PolicyConfig,
    /// Recent recommendations, (t, count), decreasing counts (a monotonic queue for the max).
    window: VecDeque<(f64, u32)>,
}

impl Policy {
    /// A policy with fresh state.
    pub fn new(config: PolicyConfig) -> Self {
        Policy {
            config,
            window: VecDeque::new(),
        }
    }

    /// The configuration in force.
    pub fn config(&self) -> &PolicyConfig {
        &self.config
    }

    /// Decides the desired instance count at `obs.t`.
    pub fn decide(&mut self, obs: &Observation, forecast: Option<&Forecast>) -> Decision {
        let c = &self.config;
        let cap = c.capacity_per_instance.max(f64::MIN_POSITIVE);
        let u = c.target_utilization.clamp(0.01, 1.0);
        let lead = c.lead_s();
        let demand = if obs.demand.is_finite() {
            obs.demand.max(0.0)
        } else {
            0.0
        };
        let count = |x: f64| -> u32 {
            let n = (x - 1e-9).ceil();
            if n.is_finite() && n > 0.0 {
                n.min(u32::MAX as f64) as u32
            } else {
                0
            }
        };
        let reactive_need = count(demand / (cap * u));
        let mut why: Vec<String> = Vec::new();

        // Forecast at the horizons up to the lead: the largest P50 and P90.
        let mut p50 = None::<f64>;
        let mut p90 = None::<f64>;
        let mut upper = None::<f64>;
        let w = ((c.upper_quantile - 0.9) / 0.09).clamp(0.0, 1.0) + c.tail_margin.max(0.0);
        if let Some(f) = forecast {
            let mut pts: Vec<&crate::forecast::ForecastPoint> = f
                .points
                .iter()
                .filter(|p| p.horizon_s <= lead + 1e-9)
                .collect();
            if pts.is_empty() {
                pts.extend(f.at(lead));
            }
            for p in pts {
                let q = p.p90 + w * (p.p99 - p.p90);
                p50 = Some(p50.map_or(p.p50, |v| v.max(p.p50)));
                p90 = Some(p90.map_or(p.p90, |v| v.max(p.p90)));
                upper = Some(upper.map_or(q, |v| v.max(q)));
            }
        }
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
        let (mut raw, fallback) = match (c.mode, p50, upper, &distrust) {
            (PolicyMode::Reactive, ..) => {
                why.push(format!(
                    "reactive: demand {demand:.3} at {:.0}% of {cap:.3} per instance needs {reactive_need}",
                    u * 100.0
                ));
                (reactive_need, false)
            }
            (_, Some(m), Some(q), None) if m.is_finite() && q.is_finite() => {
                let by_p50 = count(m / (cap * u));
                let by_p90 = count(q / cap);
                let planned = by_p50.max(by_p90).max(reactive_need);
                why.push(format!(
                    "planned for {lead:.0} s ahead: P50 {m:.3} at {:.0}% needs {by_p50}, P{:.0} {q:.3} \
                     at full capacity needs {by_p90}, demand now needs {reactive_need}",
                    u * 100.0,
                    c.upper_quantile * 100.0
                ));
                (planned, false)
            }
            _ => {
                why.push(format!(
                    "reactive fallback ({}): demand {demand:.3} needs {reactive_need}",
                    distrust.as_deref().unwrap_or("no forecast")
                ));
                (reactive_need, true)
            }
        };
        if obs.saturated {
            let bump = obs
                .current_instances
                .saturating_add((obs.current_instances / 10).max(1));
            if bump > raw {
                why.push(format!(
                    "saturated: demand is censored, scaling out to {bump}"
                ));
                raw = bump;
            }
        }
        let hi = c.max_instances.max(c.min_instances);
        let raw = raw.clamp(c.min_instances, hi);

        // Stabilisation: the largest recommendation of the window.
        while self.window.back().is_some_and(|&(_, n)| n <= raw) {
            self.window.pop_back();
        }
        self.window.push_back((obs.t, raw));
        while self
            .window
            .front()
            .is_some_and(|&(t, _)| t < obs.t - c.scale_in_stabilization_s)
        {
            self.window.pop_front();
        }
        let held = self.window.front().map_or(raw, |&(_, n)| n);
        let current = obs.current_instances;
        let desired = if raw >= current {
            raw
        } else if held >= current {
            why.push(format!(
                "scale-in to {raw} held: {held} was needed within the last {:.0} s",
                c.scale_in_stabilization_s
            ));
            current
        } else {
            let by_fraction =
                (current as f64 * c.max_scale_in_fraction.clamp(0.0, 1.0)).ceil() as u32;
            let step = c.max_scale_in_step.max(by_fraction).max(1);
            let d = held.max(current.saturating_sub(step));
            if d > held {
                why.push(format!("scale-in limited to {step} per decision"));
            }
            d
        }
        .clamp(c.min_instances, hi);
        if desired == c.max_instances && raw >= hi {
            why.push(format!("capped at max {hi}"));
        }
        let planned = desired;
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
            p50_at_lead: p50,
            p90_at_lead: p90,
            fallback,
            reason: why.join("; "),
            planned,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::forecast::{Forecast, ForecastPoint};

    fn cfg() -> PolicyConfig {
        PolicyConfig {
            capacity_per_instance: 10.0,
            target_utilization: 0.5,
            warmup_s: 60.0,
            decision_interval_s: 10.0,
            min_instances: 2,
            max_instances: 20,
            max_scale_in_step: 1,
            max_scale_in_fraction: 0.0,
            scale_in_stabilization_s: 300.0,
            tail_margin: 0.0,
            upper_quantile: 0.9,
            ..PolicyConfig::default()
        }
    }

    #[test]
    fn lead_horizons_step_to_the_lead_and_are_bounded() {
        let mut h = Vec::new();
        lead_horizons(10.0, 35.0, &mut h);
        assert_eq!(h, [10.0, 20.0, 30.0, 35.0]);
        for lead in [1.0e7, 1.0e13, f64::INFINITY] {
            h.clear();
            lead_horizons(10.0, lead, &mut h);
            assert_eq!(h.len(), MAX_LEAD_HORIZONS, "{lead}");
            assert_eq!(h.last(), Some(&lead));
        }
    }

    fn fc(p50: f64, p90: f64) -> Forecast {
        Forecast {
            origin: 0.0,
            points: vec![ForecastPoint {
                horizon_s: 70.0,
                p50,
                p90,
                p99: p90 * 1.2,
            }],
            model: "ets",
            fallback: None,
            error_ratio: Some(0.8),
            season_s: None,
        }
    }

    fn obs(t: f64, demand: f64, current: u32) -> Observation {
        Observation {
            t,
            demand,
            saturated: false,
            current_instances: current,
        }
    }

    #[test]
    fn target_on_p50_and_p90_at_full_capacity_without_stacking() {
        let mut p = Policy::new(cfg());
        // P50 40 at 50% of 10 needs 8; P90 90 at full capacity needs 9.
        let d = p.decide(&obs(0.0, 10.0, 2), Some(&fc(40.0, 90.0)));
        assert_eq!((d.desired, d.action), (9, Action::ScaleOut));
        assert!(!d.fallback && d.reason.contains("P50"));
        assert_eq!(d.p90_at_lead, Some(90.0));
        // P90 close to P50: the target utilisation decides.
        let d = p.decide(&obs(1.0, 10.0, 9), Some(&fc(40.0, 45.0)));
        assert_eq!(d.desired, 9, "scale-in held by stabilisation");
    }

    #[test]
    fn scale_out_at_once_scale_in_after_the_window_by_steps() {
        let mut p = Policy::new(cfg());
        let d = p.decide(&obs(0.0, 100.0, 2), Some(&fc(100.0, 120.0)));
        assert_eq!(d.desired, 20);
        let mut cur = d.desired;
        let mut t = 10.0;
        while t < 300.0 {
            let d = p.decide(&obs(t, 10.0, cur), Some(&fc(10.0, 12.0)));
            assert_eq!(d.desired, 20, "at {t}: {}", d.reason);
            cur = d.desired;
            t += 10.0;
        }
        let d = p.decide(&obs(310.0, 10.0, cur), Some(&fc(10.0, 12.0)));
        assert_eq!((d.desired, d.action), (19, Action::ScaleIn), "{}", d.reason);
        assert!(d.reason.contains("limited"));
    }

    #[test]
    fn min_max_and_saturation() {
        let mut p = Policy::new(cfg());
        let d = p.decide(&obs(0.0, 0.0, 2), Some(&fc(0.0, 0.0)));
        assert_eq!(d.desired, 2);
        let d = p.decide(&obs(1.0, 1e6, 2), Some(&fc(1e6, 1e6)));
        assert_eq!(d.desired, 20);
        assert!(d.reason.contains("max"));
        let mut p = Policy::new(cfg());
        let sat = Observation {
            t: 0.0,
            demand: 5.0,
            saturated: true,
            current_instances: 4,
        };
        let d = p.decide(&sat, Some(&fc(5.0, 6.0)));
        assert_eq!(d.desired, 5);
        assert!(d.reason.contains("saturated"));
    }

    #[test]
    fn falls_back_to_reactive_when_the_forecast_is_distrusted() {
        let mut p = Policy::new(cfg());
        let mut bad = fc(1000.0, 1000.0);
        bad.error_ratio = Some(3.0);
        let d = p.decide(&obs(0.0, 30.0, 2), Some(&bad));
        assert!(
            d.fallback && d.reason.contains("reactive fallback"),
            "{}",
            d.reason
        );
        assert_eq!(d.desired, 6);
        let mut cold = fc(1000.0, 1000.0);
        cold.fallback = Some("cold start".into());
        let d = Policy::new(cfg()).decide(&obs(0.0, 30.0, 2), Some(&cold));
        assert!(d.fallback && d.desired == 6);
        let d = Policy::new(cfg()).decide(&obs(0.0, 30.0, 2), None);
        assert!(d.fallback && d.desired == 6);
    }

    #[test]
    fn forecast_only_and_reactive_modes() {
        let mut p = Policy::new(PolicyConfig {
            mode: PolicyMode::ForecastOnly,
            ..cfg()
        });
        let d = p.decide(&obs(0.0, 10.0, 3), Some(&fc(40.0, 90.0)));
        assert_eq!((d.desired, d.planned, d.action), (3, 9, Action::Hold));
        assert!(d.reason.contains("forecast-only"));
        let mut p = Policy::new(PolicyConfig {
            mode: PolicyMode::Reactive,
            ..cfg()
        });
        let d = p.decide(&obs(0.0, 30.0, 3), Some(&fc(400.0, 900.0)));
        assert_eq!(d.desired, 6);
        assert!(!d.fallback && d.reason.starts_with("reactive"));
    }

    #[test]
    fn upper_quantile_and_tail_margin_raise_the_plan() {
        let f = fc(10.0, 50.0); // P99 = 60
        let d = Policy::new(PolicyConfig {
            upper_quantile: 0.99,
            ..cfg()
        })
        .decide(&obs(0.0, 1.0, 2), Some(&f));
        assert_eq!(d.desired, 6);
        let d = Policy::new(PolicyConfig {
            upper_quantile: 0.99,
            tail_margin: 1.0,
            ..cfg()
        })
        .decide(&obs(0.0, 1.0, 2), Some(&f));
        assert_eq!(d.desired, 7);
    }
}
