//! The group's forecaster and policy, built from its configuration and kept in step with what
//! is learnt while running: the capacity the hosts report and the measured warm-up each
//! reconfigure the policy (keeping its stabilisation window) and the ledger's shadow with it.
//! What the policy learned is kept across a restart ([`GroupState::policy_memory`]).

use headroom_model::{Forecaster, Learned, Policy, PolicyConfig, PolicyMemory, PolicyMode};

use super::GroupState;
use super::maximum::most;
use crate::config::{GroupConfig, GroupMode};
use crate::warmup::InstanceWarmup;

impl GroupState {
    /// What the group's policy learned, after the evaluation at `at`: the state file keeps it.
    pub fn policy_memory(&self, at: f64) -> PolicyMemory {
        self.policy.memory(at)
    }

    /// What the group's policy learned, as an operator reads it.
    pub fn learned(&self) -> Learned {
        self.policy.learned()
    }

    /// Takes back what the group's policy learned before a restart, at the first decision:
    /// by then the capacity the hosts report is in force, so target tracking's rule is the one
    /// the memory was taken under and its hold is kept.
    pub fn restore_policy(&mut self, memory: PolicyMemory) {
        self.restored = Some(memory);
    }

    /// Applies a memory [`GroupState::restore_policy`] was given, at `now`, once.
    pub(super) fn apply_restored_memory(&mut self, now: f64) {
        if let Some(memory) = self.restored.take() {
            match self.policy.restore(memory, now) {
                Ok(()) => tracing::info!("policy memory restored"),
                Err(err) => tracing::warn!("policy memory not restored: {err}"),
            }
        }
    }

    /// Plans with the warm-up in force: a measured one that moved by a second or more
    /// reconfigures the policy (its stabilisation window is kept).
    pub(super) fn refresh_warmup(&mut self) {
        let warmup = self.warmup_in_force().warmup_s;
        if (warmup - self.policy.config().warmup_s).abs() >= 1.0 {
            tracing::info!(
                warmup_s = warmup,
                "planning with a measured instance warm-up"
            );
            self.policy.reconfigure(PolicyConfig {
                warmup_s: warmup,
                ..self.policy.config().clone()
            });
            self.ledger.reconfigure(self.policy.config());
        }
    }

    /// Uses the configured capacity, else the mean the hosts report; rebuilds the policy when
    /// that moves by more than 1 %.
    pub(super) fn refresh_capacity(&mut self) {
        let cap = self.config.capacity_per_instance.unwrap_or_else(|| {
            let caps: Vec<f64> = self
                .hosts
                .values()
                .map(|h| h.latest.capacity)
                .filter(|c| *c > 0.0)
                .collect();
            if caps.is_empty() {
                self.policy_capacity
            } else {
                caps.iter().sum::<f64>() / caps.len() as f64
            }
        });
        if (cap - self.policy_capacity).abs() > 0.01 * self.policy_capacity.max(f64::MIN_POSITIVE) {
            self.policy_capacity = cap;
            self.policy.reconfigure(PolicyConfig {
                capacity_per_instance: cap,
                ..self.policy.config().clone()
            });
            self.ledger.reconfigure(self.policy.config());
        }
    }
}

/// The group's forecaster. It decides at one horizon, the lead: scoring every horizon up to 15
/// minutes at a sub-second decision interval made each refit tens of milliseconds, with the
/// group's lock held and ingest waiting on it.
pub(super) fn forecaster(policy: &Policy, c: &GroupConfig) -> Forecaster {
    // A measured warm-up may grow to the ceiling: forecast that far from the start.
    let lead = match c.instance_warmup {
        InstanceWarmup::Configured => policy.config().lead_s(),
        InstanceWarmup::Measured => policy
            .config()
            .lead_s()
            .max(c.warmup_ceiling.as_secs_f64() + c.decision_interval.as_secs_f64()),
    };
    Forecaster::new(headroom_model::ForecastConfig {
        horizon_s: lead,
        ..headroom_model::ForecastConfig::default()
    })
}

/// The model's policy config for a group with `capacity` per instance, as configured; a
/// capacity the hosts report or a measured warm-up later changes the one in force.
pub(super) fn policy_config(c: &GroupConfig, capacity: f64) -> PolicyConfig {
    PolicyConfig {
        capacity_per_instance: capacity,
        target_utilization: c.target_utilization,
        warmup_s: c.warmup.as_secs_f64(),
        decision_interval_s: c.decision_interval.as_secs_f64(),
        min_instances: c.min,
        max_instances: most(c),
        max_scale_in_step: c.max_scale_in_step,
        max_scale_in_fraction: c.max_scale_in_fraction,
        scale_in_stabilization_s: c.scale_in_stabilization.as_secs_f64(),
        mode: match c.mode {
            GroupMode::Predictive => PolicyMode::Predictive,
            GroupMode::Reactive => PolicyMode::Reactive,
        },
        shortfall_budget: c.shortfall_budget,
        spend_ceiling: c.spend_ceiling,
        scale_in: c.scale_in,
        // Checked when the configuration was loaded: its problems are not this one's to report.
        schedule: c.schedule("").0,
        ..PolicyConfig::default()
    }
}
