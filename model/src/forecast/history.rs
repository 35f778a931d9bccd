//! The window of observations, trimmed by age but never below a number of rows: recent rows at
//! full resolution, older rows merged into fixed time buckets (their means), so memory stays
//! bounded over weeks of a 10-second series while day-ago and week-ago lookups still find a
//! value, and a coarse series (hourly) keeps enough rows to show a weekly cycle.

/// Fine rows merged in one pass: compaction moves the fine rows down once per this many.
const COMPACT_ROWS: usize = 1024;

/// How long observations are kept, and at what resolution.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct Retention {
    /// Rows older than this, seconds, are forgotten...
    pub(crate) max_age_s: f64,
    /// ...unless fewer than this many would be left.
    pub(crate) min_rows: usize,
    /// Rows younger than this, seconds, keep full resolution.
    pub(crate) fine_age_s: f64,
    /// Width of the buckets older rows are merged into, seconds (0: never merge).
    pub(crate) bucket_s: f64,
}

/// Observations in time order; old ones are dropped and merged lazily, so a push is amortised
/// O(1) and the rows held are bounded by `max(min_rows, fine_age_s / step + max_age_s /
/// bucket_s)`.
#[derive(Debug, Clone)]
pub(crate) struct History {
    keep: Retention,
    t: Vec<f64>,
    y: Vec<f64>,
    /// First row still within `max_age_s`.
    head: usize,
    /// First full-resolution row: rows before it are bucket means.
    fine: usize,
}

impl History {
    /// An empty history kept as `keep` says.
    pub(crate) fn new(keep: Retention) -> History {
        History {
            keep,
            t: Vec::new(),
            y: Vec::new(),
            head: 0,
            fine: 0,
        }
    }

    /// Appends an observation, forgets those older than the retention and merges those past
    /// the fine window. `merge` is false when the series is no finer than the buckets.
    pub(crate) fn push(&mut self, t: f64, y: f64, merge: bool) {
        let keep = self.keep;
        self.t.push(t);
        self.y.push(y);
        let cutoff = t - keep.max_age_s;
        while self.t.len() - self.head > keep.min_rows.max(1) && self.t[self.head] < cutoff {
            self.head += 1;
        }
        let start = self.head.max(self.fine);
        if merge && keep.bucket_s > 0.0 {
            let cut = ((t - keep.fine_age_s) / keep.bucket_s).floor() * keep.bucket_s;
            if self.t.get(start + COMPACT_ROWS).is_some_and(|&x| x < cut) {
                self.compact(cut, keep.bucket_s);
                return;
            }
        }
        if self.head >= COMPACT_ROWS && self.head * 2 >= self.t.len() {
            self.compact(f64::NEG_INFINITY, keep.bucket_s);
        }
    }

    /// Drops the forgotten rows and replaces the fine rows before `cut` by their bucket means.
    /// Buckets are aligned to multiples of `bucket_s` and `cut` is one, so a bucket is merged
    /// whole, once.
    fn compact(&mut self, cut: f64, bucket_s: f64) {
        let start = self.head.max(self.fine);
        let end = start + self.t[start..].partition_point(|&x| x < cut);
        // Live coarse rows move to the front.
        self.t.copy_within(self.head..start, 0);
        self.y.copy_within(self.head..start, 0);
        let mut w = start - self.head;
        let mut i = start;
        while i < end {
            let b = (self.t[i] / bucket_s).floor();
            let (mut st, mut sy, mut n) = (0.0, 0.0, 0.0);
            while i < end && (self.t[i] / bucket_s).floor() == b {
                st += self.t[i];
                sy += self.y[i];
                n += 1.0;
                i += 1;
            }
            self.t[w] = st / n;
            self.y[w] = sy / n;
            w += 1;
        }
        let fine = w;
        self.t.copy_within(end.., w);
        self.y.copy_within(end.., w);
        let len = w + self.t.len() - end;
        self.t.truncate(len);
        self.y.truncate(len);
        self.head = 0;
        self.fine = fine;
    }

