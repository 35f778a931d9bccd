//! Seasonal profile in the spirit of STL/MSTL: the series minus a one-period moving average,
//! averaged by phase of the period over the last few cycles and smoothed. Phases are computed
//! from timestamps, so gaps and irregular cadence do not shift the profile.

/// Cycles averaged into the profile.
const CYCLES: f64 = 4.0;
/// Most phase bins.
const MAX_BINS: usize = 1440;

/// A periodic component indexed by phase.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Profile {
    /// Period, seconds.
    pub(crate) period: f64,
    bins: Vec<f64>,
}

impl Profile {
    /// Estimates the profile of `period` seconds from the series (cadence `step`).
    pub(crate) fn fit(times: &[f64], values: &[f64], period: f64, step: f64) -> Option<Profile> {
        let n = times.len();
        let last = *times.last()?;
        let nbins = ((period / step).round() as usize).clamp(2, MAX_BINS);
        let from_t = last - CYCLES * period - period / 2.0;
        let first = times.partition_point(|&t| t < from_t);
        // Centred moving average over one period (by time): a running sum of rows [lo, hi).
        let (mut lo, mut hi, mut sum_window) = (first, first, 0.0);
        let mut sum = vec![0.0; nbins];
        let mut cnt = vec![0u32; nbins];
        for i in first..n {
            let t = times[i];
            if t + period / 2.0 > last {
                break;
            }
            if t - period / 2.0 < times[0] {
                continue;
            }
            while hi < n && times[hi] <= t + period / 2.0 {
                sum_window += values[hi];
                hi += 1;
            }
            while lo < hi && times[lo] < t - period / 2.0 {
                sum_window -= values[lo];
                lo += 1;
            }
            if hi <= lo {
                continue;
            }
            let ma = sum_window / (hi - lo) as f64;
            let b = bin(t, period, nbins);
            sum[b] += values[i] - ma;
            cnt[b] += 1;
        }
        let filled = cnt.iter().filter(|&&c| c > 0).count();
        if filled * 2 < nbins {
            return None;
        }
        let raw: Vec<Option<f64>> = sum
            .iter()
            .zip(&cnt)
            .map(|(s, &c)| (c > 0).then(|| s / c as f64))
            .collect();
        // Circular smoothing over about 1/96 of the period, skipping empty bins.
        let half = (nbins / 192).max(1) as isize;
        let mut bins: Vec<f64> = (0..nbins as isize)
            .map(|b| {
                let (mut s, mut c) = (0.0, 0.0);
                for d in -half..=half {
                    if let Some(v) = raw[(b + d).rem_euclid(nbins as isize) as usize] {
                        s += v;
                        c += 1.0;
                    }
                }
                if c > 0.0 { s / c } else { 0.0 }
            })
            .collect();
        let mean = bins.iter().sum::<f64>() / nbins as f64;
        bins.iter_mut().for_each(|v| *v -= mean);
        Some(Profile { period, bins })
    }

    /// The seasonal component at time `t`.
    pub(crate) fn at(&self, t: f64) -> f64 {
        self.bins[bin(t, self.period, self.bins.len())]
    }
}

