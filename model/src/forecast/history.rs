//! The recent window of observations, trimmed by age, with lookups by time.

/// Observations in time order; old ones are dropped lazily so a push is amortised O(1).
#[derive(Debug, Clone, Default)]
pub(crate) struct History {
    t: Vec<f64>,
    y: Vec<f64>,
    head: usize,
}

impl History {
    /// Appends an observation and forgets those older than `max_age_s` before it.
    pub(crate) fn push(&mut self, t: f64, y: f64, max_age_s: f64) {
        self.t.push(t);
        self.y.push(y);
        let cutoff = t - max_age_s;
        while self.head + 1 < self.t.len() && self.t[self.head] < cutoff {
            self.head += 1;
        }
        if self.head >= 1024 && self.head * 2 >= self.t.len() {
            self.t.drain(..self.head);
            self.y.drain(..self.head);
            self.head = 0;
        }
    }

    /// Timestamps held, oldest first.
    pub(crate) fn times(&self) -> &[f64] {
        &self.t[self.head..]
    }

    /// Values held, oldest first.
    pub(crate) fn values(&self) -> &[f64] {
        &self.y[self.head..]
    }

    /// Number of observations held.
    pub(crate) fn len(&self) -> usize {
        self.t.len() - self.head
    }
}

/// Index of the element of the sorted `times` nearest `t`, if within `tolerance`.
pub(crate) fn nearest(times: &[f64], t: f64, tolerance: f64) -> Option<usize> {
    let i = times.partition_point(|&x| x < t);
    let mut best: Option<usize> = None;
    for j in [i.checked_sub(1), Some(i)].into_iter().flatten() {
        if j < times.len() && best.is_none_or(|b| (times[j] - t).abs() < (times[b] - t).abs()) {
            best = Some(j);
        }
    }
    best.filter(|&b| (times[b] - t).abs() <= tolerance)
}

/// Median of the last (up to) `n` positive steps of `times`; `None` with fewer than two rows.
pub(crate) fn recent_step(times: &[f64], n: usize) -> Option<f64> {
    let from = times.len().saturating_sub(n + 1);
    let mut d: Vec<f64> = times[from..]
        .windows(2)
        .map(|w| w[1] - w[0])
        .filter(|x| *x > 0.0)
        .collect();
    if d.is_empty() {
        return None;
    }
    let mid = d.len() / 2;
    let (_, m, _) = d.select_nth_unstable_by(mid, f64::total_cmp);
    Some(*m)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn trims_by_age_and_keeps_order() {
        let mut h = History::default();
        for i in 0..5000 {
            h.push(i as f64, i as f64 * 2.0, 100.0);
        }
        assert_eq!(h.len(), 101);
        assert_eq!(h.times()[0], 4899.0);
        assert_eq!(h.values()[100], 9998.0);
    }

    #[test]
    fn nearest_respects_tolerance_across_gaps() {
        let t = [0.0, 60.0, 120.0, 600.0, 660.0];
        assert_eq!(nearest(&t, 100.0, 30.0), Some(2));
        assert_eq!(nearest(&t, 300.0, 30.0), None);
        assert_eq!(nearest(&t, 700.0, 60.0), Some(4));
        assert_eq!(nearest(&[], 1.0, 1.0), None);
    }

    #[test]
    fn step_is_the_median() {
        assert_eq!(
            recent_step(&[0.0, 10.0, 20.0, 1000.0, 1010.0], 10),
            Some(10.0)
        );
        assert_eq!(recent_step(&[5.0], 10), None);
    }
}
