//! The ledger: what the plan spent and how often it fell short, next to target tracking run on
//! the same demand (the shadow), and how good the forecast was at the lead, accumulated per
//! hour. It is the evidence an operator reads before letting headroom act: `simulate` prints it,
//! the agent keeps it for its host's share and the coordinator for each group.
//!
//! Judged as `shared/eval/sim_eval.py` judges a plan: capacity asked for at t serves from
//! t + warm-up and a scale-in is at once, so what is ready at t is the least asked for over the
//! last warm-up; a sample is short when demand exceeds that at full capacity. Both counts are
//! paid from the moment they are asked for (warming instances included). The shadow is
//! [`Reactive`]: the count that keeps demand at the target utilisation, scaled in only to the
//! largest count of the last five minutes. [`Ledger::judge`] also hands back each decision's
//! judgement ([`Judged`]): that rule lives here only, and what a picture of a replay shades
//! as short is what the hours count as short.
//!
//! The forecast at the lead is scored against the demand observed when its target time comes:
//! MAPE as AWS defines it, the mean of `|actual - forecast| / actual` over the scored samples
//! whose actual is above zero (the others are counted as skipped), WAPE
//! `sum |actual - forecast| / sum actual`, and the share of actuals at or below the P90.

use std::collections::VecDeque;

use serde::{Deserialize, Serialize};

use crate::policy::PolicyConfig;
use crate::policy::reactive::Reactive;
use crate::window::LeastInForce;

/// Seconds in a ledger entry.
pub const HOUR_S: f64 = 3600.0;

/// The start of the ledger hour `t` falls in, unix seconds.
pub fn hour_start(t: f64) -> i64 {
    ((t / HOUR_S).floor() * HOUR_S) as i64
}

/// One hour of the ledger (or a sum of hours). Every field adds up across hours and across the
/// parts of an hour written at different times (a restart), so stored hours merge by summing.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize)]
pub struct Hour {
    /// Start of the hour, unix seconds (a multiple of 3600); of the first hour in a sum.
    pub start: i64,
    /// Seconds of demand observed.
    pub observed_s: f64,
    /// Instance-seconds the plan asked for.
    pub plan_instance_s: f64,
    /// Instance-seconds target tracking would have asked for.
    pub shadow_instance_s: f64,
    /// Seconds the plan's ready capacity fell short of demand.
    pub plan_short_s: f64,
    /// Seconds target tracking's ready capacity would have fallen short.
    pub shadow_short_s: f64,
    /// Forecasts at the lead scored against the demand at their target time.
    pub scored: u64,
    /// Sum of `|actual - P50|` over the scored forecasts.
    pub abs_error: f64,
    /// Sum of the actuals scored.
    pub actual: f64,
    /// Sum of `|actual - P50| / actual` over the scored forecasts whose actual is above zero.
    pub pct_error: f64,
    /// Scored forecasts whose actual was zero (left out of the MAPE).
    pub zero_actuals: u64,
    /// Scored forecasts whose actual was at or below their P90.
    pub p90_covered: u64,
}

impl Hour {
    /// Adds `other` into this sum (the earliest start stays).
    pub fn add(&mut self, other: &Hour) {
        if self.observed_s == 0.0 && self.scored == 0 || other.start < self.start {
            self.start = other.start;
        }
        self.observed_s += other.observed_s;
        self.plan_instance_s += other.plan_instance_s;
        self.shadow_instance_s += other.shadow_instance_s;
        self.plan_short_s += other.plan_short_s;
        self.shadow_short_s += other.shadow_short_s;
        self.scored += other.scored;
        self.abs_error += other.abs_error;
        self.actual += other.actual;
        self.pct_error += other.pct_error;
        self.zero_actuals += other.zero_actuals;
        self.p90_covered += other.p90_covered;
    }

    /// What this sum gained since `earlier`, a sum it grew from (field by field; counters read
    /// the increase of a running total this way).
    pub fn since(&self, earlier: &Hour) -> Hour {
        Hour {
            start: self.start,
            observed_s: self.observed_s - earlier.observed_s,
            plan_instance_s: self.plan_instance_s - earlier.plan_instance_s,
            shadow_instance_s: self.shadow_instance_s - earlier.shadow_instance_s,
            plan_short_s: self.plan_short_s - earlier.plan_short_s,
            shadow_short_s: self.shadow_short_s - earlier.shadow_short_s,
            scored: self.scored.saturating_sub(earlier.scored),
            abs_error: self.abs_error - earlier.abs_error,
            actual: self.actual - earlier.actual,
            pct_error: self.pct_error - earlier.pct_error,
            zero_actuals: self.zero_actuals.saturating_sub(earlier.zero_actuals),
            p90_covered: self.p90_covered.saturating_sub(earlier.p90_covered),
        }
    }

