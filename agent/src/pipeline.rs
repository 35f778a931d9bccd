//! The pipeline thread: drains the ring every tick, rolls samples up, forecasts and decides,
//! judges health, and hands each step's writes to the store writer as one batch.
//!
//! It runs on its own OS thread: forecasting is CPU work and the store writer is a blocking
//! thread of its own, so the async runtime only ever serves sockets.

use std::collections::{HashMap, VecDeque};
use std::path::PathBuf;
use std::sync::mpsc::{Receiver, Sender, SyncSender, TryRecvError};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use headroom_collector::sampler::SamplerStats;
use headroom_collector::{MetricName, Sample, SampleReceiver, SourceKind, SourceState};
use headroom_model::{
    Decision, Forecast, ForecastConfig, Forecaster, Observation, Policy, PolicyConfig, PolicyMode,
    lead_horizons,
};
use serde::Serialize;

use crate::config::{Config, ModeSetting};
use crate::health::{self, Health, HealthState};
use crate::signal::{SIGNAL_VERSION, Signal};
use crate::store::{
    Batch, Committed, DecisionRecord, ForecastRecord, HealthRecord, Point, Reader, Resolution,
    Rollup,
};

/// Horizons reported by `headroom forecast` and stored, seconds; the lead is added to them.
/// The forecaster scores every step up to the lead (the policy plans over them all) and these
/// beyond it: 15 minutes covers any instance warm-up with room to spare.
pub const REPORT_HORIZONS: [f64; 5] = [60.0, 120.0, 300.0, 600.0, 900.0];
/// How long raw demand values stay in memory (`headroom history --resolution raw`).
const RAW_WINDOW_S: f64 = 300.0;
/// How many 10-second demand points the in-memory chart keeps (one hour).
const RECENT_POINTS: usize = 360;

/// What the rest of the agent can see of the pipeline, updated every tick.
#[derive(Debug, Clone, Serialize)]
pub struct Snapshot {
    /// When the agent started, unix seconds.
    pub started_at: f64,
    /// Host id and group signalled to the coordinator.
    pub host: String,
    pub group: String,
    /// Sampling cadence and decision interval, seconds.
    pub interval_s: f64,
    pub decision_interval_s: f64,
    /// Demand metric and this host's capacity in its unit.
    pub demand_metric: String,
    pub capacity: f64,
    /// The latest sample.
    #[serde(skip)]
    pub sample: Option<Sample>,
    /// Every source's state.
    #[serde(skip)]
    pub sources: Vec<(SourceKind, SourceState)>,
    /// Sampler counters.
    pub ticks: u64,
    pub ring_dropped: u64,
    pub late_ticks: u64,
    /// The latest decision, with its seq once committed.
    pub decision: Option<Decision>,
    /// The latest forecast of the demand metric.
    pub forecast: Option<Forecast>,
    pub health: Health,
    /// What the store has made durable.
    pub committed: Committed,
    /// The last store write error, while writes fail.
    pub store_error: Option<String>,
    /// Batches waiting for the store (non-zero while writes fail).
    pub store_backlog: usize,
    /// Since when the writer has been inside one transaction, if it is.
    #[serde(skip)]
    pub writer_busy_since: Option<Instant>,
    /// Since when every write has found the database locked by another process, if so.
    #[serde(skip)]
    pub store_locked_since: Option<Instant>,
    /// Demand 10-second means of the last hour, oldest first.
    #[serde(skip)]
    pub recent: VecDeque<Point>,
    /// Demand at every sample of the last five minutes, oldest first. Only the demand value is
    /// kept, not whole samples: a sample is kilobytes, and five minutes of them were most of
    /// the agent's heap.
    #[serde(skip)]
    pub raw: VecDeque<RawPoint>,
    /// The database file.
    pub db_path: PathBuf,
}

/// The demand metric at one sample.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct RawPoint {
    /// Wall-clock time of the sample, unix seconds.
    pub ts: f64,
    /// The demand value.
    pub value: f64,
}

/// State shared between the pipeline, the writer, the control socket and the metrics endpoint.
pub struct Shared {
    snapshot: Mutex<Snapshot>,
}

impl Shared {
    /// A fresh shared state.
    pub fn new(snapshot: Snapshot) -> Arc<Shared> {
        Arc::new(Shared {
            snapshot: Mutex::new(snapshot),
        })
    }

