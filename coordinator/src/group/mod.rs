//! One scaled group: its hosts' latest signals, the forecast of their summed demand, the
//! policy decision and the scale-in guard.
//!
//! Host forecasts are not summed (quantiles do not add up): the group forecasts the sum of the
//! hosts' *current* demand as one series with the same `Forecaster` and `Policy` as `simulate`.
//! The scale-in guard keeps an actuator from scaling in before the summed demand has allowed
//! the lower count for the whole stabilisation window, and by more than the scale-in step
//! (`max_scale_in_step`, or `max_scale_in_fraction` of the count) at once, whatever the model
//! decides; when the policy stabilises on its own the two windows start together (both count
//! from the demand drop), so the wait is not paid twice.

use std::collections::{BTreeMap, VecDeque};

use headroom_model::ledger::Hour;
use headroom_model::schedule::Raise;
use headroom_model::{Action, Forecaster, Observation, Policy, lead_horizons};

use crate::config::GroupConfig;
use crate::ledger::GroupLedger;
use crate::protection::BusyHosts;
use crate::state::{ActionRecord, Outcome, SignalCounts};
use crate::view::{Evaluation, ForecastView};
use crate::warmup::{InForce, Launches, Ready};
use headroom_common::signal::{Health, Signal};

/// Actions kept in memory for the API.
const ACTIONS_KEPT: usize = 20;

/// A host's latest state.
#[derive(Debug, Clone)]
pub struct HostState {
    /// Latest applied signal (by decision time).
    pub latest: Signal,
    /// When it was received, unix seconds.
    pub received_at: f64,
    /// Consecutive unhealthy signals.
    pub unhealthy_streak: u32,
    /// Already reported for replacement in this unhealthy streak.
    pub reported: bool,
    /// The epoch this host's signals had before the latest one took over, and when.
    pub replaced: Option<(String, f64)>,
    /// Returns to the epoch replaced last, each within the host TTL of the one before.
    pub returns: u32,
    /// When signals of two epochs last took turns for this host: two agents send under one
    /// host id (a cloned machine id), and the group counts one host's demand for both.
    pub shared_at: Option<f64>,
}

impl HostState {
    /// Takes note of `signal`, of another epoch than the latest (in the order received: an
    /// agent's clock orders nothing here). A host whose store was made anew (a reinstall)
    /// moves to its new epoch for good, after at most a signal or two of the old store still
    /// in flight; two agents sending under one host id take turns for as long as both run.
    /// Three returns to the epoch replaced, each within the host TTL, are taken for two
    /// agents: logged when it starts, and again if it starts over after a quiet TTL.
    fn note_epoch(&mut self, signal: &Signal, at: f64, ttl_s: f64) {
        let back = self
            .replaced
            .as_ref()
            .is_some_and(|(epoch, when)| *epoch == signal.epoch && at - when <= ttl_s);
        self.returns = if back { self.returns + 1 } else { 0 };
        if self.returns >= SHARED_AFTER_RETURNS {
            if self.shared_at.is_none_or(|t| at - t > ttl_s) {
                tracing::warn!(
                    host = %signal.host,
                    group = %signal.group,
                    epochs = %format!("{} and {}", self.latest.epoch, signal.epoch),
                    "two agents send as one host (a cloned machine id?): give each its own \
                     [agent] host_id; their demand is counted as one host's meanwhile"
                );
            }
            self.shared_at = Some(at);
        }
        self.replaced = Some((self.latest.epoch.clone(), at));
    }
}

/// Returns to a replaced epoch taken for two agents under one host id.
const SHARED_AFTER_RETURNS: u32 = 3;