    /// The figures an operator reads.
    pub fn figures(&self) -> Figures {
        Figures {
            start: self.start,
            observed_s: self.observed_s,
            plan_instance_hours: self.plan_instance_hours(),
            shadow_instance_hours: self.shadow_instance_hours(),
            cost_ratio: self.cost_ratio(),
            plan_short_s: self.plan_short_s,
            shadow_short_s: self.shadow_short_s,
            forecasts_scored: self.scored,
            zero_actuals: self.zero_actuals,
            mape: self.mape(),
            wape: self.wape(),
            p90_coverage: self.p90_coverage(),
        }
    }

    /// Instance-hours the plan asked for.
    pub fn plan_instance_hours(&self) -> f64 {
        self.plan_instance_s / HOUR_S
    }

    /// Instance-hours target tracking would have asked for.
    pub fn shadow_instance_hours(&self) -> f64 {
        self.shadow_instance_s / HOUR_S
    }

    /// The plan's cost over target tracking's (`None` before either spent anything).
    pub fn cost_ratio(&self) -> Option<f64> {
        (self.shadow_instance_s > 0.0).then(|| self.plan_instance_s / self.shadow_instance_s)
    }

    /// MAPE of the forecast at the lead, over the scored samples whose actual was above zero.
    pub fn mape(&self) -> Option<f64> {
        let rows = self.scored - self.zero_actuals;
        (rows > 0).then(|| self.pct_error / rows as f64)
    }

    /// WAPE of the forecast at the lead.
    pub fn wape(&self) -> Option<f64> {
        (self.actual > 0.0).then(|| self.abs_error / self.actual)
    }

    /// Share of the scored actuals at or below their P90.
    pub fn p90_coverage(&self) -> Option<f64> {
        (self.scored > 0).then(|| self.p90_covered as f64 / self.scored as f64)
    }
}

/// An hour (or a sum of hours) as an operator reads it: `headroom report`, `headroom groups`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize)]
pub struct Figures {
    /// Start of the (first) hour, unix seconds.
    pub start: i64,
    /// Seconds of demand observed.
    pub observed_s: f64,
    /// Instance-hours the plan asked for.
    pub plan_instance_hours: f64,
    /// Instance-hours target tracking would have asked for.
    pub shadow_instance_hours: f64,
    /// The plan's instance-hours over target tracking's.
    pub cost_ratio: Option<f64>,
    /// Seconds the plan's ready capacity fell short of demand.
    pub plan_short_s: f64,
    /// Seconds target tracking's would have.
    pub shadow_short_s: f64,
    /// Forecasts at the lead scored.
    pub forecasts_scored: u64,
    /// Scored forecasts left out of the MAPE (actual zero).
    pub zero_actuals: u64,
    /// MAPE of the forecast at the lead.
    pub mape: Option<f64>,
    /// WAPE of the forecast at the lead.
    pub wape: Option<f64>,
    /// Share of actuals at or below the P90.
    pub p90_coverage: Option<f64>,
}

/// How the ledger judged one decision: the counts it charged and whether demand found too little
/// ready capacity (the rule the hours' `*_short_s` add up).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Judged {
    /// Unix seconds of the decision.
    pub t: f64,
    /// Seconds it was in force (finite, at least 0).
    pub dt: f64,
    /// Demand judged (finite, at least 0).
    pub demand: f64,
    /// Count the plan asked for.
    pub plan: u32,
    /// Count target tracking asked for on the same demand (the shadow).
    pub shadow: u32,
    /// Demand exceeded the plan's ready capacity (warm-up counted).
    pub plan_short: bool,
    /// Demand exceeded target tracking's ready capacity (warm-up counted).
    pub shadow_short: bool,
}

/// The least count in force over a warm-up: what is ready to serve.
#[derive(Debug, Clone, Default)]
pub(crate) struct Ready {
    asked: LeastInForce,
}

impl Ready {
    /// Records `count` asked for at `t` and returns what serves at `t`.
    pub(crate) fn ask(&mut self, t: f64, count: u32, warmup_s: f64) -> u32 {
        self.asked.push_since(t, count, t - warmup_s)
    }
}

