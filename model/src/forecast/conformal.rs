//! Quantiles from recent out-of-sample residuals per horizon (split conformal), with adaptive
//! conformal inference: the quantile level used for P90 is nudged after every scored forecast
//! so that the realised coverage tracks 90% even when the error distribution drifts. Each
//! window is also kept sorted as residuals arrive (two binary searches and a short move), so
//! any quantile is a lookup.
//!
//! Residuals are kept as `f32`: four windows per horizon are most of a warm forecaster's
//! memory, and seven significant digits are far finer than any band drawn from them.

use std::collections::VecDeque;

/// Residuals kept per horizon.
const WINDOW: usize = 600;
/// Fewest residuals before empirical quantiles are used.
pub(crate) const MIN_RESIDUALS: usize = 30;
/// ACI learning rate.
const GAMMA: f64 = 0.004;
/// Nominal miss rate of P90.
const TARGET_MISS: f64 = 0.1;

/// Per-horizon residual windows and adaptive levels.
#[derive(Debug, Clone)]
pub(crate) struct Conformal {
    recent: Vec<VecDeque<f32>>,
    sorted: Vec<Vec<f32>>,
    /// The largest unscaled residual of each window (it bounds the bands), as a monotonic
    /// queue of (arrival number, residual): the front is the maximum of the last `WINDOW`.
    raw_max: Vec<VecDeque<(u64, f32)>>,
    /// Residuals pushed so far, per horizon.
    pushed: Vec<u64>,
    miss: Vec<f64>,
}

impl Conformal {
    /// Empty state for `k` horizons.
    pub(crate) fn new(k: usize) -> Conformal {
        Conformal {
            recent: vec![VecDeque::new(); k],
            sorted: vec![Vec::new(); k],
            raw_max: vec![VecDeque::new(); k],
            pushed: vec![0; k],
            miss: vec![TARGET_MISS; k],
        }
    }

    /// Rearranges the horizons: new horizon `j` takes over the residuals of old horizon
    /// `from[j]`, or starts empty.
    pub(crate) fn remap(&mut self, from: &[Option<usize>]) {
        self.recent = pick(&mut self.recent, from, VecDeque::new);
        self.sorted = pick(&mut self.sorted, from, Vec::new);
        self.raw_max = pick(&mut self.raw_max, from, VecDeque::new);
        self.pushed = pick(&mut self.pushed, from, || 0);
        self.miss = pick(&mut self.miss, from, || TARGET_MISS);
    }

    /// Records the residual `actual - p50` for horizon index `k`, scaled and as is.
    pub(crate) fn push(&mut self, k: usize, r: f64, raw: f64) {
        let (r, raw) = (r as f32, raw as f32);
        if !r.is_finite() || !raw.is_finite() {
            return;
        }
        slide(&mut self.recent[k], &mut self.sorted[k], r);
        let n = self.pushed[k];
        self.pushed[k] += 1;
        let max = &mut self.raw_max[k];
        while max.back().is_some_and(|&(_, v)| v <= raw) {
            max.pop_back();
        }
        max.push_back((n, raw));
        while max.front().is_some_and(|&(i, _)| i + (WINDOW as u64) <= n) {
            max.pop_front();
        }
    }

    /// The largest unscaled residual of horizon index `k`'s window: no band needs to reach
    /// further than the worst miss seen (this keeps scaled residuals from a quiet spell from
    /// exploding once the series is busy again).
    pub(crate) fn worst(&self, k: usize) -> Option<f64> {
        self.raw_max[k].front().map(|&(_, w)| f64::from(w))
    }

    /// Records whether the P90 issued for horizon index `k` covered the actual value.
    pub(crate) fn covered(&mut self, k: usize, hit: bool) {
        let err = if hit { 0.0 } else { 1.0 };
        self.miss[k] = (self.miss[k] + GAMMA * (TARGET_MISS - err)).clamp(0.002, 0.3);
    }

    /// Number of residuals behind horizon index `k`'s quantiles.
    pub(crate) fn count(&self, k: usize) -> usize {
        self.sorted[k].len()
    }

    /// Offsets above P50 for P90 and P99 at horizon index `k`, if enough residuals are held.
    pub(crate) fn offsets(&self, k: usize) -> Option<(f64, f64)> {
        let s = &self.sorted[k];
        if s.len() < MIN_RESIDUALS {
            return None;
        }
        let l90 = 1.0 - self.miss[k];
        let q90 = quantile(s, l90);
        let q99 = quantile(s, 0.99_f64.max(l90)).max(q90);
        Some((q90, q99))
    }
}

/// Pushes `r` into a window, dropping the oldest, and keeps its sorted copy in step.
fn slide(w: &mut VecDeque<f32>, sorted: &mut Vec<f32>, r: f32) {
    if w.capacity() == 0 {
        // Exactly one window: growth by doubling would leave 40% of it unused for good.
        w.reserve_exact(WINDOW);
        sorted.reserve_exact(WINDOW);
    }
    if w.len() == WINDOW
        && let Some(old) = w.pop_front()
    {
        let i = sorted.partition_point(|&x| x < old);
        if i < sorted.len() {
            sorted.remove(i);
        }
    }
    w.push_back(r);
    let i = sorted.partition_point(|&x| x < r);
    sorted.insert(i, r);
}

/// The entries of `old` named by `from`, moved out, or `fresh()` where `from` names none.
fn pick<T: Default>(old: &mut [T], from: &[Option<usize>], fresh: impl Fn() -> T) -> Vec<T> {
    from.iter()
        .map(|i| match i.and_then(|i| old.get_mut(i)) {
            Some(v) => std::mem::take(v),
            None => fresh(),
        })
        .collect()
}

/// Linear-interpolated quantile of a sorted slice.
fn quantile(s: &[f32], q: f64) -> f64 {
    let pos = q.clamp(0.0, 1.0) * (s.len() - 1) as f64;
    let i = pos.floor() as usize;
    let j = (i + 1).min(s.len() - 1);
    let (a, b) = (f64::from(s[i]), f64::from(s[j]));
    a + (b - a) * (pos - i as f64)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quantiles_of_uniform_residuals() {
        let mut c = Conformal::new(1);
        for i in 0..=500 {
            c.push(0, i as f64 / 500.0, i as f64 / 500.0);
        }
        let (q90, q99) = c.offsets(0).expect("enough");
        assert!((q90 - 0.9).abs() < 0.01 && (q99 - 0.99).abs() < 0.01);
    }

    /// The worst residual is the largest of the last `WINDOW`, as a sorted window would say.
    #[test]
    fn worst_is_the_window_maximum() {
        let mut c = Conformal::new(1);
        let mut all = Vec::new();
        let mut x: u64 = 7;
        for _ in 0..3 * WINDOW {
            x = x
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            let raw = (x >> 40) as f64 / 1e3;
            all.push(raw as f32);
            c.push(0, 0.0, raw);
            let from = all.len().saturating_sub(WINDOW);
            let want = all[from..].iter().copied().fold(f32::MIN, f32::max);
            assert_eq!(c.worst(0), Some(f64::from(want)));
        }
    }

    #[test]
    fn misses_raise_the_level() {
        let mut c = Conformal::new(1);
        for i in 0..=500 {
            c.push(0, i as f64 / 500.0, i as f64 / 500.0);
        }
        let before = c.offsets(0).expect("enough").0;
        for _ in 0..20 {
            c.covered(0, false);
        }
        assert!(c.offsets(0).expect("enough").0 > before);
    }
}