    /// Locks the snapshot (a poisoned lock still gives the data: it is plain values).
    pub fn lock(&self) -> MutexGuard<'_, Snapshot> {
        self.snapshot.lock().unwrap_or_else(|p| p.into_inner())
    }
}

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

/// Messages to the store writer.
pub enum WriterMsg {
    Batch(Box<Batch>),
    Prune { now: f64 },
}

/// Running rollup of one metric in one bucket.
#[derive(Debug, Clone, Copy)]
struct Acc {
    sum: f64,
    max: f64,
    last: f64,
    n: u32,
}

/// The open buckets of one resolution.
struct Buckets {
    width: i64,
    start: Option<i64>,
    accs: HashMap<String, Acc>,
}

impl Buckets {
    fn new(width: i64) -> Self {
        Buckets {
            width,
            start: None,
            accs: HashMap::new(),
        }
    }

    /// Adds one sample; returns the rollups of the bucket it closed, if any.
    fn add(&mut self, s: &Sample, key: &mut String, out: &mut Vec<Rollup>) -> bool {
        let bucket = (s.wall_unix.floor() as i64).div_euclid(self.width) * self.width;
        let mut closed = false;
        if self.start.is_some_and(|st| st != bucket) {
            self.flush(out);
            closed = true;
        }
        self.start = Some(bucket);
        s.visit(|name, v| {
            if !v.is_finite() {
                return;
            }
            metric_key(name, key);
            match self.accs.get_mut(key.as_str()) {
                Some(a) => {
                    a.sum += v;
                    a.max = a.max.max(v);
                    a.last = v;
                    a.n += 1;
                }
                None => {
                    self.accs.insert(
                        key.clone(),
                        Acc {
                            sum: v,
                            max: v,
                            last: v,
                            n: 1,
                        },
                    );
                }
            }
        });
        closed
    }

    fn flush(&mut self, out: &mut Vec<Rollup>) {
        let Some(ts) = self.start else { return };
        for (metric, a) in self.accs.drain() {
            if a.n > 0 {
                out.push(Rollup {
                    metric,
                    ts,
                    mean: a.sum / a.n as f64,
                    max: a.max,
                    last: a.last,
                    n: a.n,
                });
            }
        }
    }
}

/// Writes the stored name of a metric (`family` or `family.instance`) into `key`.
fn metric_key(name: MetricName<'_>, key: &mut String) {
    key.clear();
    key.push_str(name.family);
    if !name.instance.is_empty() {
        key.push('.');
        key.push_str(name.instance);
    }
}

/// Whether `name` is the metric called `wanted`, without allocating.
fn is_metric(name: MetricName<'_>, wanted: &str) -> bool {
    match wanted.strip_prefix(name.family) {
        Some("") => name.instance.is_empty(),
        Some(rest) => rest.strip_prefix('.') == Some(name.instance) && !name.instance.is_empty(),
        None => false,
    }
}

/// The demand value in a sample, if the sample carries it.
pub fn demand_of(s: &Sample, metric: &str) -> Option<f64> {
    let mut found = None;
    s.visit(|name, v| {
        if found.is_none() && is_metric(name, metric) {
            found = Some(v);
        }
    });
    // Load is finite and never below zero (an application gauge may be either): a value that
    // is not reads as none, and one below zero as zero, so decisions and signals stay valid.
    found.filter(|v| v.is_finite()).map(|v| v.max(0.0))
}

/// The forecaster of a host: every step up to the lead is scored, as the policy plans over
/// them all (as `headroom simulate` does), and the reported horizons beyond it, those only.
pub fn host_forecast(cfg: &Config) -> ForecastConfig {
    let lead = host_policy(cfg, 1.0).lead_s();
    ForecastConfig {
        horizon_s: lead,
        extra_horizons_s: REPORT_HORIZONS.into_iter().filter(|&h| h > lead).collect(),
        ..ForecastConfig::default()
    }
}

