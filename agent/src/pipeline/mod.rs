//! The pipeline thread: drains the ring every tick, rolls samples up, forecasts and decides,
//! keeps the ledger (the plan next to target tracking on the same demand), judges health, and
//! hands each step's writes to the store writer as one batch.
//!
//! It runs on its own OS thread: forecasting is CPU work and the store writer is a blocking
//! thread of its own, so the async runtime only ever serves sockets.
//!
//! | module | job |
//! |---|---|
//! | `rollup` | samples into 10-second and 1-minute buckets |
//! | `decide` | forecast, policy, and the records and signal of a decision |
//! | `busy` | the host's work in progress, sent with a signal |
//! | `snapshot` | what the control socket, `/metrics` and the watchdog read |
//! | `refill` | the forecaster refilled with stored history at start |
//! | `writer` | the store writer thread |

mod busy;
mod decide;
mod refill;
mod rollup;
mod snapshot;
mod writer;

pub use decide::{REPORT_HORIZONS, action_name, host_forecast, host_policy, is_saturated};
pub use refill::Refill;
pub use rollup::demand_of;
pub use snapshot::{RawPoint, ReplicaLink, Shared, Snapshot};
pub use writer::{WriterMsg, run_writer};

use std::path::PathBuf;
use std::sync::Arc;
use std::sync::mpsc::{Receiver, Sender, SyncSender, TryRecvError};
use std::time::{Duration, Instant};

use headroom_collector::{SampleReceiver, SamplerStats};
use headroom_model::ledger::Hour;
use headroom_model::{Forecaster, Ledger, Policy, PolicyMemory};

use self::rollup::Buckets;
use crate::config::Config;
use crate::health::{self, Health, HealthState};
use crate::store::{Batch, HealthRecord, Point, Rollup};

/// Observed seconds of the ledger's open hour kept in memory before they go to the store.
const LEDGER_CHECKPOINT_S: f64 = 60.0;

/// The demand series the forecaster reads: means of buckets this many seconds wide.
const DEMAND_BUCKET_S: i64 = 10;

/// Messages to the pipeline thread.
pub enum Control {
    /// Flush and stop.
    Stop,
    /// Apply a reloaded configuration.
    Reload(Arc<Config>),
}

/// Sends control messages to the pipeline thread and wakes it to read them.
#[derive(Clone)]
pub struct PipelineControl {
    tx: Sender<Control>,
    thread: std::thread::Thread,
}

impl PipelineControl {
    /// Wraps the sender of the pipeline's control channel and its thread.
    pub fn new(tx: Sender<Control>, thread: std::thread::Thread) -> PipelineControl {
        PipelineControl { tx, thread }
    }

    /// Delivers `msg`; false when the pipeline has gone.
    pub fn send(&self, msg: Control) -> bool {
        let ok = self.tx.send(msg).is_ok();
        self.thread.unpark();
        ok
    }
}

/// The pipeline's own state.
pub struct Pipeline {
    cfg: Arc<Config>,
    capacity: f64,
    rx: SampleReceiver,
    stats: Arc<SamplerStats>,
    writer: SyncSender<WriterMsg>,
    shared: Arc<Shared>,
    control: Receiver<Control>,
    b10: Buckets,
    b1m: Buckets,
    key: String,
    forecaster: Forecaster,
    policy: Policy,
    /// Demand of the samples drained this tick, on their way to [`Snapshot::raw`].
    raw: Vec<RawPoint>,
    /// When the last decision was made, on the sampler's monotonic clock: a wall clock stepped
    /// back (NTP at boot, a VM resumed) must not hold the next decision back by the step.
    last_decision: Option<Duration>,
    last_health: Option<Health>,
    last_prune: Option<Instant>,
    /// The end of the newest stored history at start: the first prune, at once, counts
    /// retention back from it when the clock is later (a clock that boots far ahead, before
    /// NTP steps it back, must not make retention delete real history), so an agent restarted
    /// more often than hourly still prunes.
    first_prune_before: Option<f64>,
    last_statvfs: Option<(Instant, Option<f64>)>,
    state_dir: PathBuf,
    /// Called after every tick that completed (the systemd watchdog).
    on_tick: Box<dyn FnMut() + Send>,
    /// Whether the reactive check already fired for the current excess.
    reactive_fired: bool,
    /// This host's EC2 instance id, sent with signals so the coordinator can replace it.
    instance_id: Option<String>,
    /// The plan's ledger next to target tracking, judged every tick.
    ledger: Ledger,
    /// The count the latest decision planned (in force until the next one).
    planned: Option<u32>,
    /// The latest decision's forecast at the lead, until the ledger takes it.
    at_lead: Option<(f64, f64)>,
    /// What of the ledger went to the store since start, summed.
    ledger_stored: Hour,
    /// The host's work in progress, read at each decision.
    busy: busy::Busy,
}