    /// Timestamps held, oldest first (bucket means carry the mean time of their rows).
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

/// Index of the row of the sorted `times` nearest `t`, if it lies within half a row's spacing
/// of `t`. The spacing is the row's gap to its nearer neighbour, at least `step` (the series'
/// cadence) and at most `max(step, bucket_s)`: a merged row stands for its bucket, while a
/// row beside an outage does not stand for the outage.
pub(crate) fn nearest(times: &[f64], t: f64, step: f64, bucket_s: f64) -> Option<usize> {
    let i = times.partition_point(|&x| x < t);
    let mut best: Option<usize> = None;
    for j in [i.checked_sub(1), Some(i)].into_iter().flatten() {
        if j < times.len() && best.is_none_or(|b| (times[j] - t).abs() < (times[b] - t).abs()) {
            best = Some(j);
        }
    }
    let b = best?;
    let before = b.checked_sub(1).map(|p| times[b] - times[p]);
    let after = times.get(b + 1).map(|n| n - times[b]);
    let gap = match (before, after) {
        (Some(x), Some(y)) => x.min(y),
        (Some(x), None) | (None, Some(x)) => x,
        (None, None) => step,
    };
    let spacing = gap.clamp(step, step.max(bucket_s));
    ((times[b] - t).abs() <= 0.5 * spacing + 1e-9).then_some(b)
}

/// Median of the last (up to) `n` steps of `times`, leaving out steps under a hundredth of
/// their 90th percentile: rows that come in bursts (up to ten within milliseconds, once a
/// minute) are one observation's worth of time apart, not a millisecond, or every horizon
/// would be thousands of rows. The percentile, not the mean, so that a long gap (under a tenth
/// of the steps) moves nothing. `None` with fewer than two rows.
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
    let at90 = (d.len() - 1) * 9 / 10;
    let (_, p90, _) = d.select_nth_unstable_by(at90, f64::total_cmp);
    // The percentile itself stays: never empty.
    let floor = 0.01 * *p90;
    d.retain(|x| *x >= floor);
    let mid = d.len() / 2;
    let (_, m, _) = d.select_nth_unstable_by(mid, f64::total_cmp);
    Some(*m)
}

#[cfg(test)]
mod tests {
    use super::*;

    const KEEP_ALL: Retention = Retention {
        max_age_s: 100.0,
        min_rows: 0,
        fine_age_s: f64::INFINITY,
        bucket_s: 0.0,
    };

    #[test]
    fn trims_by_age_and_keeps_order() {
        let mut h = History::new(KEEP_ALL);
        for i in 0..5000 {
            h.push(i as f64, i as f64 * 2.0, false);
        }
        assert_eq!(h.len(), 101);
        assert_eq!(h.times()[0], 4899.0);
        assert_eq!(h.values()[100], 9998.0);
    }

    #[test]
    fn keeps_the_fewest_rows_asked_for_past_the_age() {
        // Hourly rows for ten weeks, kept 14 days but at least 1,000 rows: about six weeks.
        let keep = Retention {
            max_age_s: 14.0 * 86_400.0,
            min_rows: 1_000,
            fine_age_s: 30.0 * 3_600.0,
            bucket_s: 60.0,
        };
        let mut h = History::new(keep);
        for i in 0..70 * 24 {
            h.push(i as f64 * 3_600.0, 1.0, false);
        }
        assert_eq!(h.len(), 1_000);
        assert_eq!(h.times()[0], (70.0 * 24.0 - 1_000.0) * 3_600.0);
    }

