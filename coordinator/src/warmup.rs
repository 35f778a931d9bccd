//! Instance warm-up, measured: the time from a rise in the group's desired capacity to the
//! first healthy signal of an instance the group had not seen before.
//!
//! - A successful scale-out from `from` to `to` opens `to − from` launches, each stamped with
//!   the time it was asked for. A scale-in closes the newest launches the new count no longer
//!   holds; a launch no instance answered within twice the ceiling is dropped (logged).
//! - An instance is known by its EC2 instance id, else its host id (forgotten after a day of
//!   silence, so the set stays bounded). One never seen before, whose first healthy signal
//!   arrives while launches are open, closes the oldest: that is one measurement. One first
//!   seen unhealthy is measured at its first healthy signal.
//! - The leader opens launches from its actuations; a standby from the engine's count rising
//!   (`GroupState::evaluate`). Launches open only once the group has been decided for a host
//!   TTL (every host in service has spoken by then, so a host merely new to a restarted
//!   coordinator is not taken for a launch).
//! - `instance_warmup = "measured"` plans with the P90 (nearest rank) of the last 20
//!   measurements, bounded by `warmup_floor` and `warmup_ceiling`, once there are 5; before,
//!   the configured `warmup`. Measurements are stored as `instance_ready` actions, so a restart
//!   keeps them.
//! - Launches still open are instances warming (shown by `headroom groups`). They are already
//!   part of the capacity the group plans against, which is the count asked for (the engine's
//!   desired capacity, else the last one set), never the hosts ready: the plan does not ask
//!   again for what they will serve, and they are never the reason for a scale-in.

use std::collections::{BTreeMap, BTreeSet, VecDeque};

use serde::Deserialize;

/// Measurements a measured warm-up rests on.
pub const KEPT: usize = 20;
/// Measurements needed before they replace the configured warm-up.
pub const NEEDED: usize = 5;
/// An instance silent this long is forgotten (the set of instances seen stays bounded by the
/// group's turnover); one that speaks again later is new.
const FORGET_AFTER_S: f64 = 86_400.0;

/// How a group's warm-up is known.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum InstanceWarmup {
    /// `warmup` as configured.
    #[default]
    Configured,
    /// Measured from launches (the configured `warmup` until [`NEEDED`] are seen).
    Measured,
}

/// The warm-up in force and where it comes from.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct InForce {
    /// Seconds.
    pub warmup_s: f64,
    /// Measurements it rests on (0: the configured value).
    pub launches: usize,
}

/// A group's launches and measurements.
#[derive(Debug, Default)]
pub struct Launches {
    /// When each open launch was asked for, oldest first.
    open: VecDeque<f64>,
    /// Instances seen in the group (instance id, else host id), with when last.
    known: BTreeMap<String, f64>,
    /// Instances first seen while launches were open, not yet healthy.
    fresh: BTreeSet<String>,
    /// Measured warm-ups, seconds, newest last.
    measured: VecDeque<f64>,
    /// Since when this replica has decided the group (launches are measured a host TTL later).
    deciding_since: Option<f64>,
}

/// One measurement: the instance and its warm-up, seconds.
#[derive(Debug, Clone, PartialEq)]
pub struct Ready {
    /// Instance id or host id.
    pub instance: String,
    /// Seconds from the launch being asked for to its first healthy signal.
    pub warmup_s: f64,
}

impl Launches {
    /// Measurements restored from the state file, oldest first.
    pub fn restore(&mut self, measured: impl IntoIterator<Item = f64>) {
        for s in measured {
            self.push(s);
        }
    }

    fn push(&mut self, s: f64) {
        self.measured.push_back(s);
        while self.measured.len() > KEPT {
            self.measured.pop_front();
        }
    }

    /// Notes that the group is decided at `now` (the first call starts the settling time).
    pub fn deciding(&mut self, now: f64) {
        self.deciding_since.get_or_insert(now);
    }

    /// A capacity change from `from` to `to` was applied at `at`; `live` hosts are in service.
    /// Launches open only once the group has been decided for `settle_s`.
    pub fn asked(&mut self, at: f64, from: u32, to: u32, live: usize, settle_s: f64) {
        if to > from {
            let settled = self.deciding_since.is_some_and(|s| at - s >= settle_s);
            if settled {
                self.open.extend((from..to).map(|_| at));
            }
        } else {
            let room = (to as usize).saturating_sub(live);
            self.open.truncate(room);
        }
    }

    /// A signal of `instance` arrived at `at`; returns the measurement it closes, if any.
    pub fn seen(&mut self, instance: &str, healthy: bool, at: f64) -> Option<Ready> {
        let new = self.known.insert(instance.to_string(), at).is_none();
        if new && !self.open.is_empty() && !healthy {
            self.fresh.insert(instance.to_string());
            return None;
        }
        let first_healthy = (new || self.fresh.remove(instance)) && healthy;
        if !first_healthy {
            return None;
        }
        let asked = self.open.pop_front()?;
        let warmup_s = (at - asked).max(0.0);
        self.push(warmup_s);
        Some(Ready {
            instance: instance.to_string(),
            warmup_s,
        })
    }