/// What the decision loop should do after an evaluation.
#[derive(Debug, Clone, PartialEq)]
pub enum Step {
    /// Set the capacity from `from` to `to`.
    SetCapacity {
        /// The capacity now.
        from: u32,
        /// The capacity asked for.
        to: u32,
        /// The scaler's own maximum to set with it (`max_breach = "raise"`): raised for a count
        /// above the group's `max`, put back to `max` by the scale-in that fits under it.
        max: Option<u32>,
        /// Why.
        reason: String,
    },
    /// Put the scaler's maximum back to `max` (`max_breach = "raise"`): a raise was left in
    /// place while the count fits under `max` ([`maximum`] says how).
    SetMax {
        /// The maximum to set: the group's `max`.
        max: u32,
        /// Why.
        reason: String,
    },
    /// Report a host for replacement.
    Replace {
        /// The host.
        host: String,
        /// Its EC2 instance id, when it reported one.
        instance_id: Option<String>,
        /// Why.
        reason: String,
    },
}

/// The mutable state of a group (behind a mutex; never held across an await).
pub struct GroupState {
    config: GroupConfig,
    hosts: BTreeMap<String, HostState>,
    forecaster: Forecaster,
    policy: Policy,
    policy_capacity: f64,
    /// Whether the policy has been told the capacity in force when deciding started.
    seeded: bool,
    /// The scaler's own maximum, as last read (`None` when it has none or was not read).
    engine_max: Option<u32>,
    /// What the policy learned before a restart, until the first decision takes it back.
    restored: Option<headroom_model::PolicyMemory>,
    /// Why this replica does not actuate the group (another leads it), `None` when it does.
    standby: Option<String>,
    last_actuation_at: f64,
    last_set: Option<u32>,
    pending_replacements: VecDeque<(String, Option<String>)>,
    evaluation: Option<Evaluation>,
    actions: VecDeque<ActionRecord>,
    counts: SignalCounts,
    ledger: GroupLedger,
    /// Launches asked for and their measured warm-ups.
    launches: Launches,
    /// The engine's capacity at the last evaluation, when it reports one.
    engine_count: Option<u32>,
    /// Measured launches (`instance_ready`) not yet stored.
    ready_unsaved: Vec<ActionRecord>,
    /// When each instance last reported work in progress.
    busy: BusyHosts,
}

impl GroupState {
    /// A group with no history.
    pub fn new(config: GroupConfig) -> GroupState {
        let capacity = config.capacity_per_instance.unwrap_or(1.0);
        let policy = Policy::new(policy_config(&config, capacity));
        let ledger = GroupLedger::new(policy.config());
        GroupState {
            forecaster: forecaster(&policy, &config),
            config,
            hosts: BTreeMap::new(),
            policy,
            policy_capacity: capacity,
            seeded: false,
            engine_max: None,
            restored: None,
            standby: None,
            last_actuation_at: f64::NEG_INFINITY,
            last_set: None,
            pending_replacements: VecDeque::new(),
            evaluation: None,
            actions: VecDeque::new(),
            counts: SignalCounts::default(),
            ledger,
            launches: Launches::default(),
            engine_count: None,
            ready_unsaved: Vec::new(),
            busy: BusyHosts::default(),
        }
    }

    /// Restores the measured warm-ups the state file holds, oldest first.
    pub fn restore_warmups(&mut self, measured: Vec<f64>) {
        self.launches.restore(measured);
    }

    /// The measured launches not yet stored (to store as actions).
    pub fn take_ready_unsaved(&mut self) -> Vec<ActionRecord> {
        std::mem::take(&mut self.ready_unsaved)
    }

    /// Restores what the state file holds: demand series, hosts, last capacity, the last
    /// actions (shown) and replacements (not to repeat), counts.
    pub fn restore(
        &mut self,
        demand: &[(f64, f64)],
        signals: Vec<(f64, Signal)>,
        last_set: Option<u32>,
        actions: Vec<ActionRecord>,
        replacements: &[ActionRecord],
        counts: SignalCounts,
    ) {
        for &(t, v) in demand {
            self.forecaster.observe(t, v);
        }
        // When each host's current unhealthy streak began, to tell a replacement already made
        // for it (before the restart) from one still to make.
        let mut streak_from: BTreeMap<String, f64> = BTreeMap::new();
        for (at, s) in signals {
            if s.health_state() == Health::Unhealthy {
                streak_from.entry(s.host.clone()).or_insert(at);
            } else {
                streak_from.remove(&s.host);
            }
            self.apply(s, at);
        }
        self.pending_replacements.retain(|(host, _)| {
            let from = streak_from.get(host).copied().unwrap_or(f64::INFINITY);
            !replacements.iter().any(|a| {
                a.kind == "replace" && a.ok && a.host.as_deref() == Some(host) && a.at >= from
            })
        });
        self.last_set = last_set;
        self.actions = actions.into_iter().take(ACTIONS_KEPT).collect();
        self.counts = counts;
    }