/// The ledger of one plan (a host's share, a group, a replay).
#[derive(Debug, Clone)]
pub struct Ledger {
    capacity_per_instance: f64,
    warmup_s: f64,
    lead_s: f64,
    shadow: Reactive,
    plan_ready: Ready,
    shadow_ready: Ready,
    /// Forecasts at the lead waiting for their target time: (target t, P50, P90).
    pending: VecDeque<(f64, f64, f64)>,
    open: Option<Hour>,
}

impl Ledger {
    /// A ledger for plans made with `config` (its capacity, warm-up, lead, and target tracking
    /// at its `target_utilization` as the shadow).
    pub fn new(config: &PolicyConfig) -> Ledger {
        Ledger {
            capacity_per_instance: config.capacity_per_instance.max(f64::MIN_POSITIVE),
            warmup_s: config.warmup_s,
            lead_s: config.lead_s(),
            shadow: config.target_tracking(),
            plan_ready: Ready::default(),
            shadow_ready: Ready::default(),
            pending: VecDeque::new(),
            open: None,
        }
    }

    /// Follows a new configuration (a capacity per instance that moved, a reload) from now on.
    pub fn reconfigure(&mut self, config: &PolicyConfig) {
        self.capacity_per_instance = config.capacity_per_instance.max(f64::MIN_POSITIVE);
        self.warmup_s = config.warmup_s;
        self.lead_s = config.lead_s();
        self.shadow = config.target_tracking();
    }

    /// Records the decision at `t`, in force for `dt` seconds: the demand seen, the count the
    /// plan asked for, and its forecast at the lead (P50, P90) if it had one. Returns the hour
    /// that closed, if `t` started a new one.
    pub fn record(
        &mut self,
        t: f64,
        dt: f64,
        demand: f64,
        planned: u32,
        at_lead: Option<(f64, f64)>,
    ) -> Option<Hour> {
        self.judge(t, dt, demand, planned, at_lead).1
    }

    /// [`Ledger::record`] where the forecast is of another series than the demand judged
    /// (the agent judges every sample but forecasts 10 s means): the forecasts wait for
    /// [`Ledger::score`] with values of their own series.
    pub fn record_unscored(
        &mut self,
        t: f64,
        dt: f64,
        demand: f64,
        planned: u32,
        at_lead: Option<(f64, f64)>,
    ) -> Option<Hour> {
        self.judge_scoring(t, dt, demand, planned, at_lead, None).1
    }

    /// Scores the forecasts whose target time has come by `t` against `actual`, a value of
    /// their own series at `t`, into the hour being filled (begun at `t` if none is, as after
    /// [`Ledger::take_open`]: the next record closes it if `t` was in another hour).
    pub fn score(&mut self, t: f64, actual: f64) {
        let mut scored = self.score_due(t, actual);
        let h = self.open.get_or_insert_with(|| Hour {
            start: hour_start(t),
            ..Hour::default()
        });
        scored.start = h.start;
        h.add(&scored);
    }

    /// The forecasts due by `t`, taken out and scored against `actual`. One whose target is
    /// more than a lead before `t` is taken out unscored: the demand was not seen near its
    /// target (a gap in the trace, a stall), and the value after the gap is no value at it.
    fn score_due(&mut self, t: f64, actual: f64) -> Hour {
        let actual = if actual.is_finite() {
            actual.max(0.0)
        } else {
            0.0
        };
        let mut scored = Hour::default();
        while self
            .pending
            .front()
            .is_some_and(|&(target, ..)| target <= t + 1e-9)
        {
            let Some((target, p50, p90)) = self.pending.pop_front() else {
                break;
            };
            if t - target > self.lead_s.max(1.0) {
                continue;
            }
            let err = (actual - p50).abs();
            scored.scored += 1;
            scored.abs_error += err;
            scored.actual += actual;
            if actual > 0.0 {
                scored.pct_error += err / actual;
            } else {
                scored.zero_actuals += 1;
            }
            scored.p90_covered += u64::from(actual <= p90 + 1e-9);
        }
        scored
    }

    /// [`Ledger::record`], also returning how the decision was judged (what the hours add up).
    pub fn judge(
        &mut self,
        t: f64,
        dt: f64,
        demand: f64,
        planned: u32,
        at_lead: Option<(f64, f64)>,
    ) -> (Judged, Option<Hour>) {
        self.judge_scoring(t, dt, demand, planned, at_lead, Some(demand))
    }