/// Everything the pipeline needs to start.
pub struct PipelineParts {
    /// The running configuration.
    pub cfg: Arc<Config>,
    /// This host's capacity in the demand metric's unit.
    pub capacity: f64,
    /// The ring's consumer end.
    pub rx: SampleReceiver,
    /// The sampler's counters and source states.
    pub stats: Arc<SamplerStats>,
    /// Where batches go: the store writer.
    pub writer: SyncSender<WriterMsg>,
    /// What the rest of the agent reads.
    pub shared: Arc<Shared>,
    /// Stop and reload messages.
    pub control: Receiver<Control>,
    /// The state directory (its filesystem is watched for space).
    pub state_dir: PathBuf,
    /// The forecaster, refilled from stored history.
    pub refill: Refill,
    /// What the policy learned before the restart, as the store kept it.
    pub policy_memory: Option<PolicyMemory>,
    /// The 1-minute rollups of the minute a kill -9 left open, folded from its committed
    /// 10-second rows (`Reader::unrolled_minute`): the minute goes on from them.
    pub unrolled: Vec<Rollup>,
    /// Called after every tick that completed (the systemd watchdog).
    pub on_tick: Box<dyn FnMut() + Send>,
    /// This host's EC2 instance id, sent with signals.
    pub instance_id: Option<String>,
}

impl Pipeline {
    /// Builds the pipeline and refills the forecaster from stored history.
    pub fn new(parts: PipelineParts) -> Pipeline {
        let Refill { forecaster, recent } = parts.refill;
        let busy = busy::Busy::new(
            &parts.cfg.coordinator.busy,
            &parts.cfg.coordinator.busy_ports,
        );
        let mut policy = Policy::new(host_policy(&parts.cfg, parts.capacity));
        if let Some(memory) = parts.policy_memory {
            match policy.restore(memory, headroom_common::clock::unix_now()) {
                Ok(()) => tracing::info!("policy memory restored"),
                Err(err) => tracing::warn!("policy memory not restored: {err}"),
            }
        }
        let ledger = Ledger::new(policy.config());
        let first_prune_before = recent.back().map(|p| (p.ts + DEMAND_BUCKET_S) as f64);
        parts.shared.lock().recent = recent;
        Pipeline {
            cfg: parts.cfg,
            capacity: parts.capacity,
            rx: parts.rx,
            stats: parts.stats,
            writer: parts.writer,
            shared: parts.shared,
            control: parts.control,
            b10: Buckets::new(DEMAND_BUCKET_S),
            b1m: Buckets::resumed(60, parts.unrolled),
            key: String::with_capacity(64),
            forecaster,
            policy,
            raw: Vec::new(),
            last_decision: None,
            last_health: None,
            last_prune: None,
            first_prune_before,
            last_statvfs: None,
            state_dir: parts.state_dir,
            on_tick: parts.on_tick,
            reactive_fired: false,
            instance_id: parts.instance_id,
            ledger,
            planned: None,
            at_lead: None,
            ledger_stored: Hour::default(),
            busy,
        }
    }

    /// Runs until told to stop; flushes open buckets on the way out.
    ///
    /// The sampler wakes this thread after every sample, so a step in demand reaches the
    /// reactive check at once; without samples it still ticks once per interval (health, the
    /// watchdog). [`PipelineControl`] wakes it for control messages.
    pub fn run(mut self) {
        let period = self.cfg.agent.interval;
        self.rx.wake_on_push();
        let mut next = Instant::now() + period;
        loop {
            match self.control.try_recv() {
                Ok(Control::Stop) | Err(TryRecvError::Disconnected) => break,
                Ok(Control::Reload(cfg)) => {
                    self.reload(cfg);
                    continue;
                }
                Err(TryRecvError::Empty) => {}
            }
            let now = Instant::now();
            if self.rx.is_empty() && now < next {
                std::thread::park_timeout(next - now);
                continue;
            }
            self.tick();
            (self.on_tick)();
            next = Instant::now() + period;
        }
        self.tick();
        let mut batch = Batch::default();
        self.b10.flush(&mut batch.rollups_10s);
        self.b1m.flush(&mut batch.rollups_1m);
        // The hour being filled, part-full: the next start adds the rest to it.
        batch.ledger.extend(self.ledger.take_open());
        if !batch.is_empty() {
            let _ = self.writer.send(WriterMsg::Batch(Box::new(batch)));
        }
    }