    /// Starts the forecaster again on `demand` (oldest first): the series a late replica
    /// rebuilt from the signals it was sent late ([`crate::backfill`]), its own after.
    pub fn refill(&mut self, demand: &[(f64, f64)]) {
        self.forecaster = forecaster(&self.policy, &self.config);
        for &(t, v) in demand {
            self.forecaster.observe(t, v);
        }
    }

    /// Restores the ledger's stored hours (oldest first), the one `now` is in going on.
    pub fn restore_ledger(&mut self, hours: Vec<Hour>, now: f64) {
        self.ledger.restore(hours, now);
    }

    /// The ledger's hours to store since the last call.
    pub fn take_ledger_unsaved(&mut self) -> Vec<Hour> {
        self.ledger.take_unsaved()
    }

    /// The ledger since this coordinator started.
    pub fn ledger_total(&self) -> Hour {
        self.ledger.total()
    }

    /// Takes the outcome of a stored signal into account.
    pub fn ingest(&mut self, signal: Signal, outcome: Outcome, now: f64) {
        match outcome {
            Outcome::Applied => {
                self.counts.applied += 1;
                self.apply(signal, now);
            }
            Outcome::Stored => self.counts.stored += 1,
            Outcome::Duplicate => {}
        }
    }

    fn apply(&mut self, signal: Signal, received_at: f64) {
        let n = self.config.replace_unhealthy_after;
        let unhealthy = signal.health_state() == Health::Unhealthy;
        let host = signal.host.clone();
        match self.hosts.get_mut(&host) {
            // An older signal of the same record (delivered out of order) is not the host's
            // state, but it shows the host alive. Order is the agent's seq, not its clock: a
            // host whose clock steps back must not look stale until it expires.
            Some(h) if signal.epoch == h.latest.epoch && signal.seq < h.latest.seq => {
                h.received_at = received_at;
            }
            Some(h) => {
                if signal.epoch != h.latest.epoch {
                    h.note_epoch(&signal, received_at, self.config.host_ttl.as_secs_f64());
                }
                h.unhealthy_streak = if unhealthy {
                    h.unhealthy_streak.saturating_add(1)
                } else {
                    0
                };
                if !unhealthy {
                    h.reported = false;
                }
                h.latest = signal;
                h.received_at = received_at;
            }
            None => {
                let state = HostState {
                    latest: signal,
                    received_at,
                    unhealthy_streak: u32::from(unhealthy),
                    reported: false,
                    replaced: None,
                    returns: 0,
                    shared_at: None,
                };
                self.hosts.insert(host.clone(), state);
            }
        }
        if let Some(h) = self.hosts.get(&host) {
            let s = &h.latest;
            let instance = s.instance_id.clone().unwrap_or_else(|| host.clone());
            let healthy = s.health_state() == Health::Healthy;
            if let Some(id) = &s.instance_id {
                self.busy.observe(id, s.busy, received_at);
            }
            if let Some(ready) = self.launches.seen(&instance, healthy, received_at) {
                let group = s.group.clone();
                self.launch_ready(&group, ready, received_at);
            }
        }
        if let Some(h) = self.hosts.get_mut(&host)
            && n > 0
            && h.unhealthy_streak >= n
            && !h.reported
        {
            h.reported = true;
            self.pending_replacements
                .push_back((host, h.latest.instance_id.clone()));
        }
    }

    /// Instances whose hosts reported work in progress within `protection_idle` of `now`.
    pub fn busy_instances(&mut self, now: f64) -> std::collections::BTreeSet<String> {
        let idle = self.config.protection_idle.as_secs_f64();
        self.busy.busy(now, idle)
    }

