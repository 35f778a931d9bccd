//! What the store holds and hands out: rollups, decisions, forecasts, health transitions, the
//! batch one pipeline step writes, and the figures queries return.

use std::sync::Arc;
use std::time::Duration;

use headroom_common::signal::Signal;
use headroom_model::PolicyMemory;
use headroom_model::ledger::Hour;
use serde::Serialize;

/// One rolled-up bucket of one metric.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Rollup {
    /// Metric name, e.g. `cpu.busy_cores`.
    pub metric: String,
    /// Bucket start, unix seconds.
    pub ts: i64,
    /// Mean of the bucket's samples.
    pub mean: f64,
    /// Largest sample.
    pub max: f64,
    /// The bucket's last sample.
    pub last: f64,
    /// Samples in the bucket.
    pub n: u32,
}

/// Rollup resolutions.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub enum Resolution {
    /// 10-second buckets.
    TenSeconds,
    /// 1-minute buckets.
    OneMinute,
}

impl Resolution {
    /// The table holding this resolution's buckets.
    pub(super) fn table(self) -> &'static str {
        match self {
            Resolution::TenSeconds => "rollup_10s",
            Resolution::OneMinute => "rollup_1m",
        }
    }
}

/// A decision as stored and shown by `headroom decisions`.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct DecisionRecord {
    /// Sequence number, contiguous; also the seq of its signal. Set by the store.
    pub seq: u64,
    /// When it was decided, unix seconds.
    pub ts: f64,
    /// `scale_out`, `hold` or `scale_in`.
    pub action: String,
    /// Instances of this host's share now (always 1: a host decides for its own share).
    pub current: u32,
    /// Instances this host's load needs at the lead time.
    pub desired: u32,
    /// Seconds ahead the decision plans for (warm-up plus decision interval).
    pub lead_s: f64,
    /// The demand metric's value when deciding.
    pub demand: f64,
    /// Median forecast at the lead time, when there was one.
    pub p50: Option<f64>,
    /// 90th percentile forecast at the lead time, when there was one.
    pub p90: Option<f64>,
    /// Whether the policy fell back to reactive (cold start, distrusted forecast).
    pub fallback: bool,
    /// Why, in words.
    pub reason: String,
}

/// One forecast horizon as stored.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ForecastRecord {
    /// Origin of the forecast, unix seconds.
    pub ts: f64,
    /// The forecast metric.
    pub metric: String,
    /// The leading model.
    pub model: String,
    /// Seconds ahead of the origin.
    pub horizon_s: f64,
    /// Median.
    pub p50: f64,
    /// 90th percentile.
    pub p90: f64,
    /// 99th percentile.
    pub p99: f64,
}

/// A change of health state.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct HealthRecord {
    /// When it changed, unix seconds.
    pub ts: f64,
    /// `healthy`, `degraded` or `unhealthy`.
    pub state: String,
    /// Why it is not healthy.
    pub reasons: Vec<String>,
}

/// What became of a signal the sender tried to deliver to one destination.
#[derive(Debug, Clone, PartialEq)]
pub enum Delivery {
    /// `destination` is done with it at `at` (unix seconds): acknowledged, or refused for good.
    /// It leaves the pending set once every destination is (kept for audit until retention).
    Delivered {
        /// The coordinator's base URL, as configured.
        destination: Arc<str>,
        /// The signal's seq.
        seq: u64,
        /// When, unix seconds.
        at: f64,
    },
    /// An attempt failed; it stays pending.
    Failed {
        /// The signal's seq.
        seq: u64,
    },
}

/// Everything one pipeline step writes, committed as one transaction.
#[derive(Debug, Clone, Default)]
pub struct Batch {
    /// 10-second buckets that closed.
    pub rollups_10s: Vec<Rollup>,
    /// 1-minute buckets that closed.
    pub rollups_1m: Vec<Rollup>,
    /// The forecast made with the decision, one row per reported horizon.
    pub forecasts: Vec<ForecastRecord>,
    /// The decision; the store gives it the next seq, and writes `signal` (with that seq) to the
    /// outbox in the same transaction.
    pub decision: Option<DecisionRecord>,
    /// The decision's signal, when a coordinator is configured.
    pub signal: Option<Signal>,
    /// A change of health.
    pub health: Option<HealthRecord>,
    /// The sender's delivery outcomes.
    pub deliveries: Vec<Delivery>,
    /// The configured destinations, sent once at start: one new to the store starts from the
    /// oldest signal retained, and the cursor of one no longer configured is forgotten.
    pub destinations: Option<Vec<String>>,
    /// Ledger hours (whole, or part-full at a stop): added to what is stored for the hour.
    pub ledger: Vec<Hour>,
    /// What the policy learned, after the decision: replaces the one stored for its metric.
    pub policy_memory: Option<MemoryRecord>,
}

