//! Scale-in protection for busy hosts (`scale_in_protection = true`, `aws` groups): an
//! instance whose host reports work in progress (the signal's `busy` figure above zero) is
//! protected from scale-in through SetInstanceProtection, and the protection is cleared once
//! the host has been idle for `protection_idle`.
//!
//! Rules, in this order:
//! - Only the group's own instances (as DescribeAutoScalingGroups lists them) are ever named
//!   in a call: an instance id comes from a host's signal, and a host holding a token must not
//!   change another group's instances.
//! - The coordinator owns the protection of the group's instances: one protected that is not
//!   busy is cleared (do not set it by hand on a group headroom protects).
//! - If every instance is busy, none is protected, so the group can still scale in; the log
//!   says so.
//! - Calls name at most [`BATCH`] instances each, at most [`MAX_CALLS`] per pass, and a pass
//!   runs at most once per `protection_interval`: what is left waits for the next pass.
//!
//! A host that does not report the figure (an older agent, `busy` off) is never busy.

use std::collections::{BTreeMap, BTreeSet};

/// Most instance ids in one SetInstanceProtection call (the API's limit).
pub const BATCH: usize = 50;
/// Most calls in one pass.
pub const MAX_CALLS: usize = 10;

/// When each instance last reported work in progress.
#[derive(Debug, Default)]
pub struct BusyHosts {
    last_busy: BTreeMap<String, f64>,
}

impl BusyHosts {
    /// A signal of `instance` at `at` reported `busy`.
    pub fn observe(&mut self, instance: &str, busy: Option<f64>, at: f64) {
        if busy.is_some_and(|b| b > 0.0) {
            let t = self.last_busy.entry(instance.to_string()).or_insert(at);
            *t = t.max(at);
        }
    }

    /// Instances busy within the last `idle_s` at `now`; forgets the others.
    pub fn busy(&mut self, now: f64, idle_s: f64) -> BTreeSet<String> {
        self.last_busy.retain(|_, t| now - *t < idle_s);
        self.last_busy.keys().cloned().collect()
    }
}

/// What one pass changes.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Plan {
    /// Instances to protect.
    pub protect: Vec<String>,
    /// Instances whose protection to clear.
    pub unprotect: Vec<String>,
    /// Every instance was busy, so none is protected.
    pub all_busy: bool,
}

/// The changes that make the group's `members` (instance id, protected now) protected exactly
/// when busy.
pub fn plan(members: &[(String, bool)], busy: &BTreeSet<String>) -> Plan {
    let all_busy = !members.is_empty() && members.iter().all(|(id, _)| busy.contains(id));
    let want = |id: &String| !all_busy && busy.contains(id);
    let mut p = Plan {
        all_busy,
        ..Plan::default()
    };
    for (id, protected) in members {
        match (want(id), *protected) {
            (true, false) => p.protect.push(id.clone()),
            (false, true) => p.unprotect.push(id.clone()),
            _ => {}
        }
    }
    p
}

/// The calls of a pass: (ids, protect?) in batches of at most [`BATCH`], at most
/// [`MAX_CALLS`] of them; protecting first, as leaving a busy instance exposed costs more than
/// keeping an idle one a pass longer.
pub fn calls(p: &Plan) -> Vec<(&[String], bool)> {
    p.protect
        .chunks(BATCH)
        .map(|c| (c, true))
        .chain(p.unprotect.chunks(BATCH).map(|c| (c, false)))
        .take(MAX_CALLS)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn members(ids: &[(&str, bool)]) -> Vec<(String, bool)> {
        ids.iter().map(|(i, p)| (i.to_string(), *p)).collect()
    }

    #[test]
    fn busy_instances_are_protected_until_idle_for_the_window() {
        let mut b = BusyHosts::default();
        b.observe("i-1", Some(3.0), 10.0);
        b.observe("i-2", Some(0.0), 10.0);
        b.observe("i-3", None, 10.0);
        b.observe("i-9", Some(1.0), 10.0);
        let busy = b.busy(12.0, 300.0);
        let p = plan(
            &members(&[("i-1", false), ("i-2", true), ("i-3", false)]),
            &busy,
        );
        // i-9 is not a member: never named.
        assert_eq!(p.protect, ["i-1"]);
        assert_eq!(p.unprotect, ["i-2"]);
        assert!(!p.all_busy);
        // Idle for the window: cleared.
        assert!(b.busy(310.0, 300.0).is_empty());
    }

    #[test]
    fn when_every_instance_is_busy_none_is_protected() {
        let busy: BTreeSet<String> = ["i-1", "i-2"].iter().map(|s| s.to_string()).collect();
        let p = plan(&members(&[("i-1", true), ("i-2", false)]), &busy);
        assert!(p.all_busy);
        assert_eq!(
            (p.protect.len(), p.unprotect, p.all_busy),
            (0, vec!["i-1".to_string()], true)
        );
    }

    #[test]
    fn calls_are_batched_and_bounded() {
        let ids: Vec<String> = (0..620).map(|i| format!("i-{i}")).collect();
        let p = Plan {
            protect: ids[..120].to_vec(),
            unprotect: ids[120..].to_vec(),
            all_busy: false,
        };
        let c = calls(&p);
        assert_eq!(c.len(), MAX_CALLS);
        assert!(c.iter().all(|(ids, _)| ids.len() <= BATCH));
        assert_eq!(c.iter().filter(|(_, protect)| *protect).count(), 3);
        assert_eq!(c[2].0.len(), 20);
    }
}
