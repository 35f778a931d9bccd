//! `backtest` and `simulate` over in-memory series: strictly causal replays of the live code.

use crate::forecast::{ForecastConfig, Forecaster};
use crate::policy::{Observation, Policy, PolicyConfig};

/// One backtest output row.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct BacktestRow {
    pub origin: f64,
    pub target: f64,
    pub horizon: usize,
    pub p50: f64,
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
    let step = median_step(times);
    let mut f = Forecaster::new(config.clone());
    let mut out = Vec::new();
    let first = origins.start.map(|s| times.partition_point(|&t| t < s)).unwrap_or(1);
    let horizons: Vec<f64> = (1..=horizon).map(|k| k as f64 * step).collect();
    for i in 0..times.len() {
        f.observe(times[i], values[i]);
        progress(i);
        if i < first || (i - first) % origins.every.max(1) != 0 {
            continue;
        }
        if let Some(fc) = f.forecast(&horizons) {
            for (k, p) in fc.points.iter().enumerate() {
                let target = times.get(i + k + 1).copied().unwrap_or(times[i] + p.horizon_s);
                out.push(BacktestRow { origin: times[i], target, horizon: k + 1, p50: p.p50, p90: p.p90 });
            }
        }
    }
    out
}

/// One simulated decision.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct PlanRow {
    pub t: f64,
    pub desired: u32,
}

/// Replays the policy over a demand series, starting from `config.min_instances`.
pub fn simulate(
    times: &[f64],
    values: &[f64],
    config: &PolicyConfig,
    mut progress: impl FnMut(usize),
) -> Vec<PlanRow> {
    let mut policy = Policy::new(config.clone());
    let mut f = Forecaster::new(ForecastConfig::default());
    let mut current = config.min_instances;
    let mut plan = Vec::with_capacity(times.len());
    for i in 0..times.len() {
        f.observe(times[i], values[i]);
        let fc = f.forecast(&[config.lead_s()]);
        let obs = Observation { t: times[i], demand: values[i], saturated: false, current_instances: current };
        let d = policy.decide(&obs, fc.as_ref());
        current = d.desired;
        plan.push(PlanRow { t: times[i], desired: d.desired });
        progress(i);
    }
    plan
}

/// Median spacing of a series, seconds (1 for fewer than two points).
pub fn median_step(times: &[f64]) -> f64 {
    let mut d: Vec<f64> = times.windows(2).map(|w| w[1] - w[0]).filter(|x| *x > 0.0).collect();
    if d.is_empty() {
        return 1.0;
    }
    d.sort_by(f64::total_cmp);
    d[d.len() / 2]
}
