//! Seasonality detection: autocorrelation on a regular time grid, so gaps and irregular
//! cadence do not shift the lags, with the grid's rarest extremes clipped, so one burst does not
//! hide a cycle. A period is only accepted with at least three cycles of data.

/// Well-known periods tried first (hourly, daily, weekly), seconds.
const KNOWN: [f64; 3] = [3_600.0, 86_400.0, 604_800.0];
/// Most grid cells the autocorrelation is computed on.
const MAX_CELLS: usize = 2048;
/// Cycles of history needed before a period is trusted.
pub(crate) const MIN_CYCLES: f64 = 3.0;
/// Autocorrelation a period must reach.
const MIN_ACF: f64 = 0.3;

/// The dominant period of the series in seconds, if the data shows one.
pub(crate) fn detect(times: &[f64], values: &[f64], step: f64) -> Option<f64> {
    let (first, last) = (*times.first()?, *times.last()?);
    let span = last - first;
    if span <= 0.0 || step <= 0.0 {
        return None;
    }
    let cell = (span / MAX_CELLS as f64).max(step);
    let mut grid = regular_grid(times, values, first, cell);
    let n = grid.len();
    if n < 12 {
        return None;
    }
    clip_extremes(&mut grid);
    let z = detrend(&grid);
    let var: f64 = z.iter().map(|v| v * v).sum::<f64>() / n as f64;
    if var <= 0.0 {
        return None;
    }
    let max_lag = ((n as f64) / MIN_CYCLES).floor() as usize;
    if max_lag < 4 {
        return None;
    }
    let acf: Vec<f64> = (0..=max_lag)
        .map(|lag| {
            let s: f64 = z[lag..].iter().zip(&z).map(|(a, b)| a * b).sum();
            s / (n - lag) as f64 / var
        })
        .collect();
    // Candidates: grid lags with the period they stand for (known periods keep their exact value).
    let mut candidates: Vec<(usize, f64, bool)> = Vec::new();
    for p in KNOWN {
        if p > step * 4.0 && span >= MIN_CYCLES * p {
            let lag = (p / cell).round() as usize;
            // The grid lag nearest the period may sit beside the peak.
            if let Some(l) = (lag.saturating_sub(1)..=lag + 1)
                .filter(|&l| l <= max_lag)
                .max_by(|&a, &b| acf[a].total_cmp(&acf[b]))
            {
                candidates.push((l, p, true));
            }
        }
    }
    for lag in 4..max_lag {
        if acf[lag] > acf[lag - 1] && acf[lag] >= acf[lag + 1] {
            candidates.push((lag, lag as f64 * cell, false));
        }
    }
    let mut accepted: Vec<(f64, f64)> = Vec::new();
    for (lag, period, known) in candidates {
        if lag < 4 || lag > max_lag {
            continue;
        }
        let score = acf[lag];
        if score < MIN_ACF || score - acf[lag / 2] < 0.1 {
            continue;
        }
        // Known periods win ties: a daily cycle also peaks at two days.
        let score = if known { score + 0.05 } else { score };
        accepted.push((period, score));
    }
    let top = accepted.iter().copied().max_by(|a, b| a.1.total_cmp(&b.1));
    // A cycle also peaks at its multiples: a divisor of the winner scoring close to it wins.
    let best = top.map(|(tp, ts)| {
        accepted
            .iter()
            .filter(|(p, s)| {
                let ratio = tp / p;
                *s >= ts - 0.1 && ratio >= 1.5 && (ratio - ratio.round()).abs() < 0.02 * ratio
            })
            .min_by(|a, b| a.0.total_cmp(&b.0))
            .copied()
            .unwrap_or((tp, ts))
    });
    best.map(|(p, _)| p)
}

/// Share of cells at each end clipped before the autocorrelation is computed.
const CLIPPED: f64 = 0.005;

/// Clips `grid` to its [`CLIPPED`] and 1 - [`CLIPPED`] quantiles. The autocorrelation is a
/// ratio of squares: one burst a thousand times the usual level outweighs every cycle of the
/// window, and no period is found for as long as it is in the history. A peak that comes back
/// every cycle fills far more cells than that, and is kept; a clip at a few MADs around the
/// median, as the models' fitting uses, would cut such peaks off, so this one is by share.
fn clip_extremes(grid: &mut [f64]) {
    let mut sorted = grid.to_vec();
    sorted.sort_by(f64::total_cmp);
    let at = |q: f64| sorted[((sorted.len() - 1) as f64 * q).round() as usize];
    let (lo, hi) = (at(CLIPPED), at(1.0 - CLIPPED));
    grid.iter_mut().for_each(|v| *v = v.clamp(lo, hi));
}

