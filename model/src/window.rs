//! The largest or the least count over a sliding window of time, in amortised O(1) per push:
//! a monotonic queue. Counts another one dominates (a larger or equal one pushed later, for the
//! largest) can never be the answer again and are dropped as it arrives; the front is the
//! answer; what fell out of the window is dropped from the front.
//!
//! One mechanism for every "what held over the last span" of the policy and the ledger: the
//! stabilisation window and target tracking's hold (the largest), and what is ready after a
//! warm-up (the least asked for since). Callers say where the window starts, so each keeps its
//! own boundary rule.

use std::collections::VecDeque;

/// The largest (`LARGEST = true`) or least count pushed since a time the caller names.
#[derive(Debug, Clone, Default, PartialEq, serde::Serialize, serde::Deserialize)]
#[serde(transparent)]
pub(crate) struct Extreme<const LARGEST: bool> {
    /// (t, count): decreasing counts for the largest, increasing for the least.
    queue: VecDeque<(f64, u32)>,
}

/// The largest count over a window.
pub(crate) type Largest = Extreme<true>;
/// The least count over a window.
pub(crate) type Least = Extreme<false>;

impl<const LARGEST: bool> Extreme<LARGEST> {
    /// Adds `count` at `t` (times pushed in order).
    pub(crate) fn push(&mut self, t: f64, count: u32) {
        let dominated = |n: u32| if LARGEST { n <= count } else { n >= count };
        while self.queue.back().is_some_and(|&(_, n)| dominated(n)) {
            self.queue.pop_back();
        }
        self.queue.push_back((t, count));
    }

    /// Drops what was pushed before `since`.
    pub(crate) fn forget_before(&mut self, since: f64) {
        while self.queue.front().is_some_and(|&(at, _)| at < since) {
            self.queue.pop_front();
        }
    }

    /// The extreme of what is left, if anything is.
    pub(crate) fn get(&self) -> Option<u32> {
        self.queue.front().map(|&(_, n)| n)
    }

    /// [`Extreme::push`], [`Extreme::forget_before`], then the extreme (`count` itself is in
    /// the window when `since <= t`).
    pub(crate) fn push_since(&mut self, t: f64, count: u32, since: f64) -> u32 {
        self.push(t, count);
        self.forget_before(since);
        self.get().unwrap_or(count)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_extremes_over_a_sliding_window() {
        let mut most = Largest::default();
        let mut least = Least::default();
        let counts = [5, 3, 4, 1, 6, 2];
        for (i, &n) in counts.iter().enumerate() {
            let t = i as f64;
            // Windows of the last three pushes (t - 2 ..= t).
            let want = &counts[i.saturating_sub(2)..=i];
            assert_eq!(
                most.push_since(t, n, t - 2.0),
                *want.iter().max().unwrap(),
                "{i}"
            );
            assert_eq!(
                least.push_since(t, n, t - 2.0),
                *want.iter().min().unwrap(),
                "{i}"
            );
        }
        least.forget_before(100.0);
        assert_eq!(least.get(), None);
    }
}