/// Whether a profile of `period` may be taken out of the series: unless, fitted without the last
/// cycle, it makes that cycle clearly harder to forecast. A period the autocorrelation finds may
/// still be one a profile cannot use (a cycle that stopped, a level that moves more than it
/// cycles), and a profile is taken out of every member: a wrong one makes all of them worse.
///
/// Per row of the last cycle, the change over `ahead` rows with the profile taken out is compared
/// with the change of the series as it is, `ahead` at least an eighth of the period (over a few
/// rows a smooth cycle barely moves, and any mismatch of its shape would outweigh it). The
/// profile is refused when the first is larger on average by more than twice the standard error
/// of the mean: a real season sometimes fits one cycle a little worse (a quieter weekend day),
/// and is kept.
pub(crate) fn holds_on_the_last_cycle(
    times: &[f64],
    values: &[f64],
    period: f64,
    step: f64,
    ahead: usize,
) -> bool {
    let Some(&last) = times.last() else {
        return false;
    };
    let cut = times.partition_point(|&t| t <= last - period);
    let ahead = ahead.max(((period / step) / 8.0).round() as usize).max(1);
    // Too little history before the last cycle to fit a profile on: nothing to judge by, and
    // the autocorrelation's word stands.
    if cut < ahead {
        return true;
    }
    let Some(profile) = Profile::fit(&times[..cut], &values[..cut], period, step) else {
        return true;
    };
    let (mut n, mut sum, mut sum_sq) = (0.0, 0.0, 0.0);
    for i in cut..times.len() {
        let j = i - ahead;
        let raw = (values[i] - values[j]).abs();
        let taken_out =
            ((values[i] - profile.at(times[i])) - (values[j] - profile.at(times[j]))).abs();
        let d = taken_out - raw;
        n += 1.0;
        sum += d;
        sum_sq += d * d;
    }
    if n < 2.0 {
        return true;
    }
    let mean = sum / n;
    let var = ((sum_sq - n * mean * mean) / (n - 1.0)).max(0.0);
    mean <= 2.0 * (var / n).sqrt()
}

fn bin(t: f64, period: f64, nbins: usize) -> usize {
    let cycles = t / period;
    let phase = cycles - cycles.floor();
    ((phase * nbins as f64) as usize).min(nbins - 1)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn recovers_a_sine_through_gaps() {
        let p = 86_400.0;
        let (t, y): (Vec<f64>, Vec<f64>) = (0..6 * 1440)
            .filter(|i| !(4000..4300).contains(i))
            .map(|i| {
                let t = i as f64 * 60.0;
                (
                    t,
                    100.0 + t / 3600.0 + 20.0 * (2.0 * std::f64::consts::PI * t / p).sin(),
                )
            })
            .unzip();
        let prof = Profile::fit(&t, &y, p, 60.0).expect("profile");
        for h in [0.0, 6.0, 12.0, 18.0] {
            let tt = h * 3600.0;
            let want = 20.0 * (2.0 * std::f64::consts::PI * tt / p).sin();
            assert!(
                (prof.at(tt) - want).abs() < 2.0,
                "{h}: {} vs {want}",
                prof.at(tt)
            );
        }
    }

    /// Five days of 5-minute rows, a daily cycle of `amplitude` on each day in turn.
    fn days(amplitude: impl Fn(usize) -> f64) -> (Vec<f64>, Vec<f64>) {
        let p = 86_400.0;
        (0..5 * 288)
            .map(|i| {
                let t = i as f64 * 300.0;
                let wave = (2.0 * std::f64::consts::PI * t / p).sin();
                // A little deterministic roughness, so no two rows are alike.
                (
                    t,
                    100.0 + amplitude(i / 288) * wave + ((i * 37) % 11) as f64 * 0.1,
                )
            })
            .unzip()
    }

    #[test]
    fn a_daily_cycle_is_kept_even_on_a_quieter_day() {
        let (t, y) = days(|_| 20.0);
        assert!(holds_on_the_last_cycle(&t, &y, 86_400.0, 300.0, 3));
        let (t, y) = days(|d| if d == 4 { 12.0 } else { 20.0 });
        assert!(holds_on_the_last_cycle(&t, &y, 86_400.0, 300.0, 3));
    }

    #[test]
    fn a_cycle_that_turned_over_is_not_taken_out() {
        let (t, y) = days(|d| if d == 4 { -20.0 } else { 20.0 });
        assert!(!holds_on_the_last_cycle(&t, &y, 86_400.0, 300.0, 3));
    }

    #[test]
    fn too_little_history_to_judge_keeps_the_period() {
        let (t, y) = days(|_| 20.0);
        assert!(holds_on_the_last_cycle(
            &t[..300],
            &y[..300],
            86_400.0,
            300.0,
            3
        ));
    }
}