    /// Records a measured launch as an `instance_ready` action (shown, stored, restored).
    fn launch_ready(&mut self, group: &str, ready: Ready, at: f64) {
        tracing::info!(group, instance = %ready.instance, warmup_s = ready.warmup_s, "new instance healthy: warm-up measured");
        let record = ActionRecord {
            at,
            kind: "instance_ready".into(),
            host: Some(ready.instance.clone()),
            reason: format!(
                "new instance {} healthy {:.1}s after capacity was asked for",
                ready.instance, ready.warmup_s
            ),
            ok: true,
            warmup_s: Some(ready.warmup_s),
            ..ActionRecord::default()
        };
        self.ready_unsaved.push(record.clone());
        self.actions.push_front(record);
        self.actions.truncate(ACTIONS_KEPT);
    }

    /// The warm-up the group plans with, seconds, and the instances still warming.
    pub fn warmup_figures(&self) -> (f64, usize) {
        (self.warmup_in_force().warmup_s, self.launches.warming())
    }

    /// The warm-up to plan with now ([`Launches::in_force`]).
    fn warmup_in_force(&self) -> InForce {
        let c = &self.config;
        self.launches.in_force(
            c.instance_warmup,
            c.warmup.as_secs_f64(),
            c.warmup_floor.as_secs_f64(),
            c.warmup_ceiling.as_secs_f64(),
        )
    }

    /// Says whether this replica actuates the group (`None`) or why not, and whether another
    /// replica may have led it since the last call (`led_elsewhere`: at a start, nothing is
    /// known of the time before). A replica that takes over holds the engine's capacity through
    /// a stabilisation window before any scale-in, as at a start. If another may have led, what
    /// this one last set is forgotten at once (a standby plans with it too). `applied`, the
    /// count the group's leaders last applied as etcd keeps it, stands for a count forgotten;
    /// for an engine it cannot read (a command hook, or AWS on a tick its read failed) without
    /// either, the hosts reporting stand for the capacity until this replica sets one.
    pub fn set_standby(
        &mut self,
        standby: Option<String>,
        led_elsewhere: bool,
        applied: Option<u32>,
    ) {
        if led_elsewhere {
            self.last_set = None;
        }
        if self.last_set.is_none() {
            self.last_set = applied;
        }
        if standby.is_none() && self.standby.is_some() {
            self.seeded = false;
        }
        self.standby = standby;
    }

    /// Notes the scaler's own maximum as just read (`None` when it has none, or the read
    /// failed), for [`maximum::left_raised`].
    pub fn set_engine_max(&mut self, max: Option<u32>) {
        self.engine_max = max;
    }

