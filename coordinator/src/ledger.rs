//! A group's ledger: every evaluation judges the count the plan asked for next to target
//! tracking on the same summed demand (`headroom_model::Ledger`, the rule `simulate` and the
//! agent use), by the hour.
//!
//! - The plan is what the policy decided, clamped to the group's bounds: in forecast-only mode
//!   that is what it would have asked for, the evidence an operator reads before letting it act.
//! - An evaluation counts for the time since the one before, at most two decision intervals:
//!   a coordinator that was down judges nothing for the time it was down.
//! - Hours go to the state file whole (the hour being filled at every evaluation, replacing
//!   itself), and the hour being filled when the coordinator stopped is resumed at start, so a
//!   restart loses at most one evaluation of it.

use std::collections::VecDeque;

use headroom_model::ledger::{HOUR_S, Hour, hour_start};
use headroom_model::{Ledger, PolicyConfig};

use crate::view::LedgerView;

/// Closed hours kept in memory for the view: a day.
const HOURS_SHOWN: usize = 24;

/// A group's ledger, the hours it shows and what is still to store.
#[derive(Debug, Clone)]
pub struct GroupLedger {
    ledger: Ledger,
    decision_interval_s: f64,
    /// The last evaluation recorded.
    last_at: Option<f64>,
    /// Closed hours, oldest first, at most [`HOURS_SHOWN`].
    closed: VecDeque<Hour>,
    /// Everything recorded since this coordinator started (the `/metrics` counters).
    total: Hour,
    /// Hours to write to the state file.
    unsaved: Vec<Hour>,
}

impl GroupLedger {
    /// An empty ledger for plans made with `config`.
    pub fn new(config: &PolicyConfig) -> GroupLedger {
        GroupLedger {
            ledger: Ledger::new(config),
            decision_interval_s: config.decision_interval_s,
            last_at: None,
            closed: VecDeque::new(),
            total: Hour::default(),
            unsaved: Vec::new(),
        }
    }

    /// Takes the hours stored before a restart (oldest first): the last day's are shown, and
    /// the one `now` is in goes on filling.
    pub fn restore(&mut self, stored: Vec<Hour>, now: f64) {
        let current = hour_start(now);
        for h in stored {
            if h.start == current {
                self.ledger.resume(h);
            } else if h.start < current {
                self.closed.push_back(h);
            }
        }
        while self.closed.len() > HOURS_SHOWN {
            self.closed.pop_front();
        }
    }

    /// Follows a new configuration (a capacity per instance that moved).
    pub fn reconfigure(&mut self, config: &PolicyConfig) {
        self.ledger.reconfigure(config);
        self.decision_interval_s = config.decision_interval_s;
    }

    /// Records the evaluation at `t`: summed demand, the count planned and the forecast at the
    /// lead (P50, P90).
    pub fn record(&mut self, t: f64, demand: f64, planned: u32, at_lead: Option<(f64, f64)>) {
        let dt = self
            .last_at
            .map_or(self.decision_interval_s, |last| t - last)
            .clamp(0.0, 2.0 * self.decision_interval_s);
        self.last_at = Some(t);
        let before = self.ledger.open().copied();
        let closed = self.ledger.record(t, dt, demand, planned, at_lead);
        let open = self.ledger.open().copied().unwrap_or_default();
        // A closed hour is what was open before: all it gained is in the new open one.
        let gained = match (closed, before) {
            (None, Some(b)) => open.since(&b),
            _ => open,
        };
        self.total.add(&gained);
        if let Some(closed) = closed {
            self.unsaved.push(closed);
            self.closed.push_back(closed);
            if self.closed.len() > HOURS_SHOWN {
                self.closed.pop_front();
            }
        }
        self.unsaved.extend(self.ledger.open().copied());
    }

    /// The hours to store since the last call (an hour may come more than once: the latest
    /// wins).
    pub fn take_unsaved(&mut self) -> Vec<Hour> {
        std::mem::take(&mut self.unsaved)
    }

    /// Everything recorded since this coordinator started.
    pub fn total(&self) -> Hour {
        self.total
    }

