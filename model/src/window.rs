//! The largest or the least count over a sliding window of time, in amortised O(1) per push:
//! a monotonic queue. Counts another one dominates (a larger or equal one pushed later, for the
//! largest) can never be the answer again and are dropped as it arrives; the front is the
//! answer; what fell out of the window is dropped from the front.
//!
//! One mechanism for every "what held over the last span" of the policy and the ledger: the
//! stabilisation window (the largest recommended within it, as an HPA's stabilisation window
//! keeps them), target tracking's hold and what is ready after a warm-up ([`InForce`]: the
//! count in force when the window opened counts too, as `sim_eval.py` counts steps). Callers
//! say where the window starts.

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

    /// Drops what was pushed at or before `since`.
    pub(crate) fn forget_at_or_before(&mut self, since: f64) {
        while self.queue.front().is_some_and(|&(at, _)| at <= since) {
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

/// The largest (`LARGEST = true`) or least count in force at any moment of a window
/// `[since, t]`: the counts pushed after `since`, and the one pushed last at or before it,
/// which was in force when the window opened. Decisions need not land on the window's start (a
/// decision interval that does not divide it, jitter, a gap): the count in force there still
/// counts.
///
/// - The least in force over a warm-up is what has been asked for throughout it: capacity
///   asked for at `s` serves from `s + warm-up` only while it stays asked for.
/// - The largest in force over five minutes is target tracking's hold as
///   `shared/eval/sim_eval.py` counts it (the last `round(300 s / step) + 1` needs).
#[derive(Debug, Clone, Default, PartialEq, serde::Serialize, serde::Deserialize)]
pub(crate) struct InForce<const LARGEST: bool> {
    /// The extreme over the pushes after the window's start.
    after: Extreme<LARGEST>,
    /// Those pushes, in order, until the window's start passes them.
    pending: VecDeque<(f64, u32)>,
    /// The last push at or before the window's start: in force when it opened.
    at_start: Option<u32>,
}

/// The largest count in force over a window.
pub(crate) type LargestInForce = InForce<true>;
/// The least count in force over a window.
pub(crate) type LeastInForce = InForce<false>;

impl<const LARGEST: bool> InForce<LARGEST> {
    /// Adds `count` at `t` (times pushed in order).
    pub(crate) fn push(&mut self, t: f64, count: u32) {
        self.after.push(t, count);
        self.pending.push_back((t, count));
    }

    /// Moves the window's start to `since` (never back) and gives the extreme in force from
    /// there on, if anything was pushed.
    pub(crate) fn since(&mut self, since: f64) -> Option<u32> {
        while let Some(&(at, n)) = self.pending.front()
            && at <= since
        {
            self.at_start = Some(n);
            self.pending.pop_front();
        }
        self.after.forget_at_or_before(since);
        let both = [self.after.get(), self.at_start].into_iter().flatten();
        if LARGEST { both.max() } else { both.min() }
    }

    /// [`InForce::push`], then [`InForce::since`] (`count` itself is in force at `t`).
    pub(crate) fn push_since(&mut self, t: f64, count: u32, since: f64) -> u32 {
        self.push(t, count);
        self.since(since).unwrap_or(count)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// What is in force at the window's start counts, though it was asked for before it: with
    /// decisions every 200 s and a 300 s window, the count asked at 600 still holds at 700.
    #[test]
    fn the_count_in_force_when_the_window_opens_counts() {
        let mut ready = LeastInForce::default();
        let asks = [
            (0.0, 1),
            (200.0, 1),
            (400.0, 1),
            (600.0, 1),
            (800.0, 15),
            (1000.0, 15),
        ];
        let got: Vec<u32> = asks
            .iter()
            .map(|&(t, n)| ready.push_since(t, n, t - 300.0))
            .collect();
        // 15 asked at 800 serve from 1100: at 1000 the 1 in force at 700 still bounds them.
        assert_eq!(got, [1, 1, 1, 1, 1, 1]);
        assert_eq!(ready.push_since(1200.0, 15, 900.0), 15);
        // A gap: the count in force through it is what serves after it.
        assert_eq!(ready.push_since(5000.0, 2, 4700.0), 2);
        assert_eq!(
            ready.push_since(5100.0, 40, 4800.0),
            2,
            "40 asked 100 s ago"
        );
        assert_eq!(ready.since(5400.0), Some(40));
        // Exactly on the window's start: in force there, so it counts.
        let mut on = LeastInForce::default();
        on.push(0.0, 3);
        on.push(60.0, 9);
        assert_eq!(on.since(60.0), Some(9));
        assert_eq!(LeastInForce::default().since(0.0), None);
        // The largest in force over 300 s at a 200 s step: the need at t - 400 still holds at
        // t - 300, so three needs count, as sim_eval's round(300 / 200) + 1.
        let mut hold = LargestInForce::default();
        assert_eq!(hold.push_since(0.0, 9, -300.0), 9);
        assert_eq!(hold.push_since(200.0, 1, -100.0), 9);
        assert_eq!(hold.push_since(400.0, 1, 100.0), 9);
        assert_eq!(hold.push_since(600.0, 1, 300.0), 1);
    }

    #[test]
    fn the_extremes_over_a_sliding_window() {
        let mut most = Largest::default();
        let mut least = Extreme::<false>::default();
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
