//! `headroom forecast`: the forecast at each horizon up to the lead, and a small terminal chart
//! of recent demand with the forecast's P50 and P90 band after it.

use std::fmt::Write as _;

use headroom_common::duration;

use super::{answer, f, num};
use crate::cli::ForecastArgs;
use crate::control::protocol::{PROTOCOL_VERSION, Request};
use headroom_common::stdout;

/// `headroom forecast`.
pub fn forecast(a: &ForecastArgs) -> anyhow::Result<()> {
    let Some(v) = answer(
        &a.query,
        Request::Forecast {
            v: PROTOCOL_VERSION,
            metric: a.metric.clone(),
        },
    )?
    else {
        return Ok(());
    };
    let metric = v["metric"].as_str().unwrap_or("?");
    let fc = &v["forecast"];
    let mut o = String::new();
    let _ = writeln!(o, "{metric}: now {}", num(f(&v["value"])));
    if !fc.is_object() {
        let _ = writeln!(o, "no forecast yet: the model needs more history");
        return stdout::print(&o);
    }
    // The P50 is the scored models' weighted combination; `model` is the one scoring best.
    let _ = writeln!(
        o,
        "models combined by their recent error, led by {}{}",
        fc["model"].as_str().unwrap_or("?"),
        fc["fallback"]
            .as_str()
            .map(|r| format!(" (fallback: {r})"))
            .unwrap_or_default()
    );
    let _ = writeln!(o, "  horizon        p50        p90        p99");
    let lead = v["lead_s"].as_f64();
    for p in fc["points"].as_array().into_iter().flatten() {
        let h = f(&p["horizon_s"]);
        let mark = if lead.is_some_and(|l| (l - h).abs() < 0.5) {
            "  <- lead"
        } else {
            ""
        };
        let _ = writeln!(
            o,
            "  {:>7} {:>10} {:>10} {:>10}{mark}",
            duration::format(std::time::Duration::from_secs(h as u64)),
            num(f(&p["p50"])),
            num(f(&p["p90"])),
            num(f(&p["p99"]))
        );
    }
    let recent: Vec<f64> = v["recent"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|p| f(&p["mean"]))
        .collect();
    let band: Vec<(f64, f64)> = fc["points"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|p| (f(&p["p50"]), f(&p["p90"])))
        .collect();
    o.push_str(&chart(&recent, &band, 60, 10));
    stdout::print(&o)
}

/// A small terminal chart: history as `*`, the forecast P50 as `o` with its P90 band as `:`.
fn chart(history: &[f64], band: &[(f64, f64)], width: usize, height: usize) -> String {
    if history.is_empty() {
        return String::new();
    }
    let hist_w = width.saturating_sub(band.len()).max(1);
    let step = history.len().div_ceil(hist_w).max(1);
    let cols: Vec<f64> = history
        .chunks(step)
        .map(|c| c.iter().sum::<f64>() / c.len() as f64)
        .collect();
    let finite = |x: &f64| x.is_finite();
    let hi = cols
        .iter()
        .copied()
        .chain(band.iter().map(|b| b.1))
        .filter(finite)
        .fold(f64::MIN, f64::max);
    let lo = cols
        .iter()
        .copied()
        .chain(band.iter().map(|b| b.0))
        .filter(finite)
        .fold(f64::MAX, f64::min);
    if !(hi.is_finite() && lo.is_finite()) {
        return String::new();
    }
    let span = (hi - lo).max(1e-9);
    let row = |v: f64| (((v - lo) / span) * (height - 1) as f64).round() as usize;
    let mut grid = vec![vec![' '; cols.len() + band.len() + 1]; height];
    for (x, v) in cols.iter().enumerate() {
        if v.is_finite() {
            grid[height - 1 - row(*v).min(height - 1)][x] = '*';
        }
    }
    grid.iter_mut().for_each(|r| r[cols.len()] = '|');
    for (i, (p50, p90)) in band.iter().enumerate() {
        let x = cols.len() + 1 + i;
        if p50.is_finite() && p90.is_finite() {
            for y in row(*p50)..=row(*p90).min(height - 1) {
                grid[height - 1 - y][x] = ':';
            }
            grid[height - 1 - row(*p50).min(height - 1)][x] = 'o';
        }
    }
    let mut out = String::new();
    for (i, r) in grid.iter().enumerate() {
        let label = if i == 0 {
            num(hi)
        } else if i == height - 1 {
            num(lo)
        } else {
            String::new()
        };
        let _ = writeln!(out, "{label:>8} {}", r.iter().collect::<String>());
    }
    let _ = writeln!(
        out,
        "{:>8} last hour{:>w$}",
        "",
        "| forecast (o p50, : to p90)",
        w = cols.len().saturating_sub(9) + 28
    );
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn chart_draws_history_and_band() {
        let hist: Vec<f64> = (0..120).map(|i| i as f64 / 10.0).collect();
        let out = chart(&hist, &[(12.0, 13.0), (13.0, 15.0)], 40, 6);
        assert!(
            out.contains('*') && out.contains('o') && out.contains(':'),
            "{out}"
        );
        assert_eq!(out.lines().count(), 7);
    }
}