/// What the policy learned deciding on one demand metric (kept per metric: a memory of another
/// metric's demand, its unit or its price, is not this one's).
#[derive(Debug, Clone, PartialEq)]
pub struct MemoryRecord {
    /// The demand metric decided on.
    pub metric: String,
    /// What the policy learned.
    pub memory: PolicyMemory,
}

impl MemoryRecord {
    /// Its key in the `meta` table.
    pub(super) fn key(metric: &str) -> String {
        format!("policy_memory/{metric}")
    }
}

impl Batch {
    /// Whether there is nothing to write.
    pub fn is_empty(&self) -> bool {
        self.rollups_10s.is_empty()
            && self.rollups_1m.is_empty()
            && self.forecasts.is_empty()
            && self.decision.is_none()
            && self.health.is_none()
            && self.deliveries.is_empty()
            && self.destinations.is_none()
            && self.ledger.is_empty()
            && self.policy_memory.is_none()
    }

    /// Appends `later` to this batch (used when a failed write is retried with the next one);
    /// gives `later` back when it cannot join (a second decision, or a second health
    /// transition, waits for its own: each is a row of history, not a value to replace).
    pub fn merge(&mut self, later: Batch) -> Option<Batch> {
        // Only one decision per transaction keeps seq handling simple; a second one waits.
        if (self.decision.is_some() && later.decision.is_some())
            || (self.health.is_some() && later.health.is_some())
        {
            return Some(later);
        }
        self.rollups_10s.extend(later.rollups_10s);
        self.rollups_1m.extend(later.rollups_1m);
        self.forecasts.extend(later.forecasts);
        self.deliveries.extend(later.deliveries);
        self.ledger.extend(later.ledger);
        if later.destinations.is_some() {
            self.destinations = later.destinations;
        }
        if later.policy_memory.is_some() {
            self.policy_memory = later.policy_memory;
        }
        if later.decision.is_some() {
            self.decision = later.decision;
            self.signal = later.signal;
        }
        if later.health.is_some() {
            self.health = later.health;
        }
        None
    }
}

/// What a commit made durable.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize)]
pub struct Committed {
    /// Newest committed 10 s rollup bucket, unix seconds.
    pub rollup_ts: Option<i64>,
    /// Newest committed decision / signal seq.
    pub seq: Option<u64>,
}

/// Limits on the outbox.
#[derive(Debug, Clone, Copy)]
pub struct OutboxLimits {
    /// Undelivered signals older than this are dropped (counted).
    pub max_age: Duration,
    /// At most this many rows; delivered ones go first, then the oldest undelivered (counted).
    pub max_rows: u64,
}

/// How long each kind of row is kept.
#[derive(Debug, Clone, Copy)]
pub struct Retention {
    /// 10-second rollups.
    pub ten_seconds: Duration,
    /// 1-minute rollups.
    pub one_minute: Duration,
    /// Decisions, forecasts, health transitions, delivered signals.
    pub events: Duration,
    /// The ledger's hours (as long as the 1-minute rollups).
    pub ledger: Duration,
    /// Bounds of the outbox's undelivered signals.
    pub outbox: OutboxLimits,
}

/// One point of a history query.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct Point {
    /// Bucket start, unix seconds.
    pub ts: i64,
    /// Mean of the bucket.
    pub mean: f64,
    /// Largest sample of the bucket.
    pub max: f64,
    /// Last sample of the bucket.
    pub last: f64,
}

/// Outbox counters.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct OutboxStats {
    /// Signals not yet delivered.
    pub pending: u64,
    /// Signals delivered (kept for audit until retention).
    pub delivered: u64,
    /// Undelivered signals dropped by the outbox's bounds, ever.
    pub dropped: u64,
    /// Creation time of the oldest pending signal, unix seconds.
    pub oldest_pending: Option<f64>,
    /// Where each coordinator replica stands.
    pub destinations: Vec<DestinationStats>,
}

/// One destination's place in the outbox.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct DestinationStats {
    /// The coordinator's base URL.
    pub url: String,
    /// Every signal up to this seq is done with there.
    pub acked: u64,
    /// When the last one was, unix seconds.
    pub acked_at: Option<f64>,
    /// Signals retained that it has not had yet.
    pub pending: u64,
    /// Signals the outbox's bounds deleted before it had them, ever.
    pub dropped: u64,
}
