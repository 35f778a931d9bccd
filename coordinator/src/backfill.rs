//! A replica that joins late (new to the agents, or back after an outage longer than
//! `signal_ttl`) is sent every signal it missed, oldest first ([`crate::state`] stores them for
//! audit: too old to drive a decision). This rebuilds the group's summed demand series from
//! them, for the time before the replica's own series begins, so that its forecaster refills from
//! the agents' history instead of starting cold.
//!
//! The sum is rebuilt as the decision loop builds it live: at each step of a grid of
//! `decision_interval`, the latest demand of each host that reported within `host_ttl`,
//! summed. A step with no host is left out, as the live loop records nothing without hosts.
//! Pure: the rows come from the state file, the series goes back to it.

use std::collections::BTreeMap;

use crate::every::Every;

/// How often the decision loop looks for late signals, seconds.
pub const EVERY_S: f64 = 30.0;

/// One host's reported demand at a time.
#[derive(Debug, Clone, PartialEq)]
pub struct HostPoint {
    /// The reporting host.
    pub host: String,
    /// When it decided, unix seconds.
    pub t: f64,
    /// Its current demand then.
    pub demand: f64,
}

/// The group's summed demand on a grid of `step` seconds, from the first point up to (not
/// including) `until`; `points` oldest first.
pub fn summed(points: &[HostPoint], step: f64, host_ttl: f64, until: f64) -> Vec<(f64, f64)> {
    let Some(first) = points.first() else {
        return Vec::new();
    };
    if step.is_nan() || step <= 0.0 {
        return Vec::new();
    }
    let mut out = Vec::new();
    let mut latest: BTreeMap<&str, (f64, f64)> = BTreeMap::new();
    let mut next = 0;
    let mut t = (first.t / step).ceil() * step;
    while t < until {
        while let Some(p) = points.get(next).filter(|p| p.t <= t) {
            latest.insert(p.host.as_str(), (p.t, p.demand));
            next += 1;
        }
        latest.retain(|_, (at, _)| t - *at <= host_ttl);
        if !latest.is_empty() {
            out.push((t, latest.values().map(|(_, d)| d).sum()));
        }
        t += step;
    }
    out
}

/// How long late signals may keep coming before the series is rebuilt during the catch-up all
/// the same, seconds.
const CATCH_UP_REBUILD_S: f64 = 600.0;

/// Where a group's backfill stands: when this replica first ran the group, and the newest
/// signal already looked at (the start of its own series is read from the state file at each
/// look).
///
/// A rebuild reads every late signal of the group (days of them from many hosts, seconds of
/// work under the state file's lock, which ingest needs too), so it waits for the catch-up to
/// go quiet: one look with nothing late since the last, or [`CATCH_UP_REBUILD_S`] of catch-up.
#[derive(Debug, Clone)]
pub struct Backfill {
    /// When this replica first ran the group: late signals are those received since.
    pub started: f64,
    /// Row id of the newest signal already looked at.
    pub seen_id: i64,
    /// When the loop looks again.
    looks: Every,
    /// Since when late signals came without a rebuild.
    late_since: Option<f64>,
    /// The last rebuild failed: the next look tries again.
    retry: bool,
    /// The newest row recorded in the state file as accounted for.
    accounted: i64,
}

impl Backfill {
    /// A group this replica first ran at `started`, with no late signal up to row
    /// `accounted` awaiting a rebuild (as the state file keeps them); its own series' start is
    /// read at each look.
    pub fn new(started: f64, accounted: i64) -> Backfill {
        Backfill {
            started,
            seen_id: accounted,
            looks: Every::new(EVERY_S),
            late_since: None,
            retry: false,
            accounted,
        }
    }

    /// The newest row to record as accounted for, when it moved: every row looked at, once
    /// no late signal among them awaits a rebuild (none came, or the rebuild is done).
    pub fn to_account(&mut self) -> Option<i64> {
        let settled = self.late_since.is_none() && !self.retry;
        (settled && self.seen_id != self.accounted).then(|| {
            self.accounted = self.seen_id;
            self.seen_id
        })
    }

