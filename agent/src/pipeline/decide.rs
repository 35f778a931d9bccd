//! Deciding: the forecast over every step up to the lead, the policy's decision for this
//! host's share, and what a decision writes (its record, the forecast's reported horizons and
//! the signal for the coordinator, all in the step's batch).

use headroom_collector::{Sample, SourceKind};
use headroom_common::signal::{SIGNAL_VERSION, SIGNAL_VERSION_WITHOUT_BUSY, Signal};
use headroom_model::{
    Action, ForecastConfig, Observation, PolicyConfig, PolicyMode, lead_horizons,
};

use super::Pipeline;
use crate::config::{Config, ModeSetting};
use crate::store::{Batch, DecisionRecord, ForecastRecord, MemoryRecord};

/// Horizons reported by `headroom forecast` and stored, seconds; the lead is added to them.
/// The forecaster scores every step up to the lead (the policy plans over them all) and these
/// beyond it: 15 minutes covers any instance warm-up with room to spare.
pub const REPORT_HORIZONS: [f64; 5] = [60.0, 120.0, 300.0, 600.0, 900.0];

/// The forecaster of a host: every step up to the lead is scored, as the policy plans over
/// them all (as `headroom simulate` does), and the reported horizons beyond it, those only.
pub fn host_forecast(cfg: &Config) -> ForecastConfig {
    let lead = host_policy(cfg, 1.0).lead_s();
    ForecastConfig {
        max_history_s: cfg.model.history.as_secs_f64(),
        horizon_s: lead,
        extra_horizons_s: REPORT_HORIZONS.into_iter().filter(|&h| h > lead).collect(),
        ..ForecastConfig::default()
    }
}

/// The policy configuration for one host's share of the group.
pub fn host_policy(cfg: &Config, capacity: f64) -> PolicyConfig {
    let m = &cfg.policy;
    PolicyConfig {
        capacity_per_instance: capacity,
        target_utilization: m.target_utilization,
        shortfall_budget: m.shortfall_budget,
        spend_ceiling: m.spend_ceiling,
        scale_in: m.scale_in,
        warmup_s: m.warmup.as_secs_f64(),
        decision_interval_s: cfg.agent.decision_interval.as_secs_f64(),
        // A host cannot remove itself; its decisions say whether its share needs more.
        min_instances: 1,
        max_instances: 10_000,
        max_scale_in_step: m.max_scale_in_step,
        max_scale_in_fraction: m.max_scale_in_fraction,
        scale_in_stabilization_s: m.scale_in_stabilization.as_secs_f64(),
        mode: match m.mode {
            ModeSetting::Predictive => PolicyMode::Predictive,
            ModeSetting::Reactive => PolicyMode::Reactive,
            ModeSetting::ForecastOnly => PolicyMode::ForecastOnly,
        },
        ..PolicyConfig::default()
    }
}

/// The demand metric is censored, so its value understates demand: for CPU time, the CPU is at
/// its limit; for requests (accept queues, an application's gauges), the accept queue is
/// overflowing (connections are refused before they count). Each only censors its own kind: a
/// full CPU does not censor a queue (it keeps growing), and an overflow (counted host-wide,
/// whichever socket it was) does not censor CPU time, whose limit is the CPU's.
pub fn is_saturated(s: &Sample, demand_metric: &str) -> bool {
    if demand_metric.starts_with("cpu.") {
        s.has(SourceKind::Cpu) && s.cpu.busy >= 0.97
    } else if demand_metric.starts_with("accept_queue.") || demand_metric.starts_with("app.") {
        s.has(SourceKind::Netstat) && s.listen_overflows > 0
    } else {
        // Memory, disks, network, pressure: neither limit censors them.
        false
    }
}

/// Stable name of an action.
pub fn action_name(a: Action) -> &'static str {
    match a {
        Action::ScaleOut => "scale_out",
        Action::Hold => "hold",
        Action::ScaleIn => "scale_in",
    }
}