    /// Decides at `now` with the actuator's view of capacity (`reported`), and says what to do
    /// (nothing on a standby replica, which decides all the same).
    pub fn evaluate(&mut self, now: f64, reported: Option<u32>) -> Option<Step> {
        let c = self.config.clone();
        let ttl = c.host_ttl.as_secs_f64();
        self.hosts.retain(|name, h| {
            let live = now - h.received_at <= ttl;
            if !live {
                tracing::info!(host = %name, silent_s = now - h.received_at, "host expired: no signal within host_ttl");
            }
            live
        });
        let live = self.hosts.len();
        self.launches.deciding(now);
        // A standby measures launches too, from the engine's count rising (the leader's
        // actuations, seen within a decision interval), so a replica that takes over plans
        // with measurements of its own. The leader opens them from its actuations, exactly
        // when made ([`GroupState::record`]): an engine read just after a change may lag it.
        if let Some(n) = reported {
            if self.standby.is_some()
                && let Some(prev) = self.engine_count
                && n != prev
            {
                let settle = c.host_ttl.as_secs_f64();
                self.launches.asked(now, prev, n, live, settle);
            }
            self.engine_count = Some(n);
        }
        let gave_up = self
            .launches
            .expire(now, 2.0 * c.warmup_ceiling.as_secs_f64());
        if gave_up > 0 {
            tracing::warn!(
                launches = gave_up,
                "launches no new instance answered within twice warmup_ceiling: no longer counted as warming"
            );
        }
        self.refresh_warmup();
        // Capacity is the count asked for (the engine's, else the last set), never the hosts
        // that are ready: instances still warming are in it, so the plan does not ask again
        // for what they will serve, and they are never a reason to scale in. (The hosts only
        // count before this replica set anything, or after a takeover from another leader.)
        let (actual, actual_source) = match (reported, self.last_set) {
            (Some(n), _) => (n, "actuator"),
            (None, Some(n)) => (n, "last_set"),
            (None, None) => ((live as u32).clamp(c.min, c.max), "hosts"),
        };
        if live == 0 {
            // No demand to plan from: the group holds, unless a scheduled entry in force asks
            // for more (a group at zero, or whose hosts all went silent, still wakes for it).
            let (desired, reason, step) = match self.scheduled_without_hosts(now, actual) {
                Some((to, reason)) => {
                    let step = (self.standby.is_none() && self.rate_ok(now).0).then(|| {
                        Step::SetCapacity {
                            from: actual,
                            to,
                            max: breach_max(&c, actual, to),
                            reason: reason.clone(),
                        }
                    });
                    (to, reason, step)
                }
                None => (actual, "no live hosts: holding".to_string(), None),
            };
            let evaluation = Evaluation {
                at: now,
                live_hosts: 0,
                demand: 0.0,
                saturated: false,
                capacity_per_instance: self.policy_capacity,
                forecast: None,
                policy_desired: desired,
                desired,
                actual,
                actual_source: actual_source.into(),
                reason,
            };
            return self.conclude(evaluation, step);
        }
        let demand: f64 = self.hosts.values().map(|h| h.latest.demand_now).sum();
        let saturated = self.hosts.values().any(|h| h.latest.saturated);
        self.refresh_capacity();
        let cap = self.policy_capacity;

        self.forecaster.observe(now, demand);
        let lead = self.policy.config().lead_s();
        // Every step up to the lead, as the agent and `simulate` plan.
        let mut horizons = Vec::new();
        lead_horizons(self.forecaster.step_s(), lead, &mut horizons);
        let forecast = self.forecaster.forecast(&horizons);
        if !self.seeded {
            self.apply_restored_memory(now);
            // What is in service when deciding starts (a restart, a takeover) is held through
            // a stabilisation window before any scale-in.
            self.policy.hold(now, actual);
            self.seeded = true;
        }
        let obs = Observation {
            t: now,
            demand,
            saturated,
            current_instances: actual,
        };
        let decision = self.policy.decide(&obs, forecast.as_ref());

        let desired = decision.desired.clamp(c.min, most(&c));
        self.ledger.record(
            now,
            demand,
            // What the plan sets: above `max` when `max_breach = "raise"` lets it.
            decision.planned.clamp(c.min, most(&c)),
            decision.at_lead,
        );
        let mut reason = decision.reason.clone();
        let mut step = None;
        let (rate_ok, since) = self.rate_ok(now);
        if let Some(why) = &self.standby {
            if desired != actual {
                reason = format!("{reason}; {why}");
            }
        } else if desired != actual {
            if rate_ok {
                step = Some(Step::SetCapacity {
                    from: actual,
                    to: desired,
                    max: breach_max(&c, actual, desired),
                    reason: reason.clone(),
                });
            } else {
                reason = format!(
                    "{reason}; rate-limited: next actuation in {:.1}s",
                    c.actuation_interval.as_secs_f64() - since
                );
            }
        } else if rate_ok && let Some((host, instance_id)) = self.pending_replacements.pop_front() {
            step = Some(Step::Replace {
                host: host.clone(),
                instance_id,
                reason: format!(
                    "{host} unhealthy for {} consecutive signals",
                    c.replace_unhealthy_after
                ),
            });
        } else if rate_ok && let Some(left) = left_raised(&c, actual, self.engine_max) {
            // Only with no replacement waiting: a put-back that keeps failing (no permission
            // to update the group) must not hold one back.
            step = Some(Step::SetMax {
                max: c.max,
                reason: format!(
                    "the scaler's maximum is still raised to {left} with {actual} instances, \
                     under max {}: put back",
                    c.max
                ),
            });
        }
        let forecast = forecast.and_then(|f| {
            let p = *f.at(lead)?;
            Some(ForecastView {
                lead_s: lead,
                p50: p.p50,
                p90: p.p90,
                model: f.model.to_string(),
                fallback: f.fallback,
            })
        });
        if decision.action != Action::Hold || desired != actual {
            tracing::debug!(demand, actual, desired, %reason, "group decision");
        }
        let evaluation = Evaluation {
            at: now,
            live_hosts: live,
            demand,
            saturated,
            capacity_per_instance: cap,
            forecast,
            policy_desired: decision.desired,
            desired,
            actual,
            actual_source: actual_source.into(),
            reason,
        };
        self.conclude(evaluation, step)
    }