    /// [`Ledger::judge`], scoring the forecasts due against `actual` if given.
    fn judge_scoring(
        &mut self,
        t: f64,
        dt: f64,
        demand: f64,
        planned: u32,
        at_lead: Option<(f64, f64)>,
        actual: Option<f64>,
    ) -> (Judged, Option<Hour>) {
        let start = hour_start(t);
        let closed = match self.open {
            Some(h) if h.start != start => self.open.replace(Hour {
                start,
                ..Hour::default()
            }),
            Some(_) => None,
            None => {
                self.open = Some(Hour {
                    start,
                    ..Hour::default()
                });
                None
            }
        };
        let demand = if demand.is_finite() {
            demand.max(0.0)
        } else {
            0.0
        };
        let dt = if dt.is_finite() { dt.max(0.0) } else { 0.0 };
        let shadow = self.shadow.decide(t, demand);
        let plan_ready = self.plan_ready.ask(t, planned, self.warmup_s);
        let shadow_ready = self.shadow_ready.ask(t, shadow, self.warmup_s);
        let cap = self.capacity_per_instance;
        let mut scored = match actual {
            Some(a) => self.score_due(t, a),
            None => Hour::default(),
        };
        if let Some((p50, p90)) = at_lead
            && p50.is_finite()
            && p90.is_finite()
        {
            self.pending.push_back((t + self.lead_s, p50, p90));
        }
        let judged = Judged {
            t,
            dt,
            demand,
            plan: planned,
            shadow,
            plan_short: demand > f64::from(plan_ready) * cap + 1e-9,
            shadow_short: demand > f64::from(shadow_ready) * cap + 1e-9,
        };
        if let Some(h) = self.open.as_mut() {
            h.observed_s += dt;
            h.plan_instance_s += f64::from(planned) * dt;
            h.shadow_instance_s += f64::from(shadow) * dt;
            if judged.plan_short {
                h.plan_short_s += dt;
            }
            if judged.shadow_short {
                h.shadow_short_s += dt;
            }
            scored.start = h.start;
            h.add(&scored);
        }
        (judged, closed)
    }

    /// The hour being filled, taken out (at a stop, to store it part-full).
    pub fn take_open(&mut self) -> Option<Hour> {
        self.open.take()
    }

    /// Continues `hour`, stored before a restart, when nothing was recorded yet: records in the
    /// same hour add to it, and the first of a later hour closes it.
    pub fn resume(&mut self, hour: Hour) {
        if self.open.is_none() {
            self.open = Some(hour);
        }
    }

