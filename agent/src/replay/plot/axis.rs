//! Axes for the `--plot` charts: "nice" value ticks and their labels, and time labels.
//!
//! Invariants: value ticks are evenly spaced by a step of 1, 2 or 5 × 10^k; the axis runs from a
//! multiple of the step at or below the data's low to the first multiple at or above its high, so
//! its top is less than one step above the data's maximum; every label on an axis is written the
//! same way (one unit suffix, one number of decimals: the fewest that tell the ticks apart), zero
//! written "0".

/// A value axis: from `lo` to `hi` in steps of `step`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(super) struct Ticks {
    /// Bottom of the axis (a multiple of the step).
    pub lo: f64,
    /// Top of the axis (a multiple of the step).
    pub hi: f64,
    /// Distance between ticks: `mantissa × 10^exp`.
    pub step: f64,
    /// Decimal exponent of the step.
    exp: i32,
    /// Multiples of the step at the bottom and the top.
    k: (i64, i64),
}

impl Ticks {
    /// About `target` ticks covering `lo..=hi` (an empty or inverted range is widened to 1).
    pub(super) fn nice(lo: f64, hi: f64, target: usize) -> Ticks {
        let (lo, hi) = if lo.is_finite() && hi.is_finite() && hi > lo {
            (lo, hi)
        } else if lo.is_finite() {
            (lo, lo + 1.0)
        } else {
            (0.0, 1.0)
        };
        let raw = (hi - lo) / target.max(1) as f64;
        let mut exp = raw.log10().floor() as i32;
        let base = 10f64.powi(exp);
        let mantissa = match raw / base {
            r if r <= 1.0 + 1e-9 => 1.0,
            r if r <= 2.0 + 1e-9 => 2.0,
            r if r <= 5.0 + 1e-9 => 5.0,
            _ => {
                exp += 1;
                1.0
            }
        };
        let step = mantissa * 10f64.powi(exp);
        // A hair of tolerance so a maximum that is a multiple of the step is the top itself.
        let k_lo = (lo / step + 1e-9).floor() as i64;
        let k_hi = (hi / step - 1e-9).ceil().max(k_lo as f64 + 1.0) as i64;
        Ticks {
            lo: k_lo as f64 * step,
            hi: k_hi as f64 * step,
            step,
            exp,
            k: (k_lo, k_hi),
        }
    }

    /// The tick values, bottom to top.
    pub(super) fn values(&self) -> Vec<f64> {
        (self.k.0..=self.k.1)
            .map(|k| k as f64 * self.step)
            .collect()
    }

    /// The tick labels, bottom to top, all in one format.
    pub(super) fn labels(&self) -> Vec<String> {
        let big = self.lo.abs().max(self.hi.abs());
        let (unit_exp, suffix) = match big {
            b if b >= 1e13 => (12, "T"),
            b if b >= 1e10 => (9, "G"),
            b if b >= 1e7 => (6, "M"),
            b if b >= 1e4 => (3, "k"),
            _ => (0, ""),
        };
        let decimals = usize::try_from(unit_exp - self.exp).unwrap_or(0);
        let unit = 10f64.powi(unit_exp);
        self.values()
            .into_iter()
            .map(|v| {
                if v == 0.0 {
                    "0".to_string()
                } else {
                    format!("{:.*}{suffix}", decimals, v / unit)
                }
            })
            .collect()
    }
}

/// A time label for unix seconds `t` (UTC), or the number itself if it is no date.
pub(super) fn when(t: f64) -> String {
    chrono::DateTime::from_timestamp(t as i64, 0).map_or_else(
        || format!("{t:.0}"),
        |d| d.format("%Y-%m-%d %H:%M").to_string(),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn steps_are_one_two_five_and_the_top_is_within_a_step() {
        for (lo, hi, step, top) in [
            (0.0, 1673.0, 500.0, 2000.0),
            (0.0, 2400.0, 500.0, 2500.0),
            (0.0, 2500.0, 500.0, 2500.0),
            (0.0, 0.8, 0.2, 0.8),
            (0.0, 7.0, 2.0, 8.0),
            (-3.0, 9.5, 5.0, 10.0),
            (0.0, 123_456.0, 50_000.0, 150_000.0),
        ] {
            let t = Ticks::nice(lo, hi, 5);
            assert!((t.step - step).abs() < 1e-12, "{lo}..{hi}: step {}", t.step);
            assert!((t.hi - top).abs() < 1e-9, "{lo}..{hi}: top {}", t.hi);
            assert!(t.hi >= hi && t.hi - hi < t.step && t.lo <= lo);
        }
        let flat = Ticks::nice(5.0, 5.0, 5);
        assert!(flat.hi > flat.lo && flat.values().len() >= 2);
    }

    #[test]
    fn labels_share_one_format() {
        let labels = |lo, hi| Ticks::nice(lo, hi, 5).labels();
        assert_eq!(
            labels(0.0, 2400.0),
            ["0", "500", "1000", "1500", "2000", "2500"]
        );
        assert_eq!(labels(0.0, 0.8), ["0", "0.2", "0.4", "0.6", "0.8"]);
        assert_eq!(labels(0.0, 123_456.0), ["0", "50k", "100k", "150k"]);
        assert_eq!(labels(0.0, 2.4e7), ["0", "5M", "10M", "15M", "20M", "25M"]);
        assert_eq!(
            labels(0.0, 0.25e4),
            ["0", "500", "1000", "1500", "2000", "2500"]
        );
        assert_eq!(
            labels(1e4, 1.25e4),
            ["10.0k", "10.5k", "11.0k", "11.5k", "12.0k", "12.5k"]
        );
        assert_eq!(labels(-3.0, 9.5), ["-5", "0", "5", "10"]);
    }

    #[test]
    fn times_are_utc() {
        assert_eq!(when(1_424_986_973.0), "2015-02-26 21:42");
    }
}