    /// Keeps `evaluation` as the latest and, when it asks for a step, starts the actuation
    /// interval from it ([`GroupState::rate_ok`]); returns the step.
    fn conclude(&mut self, evaluation: Evaluation, step: Option<Step>) -> Option<Step> {
        if step.is_some() {
            self.last_actuation_at = evaluation.at;
        }
        self.evaluation = Some(evaluation);
        step
    }

    /// Whether an actuation may go at `now` (one per `actuation_interval`), and the seconds
    /// since the last one.
    fn rate_ok(&self, now: f64) -> (bool, f64) {
        let since = now - self.last_actuation_at;
        // A clock stepped back (since < 0) must not hold every actuation back by the step.
        let ok = since >= self.config.actuation_interval.as_secs_f64() || since < 0.0;
        (ok, since)
    }

    /// With no live host, the count a scheduled entry in force raises the group to above
    /// `actual` (only `min_instances` entries: a demand factor has no demand to scale), and why.
    fn scheduled_without_hosts(&self, now: f64, actual: u32) -> Option<(u32, String)> {
        let p = self.policy.config();
        let (n, entry) = p
            .schedule
            .raising_at(now, p.lead_s())
            .filter_map(|(e, _)| match e.raise {
                Raise::MinInstances(n) => Some((n, e)),
                Raise::DemandFactor(_) => None,
            })
            .max_by_key(|(n, _)| *n)?;
        let to = n.clamp(self.config.min, most(&self.config));
        (to > actual).then(|| {
            (
                to,
                format!(
                    "no live hosts; scheduled: {}: {} raises the group to {to}",
                    entry.describe(),
                    entry.raise
                ),
            )
        })
    }

    /// Gives back a replacement the fence refused before it was attempted (this replica could
    /// not confirm it leads): the next evaluation that may act asks for it first. Without this
    /// the host, still marked reported, would never be reported again in its unhealthy streak.
    pub fn return_replacement(&mut self, host: String, instance_id: Option<String>) {
        self.pending_replacements.push_front((host, instance_id));
    }

    /// Records the result of an actuation.
    pub fn record(&mut self, action: ActionRecord) {
        if action.kind == "set_capacity" && action.ok {
            self.last_set = action.to;
            if let (Some(from), Some(to)) = (action.from, action.to) {
                let settle = self.config.host_ttl.as_secs_f64();
                self.launches
                    .asked(action.at, from, to, self.hosts.len(), settle);
            }
        }
        // A replacement that failed is asked for again by the host's next unhealthy signal.
        if action.kind == "replace"
            && !action.ok
            && let Some(h) = action.host.as_ref().and_then(|h| self.hosts.get_mut(h))
        {
            h.reported = false;
        }
        self.actions.push_front(action);
        self.actions.truncate(ACTIONS_KEPT);
    }

    /// The latest evaluation.
    pub fn evaluation(&self) -> Option<&Evaluation> {
        self.evaluation.as_ref()
    }
}

mod maximum;
mod model;
mod view;

use maximum::{breach_max, left_raised, most};
use model::{forecaster, policy_config};

#[cfg(test)]
mod tests;
