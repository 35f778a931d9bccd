//! The `--plot` pictures of `backtest` and `simulate`: which series they draw and where each
//! comes from.
//!
//! Invariants: demand is the trace as read; the plan is the counts `simulate` writes. Capacity
//! is a count times the capacity per instance, drawn as steps (a count holds until the next
//! decision).

use headroom_model::PolicyConfig;
use headroom_model::replay::{BacktestRow, PlanRow};

use super::plot::{self, Band, Chart, Line};

/// Actual demand against the forecast `horizon` rows ahead (P50 and the P50..P90 band).
pub(super) fn backtest(
    title: &str,
    times: &[f64],
    values: &[f64],
    rows: &[BacktestRow],
    horizon: usize,
) -> String {
    let at = || rows.iter().filter(|r| r.horizon == horizon);
    let first = at().next().map_or(f64::NEG_INFINITY, |r| r.target);
    let actual = times
        .iter()
        .zip(values)
        .filter(|(t, _)| **t >= first)
        .map(|(t, v)| (*t, *v))
        .collect();
    plot::render(&Chart {
        title,
        spans: None,
        band: Some(Band {
            label: "P50..P90",
            color: "#69c",
            points: at().map(|r| (r.target, r.p50, r.p90)).collect(),
        }),
        lines: vec![
            Line {
                label: "actual",
                color: "black",
                points: actual,
                steps: false,
            },
            Line {
                label: "P50",
                color: "#036",
                points: at().map(|r| (r.target, r.p50)).collect(),
                steps: false,
            },
        ],
    })
}

/// Demand against the plan's capacity.
pub(super) fn simulate(
    title: &str,
    times: &[f64],
    values: &[f64],
    plan: &[PlanRow],
    config: &PolicyConfig,
) -> String {
    let cap = config.capacity_per_instance;
    plot::render(&Chart {
        title,
        spans: None,
        band: None,
        lines: vec![
            Line {
                label: "planned capacity",
                color: "#1f5fbf",
                points: plan
                    .iter()
                    .map(|p| (p.t, f64::from(p.desired) * cap))
                    .collect(),
                steps: true,
            },
            Line {
                label: "demand",
                color: "black",
                points: times.iter().zip(values).map(|(t, v)| (*t, *v)).collect(),
                steps: false,
            },
        ],
    })
}

#[cfg(test)]
mod tests;