    /// The last rebuild failed: the next look tries again, late signals or not.
    pub fn failed(&mut self) {
        self.retry = true;
    }

    /// Notes a look at `now` that found signals up to row `newest`, `late` if some were late;
    /// whether to rebuild now.
    pub fn looked(&mut self, now: f64, newest: i64, late: bool) -> bool {
        self.seen_id = newest;
        let due = match (late, self.late_since) {
            (true, None) => {
                self.late_since = Some(now);
                false
            }
            // A long catch-up: rebuilt meanwhile, and the clock starts again with the next.
            (true, Some(since)) if now - since >= CATCH_UP_REBUILD_S => {
                self.late_since = None;
                true
            }
            (true, Some(_)) => false,
            (false, since) => {
                self.late_since = None;
                since.is_some()
            }
        };
        due | std::mem::take(&mut self.retry)
    }

    /// Whether to look for late signals at `now` (every [`EVERY_S`]).
    pub fn due(&mut self, now: f64) -> bool {
        self.looks.due(now)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(host: &str, t: f64, demand: f64) -> HostPoint {
        HostPoint {
            host: host.into(),
            t,
            demand,
        }
    }

    #[test]
    fn the_rebuild_waits_for_the_catch_up_to_go_quiet() {
        let mut b = Backfill::new(1000.0, 0);
        assert!(!b.looked(0.0, 5, false), "nothing late");
        assert!(!b.looked(30.0, 90, true), "late signals coming");
        assert!(!b.looked(60.0, 180, true));
        assert!(b.looked(90.0, 190, false), "quiet: rebuilt");
        assert!(!b.looked(120.0, 200, false), "once");
        // A catch-up that goes on is rebuilt every CATCH_UP_REBUILD_S meanwhile.
        let looks: Vec<bool> = (0..=25)
            .map(|i| b.looked(200.0 + 30.0 * f64::from(i), 300 + i64::from(i), true))
            .collect();
        assert_eq!(looks.iter().filter(|&&r| r).count(), 1, "{looks:?}");
        assert_eq!(b.seen_id, 325);
        // A failed rebuild is tried again at the next look, late signals or not.
        b.failed();
        assert!(b.looked(1000.0, 326, true));
    }

    #[test]
    fn rows_are_accounted_for_only_once_no_rebuild_awaits() {
        let mut b = Backfill::new(1000.0, 7);
        assert_eq!(b.to_account(), None, "nothing new");
        assert!(!b.looked(0.0, 10, false));
        assert_eq!(b.to_account(), Some(10), "nothing late: accounted for");
        assert_eq!(b.to_account(), None, "once");
        assert!(!b.looked(30.0, 20, true));
        assert_eq!(b.to_account(), None, "late signals await their rebuild");
        assert!(b.looked(60.0, 25, false));
        b.failed();
        assert_eq!(b.to_account(), None, "the rebuild failed");
        assert!(b.looked(90.0, 25, false), "tried again");
        assert_eq!(b.to_account(), Some(25), "rebuilt");
    }

    #[test]
    fn sums_the_latest_of_each_live_host_on_the_grid() {
        let points = [
            p("a", 0.5, 1.0),
            p("b", 1.0, 2.0),
            p("a", 2.2, 3.0),
            // b falls silent: gone after host_ttl (3 s).
            p("a", 6.0, 4.0),
        ];
        let s = summed(&points, 1.0, 3.0, 7.0);
        assert_eq!(
            s,
            [
                (1.0, 3.0),
                (2.0, 3.0),
                (3.0, 5.0),
                (4.0, 5.0),
                (5.0, 3.0),
                (6.0, 4.0)
            ]
        );
        // Nothing at or past `until`, nothing where no host is live.
        assert!(summed(&points, 1.0, 0.5, 0.9).is_empty());
        assert_eq!(
            summed(&[p("a", 0.0, 1.0), p("a", 10.0, 2.0)], 1.0, 1.0, 11.0).len(),
            3
        );
    }
}
