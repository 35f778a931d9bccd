//! `simulate --plot` and `backtest --plot` end to end on a synthetic trace shaped like a social
//! media volume series (16,000 five-minute rows of small values with a few tall single-row
//! spikes): what is drawn reaches each series' maximum and the axis fits it.

use std::path::Path;

use crate::cli::{BacktestArgs, HistoryWindow, SimulateArgs};
use crate::replay::plot::read;

const C: f64 = 20.0;
const U: f64 = 0.7;
/// The row of the tallest spike.
const TALLEST: usize = 5_432;

/// The trace: a daily wave between about 20 and 80, and spikes, the tallest 1,673.
fn trace(dir: &Path) -> (std::path::PathBuf, Vec<f64>) {
    let mut values: Vec<f64> = (0..16_000)
        .map(|i| {
            let day = (i as f64 * 300.0 / 86_400.0 * std::f64::consts::TAU).sin();
            (50.0 + 30.0 * day + (i * 7919 % 13) as f64).round()
        })
        .collect();
    for (i, v) in [
        (3_001, 930.0),
        (TALLEST, 1673.0),
        (9_100, 600.0),
        (12_345, 410.0),
    ] {
        values[i] = v;
    }
    let mut csv = String::from("timestamp,value\n");
    for (i, v) in values.iter().enumerate() {
        csv.push_str(&format!("{},{v}\n", 1_424_986_973 + 300 * i));
    }
    let path = dir.join("trace.csv");
    std::fs::write(&path, csv).expect("write the trace");
    (path, values)
}

fn max(v: impl IntoIterator<Item = f64>) -> f64 {
    v.into_iter().fold(f64::NEG_INFINITY, f64::max)
}

/// Each line's largest value drawn, read back through the y axis's labels.
fn drawn_maxima(svg: &str) -> Vec<(String, f64)> {
    read::lines(svg)
        .into_iter()
        .map(|(label, pts)| {
            let top = pts.iter().map(|p| p.1).fold(f64::INFINITY, f64::min);
            (label, read::value_at(svg, top))
        })
        .collect()
}

/// The axis's top and its tick step, and how much one pixel is worth.
fn axis(svg: &str) -> (f64, f64, f64) {
    let ticks = read::y_ticks(svg);
    let values: Vec<f64> = ticks.iter().map(|t| read::label_value(&t.1)).collect();
    let n = values.len();
    let per_px = (values[n - 1] - values[0]) / (ticks[0].0 - ticks[n - 1].0);
    (values[n - 1], values[1] - values[0], per_px)
}

#[test]
fn simulate_draws_every_peak_and_the_axis_fits_them() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (input, demand) = trace(dir.path());
    let (output, plot) = (dir.path().join("plan.csv"), dir.path().join("plan.svg"));
    crate::replay::simulate(&SimulateArgs {
        input,
        config: None,
        capacity_per_instance: Some(C),
        target_utilization: Some(U),
        warmup: Some(300.0),
        min: None,
        max: Some(100_000),
        policy: None,
        output: output.clone(),
        plot: Some(plot.clone()),
        decision_interval: None,
        stabilization: None,
        max_scale_in_step: None,
        max_scale_in_fraction: None,
        shortfall_budget: None,
        spend_ceiling: None,
        scale_in: None,
        window: HistoryWindow {
            history: std::time::Duration::from_secs(14 * 86_400),
        },
    })
    .expect("simulate");
    let svg = std::fs::read_to_string(&plot).expect("the plot");
    let plan = std::fs::read_to_string(&output).expect("the plan");
    let planned = max(plan
        .lines()
        .skip(1)
        .filter_map(|l| l.split(',').nth(1)?.parse::<f64>().ok()));
    // Target tracking holds the count the tallest spike needs for five minutes: it peaks there.
    let tracking = (1673.0 / (C * U)).ceil() * C;
    let want = [
        ("target tracking at 70%", tracking),
        ("planned capacity", planned * C),
        ("demand", max(demand.iter().copied())),
    ];
    let (top, step, per_px) = axis(&svg);
    let drawn = drawn_maxima(&svg);
    assert_eq!(drawn.len(), want.len());
    for ((label, got), (name, data)) in drawn.iter().zip(want) {
        assert_eq!(label, name);
        assert!(
            (got - data).abs() <= 0.1 * per_px,
            "{label}: drawn up to {got}, its data up to {data}"
        );
    }
    let highest = max(want.iter().map(|w| w.1));
    assert!(
        top >= highest && top - highest < step,
        "axis top {top}, step {step}, data max {highest}"
    );
    // No plan sees a single-row spike coming: the plan is short at the tallest one.
    let (left, right) = read::x_edges(&svg);
    let at = left + TALLEST as f64 / (demand.len() - 1) as f64 * (right - left);
    let spans = read::spans(&svg);
    assert!(
        spans.iter().any(|&(a, b)| a <= at && at <= b),
        "no span at x = {at}: {spans:?}"
    );
    assert!(svg.contains("plan under-provisioned ("));
}

#[test]
fn backtest_draws_the_actual_peak() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (input, demand) = trace(dir.path());
    let plot = dir.path().join("bt.svg");
    crate::replay::backtest(&BacktestArgs {
        input,
        horizon: 1,
        start: None,
        every: 1,
        output: dir.path().join("bt.csv"),
        plot: Some(plot.clone()),
        window: HistoryWindow {
            history: std::time::Duration::from_secs(14 * 86_400),
        },
    })
    .expect("backtest");
    let svg = std::fs::read_to_string(&plot).expect("the plot");
    let (top, step, per_px) = axis(&svg);
    let drawn = drawn_maxima(&svg);
    let actual = drawn.iter().find(|d| d.0 == "actual").map(|d| d.1);
    let peak = max(demand.iter().copied());
    assert!(
        actual.is_some_and(|a| (a - peak).abs() <= 0.1 * per_px),
        "{actual:?}"
    );
    // The band's P90 may reach above the actual: the axis holds the peak, ticks 1/2/5 × 10^k.
    let mantissa = step / 10f64.powf(step.log10().floor());
    assert!(top >= peak && [1.0, 2.0, 5.0].iter().any(|m| (m - mantissa).abs() < 1e-9));
}
