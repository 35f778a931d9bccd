//! Seasonal naive: the value as many whole periods before the target time as it takes to reach
//! the history (one within the first period ahead, two in the second...), found by time (the row
//! nearest that time), so gaps in the trace do not shift it.

use super::View;
use super::decompose::Profile;
use super::history::nearest;

/// Fills `out[k-1]` with the value nearest `t_last + k*step - n*period`, `n` the fewest whole
/// periods that reach back to the history (NaN where a gap leaves no row within half a row's
/// spacing of it).
pub(crate) fn seasonal_naive(view: &View, period: f64, out: &mut [f64]) {
    let Some(&last) = view.times.last() else {
        out.iter_mut().for_each(|o| *o = f64::NAN);
        return;
    };
    for (k, o) in out.iter_mut().enumerate() {
        let ahead = (k + 1) as f64 * view.step;
        let back = period * (ahead / period - 1e-9).ceil().max(1.0);
        let target = last + ahead - back;
        *o = nearest(view.times, target, view.step, view.bucket_s)
            .map_or(f64::NAN, |i| view.values[i]);
    }
}

/// The last deseasonalised value put back on the seasonal profile at each target time.
pub(crate) fn seasonal_level(
    times: &[f64],
    values: &[f64],
    step: f64,
    p: &Profile,
    out: &mut [f64],
) {
    let (Some(&t), Some(&y)) = (times.last(), values.last()) else {
        return;
    };
    let level = y - p.at(t);
    for (k, o) in out.iter_mut().enumerate() {
        *o = level + p.at(t + (k + 1) as f64 * step);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn looks_up_by_time_across_a_gap() {
        // Period 100 s, cadence 10 s, rows 30..=50 missing.
        let t: Vec<f64> = (0..30).chain(51..60).map(|i| i as f64 * 10.0).collect();
        let y: Vec<f64> = t.iter().map(|t| t / 10.0).collect();
        let view = View {
            times: &t,
            values: &y,
            step: 10.0,
            bucket_s: 60.0,
            profile: None,
        };
        let mut out = [0.0; 3];
        seasonal_naive(&view, 100.0, &mut out);
        // Last row is t = 590: targets 600, 610, 620 -> 500 (missing), 510, 520.
        assert!(out[0].is_nan());
        assert_eq!(out[1], 51.0);
        assert_eq!(out[2], 52.0);
    }
}