/// The policy configuration for one host's share of the group.
pub fn host_policy(cfg: &Config, capacity: f64) -> PolicyConfig {
    let m = &cfg.model;
    PolicyConfig {
        capacity_per_instance: capacity,
        target_utilization: m.target_utilization,
        warmup_s: m.warmup.as_secs_f64(),
        decision_interval_s: cfg.agent.decision_interval.as_secs_f64(),
        // A host cannot remove itself; its decisions say whether its share needs more.
        min_instances: 1,
        max_instances: 10_000,
        max_scale_in_step: m.max_scale_in_step,
        scale_in_stabilization_s: m.scale_in_stabilization.as_secs_f64(),
        mode: match m.mode {
            ModeSetting::Predictive => PolicyMode::Predictive,
            ModeSetting::Reactive => PolicyMode::Reactive,
            ModeSetting::ForecastOnly => PolicyMode::ForecastOnly,
        },
        ..PolicyConfig::default()
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
    last_statvfs: Option<(Instant, Option<f64>)>,
    state_dir: PathBuf,
    /// Called after every tick that completed (the systemd watchdog).
    on_tick: Box<dyn FnMut() + Send>,
    /// Whether the reactive check already fired for the current excess.
    reactive_fired: bool,
    /// This host's EC2 instance id, sent with signals so the coordinator can replace it.
    instance_id: Option<String>,
}

/// The forecaster and the chart's recent points, fed stored history (oldest first) before the
/// pipeline starts, so a restart does not send the model back to cold start.
pub struct Warmup {
    forecaster: Forecaster,
    recent: VecDeque<Point>,
}

impl Warmup {
    /// Nothing seen yet.
    pub fn new(forecast: ForecastConfig) -> Warmup {
        Warmup {
            forecaster: Forecaster::new(forecast),
            recent: VecDeque::with_capacity(RECENT_POINTS + 1),
        }
    }

    /// Feeds the next stored point of the demand metric.
    pub fn feed(&mut self, p: Point) {
        self.forecaster.observe(p.ts as f64, p.mean);
        if self.recent.len() == RECENT_POINTS {
            self.recent.pop_front();
        }
        self.recent.push_back(p);
    }

    /// Warmed from `metric`'s stored history as far back as the model keeps: 1-minute
    /// rollups, then the 10-second ones from where they start, streamed (two weeks of rows
    /// are never all in memory).
    pub fn from_store(
        reader: &Reader,
        metric: &str,
        forecast: ForecastConfig,
        now: f64,
    ) -> anyhow::Result<Warmup> {
        let day_ago = (now - 86_400.0) as i64;
        let fine_from = reader
            .first_ts(metric, day_ago, Resolution::TenSeconds)?
            .unwrap_or(i64::MAX);
        // A minute that overlaps the first 10-second bucket is left to the finer rows.
        let coarse = (now - forecast.max_history_s) as i64..fine_from.saturating_sub(59);
        let mut warm = Warmup::new(forecast);
        reader.each_point(metric, coarse, Resolution::OneMinute, |p| warm.feed(p))?;
        reader.each_point(metric, fine_from..i64::MAX, Resolution::TenSeconds, |p| {
            warm.feed(p)
        })?;
        Ok(warm)
    }

    /// The last points fed, oldest first (up to an hour of 10-second rollups).
    pub fn recent(&self) -> &VecDeque<Point> {
        &self.recent
    }

    /// The forecaster, warmed.
    pub fn forecaster(&mut self) -> &mut Forecaster {
        &mut self.forecaster
    }
}

/// Everything the pipeline needs to start.
pub struct PipelineParts {
    pub cfg: Arc<Config>,
    pub capacity: f64,
    pub rx: SampleReceiver,
    pub stats: Arc<SamplerStats>,
    pub writer: SyncSender<WriterMsg>,
    pub shared: Arc<Shared>,
    pub control: Receiver<Control>,
    pub state_dir: PathBuf,
    pub warm: Warmup,
    pub on_tick: Box<dyn FnMut() + Send>,
    pub instance_id: Option<String>,
}

impl Pipeline {
    /// Builds the pipeline and warms the forecaster from stored history.
    pub fn new(parts: PipelineParts) -> Pipeline {
        let Warmup { forecaster, recent } = parts.warm;
        let policy = Policy::new(host_policy(&parts.cfg, parts.capacity));
        parts.shared.lock().recent = recent;
        Pipeline {
            cfg: parts.cfg,
            capacity: parts.capacity,
            rx: parts.rx,
            stats: parts.stats,
            writer: parts.writer,
            shared: parts.shared,
            control: parts.control,
            b10: Buckets::new(10),
            b1m: Buckets::new(60),
            key: String::with_capacity(64),
            forecaster,
            policy,
            raw: Vec::new(),
            last_decision: None,
            last_health: None,
            // The first prune an hour after start, not at once: a clock that boots far ahead
            // (before NTP steps it back) would make retention delete real history.
            last_prune: Some(Instant::now()),
            last_statvfs: None,
            state_dir: parts.state_dir,
            on_tick: parts.on_tick,
            reactive_fired: false,
            instance_id: parts.instance_id,
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
        if cfg.model.capacity > 0.0 {
            self.capacity = cfg.model.capacity;
        }
        self.policy = Policy::new(host_policy(&cfg, self.capacity));
        self.cfg = cfg;
        tracing::info!("configuration reloaded");
    }

    /// One pipeline step.
    fn tick(&mut self) {
        let mut batch = Batch::default();
        let mut latest = None;
        let mut latest_demand = None;
        let mut demand_closed = Vec::new();
        while let Some(s) = self.rx.try_recv() {
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
                .is_some_and(|d| d > self.capacity * self.cfg.model.target_utilization)
                || saturated;
            let reactive = excess && !self.reactive_fired;
            self.reactive_fired = excess;
            if let Some(d) = demand
                && (due || reactive)
            {
                self.last_decision = Some(s.mono);
                self.decide(now, d, saturated, &mut batch);
            }
        }

        let health = {
            let snap = self.shared.lock();
            let fallback = snap.forecast.as_ref().and_then(|f| f.fallback.clone());
            health::evaluate(
                &self.cfg.health,
                &health::Inputs {
                    sample: latest.as_ref().or(snap.sample.as_ref()),
                    sources: &sources,
                    model_fallback: fallback.as_deref(),
                    store_error: snap.store_error.as_deref(),
                    disk_used,
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
            for p in demand_closed {
                snap.recent.push_back(p);
                if snap.recent.len() > RECENT_POINTS {
                    snap.recent.pop_front();
                }
            }
            snap.raw.extend(self.raw.drain(..));
            if let Some(newest) = snap.raw.back().map(|p| p.ts) {
                while snap
                    .raw
                    .front()
                    .is_some_and(|p| newest - p.ts > RAW_WINDOW_S)
                {
                    snap.raw.pop_front();
                }
            }
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
            self.last_prune = Some(Instant::now());
            let _ = self.writer.send(WriterMsg::Prune { now });
        }
    }

    fn decide(&mut self, now: f64, demand: f64, saturated: bool, batch: &mut Batch) {
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
        batch.signal = (!self.cfg.coordinator.urls.is_empty()).then(|| Signal {
            version: SIGNAL_VERSION,
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
            // A forecast of a series that went below zero may too; a signal's figures may not.
            p50_at_lead: decision.p50_at_lead.map(|v| v.max(0.0)),
            p90_at_lead: decision.p90_at_lead.map(|v| v.max(0.0)),
            saturated,
            action: action.into(),
            desired_change: decision.desired as i32 - decision.current as i32,
            reason: decision.reason.clone(),
            health: health.state.name().into(),
            health_reasons: health.reasons,
            instance_id: self.instance_id.clone(),
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
        let mut snap = self.shared.lock();
        snap.decision = Some(decision);
        snap.forecast = forecast;
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

/// Demand is censored, so the observed value understates it: the accept queue is overflowing
/// (connections are refused before they count), or the demand is CPU time and the CPU is at its
/// limit. A full CPU does not censor other demand signals (a queue keeps growing).
pub fn is_saturated(s: &Sample, demand_metric: &str) -> bool {
    (demand_metric.starts_with("cpu.") && s.has(SourceKind::Cpu) && s.cpu.busy >= 0.97)
        || (s.has(SourceKind::Netstat) && s.listen_overflows > 0)
}

/// Stable name of an action.
pub fn action_name(a: headroom_model::Action) -> &'static str {
    match a {
        headroom_model::Action::ScaleOut => "scale_out",
        headroom_model::Action::Hold => "hold",
        headroom_model::Action::ScaleIn => "scale_in",
    }
}

impl Snapshot {
    /// The state of an agent that has just started: nothing sampled or decided yet, healthy
    /// until judged, `committed` as the database has it.
    pub fn starting(
        cfg: &Config,
        host: String,
        capacity: f64,
        committed: Committed,
        db_path: PathBuf,
        started_at: f64,
    ) -> Snapshot {
        Snapshot {
            started_at,
            host,
            group: cfg.agent.group.clone(),
            interval_s: cfg.agent.interval.as_secs_f64(),
            decision_interval_s: cfg.agent.decision_interval.as_secs_f64(),
            demand_metric: cfg.model.demand.clone(),
            capacity,
            sample: None,
            sources: Vec::new(),
            ticks: 0,
            ring_dropped: 0,
            late_ticks: 0,
            decision: None,
            forecast: None,
            health: Health {
                state: HealthState::Healthy,
                reasons: Vec::new(),
            },
            committed,
            store_error: None,
            store_backlog: 0,
            writer_busy_since: None,
            store_locked_since: None,
            recent: Default::default(),
            raw: Default::default(),
            db_path,
        }
    }

    /// Whether the pipeline is making progress: the store writer is neither stuck inside one
    /// transaction nor locked out by another process for longer than `limit`. A full disk is
    /// not a stall: the agent keeps working and says so in its health.
    pub fn progressing(&self, limit: Duration) -> bool {
        self.writer_busy_since.is_none_or(|t| t.elapsed() < limit)
            && self.store_locked_since.is_none_or(|t| t.elapsed() < limit)
    }
}

/// Runs the store writer until the channel closes: one transaction per batch; a failed batch
/// is kept and retried with the next, so a full disk delays history instead of losing it.
pub fn run_writer(
    mut store: crate::store::Store,
    rx: Receiver<WriterMsg>,
    shared: Arc<Shared>,
    cfg: Arc<Config>,
    done: Sender<()>,
) {
    let mut backlog: VecDeque<Batch> = VecDeque::new();
    const MAX_BACKLOG: usize = 8192;
    let mut lost: u64 = 0;
    while let Ok(msg) = rx.recv() {
        match msg {
            WriterMsg::Batch(b) => {
                let b = *b;
                match backlog.back_mut() {
                    Some(last) => {
                        if let Some(rest) = last.merge(b) {
                            backlog.push_back(rest);
                        }
                    }
                    None => backlog.push_back(b),
                }
                while backlog.len() > MAX_BACKLOG {
                    backlog.pop_front();
                    lost += 1;
                    tracing::error!(lost, "store backlog full: oldest unwritten batch dropped");
                }
            }
            WriterMsg::Prune { now } => {
                let s = &cfg.store;
                let limits = crate::store::OutboxLimits {
                    max_age: cfg.coordinator.outbox_max_age,
                    max_rows: cfg.coordinator.outbox_max_rows,
                };
                match store.prune(
                    now,
                    s.retention_10s,
                    s.retention_1m,
                    s.retention_events,
                    limits,
                ) {
                    Ok(0) => {}
                    Ok(n) => tracing::warn!(
                        dropped = n,
                        "outbox bound reached: undelivered signals dropped"
                    ),
                    Err(e) => tracing::warn!(error = %e, "pruning history failed"),
                }
            }
        }
        while let Some(b) = backlog.front() {
            shared.lock().writer_busy_since = Some(Instant::now());
            let result = store.apply(b);
            shared.lock().writer_busy_since = None;
            match result {
                Ok(c) => {
                    backlog.pop_front();
                    let mut snap = shared.lock();
                    snap.store_locked_since = None;
                    if c.rollup_ts.is_some() {
                        snap.committed.rollup_ts = c.rollup_ts.max(snap.committed.rollup_ts);
                    }
                    if c.seq.is_some() {
                        snap.committed.seq = c.seq;
                    }
                    if snap.store_error.take().is_some() {
                        tracing::info!("history writes recovered");
                    }
                    snap.store_backlog = backlog.len();
                }
                Err(e) if e.is_in_the_data() => {
                    // Kept, it would hold back every batch after it (they merge into it) for
                    // ever; no value the agent makes should get here.
                    backlog.pop_front();
                    lost += 1;
                    tracing::error!(lost, error = %e, "a batch the database refuses as data was dropped");
                }
                Err(e) => {
                    let mut snap = shared.lock();
                    if e.is_locked() {
                        snap.store_locked_since.get_or_insert_with(Instant::now);
                    } else {
                        snap.store_locked_since = None;
                    }
                    if snap.store_error.is_none() {
                        tracing::error!(error = %e, "writing history failed; keeping the batch to retry");
                    }
                    snap.store_error = Some(e.to_string());
                    snap.store_backlog = backlog.len();
                    break;
                }
            }
        }
    }
    if !backlog.is_empty() {
        tracing::error!(
            batches = backlog.len(),
            error = shared.lock().store_error.as_deref().unwrap_or(""),
            "stopping with history the database did not take; it is lost"
        );
    }
    let _ = done.send(());
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn metric_names_match_without_allocating() {
        let n = MetricName {
            family: "cpu.busy_cores",
            instance: "",
        };
        assert!(is_metric(n, "cpu.busy_cores"));
        assert!(!is_metric(n, "cpu.busy"));
        let n = MetricName {
            family: "app",
            instance: "http_requests_in_flight",
        };
        assert!(is_metric(n, "app.http_requests_in_flight"));
        assert!(!is_metric(n, "app"));
        assert!(!is_metric(n, "app.http"));
        let mut k = String::new();
        metric_key(n, &mut k);
        assert_eq!(k, "app.http_requests_in_flight");
    }

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
            warm: Warmup::new(host_forecast(&cfg)),
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
    fn a_batch_the_database_refuses_does_not_hold_back_the_next() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("headroom.db");
        let store = crate::store::Store::open(&path, 256).unwrap();
        let (tx, rx) = std::sync::mpsc::sync_channel(4);
        let (done_tx, done_rx) = std::sync::mpsc::channel();
        let (p, _, _) = pipeline(Config::default());
        let (shared, cfg) = (p.shared.clone(), p.cfg.clone());
        let writer = std::thread::spawn(move || run_writer(store, rx, shared, cfg, done_tx));
        let rollup = |ts: i64, mean: f64| Rollup {
            metric: "cpu.busy_cores".into(),
            ts,
            mean,
            max: 1.0,
            last: 1.0,
            n: 1,
        };
        for (ts, mean) in [(100, f64::NAN), (110, 1.0)] {
            let batch = Batch {
                rollups_10s: vec![rollup(ts, mean)],
                ..Batch::default()
            };
            tx.send(WriterMsg::Batch(Box::new(batch))).unwrap();
        }
        drop(tx);
        done_rx.recv().unwrap();
        writer.join().unwrap();
        let conn = rusqlite::Connection::open(&path).unwrap();
        let stored: Vec<i64> = conn
            .prepare("SELECT ts FROM rollup_10s")
            .unwrap()
            .query_map([], |r| r.get(0))
            .unwrap()
            .collect::<Result<_, _>>()
            .unwrap();
        assert_eq!(stored, [110]);
    }

    #[test]
    fn demand_is_finite_and_never_below_zero() {
        let mut s = Sample {
            valid: 1, // cpu
            ..Sample::default()
        };
        for (v, want) in [
            (f64::NAN, None),
            (f64::INFINITY, None),
            (-2.0, Some(0.0)),
            (1.5, Some(1.5)),
        ] {
            s.cpu.busy_cores = v;
            assert_eq!(demand_of(&s, "cpu.busy_cores"), want, "{v}");
        }
    }

    #[test]
    fn buckets_roll_up_and_close_on_boundaries() {
        let mut b = Buckets::new(10);
        let mut key = String::new();
        let mut out = Vec::new();
        let mut s = Sample {
            valid: 1, // cpu
            ..Sample::default()
        };
        for (t, v) in [(100.0, 1.0), (105.0, 3.0), (109.9, 2.0)] {
            s.wall_unix = t;
            s.cpu.busy_cores = v;
            assert!(!b.add(&s, &mut key, &mut out));
        }
        s.wall_unix = 110.0;
        assert!(b.add(&s, &mut key, &mut out));
        let r = out.iter().find(|r| r.metric == "cpu.busy_cores").unwrap();
        assert_eq!((r.ts, r.mean, r.max, r.last, r.n), (100, 2.0, 3.0, 2.0, 3));
    }
}
