//! Target tracking as operators run it today (an AWS target-tracking policy, an HPA): the count
//! that keeps current demand at the target utilisation, scaled in only to the largest count
//! needed during the last five minutes. It is the reference the plan is judged against (the
//! ledger's shadow), and what scales in when `scale_in = "reactive"`. The same rule as
//! `shared/eval/sim_eval.py`'s reactive policy.

use crate::window::LargestInForce;

/// How long target tracking keeps a count after demand stopped needing it, seconds.
pub const HOLD_S: f64 = 300.0;

/// Target tracking's state: its counts of the last [`HOLD_S`].
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Reactive {
    capacity_per_instance: f64,
    utilization: f64,
    bounds: (u32, u32),
    /// Its needs over the last [`HOLD_S`].
    window: LargestInForce,
}

impl Reactive {
    /// Target tracking at `utilization` of instances serving `capacity_per_instance`, between
    /// `min` and `max` instances.
    pub fn new(capacity_per_instance: f64, utilization: f64, min: u32, max: u32) -> Reactive {
        Reactive {
            capacity_per_instance: capacity_per_instance.max(f64::MIN_POSITIVE),
            utilization: utilization.clamp(0.01, 1.0),
            bounds: (min, max.max(min)),
            window: LargestInForce::default(),
        }
    }

    /// Whether `other` tracks by the same rule (capacity, utilisation, bounds), whatever its
    /// window holds.
    pub fn same_rule(&self, other: &Reactive) -> bool {
        self.capacity_per_instance == other.capacity_per_instance
            && self.utilization == other.utilization
            && self.bounds == other.bounds
    }

    /// The count that keeps `demand` at the target utilisation, before the hold.
    pub fn need(&self, demand: f64) -> u32 {
        let x = demand.max(0.0) / (self.capacity_per_instance * self.utilization);
        super::count(x).clamp(self.bounds.0, self.bounds.1)
    }

    /// Takes the rule of `other` (capacity, utilisation, bounds), keeping the counts held: a
    /// new capacity per instance is no reason to let go of what was needed a minute ago.
    pub fn follow_rule(&mut self, other: &Reactive) {
        self.capacity_per_instance = other.capacity_per_instance;
        self.utilization = other.utilization;
        self.bounds = other.bounds;
    }

    /// Holds `count` from `t` for [`HOLD_S`], as if it had been needed then (what is in force
    /// at a start or a takeover).
    pub fn hold(&mut self, t: f64, count: u32) {
        // Brought within the bounds when read ([`Reactive::decide`]).
        self.window.push_since(t, count, t - HOLD_S);
    }

    /// Target tracking's count at `t` for `demand`: the largest need of the last [`HOLD_S`].
    pub fn decide(&mut self, t: f64, demand: f64) -> u32 {
        let need = self.need(demand);
        // Counts held from under an earlier rule may lie outside today's bounds.
        self.window
            .push_since(t, need, t - HOLD_S)
            .clamp(self.bounds.0, self.bounds.1)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tracks_the_target_and_holds_five_minutes() {
        let mut r = Reactive::new(10.0, 0.5, 1, 100);
        assert_eq!(r.decide(0.0, 52.0), 11);
        assert_eq!(r.decide(60.0, 4.0), 11, "held");
        assert_eq!(r.decide(300.0, 4.0), 11, "still within five minutes");
        // The need of 0 s was in force until the next, at 60 s, as sim_eval counts steps.
        assert_eq!(r.decide(301.0, 4.0), 11, "in force five minutes ago");
        assert_eq!(r.decide(360.0, 4.0), 1);
        assert_eq!(r.decide(361.0, 0.0), 1, "never below min");
        assert_eq!(r.decide(362.0, 1e12), 100, "never above max");
        let tiny = Reactive::new(1e-300, 0.5, 1, 100);
        assert_eq!(tiny.need(1e10), 100, "more than can be counted is the most");
    }
}
