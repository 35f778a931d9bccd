//! What the rest of the agent sees of the pipeline: the [`Snapshot`], updated every tick by
//! the pipeline and the store writer, read by the control socket, `/metrics` and the watchdog.

use std::collections::VecDeque;
use std::path::PathBuf;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use headroom_collector::{Sample, SourceKind, SourceState};
use headroom_model::ledger::Hour;
use headroom_model::{Decision, Forecast, Learned};
use serde::Serialize;

use crate::config::Config;
use crate::health::{Health, HealthState};
use crate::store::{Committed, Point};

/// How long raw demand values stay in memory (`headroom history --resolution raw`).
pub(super) const RAW_WINDOW_S: f64 = 300.0;
/// How many 10-second demand points the in-memory chart keeps (one hour).
pub(super) const RECENT_POINTS: usize = 360;

/// What the rest of the agent can see of the pipeline, updated every tick.
#[derive(Debug, Clone, Serialize)]
pub struct Snapshot {
    /// When the agent started, unix seconds.
    pub started_at: f64,
    /// Host id signalled to the coordinator.
    pub host: String,
    /// The group this host belongs to.
    pub group: String,
    /// Sampling cadence, seconds.
    pub interval_s: f64,
    /// Decision interval, seconds.
    pub decision_interval_s: f64,
    /// The demand metric.
    pub demand_metric: String,
    /// This host's capacity in the demand metric's unit.
    pub capacity: f64,
    /// Target tracking's utilisation (the ledger's shadow).
    pub target_utilization: f64,
    /// The latest sample.
    #[serde(skip)]
    pub sample: Option<Sample>,
    /// Every source's state.
    #[serde(skip)]
    pub sources: Vec<(SourceKind, SourceState)>,
    /// Samples taken.
    pub ticks: u64,
    /// Samples dropped because the ring was full.
    pub ring_dropped: u64,
    /// Ticks that started late.
    pub late_ticks: u64,
    /// The latest decision, with its seq once committed.
    pub decision: Option<Decision>,
    /// What the policy had learned at that decision.
    pub learned: Option<Learned>,
    /// The latest forecast of the demand metric.
    pub forecast: Option<Forecast>,
    /// The host's health, judged every tick.
    pub health: Health,
    /// What the store has made durable.
    pub committed: Committed,
    /// The last store write error, while writes fail.
    pub store_error: Option<String>,
    /// Batches waiting for the store (non-zero while writes fail).
    pub store_backlog: usize,
    /// Batches dropped unwritten since start, the oldest first, when the backlog was full.
    pub store_lost: u64,
    /// Since when the writer has been inside one transaction, if it is.
    #[serde(skip)]
    pub writer_busy_since: Option<Instant>,
    /// Since when every write has found the database locked by another process, if so.
    #[serde(skip)]
    pub store_locked_since: Option<Instant>,
    /// Since when every write has found the database damaged, if so.
    #[serde(skip)]
    pub store_damaged_since: Option<Instant>,
    /// Demand 10-second means of the last hour, oldest first.
    #[serde(skip)]
    pub recent: VecDeque<Point>,
    /// Demand at every sample of the last five minutes, oldest first. Only the demand value is
    /// kept, not whole samples: a sample is kilobytes, and five minutes of them were most of
    /// the agent's heap.
    #[serde(skip)]
    pub raw: VecDeque<RawPoint>,
    /// Why the last configuration reload was refused, until one is taken (a health note).
    pub reload_refused: Option<String>,
    /// Where this start set a damaged history aside, if it did (a health note).
    pub history_set_aside: Option<String>,
    /// The database file.
    pub db_path: PathBuf,
    /// The ledger's hour being filled (not stored yet).
    pub ledger_open: Option<Hour>,
    /// The ledger since this agent started, summed (for `/metrics`' counters).
    pub ledger_total: Hour,
    /// Each coordinator replica's link, as its sender last saw it.
    pub replicas: Vec<ReplicaLink>,
    /// Undelivered signals the outbox's bounds dropped before each replica had them, since the
    /// store was created (replica URL, count), as the writer last read them.
    pub signals_dropped: Vec<(String, u64)>,
}