    fn reload(&mut self, cfg: Arc<Config>) {
        let (applied, kept) = self.cfg.reloaded(&cfg);
        if !kept.is_empty() {
            tracing::warn!(
                keys = %kept.join(", "),
                "these changes take effect at the next restart; the rest is applied now"
            );
        }
        let cfg = Arc::new(applied);
        // 0 puts it back to the host's online CPUs.
        self.capacity = cfg.model.capacity_in_force(&cfg.sources.proc_root);
        self.policy.reconfigure(host_policy(&cfg, self.capacity));
        self.shared.lock().decision_interval_s = cfg.agent.decision_interval.as_secs_f64();
        self.ledger.reconfigure(self.policy.config());
        self.cfg = cfg;
        tracing::info!("configuration reloaded");
    }

    /// One pipeline step.
    fn tick(&mut self) {
        let mut batch = Batch::default();
        let mut latest = None;
        let mut latest_demand = None;
        let mut demand_closed = Vec::new();
        let mut drained = 0u32;
        while let Some(s) = self.rx.try_recv() {
            drained += 1;
            self.b1m.add(&s, &mut self.key, &mut batch.rollups_1m);
            let start = batch.rollups_10s.len();
            if self.b10.add(&s, &mut self.key, &mut batch.rollups_10s) {
                for r in &batch.rollups_10s[start..] {
                    if r.metric == self.cfg.model.demand {
                        demand_closed.push(Point {
                            ts: r.ts,
                            mean: r.mean,
                            max: r.max,
                            last: r.last,
                        });
                    }
                }
            }
            latest_demand = demand_of(&s, &self.cfg.model.demand);
            if let Some(value) = latest_demand {
                self.raw.push(RawPoint {
                    ts: s.wall_unix,
                    value,
                });
            }
            latest = Some(s);
        }
        for p in &demand_closed {
            self.forecaster.observe(p.ts as f64, p.mean);
        }
        let sources = self.stats.source_states();
        let disk_used = self.disk_used();
        let now_wall = latest.map(|s| s.wall_unix);

        // Decide every decision interval, and at once when demand outgrows the host.
        if let (Some(s), Some(now)) = (latest, now_wall) {
            let demand = latest_demand;
            let saturated = is_saturated(&s, &self.cfg.model.demand);
            // A sampler restarted by a reload starts its clock again: then the decision is due.
            let interval = self
                .cfg
                .agent
                .decision_interval
                .saturating_sub(Duration::from_micros(1));
            let due = self
                .last_decision
                .is_none_or(|t| s.mono.checked_sub(t).is_none_or(|d| d >= interval));
            let excess = demand
                .is_some_and(|d| d > self.capacity * self.cfg.policy.target_utilization)
                || saturated;
            let reactive = excess && !self.reactive_fired;
            self.reactive_fired = excess;
            if let Some(d) = demand
                && (due || reactive)
            {
                self.last_decision = Some(s.mono);
                let busy = self.busy.measure(&s);
                self.decide(now, d, saturated, busy, &mut batch);
            }
        }

        // The forecast, of 10 s means, is scored against each mean as it closes, at its
        // bucket's end; the ledger judges every sample against the count in force.
        for p in &demand_closed {
            self.ledger.score((p.ts + DEMAND_BUCKET_S) as f64, p.mean);
        }
        if let (Some(s), Some(demand), Some(planned)) = (latest, latest_demand, self.planned) {
            let dt = self.cfg.agent.interval.as_secs_f64() * f64::from(drained);
            let at_lead = self.at_lead.take();
            if let Some(hour) =
                self.ledger
                    .record_unscored(s.wall_unix, dt, demand, planned, at_lead)
            {
                self.ledger_stored.add(&hour);
                batch.ledger.push(hour);
            }
            // The hour being filled goes to the store a minute at a time (rows add up), so a
            // kill -9 loses at most that minute of the ledger.
            if self
                .ledger
                .open()
                .is_some_and(|h| h.observed_s >= LEDGER_CHECKPOINT_S)
                && let Some(part) = self.ledger.take_open()
            {
                self.ledger_stored.add(&part);
                batch.ledger.push(part);
            }
        }

        let health = {
            let snap = self.shared.lock();
            let fallback = snap.forecast.as_ref().and_then(|f| f.fallback.clone());
            let filling = snap.forecast.as_ref().and_then(|f| f.filling);
            health::evaluate(
                &self.cfg.health,
                &health::Inputs {
                    sample: latest.as_ref().or(snap.sample.as_ref()),
                    sources: &sources,
                    model_fallback: fallback.as_deref(),
                    model_filling: filling,
                    store_error: snap.store_error.as_deref(),
                    disk_used,
                    replicas: &snap.replicas,
                    reload_refused: snap.reload_refused.as_deref(),
                    history_set_aside: snap.history_set_aside.as_deref(),
                    // The sender stamps the wall clock, not a sample's time.
                    now: headroom_common::clock::unix_now(),
                },
            )
        };
        if self.last_health.as_ref().map(health_kind) != Some(health_kind(&health))
            && let Some(now) = now_wall
        {
            let was = self.last_health.as_ref().map(|h| h.state);
            if was != Some(health.state) {
                log_health(&health, was);
            }
            batch.health = Some(HealthRecord {
                ts: now,
                state: health.state.name().into(),
                reasons: health.reasons.clone(),
            });
            self.last_health = Some(health.clone());
        }

        {
            let mut snap = self.shared.lock();
            if latest.is_some() {
                snap.sample = latest;
            }
            snap.sources = sources;
            snap.ticks = self.stats.ticks.load(std::sync::atomic::Ordering::Relaxed);
            snap.ring_dropped = self.stats.dropped();
            snap.late_ticks = self
                .stats
                .late_ticks
                .load(std::sync::atomic::Ordering::Relaxed);
            snap.health = health;
            snap.capacity = self.capacity;
            snap.target_utilization = self.cfg.policy.target_utilization;
            snap.push_recent(demand_closed);
            snap.ledger_open = self.ledger.open().copied();
            let mut total = self.ledger_stored;
            if let Some(open) = self.ledger.open() {
                total.add(open);
            }
            snap.ledger_total = total;
            snap.push_raw(self.raw.drain(..));
        }

        if !batch.is_empty() {
            // A full channel means the writer is far behind; the batch waits in this thread
            // rather than being lost.
            let _ = self.writer.send(WriterMsg::Batch(Box::new(batch)));
        }
        if let Some(now) = now_wall
            && self
                .last_prune
                .is_none_or(|t| t.elapsed() > Duration::from_secs(3600))
        {
            let first = self.last_prune.replace(Instant::now()).is_none();
            // Nothing stored at start: nothing to prune before the hour is out.
            let before = if first {
                self.first_prune_before.take().map(|end| now.min(end))
            } else {
                Some(now)
            };
            if let Some(now) = before {
                let _ = self.writer.send(WriterMsg::Prune { now });
            }
        }
    }
    fn disk_used(&mut self) -> Option<f64> {
        if let Some((at, v)) = self.last_statvfs
            && at.elapsed() < Duration::from_secs(30)
        {
            return v;
        }
        let v = rustix::fs::statvfs(&self.state_dir).ok().and_then(|s| {
            let total = s.f_blocks as f64;
            (total > 0.0).then(|| 1.0 - s.f_bavail as f64 / total)
        });
        self.last_statvfs = Some((Instant::now(), v));
        v
    }
}

