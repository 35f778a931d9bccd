//! `backtest` and `simulate` over in-memory series: strictly causal replays of the live code.
//! Every row is observed in order and a forecast or decision at a row uses only the rows up
//! to it.

use crate::forecast::{ForecastConfig, Forecaster};
use crate::ledger::{Hour, Judged, Ledger, Ready};
use crate::policy::{Decision, Observation, Policy, PolicyConfig, PolicyMode, lead_horizons};

/// One backtest output row.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct BacktestRow {
    /// Unix seconds of the origin row.
    pub origin: f64,
    /// Unix seconds of the target row.
    pub target: f64,
    /// Rows after the origin.
    pub horizon: usize,
    /// Median forecast.
    pub p50: f64,
    /// 90th percentile.
    pub p90: f64,
}

/// Which rows are forecast origins.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Origins {
    /// First origin at or after this time; `None` = every row with enough history.
    pub start: Option<f64>,
    /// Every k-th row after the first origin.
    pub every: usize,
}

/// Forecasts horizons 1..=`horizon` rows ahead at each origin; row k's target is the k-th row
/// after the origin (or, past the end, the origin plus k median steps).
pub fn backtest(
    times: &[f64],
    values: &[f64],
    horizon: usize,
    origins: Origins,
    config: &ForecastConfig,
    mut progress: impl FnMut(usize),
) -> Vec<BacktestRow> {
    let horizon = horizon.max(1);
    let step = median_step(times);
    let mut config = config.clone();
    config.min_horizon_steps = config.min_horizon_steps.max(horizon);
    let mut f = Forecaster::new(config);
    let mut out = Vec::new();
    let first = origins
        .start
        .map_or(1, |s| times.partition_point(|&t| t < s));
    let every = origins.every.max(1);
    for i in 0..times.len().min(values.len()) {
        f.observe(times[i], values[i]);
        progress(i);
        if i < first || !(i - first).is_multiple_of(every) {
            continue;
        }
        if let Some(fc) = f.forecast_steps(horizon) {
            for (k, p) in fc.points.iter().enumerate() {
                let target = times
                    .get(i + k + 1)
                    .copied()
                    .unwrap_or(times[i] + (k + 1) as f64 * step);
                out.push(BacktestRow {
                    origin: times[i],
                    target,
                    horizon: k + 1,
                    p50: p.p50,
                    p90: p.p90,
                });
            }
        }
    }
    out
}

/// One simulated decision.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct PlanRow {
    /// Unix seconds of the decision.
    pub t: f64,
    /// Instances decided on.
    pub desired: u32,
}

/// Replays the policy over a demand series, starting from `config.min_instances`.
pub fn simulate(
    times: &[f64],
    values: &[f64],
    config: &PolicyConfig,
    progress: impl FnMut(usize),
) -> Vec<PlanRow> {
    simulate_decisions(times, values, config, &ForecastConfig::default(), progress)
        .into_iter()
        .map(|d| PlanRow {
            t: d.t,
            desired: d.desired,
        })
        .collect()
}

/// Like [`simulate`], returning every decision with its reason and inputs.
pub fn simulate_decisions(
    times: &[f64],
    values: &[f64],
    config: &PolicyConfig,
    forecast: &ForecastConfig,
    mut progress: impl FnMut(usize),
) -> Vec<Decision> {
    let mut policy = Policy::new(config.clone());
    let mut fc_config = forecast.clone();
    fc_config.horizon_s = fc_config.horizon_s.max(config.lead_s());
    let mut f = Forecaster::new(fc_config);
    let mut current = config.min_instances;
    let mut plan = Vec::with_capacity(times.len());
    let mut horizons: Vec<f64> = Vec::new();
    for i in 0..times.len().min(values.len()) {
        let v = values[i];
        f.observe(times[i], v);
        let fc = if config.mode == PolicyMode::Reactive {
            None
        } else {
            horizons.clear();
            lead_horizons(f.step_s(), config.lead_s(), &mut horizons);
            f.forecast(&horizons)
        };
        let obs = Observation {
            t: times[i],
            demand: v,
            saturated: false,
            current_instances: current,
        };
        let d = policy.decide(&obs, fc.as_ref());
        current = d.desired;
        plan.push(d);
        progress(i);
    }
    plan
}

/// What a plan costs and how often it falls short, judged as `sim_eval.py` does: an instance
/// asked for at t serves from t + warm-up, scale-in is at once.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Summary {
    /// Instance-hours paid for (warming instances included).
    pub instance_hours: f64,
    /// Fraction of rows where demand exceeded the capacity ready to serve.
    pub under_fraction: f64,
    /// Seconds under-provisioned (each short row counts until the next row).
    pub under_s: f64,
    /// Demand not served over total demand.
    pub lost_fraction: f64,
    /// Changes of the instance count.
    pub actions: usize,
    /// Scale-outs among them.
    pub scale_outs: usize,
    /// Largest count asked for.
    pub peak: u32,
}