/// Whether signals reach one coordinator replica.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ReplicaLink {
    /// The replica's base URL.
    pub url: String,
    /// Since when its signals wait (the first failed attempt since the last one it took),
    /// unix seconds; `None` while it takes them.
    pub waiting_since: Option<f64>,
    /// Why they wait.
    pub error: Option<String>,
    /// Signals it refused for good since start (kept for audit, never applied).
    pub refused: u64,
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
            target_utilization: cfg.policy.target_utilization,
            sample: None,
            sources: Vec::new(),
            ticks: 0,
            ring_dropped: 0,
            late_ticks: 0,
            decision: None,
            learned: None,
            forecast: None,
            health: Health {
                state: HealthState::Healthy,
                reasons: Vec::new(),
                notes: Vec::new(),
            },
            committed,
            store_error: None,
            store_backlog: 0,
            store_lost: 0,
            writer_busy_since: None,
            store_locked_since: None,
            store_damaged_since: None,
            recent: Default::default(),
            raw: Default::default(),
            reload_refused: None,
            history_set_aside: None,
            db_path,
            ledger_open: None,
            ledger_total: Hour::default(),
            replicas: Vec::new(),
            signals_dropped: Vec::new(),
        }
    }

    /// Appends the 10-second means of the demand metric that closed, keeping the last hour.
    pub fn push_recent(&mut self, points: impl IntoIterator<Item = Point>) {
        for p in points {
            self.recent.push_back(p);
            if self.recent.len() > RECENT_POINTS {
                self.recent.pop_front();
            }
        }
    }

    /// Appends raw demand values, keeping the last five minutes: those within five minutes of
    /// the newest, either side, so a clock stepped back (points "from the future" at the
    /// front) does not stop the pruning and let the buffer, copied by every control request,
    /// grow for as long as the step.
    pub fn push_raw(&mut self, points: impl IntoIterator<Item = RawPoint>) {
        self.raw.extend(points);
        if let Some(newest) = self.raw.back().map(|p| p.ts) {
            while self
                .raw
                .front()
                .is_some_and(|p| (newest - p.ts).abs() > RAW_WINDOW_S)
            {
                self.raw.pop_front();
            }
        }
    }

    /// Whether the pipeline is making progress: the store writer is neither stuck inside one
    /// transaction, nor locked out by another process, nor writing a damaged file (which only a
    /// restart sets aside) for longer than `limit`. A full disk is not a stall: the agent keeps
    /// working and says so in its health.
    pub fn progressing(&self, limit: Duration) -> bool {
        [
            self.writer_busy_since,
            self.store_locked_since,
            self.store_damaged_since,
        ]
        .iter()
        .all(|since| since.is_none_or(|t| t.elapsed() < limit))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// After the clock steps back an hour, the points from before the step are dropped as new
    /// ones arrive: the buffer stays five minutes long.
    #[test]
    fn raw_points_stay_five_minutes_long_across_a_clock_step_back() {
        let mut s = Snapshot::starting(
            &Config::default(),
            "h".into(),
            1.0,
            Committed::default(),
            PathBuf::new(),
            0.0,
        );
        let at = |ts: f64| RawPoint { ts, value: 1.0 };
        s.push_raw((0..600).map(|i| at(10_000.0 + f64::from(i))));
        assert_eq!(s.raw.len(), 301);
        s.push_raw((0..600).map(|i| at(6_400.0 + f64::from(i))));
        assert_eq!(s.raw.len(), 301);
        assert!(s.raw.iter().all(|p| p.ts >= 6_400.0 && p.ts < 7_000.0));
    }
}