    /// The hour being filled.
    pub fn open(&self) -> Option<&Hour> {
        self.open.as_ref()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config() -> PolicyConfig {
        PolicyConfig {
            capacity_per_instance: 10.0,
            target_utilization: 0.5,
            warmup_s: 60.0,
            decision_interval_s: 60.0,
            min_instances: 1,
            max_instances: 100,
            ..PolicyConfig::default()
        }
    }

    #[test]
    fn costs_and_shortfalls_are_judged_with_the_warm_up() {
        let mut l = Ledger::new(&config());
        // Minute 0: demand 15 with 2 asked for (ready: 2, 20 of capacity). Minute 1: demand 35,
        // 4 asked for but only 2 ready (asked a minute ago serve from now, so 2). Minute 2: 4 ready.
        for (i, (demand, planned)) in [(15.0, 2), (35.0, 4), (35.0, 4)].iter().enumerate() {
            l.record(i as f64 * 60.0, 60.0, *demand, *planned, None);
        }
        let h = *l.open().unwrap();
        assert_eq!(h.observed_s, 180.0);
        assert_eq!(h.plan_instance_s, 600.0);
        assert_eq!(
            h.plan_short_s, 60.0,
            "short the minute the new ones were warming"
        );
        // Target tracking at 50%: 3, then 7 (held): 3 ready at minute 1 (30 < 35: short), 7 at 2.
        assert_eq!(h.shadow_instance_s, 60.0 * (3.0 + 7.0 + 7.0));
        assert_eq!(h.shadow_short_s, 60.0);
        assert_eq!(h.cost_ratio(), Some(600.0 / 1020.0));
    }

    #[test]
    fn the_forecast_at_the_lead_is_scored_when_its_target_comes() {
        let mut l = Ledger::new(&config());
        // Lead 120 s: the forecast made at 0 is scored at 120, the one at 60 at 180.
        l.record(0.0, 60.0, 10.0, 1, Some((20.0, 30.0)));
        l.record(60.0, 60.0, 10.0, 1, Some((10.0, 12.0)));
        l.record(120.0, 60.0, 25.0, 1, None);
        l.record(180.0, 60.0, 0.0, 1, None);
        let h = *l.open().unwrap();
        assert_eq!(h.scored, 2);
        assert_eq!(h.zero_actuals, 1);
        assert_eq!(h.abs_error, 5.0 + 10.0);
        assert_eq!(h.mape(), Some(5.0 / 25.0));
        assert_eq!(h.wape(), Some(15.0 / 25.0));
        assert_eq!(h.p90_coverage(), Some(1.0));
    }

    /// A forecast whose target falls in a gap of the demand (a day without rows) is not scored
    /// against the first value after the gap.
    #[test]
    fn a_forecast_whose_target_falls_in_a_gap_is_not_scored() {
        let mut l = Ledger::new(&config());
        // Lead 120 s: targets at 120 and 180; the next row comes a day later.
        l.record(0.0, 60.0, 10.0, 1, Some((10.0, 11.0)));
        l.record(60.0, 60.0, 10.0, 1, Some((10.0, 11.0)));
        l.record(86_400.0, 60.0, 500.0, 1, Some((10.0, 11.0)));
        l.record(86_460.0, 60.0, 10.0, 1, None);
        l.record(86_520.0, 60.0, 10.0, 1, None);
        let h = *l.open().unwrap();
        assert_eq!((h.scored, h.abs_error), (1, 0.0), "{h:?}");
    }

    /// Forecasts of another series than the demand judged wait for a value of their own
    /// series: a spike in the samples is not scored against a forecast of 10 s means, and
    /// each mean scores the forecasts due by its own time.
    #[test]
    fn a_forecast_scored_apart_waits_for_its_own_series() {
        let mut l = Ledger::new(&config());
        let lead = config().lead_s();
        l.record_unscored(0.0, 1.0, 10.0, 1, Some((10.0, 11.0)));
        l.record_unscored(10.0, 1.0, 10.0, 1, Some((20.0, 21.0)));
        // Their target times come with a spike in the samples and no mean closed yet.
        l.record_unscored(lead + 10.0, 1.0, 40.0, 1, None);
        assert_eq!(l.open().unwrap().scored, 0);
        // Two means close at once: each scores what was due by its time.
        l.score(lead, 10.5);
        l.score(lead + 10.0, 30.0);
        let h = l.open().unwrap();
        assert_eq!((h.scored, h.p90_covered), (2, 1));
        assert!((h.abs_error - 10.5).abs() < 1e-9, "{h:?}");
        // Scored right after the open hour was taken out to be stored: kept, not dropped.
        l.record_unscored(lead + 20.0, 1.0, 10.0, 1, Some((10.0, 11.0)));
        let stored = l.take_open().expect("open");
        l.score(2.0 * lead + 20.0, 10.0);
        assert_eq!((stored.scored, l.open().map(|h| h.scored)), (2, Some(1)));
    }

    #[test]
    fn hours_close_and_sum() {
        let mut l = Ledger::new(&config());
        assert!(l.record(3540.0, 60.0, 1.0, 1, None).is_none());
        let closed = l.record(3600.0, 60.0, 1.0, 1, None).expect("closed");
        assert_eq!((closed.start, closed.observed_s), (0, 60.0));
        let mut sum = closed;
        sum.add(&l.take_open().unwrap());
        assert_eq!((sum.start, sum.observed_s), (0, 120.0));
        assert!(l.open().is_none());
    }

    #[test]
    fn a_resumed_hour_goes_on_and_a_running_total_gives_its_increase() {
        let mut before = Ledger::new(&config());
        before.record(3600.0, 60.0, 1.0, 1, None);
        let stored = *before.open().unwrap();
        let mut after = Ledger::new(&config());
        after.resume(stored);
        assert!(after.record(3660.0, 60.0, 1.0, 2, None).is_none());
        let h = *after.open().unwrap();
        assert_eq!(
            (h.start, h.observed_s, h.plan_instance_s),
            (3600, 120.0, 180.0)
        );
        let gained = h.since(&stored);
        assert_eq!((gained.observed_s, gained.plan_instance_s), (60.0, 120.0));
        // The first record of the next hour closes the resumed one, whole.
        let closed = after.record(7200.0, 60.0, 1.0, 1, None).expect("closed");
        assert_eq!(closed, h);
    }
}