    /// Drops launches older than `limit_s` at `now` (no instance answered them); returns how
    /// many.
    pub fn expire(&mut self, now: f64, limit_s: f64) -> usize {
        self.known.retain(|_, seen| now - *seen < FORGET_AFTER_S);
        let known = &self.known;
        self.fresh.retain(|instance| known.contains_key(instance));
        let before = self.open.len();
        self.open.retain(|&asked| now - asked <= limit_s);
        before - self.open.len()
    }

    /// Instances asked for and not yet healthy.
    pub fn warming(&self) -> usize {
        self.open.len()
    }

    /// The warm-up to plan with: the P90 of the last [`KEPT`] measurements within
    /// [floor, ceiling] once there are [`NEEDED`], else `configured_s`.
    pub fn in_force(
        &self,
        mode: InstanceWarmup,
        configured_s: f64,
        floor_s: f64,
        ceiling_s: f64,
    ) -> InForce {
        let n = self.measured.len();
        if mode == InstanceWarmup::Configured || n < NEEDED {
            return InForce {
                warmup_s: configured_s,
                launches: 0,
            };
        }
        let mut sorted: Vec<f64> = self.measured.iter().copied().collect();
        sorted.sort_by(f64::total_cmp);
        // Nearest rank: the smallest value with at least 90% of the measurements at or below.
        let rank = ((0.9 * n as f64).ceil() as usize).clamp(1, n);
        InForce {
            warmup_s: sorted[rank - 1].clamp(floor_s, ceiling_s.max(floor_s)),
            launches: n,
        }
    }

    /// Measurements held.
    pub fn measured(&self) -> usize {
        self.measured.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn settled() -> Launches {
        let mut l = Launches::default();
        l.deciding(0.0);
        for h in ["a", "b"] {
            assert_eq!(l.seen(h, true, 1.0), None);
        }
        l
    }

    #[test]
    fn a_new_instance_closes_the_oldest_launch() {
        let mut l = settled();
        l.asked(100.0, 2, 4, 2, 60.0);
        assert_eq!(l.warming(), 2);
        // A known host says nothing; a new one that is not healthy yet waits.
        assert_eq!(l.seen("a", true, 110.0), None);
        assert_eq!(l.seen("c", false, 120.0), None);
        let ready = l.seen("c", true, 130.0).unwrap();
        assert_eq!((ready.instance.as_str(), ready.warmup_s), ("c", 30.0));
        assert_eq!(l.seen("c", true, 131.0), None);
        assert_eq!(l.seen("d", true, 145.0).unwrap().warmup_s, 45.0);
        assert_eq!(l.warming(), 0);
        // No launch open: a new host is not a measurement.
        assert_eq!(l.seen("e", true, 200.0), None);
    }

    #[test]
    fn launches_wait_for_the_group_to_settle_and_end_with_a_scale_in_or_old_age() {
        let mut l = Launches::default();
        l.deciding(0.0);
        l.asked(30.0, 2, 4, 2, 60.0);
        assert_eq!(
            l.warming(),
            0,
            "hosts in service may not all have spoken yet"
        );
        l.asked(100.0, 2, 6, 2, 60.0);
        assert_eq!(l.warming(), 4);
        l.asked(110.0, 6, 4, 2, 60.0);
        assert_eq!(l.warming(), 2);
        assert_eq!(l.expire(500.0, 300.0), 2);
        assert_eq!(l.warming(), 0);
    }

    #[test]
    fn the_p90_of_the_last_twenty_once_five_are_seen_within_bounds() {
        let mut l = Launches::default();
        let f = |l: &Launches| l.in_force(InstanceWarmup::Measured, 300.0, 10.0, 600.0);
        l.restore([40.0, 50.0, 60.0, 70.0]);
        assert_eq!(
            f(&l),
            InForce {
                warmup_s: 300.0,
                launches: 0
            }
        );
        l.restore([80.0]);
        assert_eq!(
            f(&l),
            InForce {
                warmup_s: 80.0,
                launches: 5
            }
        );
        l.restore((0..30).map(f64::from));
        // The last 20: 10..=29; the 18th smallest.
        assert_eq!(
            f(&l),
            InForce {
                warmup_s: 27.0,
                launches: 20
            }
        );
        assert_eq!(
            l.in_force(InstanceWarmup::Measured, 300.0, 28.5, 600.0)
                .warmup_s,
            28.5
        );
        assert_eq!(
            l.in_force(InstanceWarmup::Configured, 300.0, 10.0, 600.0)
                .warmup_s,
            300.0
        );
    }
}