/// Summarises a plan against the demand it was made for.
pub fn summarize(
    times: &[f64],
    values: &[f64],
    plan: &[PlanRow],
    config: &PolicyConfig,
) -> Summary {
    let n = times.len().min(values.len()).min(plan.len());
    let step = median_step(times);
    let mut ready = Ready::default();
    let mut s = Summary {
        instance_hours: 0.0,
        under_fraction: 0.0,
        under_s: 0.0,
        lost_fraction: 0.0,
        actions: 0,
        scale_outs: 0,
        peak: 0,
    };
    let (mut short_rows, mut lost, mut total) = (0usize, 0.0, 0.0);
    for i in 0..n {
        let t = times[i];
        let d = plan[i].desired;
        let dt = row_seconds(&times[..n], i, step);
        s.instance_hours += d as f64 * dt / 3600.0;
        s.peak = s.peak.max(d);
        if i > 0 && d != plan[i - 1].desired {
            s.actions += 1;
            if d > plan[i - 1].desired {
                s.scale_outs += 1;
            }
        }
        let ready = f64::from(ready.ask(t, d, config.warmup_s)) * config.capacity_per_instance;
        let demand = values[i].max(0.0);
        total += demand;
        if demand > ready + 1e-9 {
            short_rows += 1;
            s.under_s += dt;
            lost += demand - ready;
        }
    }
    if n > 0 {
        s.under_fraction = short_rows as f64 / n as f64;
    }
    if total > 0.0 {
        s.lost_fraction = lost / total;
    }
    s
}

/// The ledger of a replayed plan: its decisions against the demand, next to target tracking
/// on the same demand, summed over the whole trace. A row's decision is in force until the next
/// row, at most four median steps (the last row, one step).
pub fn ledger(
    times: &[f64],
    values: &[f64],
    decisions: &[Decision],
    config: &PolicyConfig,
) -> Hour {
    ledger_judged(times, values, decisions, config).0
}

/// [`ledger`], with how each row was judged: target tracking's count and whether either fell
/// short, row by row (what a picture of the replay draws).
pub fn ledger_judged(
    times: &[f64],
    values: &[f64],
    decisions: &[Decision],
    config: &PolicyConfig,
) -> (Hour, Vec<Judged>) {
    let n = times.len().min(values.len()).min(decisions.len());
    let step = median_step(times);
    let mut ledger = Ledger::new(config);
    let mut total = Hour::default();
    let mut rows = Vec::with_capacity(n);
    for i in 0..n {
        let dt = row_seconds(&times[..n], i, step);
        let d = &decisions[i];
        let (judged, closed) = ledger.judge(times[i], dt, values[i], d.planned, d.at_lead);
        rows.push(judged);
        if let Some(h) = closed {
            total.add(&h);
        }
    }
    if let Some(h) = ledger.take_open() {
        total.add(&h);
    }
    (total, rows)
}

/// How long row `i` of a replay is in force: until the next row, at most four median steps
/// (a gap in the trace is not charged as if the plan ran through it); the last row, one step.
fn row_seconds(times: &[f64], i: usize, step: f64) -> f64 {
    match times.get(i + 1) {
        Some(next) => (next - times[i]).min(4.0 * step),
        None => step,
    }
}

/// Median spacing of a series, seconds (1 for fewer than two points): the forecaster's own
/// rule ([`crate::forecast::recent_step`]), bursts of rows counted as one.
pub fn median_step(times: &[f64]) -> f64 {
    crate::forecast::recent_step(times, times.len()).unwrap_or(1.0)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn series(n: usize) -> (Vec<f64>, Vec<f64>) {
        (0..n)
            .map(|i| (i as f64 * 60.0, 10.0 + (i as f64 / 30.0).sin() * 3.0))
            .unzip()
    }

    #[test]
    fn backtest_rows_follow_the_origins() {
        let (t, y) = series(300);
        let rows = backtest(
            &t,
            &y,
            3,
            Origins {
                start: Some(60.0 * 100.0),
                every: 50,
            },
            &ForecastConfig::default(),
            |_| {},
        );
        let origins: Vec<f64> = rows.iter().map(|r| r.origin).collect();
        assert_eq!(rows.len(), 4 * 3);
        assert_eq!(origins[0], 6000.0);
        assert_eq!(origins[3], 9000.0);
        assert_eq!(rows[1].horizon, 2);
        assert_eq!(rows[1].target, 6120.0);
        // Past the end, targets continue at the median step.
        let all = backtest(
            &t,
            &y,
            2,
            Origins {
                start: None,
                every: 1,
            },
            &ForecastConfig::default(),
            |_| {},
        );
        let last = all.last().expect("rows");
        assert_eq!((last.origin, last.target), (299.0 * 60.0, 301.0 * 60.0));
        assert!(all.iter().all(|r| r.p90 >= r.p50));
    }

    #[test]
    fn simulate_is_causal_and_summarised() {
        let (t, y) = series(600);
        let cfg = PolicyConfig {
            capacity_per_instance: 2.0,
            decision_interval_s: 60.0,
            ..PolicyConfig::default()
        };
        let plan = simulate(&t, &y, &cfg, |_| {});
        assert_eq!(plan.len(), 600);
        let mut other = y.clone();
        other[400..].iter_mut().for_each(|v| *v *= 10.0);
        let plan2 = simulate(&t, &other, &cfg, |_| {});
        assert_eq!(plan[..400], plan2[..400]);
        assert!(plan2[599].desired > plan[599].desired);
        let s = summarize(&t, &y, &plan, &cfg);
        assert!(s.instance_hours > 0.0 && s.under_fraction < 0.05 && s.peak >= 7);
        let flat = vec![PlanRow { t: 0.0, desired: 1 }; 600];
        let s = summarize(&t, &y, &flat, &cfg);
        assert!(s.under_fraction > 0.99 && s.actions == 0);
    }
}
