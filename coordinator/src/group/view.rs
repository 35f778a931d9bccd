//! What the API shows of a group: its policy as configured and in force, its hosts' latest
//! signals, the latest evaluation, the last actions and the ledger. A copy, taken under the
//! group's lock and served without it.

use super::GroupState;
use crate::view::{GroupView, HostView, PolicyView, WarmupView};

impl GroupState {
    /// The API view.
    pub fn view(&self, name: &str, actuator: &str, now: f64) -> GroupView {
        let c = &self.config;
        let warmup = self.warmup_in_force();
        GroupView {
            name: name.to_string(),
            actuator: actuator.to_string(),
            policy: PolicyView {
                capacity_per_instance: c.capacity_per_instance,
                target_utilization: c.target_utilization,
                min: c.min,
                max: c.max,
                warmup_s: c.warmup.as_secs_f64(),
                decision_interval_s: c.decision_interval.as_secs_f64(),
                scale_in_stabilization_s: c.scale_in_stabilization.as_secs_f64(),
                max_scale_in_step: c.max_scale_in_step,
                max_scale_in_fraction: c.max_scale_in_fraction,
                host_ttl_s: c.host_ttl.as_secs_f64(),
                signal_ttl_s: c.signal_ttl.as_secs_f64(),
                replace_unhealthy_after: c.replace_unhealthy_after,
                shortfall_budget: c.shortfall_budget,
                spend_ceiling: self.policy.config().spend_ceiling_in_force(),
                scale_in: c.scale_in,
                warmup: Some(WarmupView {
                    mode: c.instance_warmup,
                    in_force_s: warmup.warmup_s,
                    launches: warmup.launches,
                    measured: self.launches.measured(),
                    warming: self.launches.warming(),
                }),
                learned: Some(self.policy.learned()),
            },
            hosts: self
                .hosts
                .values()
                .map(|h| {
                    let s = &h.latest;
                    HostView {
                        host: s.host.clone(),
                        epoch: s.epoch.clone(),
                        seq: s.seq,
                        age_s: (now - h.received_at).max(0.0),
                        decided_at: s.decided_at,
                        metric: s.metric.clone(),
                        demand_now: s.demand_now,
                        capacity: s.capacity,
                        p50_at_lead: s.p50_at_lead,
                        p90_at_lead: s.p90_at_lead,
                        saturated: s.saturated,
                        action: s.action.clone(),
                        reason: s.reason.clone(),
                        health: s.health.clone(),
                        health_reasons: s.health_reasons.clone(),
                        unhealthy_streak: h.unhealthy_streak,
                        instance_id: s.instance_id.clone(),
                        busy: s.busy,
                        // Shown while it goes on, and for a host TTL after.
                        shared_id_age_s: h
                            .shared_at
                            .map(|t| (now - t).max(0.0))
                            .filter(|&age| age <= c.host_ttl.as_secs_f64()),
                    }
                })
                .collect(),
            evaluation: self.evaluation.clone(),
            last_actions: self.actions.iter().cloned().collect(),
            signals: self.counts,
            ledger: Some(self.ledger.view(now)),
            lease: None,
        }
    }
}