    /// The hour `now` is in and the 24 hours up to it, as `headroom groups` shows them at
    /// `now`. An hour is only ever closed by a later record, so a group that stopped recording
    /// (its hosts gone quiet for the night) still holds hours that are no longer this one, or
    /// no longer in the last day: they are left out by their start, not by their count.
    pub fn view(&self, now: f64) -> LedgerView {
        let current = hour_start(now);
        let first = current - (HOURS_SHOWN as i64 - 1) * HOUR_S as i64;
        let open = self.ledger.open().copied();
        let mut day = Hour::default();
        for h in self.closed.iter().chain(open.as_ref()) {
            if (first..=current).contains(&h.start) {
                day.add(h);
            }
        }
        LedgerView {
            this_hour: open.filter(|h| h.start == current).map(|h| h.figures()),
            last_day: day.figures(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config() -> PolicyConfig {
        PolicyConfig {
            capacity_per_instance: 10.0,
            decision_interval_s: 10.0,
            ..PolicyConfig::default()
        }
    }

    #[test]
    fn evaluations_count_their_interval_and_a_gap_counts_at_most_two() {
        let mut l = GroupLedger::new(&config());
        l.record(0.0, 5.0, 1, None);
        l.record(10.0, 5.0, 1, None);
        // Down for an hour and back: 20 s counted, not 3,590.
        l.record(3590.0, 5.0, 1, None);
        let t = l.total();
        assert_eq!(t.observed_s, 10.0 + 10.0 + 20.0);
        assert_eq!(t.plan_instance_s, 40.0);
        let v = l.view(3590.0);
        assert_eq!(v.this_hour.map(|h| h.observed_s), Some(40.0));
        assert_eq!(v.last_day.observed_s, 40.0);
    }

    /// A group that stopped recording: its last hour is no longer "this hour" once the clock
    /// left it, and its hours leave the day as they age past 24 hours.
    #[test]
    fn a_quiet_group_shows_its_hours_by_their_age() {
        let mut l = GroupLedger::new(&config());
        l.record(0.0, 5.0, 1, None);
        l.record(10.0, 5.0, 1, None);
        l.record(3600.0, 5.0, 1, None);
        // Hour 0: 10 s each; hour 1: a gap, counted as two intervals.
        let v = l.view(3700.0);
        assert_eq!(v.this_hour.map(|h| h.observed_s), Some(20.0));
        assert_eq!(v.last_day.observed_s, 40.0);
        // Quiet for two hours: no hour being filled.
        assert!(l.view(3.0 * 3600.0 + 1.0).this_hour.is_none());
        // A day after the first hour only the second is in the day; a day after that, none.
        assert_eq!(l.view(24.0 * 3600.0 + 1.0).last_day.observed_s, 20.0);
        assert_eq!(l.view(25.0 * 3600.0 + 1.0).last_day.observed_s, 0.0);
    }

    #[test]
    fn hours_close_into_the_day_and_the_total_counts_each_second_once() {
        let mut l = GroupLedger::new(&config());
        for i in 0..4 {
            l.record(3580.0 + 10.0 * f64::from(i), 5.0, 2, None);
        }
        let unsaved = l.take_unsaved();
        let starts: Vec<i64> = unsaved.iter().map(|h| h.start).collect();
        assert!(starts.contains(&0) && starts.contains(&3600), "{starts:?}");
        assert_eq!(l.total().observed_s, 40.0);
        assert_eq!(l.view(3610.0).last_day.observed_s, 40.0);
        assert!(l.take_unsaved().is_empty());
    }

    #[test]
    fn a_restart_resumes_the_current_hour_and_shows_the_stored_day() {
        let mut before = GroupLedger::new(&config());
        before.record(3000.0, 5.0, 1, None);
        before.record(3700.0, 5.0, 1, None);
        before.record(3710.0, 5.0, 1, None);
        let stored = before.take_unsaved();
        // The state file keeps the latest write of each hour.
        let mut by_hour = std::collections::BTreeMap::new();
        for h in stored {
            by_hour.insert(h.start, h);
        }
        let mut after = GroupLedger::new(&config());
        after.restore(by_hour.into_values().collect(), 3715.0);
        after.record(3720.0, 5.0, 1, None);
        // Hour 0: 10 s; hour 1: 20 s (a gap, at most two intervals) + 10 s before the stop,
        // 10 s after.
        let v = after.view(3720.0);
        assert_eq!(v.this_hour.map(|h| h.observed_s), Some(20.0 + 10.0 + 10.0));
        assert_eq!(v.last_day.observed_s, 10.0 + 40.0);
        // Only what this run recorded is counted for /metrics.
        assert_eq!(after.total().observed_s, 10.0);
    }
}