/// Means of `values` over cells of `cell` seconds from `start`; empty cells carry the last value.
fn regular_grid(times: &[f64], values: &[f64], start: f64, cell: f64) -> Vec<f64> {
    let last = times.last().copied().unwrap_or(start);
    let n = ((last - start) / cell).floor() as usize + 1;
    let mut sum = vec![0.0; n];
    let mut cnt = vec![0u32; n];
    for (&t, &v) in times.iter().zip(values) {
        let i = (((t - start) / cell).floor() as usize).min(n - 1);
        sum[i] += v;
        cnt[i] += 1;
    }
    let mut out = Vec::with_capacity(n);
    let mut prev = values.first().copied().unwrap_or(0.0);
    for (s, c) in sum.iter().zip(&cnt) {
        if *c > 0 {
            prev = s / *c as f64;
        }
        out.push(prev);
    }
    out
}

/// The series minus its least-squares line.
fn detrend(y: &[f64]) -> Vec<f64> {
    let n = y.len() as f64;
    let mx = (n - 1.0) / 2.0;
    let my = y.iter().sum::<f64>() / n;
    let (mut sxy, mut sxx) = (0.0, 0.0);
    for (i, v) in y.iter().enumerate() {
        let dx = i as f64 - mx;
        sxy += dx * (v - my);
        sxx += dx * dx;
    }
    let slope = if sxx > 0.0 { sxy / sxx } else { 0.0 };
    y.iter()
        .enumerate()
        .map(|(i, v)| v - my - slope * (i as f64 - mx))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn series(days: f64, step: f64, period: f64, noise: f64) -> (Vec<f64>, Vec<f64>) {
        let n = (days * 86_400.0 / step) as usize;
        let mut rng = fastrand_like(7);
        let t: Vec<f64> = (0..n).map(|i| i as f64 * step).collect();
        let y = t
            .iter()
            .map(|t| {
                10.0 + 5.0 * (2.0 * std::f64::consts::PI * t / period).sin()
                    + 0.001 * t / 60.0
                    + noise * (rng() - 0.5)
            })
            .collect();
        (t, y)
    }

    fn fastrand_like(seed: u64) -> impl FnMut() -> f64 {
        let mut s = seed;
        move || {
            s ^= s << 13;
            s ^= s >> 7;
            s ^= s << 17;
            (s >> 11) as f64 / (1u64 << 53) as f64
        }
    }

    #[test]
    fn finds_daily_with_three_days() {
        let (t, y) = series(4.0, 60.0, 86_400.0, 2.0);
        assert_eq!(detect(&t, &y, 60.0), Some(86_400.0));
    }

    #[test]
    fn needs_three_cycles() {
        let (t, y) = series(2.5, 60.0, 86_400.0, 0.5);
        assert_eq!(detect(&t, &y, 60.0), None);
    }

    #[test]
    fn finds_an_unusual_period() {
        let (t, y) = series(1.0, 10.0, 1_200.0, 1.0);
        let p = detect(&t, &y, 10.0).expect("a period");
        assert!((p - 1_200.0).abs() <= 60.0, "{p}");
    }

    #[test]
    fn one_huge_burst_does_not_hide_a_cycle() {
        // Two days of a 20-minute cycle at 10-second samples, and one burst of a thousand times
        // the level in the middle.
        let (t, mut y) = series(2.0, 10.0, 1_200.0, 1.0);
        y[8000] = 10_000.0;
        let p = detect(&t, &y, 10.0).expect("a period");
        assert!((p - 1_200.0).abs() <= 60.0, "{p}");
    }

    #[test]
    fn noise_has_no_period() {
        let mut rng = fastrand_like(3);
        let t: Vec<f64> = (0..5000).map(|i| i as f64 * 60.0).collect();
        let y: Vec<f64> = t.iter().map(|_| rng()).collect();
        assert_eq!(detect(&t, &y, 60.0), None);
    }

    #[test]
    fn gaps_do_not_shift_the_period() {
        let (mut t, mut y) = series(5.0, 60.0, 86_400.0, 1.0);
        // Drop six hours in the middle.
        let keep: Vec<usize> = (0..t.len())
            .filter(|&i| !(3000..3360).contains(&i))
            .collect();
        t = keep.iter().map(|&i| t[i]).collect();
        y = keep.iter().map(|&i| y[i]).collect();
        assert_eq!(detect(&t, &y, 60.0), Some(86_400.0));
    }
}