impl Pipeline {
    /// Forecasts, decides and writes the decision (with its forecast and signal) into `batch`.
    pub(super) fn decide(
        &mut self,
        now: f64,
        demand: f64,
        saturated: bool,
        busy: Option<f64>,
        batch: &mut Batch,
    ) {
        let lead = self.policy.config().lead_s();
        let mut horizons = Vec::new();
        lead_horizons(self.forecaster.step_s(), lead, &mut horizons);
        horizons.extend(REPORT_HORIZONS);
        horizons.sort_by(f64::total_cmp);
        horizons.dedup();
        let forecast = self.forecaster.forecast(&horizons);
        let obs = Observation {
            t: now,
            demand,
            saturated,
            current_instances: 1,
        };
        let decision = self.policy.decide(&obs, forecast.as_ref());
        let metric = self.cfg.model.demand.clone();
        batch.policy_memory = Some(MemoryRecord {
            metric: metric.clone(),
            memory: self.policy.memory(now),
        });
        // Reported and stored: the lead and the fixed horizons, not every step before it.
        let forecast = forecast.map(|mut f| {
            f.points
                .retain(|p| p.horizon_s == lead || REPORT_HORIZONS.contains(&p.horizon_s));
            f
        });
        if let Some(f) = &forecast {
            batch.forecasts = f
                .points
                .iter()
                .map(|p| ForecastRecord {
                    ts: now,
                    metric: metric.clone(),
                    model: f.model.into(),
                    horizon_s: p.horizon_s,
                    p50: p.p50,
                    p90: p.p90,
                    p99: p.p99,
                })
                .collect();
        }
        let action = action_name(decision.action);
        // The health judged on the previous tick, with its current figures.
        let health = self.shared.lock().health.clone();
        batch.decision = Some(DecisionRecord {
            seq: 0,
            ts: now,
            action: action.into(),
            current: decision.current,
            desired: decision.desired,
            lead_s: decision.lead_s,
            demand,
            p50: decision.p50_at_lead,
            p90: decision.p90_at_lead,
            fallback: decision.fallback,
            reason: decision.reason.clone(),
        });
        let (host, group) = {
            let snap = self.shared.lock();
            (snap.host.clone(), snap.group.clone())
        };
        batch.signal = (!self.cfg.coordinator.urls.is_empty()).then(|| {
            Signal {
                // Without the busy figure, the first version: a coordinator that predates it
                // accepts the signal.
                version: if busy.is_some() {
                    SIGNAL_VERSION
                } else {
                    SIGNAL_VERSION_WITHOUT_BUSY
                },
                host,
                group,
                epoch: String::new(),
                seq: 0,
                decided_at: now,
                sent_at: 0.0,
                metric,
                demand_now: demand,
                capacity: self.capacity,
                lead_s: decision.lead_s,
                p50_at_lead: decision.p50_at_lead,
                p90_at_lead: decision.p90_at_lead,
                saturated,
                action: action.into(),
                desired_change: decision.desired as i32 - decision.current as i32,
                reason: decision.reason.clone(),
                health: health.state.name().into(),
                health_reasons: health.reasons,
                instance_id: self.instance_id.clone(),
                busy,
            }
            // A forecast of a series that went below zero may too, a gauge may read past any
            // bound: a signal a coordinator refuses would be lost, so it is fitted to its bounds.
            .fitted()
        });
        let changed = self
            .shared
            .lock()
            .decision
            .as_ref()
            .map(|d| (d.action, d.desired))
            != Some((decision.action, decision.desired));
        if changed {
            tracing::info!(
                action,
                desired = decision.desired,
                demand,
                p90 = decision.p90_at_lead,
                "{}",
                decision.reason
            );
        }
        self.planned = Some(decision.planned);
        self.at_lead = decision.at_lead;
        let learned = self.policy.learned();
        let mut snap = self.shared.lock();
        snap.decision = Some(decision);
        snap.learned = Some(learned);
        snap.forecast = forecast;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Each kind of demand is censored by its own limit only: an overflow on some socket of
    /// the host (another service's) does not make CPU demand saturated.
    #[test]
    fn saturation_is_the_demand_metrics_own() {
        let mut s = Sample {
            valid: u8::MAX,
            listen_overflows: 7,
            ..Sample::default()
        };
        s.cpu.busy = 0.11;
        assert!(!is_saturated(&s, "cpu.busy_cores"));
        assert!(is_saturated(&s, "accept_queue.depth"));
        assert!(is_saturated(&s, "app.http_requests_in_flight"));
        assert!(!is_saturated(&s, "memory.used"));
        s.listen_overflows = 0;
        s.cpu.busy = 0.99;
        assert!(is_saturated(&s, "cpu.busy_cores"));
        assert!(!is_saturated(&s, "accept_queue.depth"));
    }
}
