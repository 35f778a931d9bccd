//! The `--plot` pictures of `backtest` and `simulate`: which series they draw and where each
//! comes from.
//!
//! Invariants: `simulate`'s picture takes the plan, target tracking and the under-provisioned
//! spans from the ledger's judgement of each row ([`Judged`]), the counts and the rule its printed
//! ledger adds up, so the picture and the numbers cannot disagree; nothing is judged here. Demand
//! is the trace as read. Capacity is a count times the capacity per instance, drawn as steps (a
//! count holds until the next decision).

use headroom_model::PolicyConfig;
use headroom_model::ledger::Judged;
use headroom_model::replay::BacktestRow;

use super::plot::{self, Band, Chart, Line, Spans};

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

/// Demand against the plan's capacity and target tracking's on the same demand, the plan's
/// under-provisioned time shaded.
pub(super) fn simulate(
    title: &str,
    times: &[f64],
    values: &[f64],
    judged: &[Judged],
    config: &PolicyConfig,
) -> String {
    let cap = config.capacity_per_instance;
    let mut short: Vec<(f64, f64)> = Vec::new();
    let mut short_s = 0.0;
    for j in judged.iter().filter(|j| j.plan_short) {
        short_s += j.dt;
        match short.last_mut() {
            Some(last) if j.t <= last.1 + 1e-9 => last.1 = j.t + j.dt,
            _ => short.push((j.t, j.t + j.dt)),
        }
    }
    let short_label = format!("plan under-provisioned ({:.0} min)", short_s / 60.0);
    let tracking_label = format!(
        "target tracking at {:.0}%",
        100.0 * config.target_utilization
    );
    plot::render(&Chart {
        title,
        spans: Some(Spans {
            label: &short_label,
            color: "#d62728",
            spans: short,
        }),
        band: None,
        lines: vec![
            Line {
                label: &tracking_label,
                color: "#f39c12",
                points: judged
                    .iter()
                    .map(|j| (j.t, f64::from(j.shadow) * cap))
                    .collect(),
                steps: true,
            },
            Line {
                label: "planned capacity",
                color: "#1f5fbf",
                points: judged
                    .iter()
                    .map(|j| (j.t, f64::from(j.plan) * cap))
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