    #[test]
    fn merges_old_rows_into_bucket_means() {
        let keep = Retention {
            max_age_s: 86_400.0,
            min_rows: 1_000,
            fine_age_s: 3_600.0,
            bucket_s: 60.0,
        };
        let mut h = History::new(keep);
        // Ten-second rows for a day: value = the minute it falls in.
        for i in 0..8_640 {
            let t = i as f64 * 10.0;
            h.push(t, (t / 60.0).floor(), true);
        }
        let (t, y) = (h.times(), h.values());
        assert!(t.windows(2).all(|w| w[0] < w[1]), "times stay increasing");
        let last = t[t.len() - 1];
        // Older rows are one per minute: the mean of its six rows, at their mean time.
        let merged = t.windows(2).take_while(|w| w[1] - w[0] >= 60.0).count() + 1;
        assert!((1_300..=1_380).contains(&merged), "{merged} merged rows");
        for (mt, my) in t[..merged].iter().zip(y) {
            assert_eq!(*my, (mt / 60.0).floor());
            assert_eq!(mt % 60.0, 25.0);
        }
        // Every row of the last hour keeps full resolution.
        assert!(t[merged] <= last - 3_600.0);
        assert!(t[merged..].windows(2).all(|w| w[1] - w[0] == 10.0));
        assert!(t[merged] - t[merged - 1] < 60.0);
        assert!(h.len() < 8_640 / 6 + 360 + COMPACT_ROWS + 1);
    }

    #[test]
    fn bounded_over_weeks_of_ten_second_rows() {
        let keep = Retention {
            max_age_s: 14.0 * 86_400.0,
            min_rows: 1_000,
            fine_age_s: 30.0 * 3_600.0,
            bucket_s: 60.0,
        };
        let mut h = History::new(keep);
        for i in 0..20 * 8_640 {
            h.push(i as f64 * 10.0, 1.0, true);
        }
        let bound = (14 * 1_440) + 30 * 360 + COMPACT_ROWS;
        assert!(h.len() <= bound, "{} rows held", h.len());
        assert!(h.t.capacity() <= 2 * bound);
        assert!(h.times()[0] >= 6.0 * 86_400.0 - 60.0);
    }

    #[test]
    fn nearest_respects_spacing_across_gaps() {
        let t = [0.0, 60.0, 120.0, 600.0, 660.0];
        assert_eq!(nearest(&t, 100.0, 60.0, 0.0), Some(2));
        assert_eq!(nearest(&t, 300.0, 60.0, 0.0), None);
        assert_eq!(nearest(&t, 700.0, 60.0, 0.0), None);
        assert_eq!(nearest(&t, 689.0, 60.0, 0.0), Some(4));
        assert_eq!(nearest(&[], 1.0, 1.0, 0.0), None);
        // Minute buckets in a 10-second series: found within half a minute, not across a gap.
        let t = [0.0, 60.0, 120.0, 130.0, 140.0];
        assert_eq!(nearest(&t, 85.0, 10.0, 60.0), Some(1));
        assert_eq!(nearest(&t, 146.0, 10.0, 60.0), None);
        let t = [0.0, 60.0, 900.0, 960.0];
        assert_eq!(nearest(&t, 400.0, 10.0, 60.0), None);
    }

    #[test]
    fn step_is_the_median() {
        assert_eq!(
            recent_step(&[0.0, 10.0, 20.0, 1000.0, 1010.0], 10),
            Some(10.0)
        );
        assert_eq!(recent_step(&[5.0], 10), None);
        // Rows in bursts: three within milliseconds, once a minute, are a minute apart.
        let bursts: Vec<f64> = (0..30)
            .flat_map(|m| [0.0, 0.001, 0.002].map(|o| f64::from(m) * 60.0 + o))
            .collect();
        assert_eq!(recent_step(&bursts, 100).map(f64::round), Some(60.0));
        // A regular series with one gap longer than all the rest: still its own step.
        let mut gap: Vec<f64> = (0..100).map(|i| f64::from(i) * 60.0).collect();
        gap.push(1e9);
        assert_eq!(recent_step(&gap, 200), Some(60.0));
    }
}