/// What makes a health change worth recording: the state and the kinds of reasons (the text
/// before the first ':'), not the figures inside them, which move every tick.
fn health_kind(h: &Health) -> (HealthState, Vec<&str>) {
    let kinds = h
        .reasons
        .iter()
        .map(|r| r.split(':').next().unwrap_or(r))
        .collect();
    (h.state, kinds)
}

fn log_health(h: &Health, was: Option<HealthState>) {
    let reasons = h.reasons.join("; ");
    let from = was.map(|w| w.name()).unwrap_or("starting");
    match h.state {
        HealthState::Healthy => tracing::info!(from, "health is healthy"),
        HealthState::Degraded => tracing::warn!(from, %reasons, "health is degraded"),
        HealthState::Unhealthy => tracing::error!(from, %reasons, "health is unhealthy"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use headroom_collector::Sample;

    use crate::store::Committed;

    /// A pipeline over a ring the test feeds, with the writer's channel to read.
    fn pipeline(
        cfg: Config,
    ) -> (
        Pipeline,
        headroom_collector::SampleSender,
        Receiver<WriterMsg>,
    ) {
        let cfg = Arc::new(cfg);
        let (tx, rx) = headroom_collector::ring(64);
        let (writer, written) = std::sync::mpsc::sync_channel(64);
        let shared = Shared::new(Snapshot::starting(
            &cfg,
            "h".into(),
            4.0,
            Committed::default(),
            PathBuf::new(),
            0.0,
        ));
        let (_, control) = std::sync::mpsc::channel();
        let p = Pipeline::new(PipelineParts {
            capacity: 4.0,
            rx,
            stats: Arc::default(),
            writer,
            shared,
            control,
            state_dir: std::env::temp_dir(),
            refill: Refill::new(host_forecast(&cfg)),
            policy_memory: None,
            unrolled: Vec::new(),
            on_tick: Box::new(|| {}),
            instance_id: None,
            cfg,
        });
        (p, tx, written)
    }

    /// Feeds one sample at `mono` seconds of the sampler's clock and `wall` of the wall clock;
    /// says whether that tick made a decision.
    fn decides_at(
        p: &mut Pipeline,
        tx: &mut headroom_collector::SampleSender,
        written: &Receiver<WriterMsg>,
        mono: f64,
        wall: f64,
    ) -> bool {
        let mut s = Sample {
            valid: 1, // cpu
            mono: Duration::from_secs_f64(mono),
            wall_unix: wall,
            ..Sample::default()
        };
        s.cpu.busy_cores = 1.0;
        assert!(tx.push(s));
        p.tick();
        written.try_iter().any(|m| match m {
            WriterMsg::Batch(b) => b.decision.is_some(),
            WriterMsg::Prune { .. } => false,
        })
    }

    #[test]
    fn decisions_keep_their_interval_when_the_wall_clock_steps_back() {
        let (mut p, mut tx, written) = pipeline(Config::default());
        let interval = p.cfg.agent.decision_interval.as_secs_f64();
        let wall = 1.7e9;
        assert!(
            decides_at(&mut p, &mut tx, &written, 0.0, wall),
            "first sample"
        );
        assert!(!decides_at(&mut p, &mut tx, &written, 1.0, wall + 1.0));
        // The wall clock steps back an hour; the sampler's clock goes on.
        let mut decided = Vec::new();
        for i in 2..=(interval as i64 + 1) {
            let t = i as f64;
            if decides_at(&mut p, &mut tx, &written, t, wall - 3600.0 + t) {
                decided.push(t);
            }
        }
        assert_eq!(
            decided,
            [interval],
            "decided at sampler seconds {decided:?}"
        );
    }

    #[test]
    fn the_first_prune_is_at_start_and_counts_back_from_the_newest_history() {
        let (mut p, mut tx, written) = pipeline(Config::default());
        let prunes = |written: &Receiver<WriterMsg>| -> Vec<f64> {
            written
                .try_iter()
                .filter_map(|m| match m {
                    WriterMsg::Prune { now } => Some(now),
                    WriterMsg::Batch(_) => None,
                })
                .collect()
        };
        // History stored up to 1.7e9 (as the refill read it); the clock boots ten days ahead.
        p.first_prune_before = Some(1.7e9);
        let ahead = 1.7e9 + 10.0 * 86_400.0;
        decides_at(&mut p, &mut tx, &written, 0.0, ahead);
        assert_eq!(prunes(&written), [1.7e9]);
        // The next one an hour on, not at every tick.
        decides_at(&mut p, &mut tx, &written, 1.0, ahead + 1.0);
        assert_eq!(prunes(&written), Vec::<f64>::new());
        // Nothing stored at start: nothing to prune at once.
        let (mut fresh, mut tx, written) = pipeline(Config::default());
        decides_at(&mut fresh, &mut tx, &written, 0.0, 1.7e9);
        assert_eq!(prunes(&written), Vec::<f64>::new());
    }
}
