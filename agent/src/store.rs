//! The agent's history in SQLite (WAL): rollups, forecasts, decisions, health transitions and the
//! signal outbox.
//!
//! All writes of one pipeline step go in one transaction ([`Batch`]), so `kill -9` loses at most
//! the batch being written and never half of one; a decision and its signal commit together.

use std::path::Path;
use std::time::Duration;

use rusqlite::{Connection, OpenFlags, OptionalExtension, params};
use serde::Serialize;

/// Errors of the store.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// SQLite refused an operation.
    #[error("database: {0}")]
    Sqlite(#[from] rusqlite::Error),
    /// The file was written by a newer headroom.
    #[error("database schema version {found} is newer than this headroom understands ({known})")]
    TooNew { found: i64, known: i64 },
    /// The file's schema version is not one any headroom writes.
    #[error("database schema version {0} is not a headroom version (the file is damaged)")]
    BadVersion(i64),
    /// A stored signal could not be encoded.
    #[error("encoding a signal: {0}")]
    Json(#[from] serde_json::Error),
}

impl StoreError {
    /// Whether another connection holds a lock that kept this write out.
    pub fn is_locked(&self) -> bool {
        matches!(
            self,
            StoreError::Sqlite(rusqlite::Error::SqliteFailure(e, _))
                if matches!(e.code, rusqlite::ErrorCode::DatabaseBusy | rusqlite::ErrorCode::DatabaseLocked)
        )
    }
}

impl StoreError {
    /// Whether SQLite refused the data itself (a constraint, a value it cannot store): writing
    /// the same batch again can never succeed, unlike a full disk or a lock.
    pub fn is_in_the_data(&self) -> bool {
        match self {
            StoreError::Sqlite(rusqlite::Error::SqliteFailure(e, _)) => matches!(
                e.code,
                rusqlite::ErrorCode::ConstraintViolation | rusqlite::ErrorCode::TypeMismatch
            ),
            StoreError::Sqlite(rusqlite::Error::ToSqlConversionFailure(_)) => true,
            StoreError::Json(_) => true,
            _ => false,
        }
    }
}

type Result<T> = std::result::Result<T, StoreError>;

/// Each migration takes the schema from version i to i + 1.
const MIGRATIONS: &[&str] = &[
    // 1: the first schema.
    "CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL) WITHOUT ROWID;
     CREATE TABLE metric (id INTEGER PRIMARY KEY, name TEXT NOT NULL UNIQUE);
     CREATE TABLE rollup_10s (metric INTEGER NOT NULL, ts INTEGER NOT NULL, mean REAL NOT NULL,
         max REAL NOT NULL, last REAL NOT NULL, n INTEGER NOT NULL, PRIMARY KEY (metric, ts)) WITHOUT ROWID;
     CREATE TABLE rollup_1m (metric INTEGER NOT NULL, ts INTEGER NOT NULL, mean REAL NOT NULL,
         max REAL NOT NULL, last REAL NOT NULL, n INTEGER NOT NULL, PRIMARY KEY (metric, ts)) WITHOUT ROWID;
     CREATE TABLE forecast (ts REAL NOT NULL, metric TEXT NOT NULL, model TEXT NOT NULL,
         horizon_s REAL NOT NULL, p50 REAL NOT NULL, p90 REAL NOT NULL, p99 REAL NOT NULL);
     CREATE INDEX forecast_ts ON forecast (ts);
     CREATE TABLE decision (seq INTEGER PRIMARY KEY, ts REAL NOT NULL, action TEXT NOT NULL,
         current INTEGER NOT NULL, desired INTEGER NOT NULL, lead_s REAL NOT NULL,
         demand REAL NOT NULL, p50 REAL, p90 REAL, fallback INTEGER NOT NULL, reason TEXT NOT NULL);
     CREATE INDEX decision_ts ON decision (ts);
     CREATE TABLE health (ts REAL NOT NULL, state TEXT NOT NULL, reasons TEXT NOT NULL);
     CREATE TABLE outbox (seq INTEGER PRIMARY KEY, created REAL NOT NULL, payload TEXT NOT NULL,
         attempts INTEGER NOT NULL DEFAULT 0, delivered REAL);
     CREATE INDEX outbox_pending ON outbox (seq) WHERE delivered IS NULL;",
];

/// One rolled-up bucket of one metric.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Rollup {
    /// Metric name, e.g. `cpu.busy_cores`.
    pub metric: String,
    /// Bucket start, unix seconds.
    pub ts: i64,
    pub mean: f64,
    pub max: f64,
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
    fn table(self) -> &'static str {
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
    pub ts: f64,
    pub action: String,
    pub current: u32,
    pub desired: u32,
    pub lead_s: f64,
    pub demand: f64,
    pub p50: Option<f64>,
    pub p90: Option<f64>,
    pub fallback: bool,
    pub reason: String,
}

/// One forecast horizon as stored.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ForecastRecord {
    pub ts: f64,
    pub metric: String,
    pub model: String,
    pub horizon_s: f64,
    pub p50: f64,
    pub p90: f64,
    pub p99: f64,
}

/// A change of health state.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct HealthRecord {
    pub ts: f64,
    pub state: String,
    pub reasons: Vec<String>,
}

/// Everything one pipeline step writes, committed as one transaction.
#[derive(Debug, Clone, Default)]
pub struct Batch {
    pub rollups_10s: Vec<Rollup>,
    pub rollups_1m: Vec<Rollup>,
    pub forecasts: Vec<ForecastRecord>,
    /// The decision; the store gives it the next seq, and writes `signal` (with that seq) to the
    /// outbox in the same transaction.
    pub decision: Option<DecisionRecord>,
    pub signal: Option<crate::signal::Signal>,
    pub health: Option<HealthRecord>,
}

impl Batch {
    /// Whether there is nothing to write.
    pub fn is_empty(&self) -> bool {
        self.rollups_10s.is_empty()
            && self.rollups_1m.is_empty()
            && self.forecasts.is_empty()
            && self.decision.is_none()
            && self.health.is_none()
    }

    /// Appends `later` to this batch (used when a failed write is retried with the next one).
    pub fn merge(&mut self, later: Batch) -> Option<Batch> {
        // Only one decision per transaction keeps seq handling simple; a second one waits.
        if self.decision.is_some() && later.decision.is_some() {
            return Some(later);
        }
        self.rollups_10s.extend(later.rollups_10s);
        self.rollups_1m.extend(later.rollups_1m);
        self.forecasts.extend(later.forecasts);
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
    pub max_age: Duration,
    pub max_rows: u64,
}

/// An open store.
pub struct Store {
    conn: Connection,
    epoch: String,
}

/// Current schema version.
pub const SCHEMA_VERSION: i64 = MIGRATIONS.len() as i64;

fn configure(conn: &Connection, cache_kib: u32) -> Result<()> {
    conn.busy_timeout(Duration::from_secs(5))?;
    conn.pragma_update(None, "journal_mode", "WAL")?;
    // NORMAL in WAL mode survives a process crash (kill -9); only an OS crash can lose the
    // last transactions.
    conn.pragma_update(None, "synchronous", "NORMAL")?;
    conn.pragma_update(None, "cache_size", -(cache_kib as i64))?;
    conn.pragma_update(None, "foreign_keys", "ON")?;
    Ok(())
}

impl Store {
    /// Opens (creating and migrating as needed) the database at `path`.
    pub fn open(path: &Path, cache_kib: u32) -> Result<Store> {
        let mut conn = Connection::open(path)?;
        configure(&conn, cache_kib)?;
        migrate(&mut conn)?;
        let epoch = match conn
            .query_row("SELECT value FROM meta WHERE key = 'epoch'", [], |r| {
                r.get::<_, String>(0)
            })
            .optional()?
        {
            Some(e) => e,
            None => {
                let e = new_epoch();
                conn.execute("INSERT INTO meta (key, value) VALUES ('epoch', ?1)", [&e])?;
                e
            }
        };
        Ok(Store { conn, epoch })
    }

    /// Random id of this database, new when the file is recreated; signals carry it so a
    /// reinstalled host is not taken for a replay.
    pub fn epoch(&self) -> &str {
        &self.epoch
    }

    /// Writes a batch in one transaction.
    pub fn apply(&mut self, batch: &Batch) -> Result<Committed> {
        let tx = self.conn.transaction()?;
        let mut committed = Committed::default();
        for (table, rollups) in [
            ("rollup_10s", &batch.rollups_10s),
            ("rollup_1m", &batch.rollups_1m),
        ] {
            if rollups.is_empty() {
                continue;
            }
            // A bucket already stored (flushed part-full at a stop, or seen again after the
            // wall clock stepped back) is merged with, not replaced: a restart keeps its samples.
            let mut ins = tx.prepare_cached(&format!(
                "INSERT INTO {table} (metric, ts, mean, max, last, n) VALUES (?1, ?2, ?3, ?4, ?5, ?6)
                 ON CONFLICT (metric, ts) DO UPDATE SET
                     mean = (mean * n + excluded.mean * excluded.n) / (n + excluded.n),
                     max = max(max, excluded.max),
                     last = excluded.last,
                     n = n + excluded.n"
            ))?;
            for r in rollups {
                let id = metric_id(&tx, &r.metric)?;
                ins.execute(params![id, r.ts, r.mean, r.max, r.last, r.n])?;
                if table == "rollup_10s" {
                    committed.rollup_ts = committed.rollup_ts.max(Some(r.ts));
                }
            }
        }
        if !batch.forecasts.is_empty() {
            let mut ins = tx.prepare_cached(
                "INSERT INTO forecast (ts, metric, model, horizon_s, p50, p90, p99) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
            )?;
            for f in &batch.forecasts {
                ins.execute(params![
                    f.ts,
                    f.metric,
                    f.model,
                    f.horizon_s,
                    f.p50,
                    f.p90,
                    f.p99
                ])?;
            }
        }
        if let Some(d) = &batch.decision {
            let seq: u64 =
                tx.query_row("SELECT COALESCE(MAX(seq), 0) + 1 FROM decision", [], |r| {
                    r.get(0)
                })?;
            tx.execute(
                "INSERT INTO decision (seq, ts, action, current, desired, lead_s, demand, p50, p90, fallback, reason)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11)",
                params![
                    seq, d.ts, d.action, d.current, d.desired, d.lead_s, d.demand, d.p50, d.p90,
                    d.fallback, d.reason
                ],
            )?;
            if let Some(signal) = &batch.signal {
                let mut signal = signal.clone();
                signal.seq = seq;
                signal.epoch = self.epoch.clone();
                tx.execute(
                    "INSERT INTO outbox (seq, created, payload) VALUES (?1, ?2, ?3)",
                    params![seq, d.ts, serde_json::to_string(&signal)?],
                )?;
            }
            committed.seq = Some(seq);
        }
        if let Some(h) = &batch.health {
            tx.execute(
                "INSERT INTO health (ts, state, reasons) VALUES (?1, ?2, ?3)",
                params![h.ts, h.state, serde_json::to_string(&h.reasons)?],
            )?;
        }
        tx.commit()?;
        Ok(committed)
    }

    /// Deletes rows past their retention and bounds the outbox. Returns undelivered signals
    /// dropped.
    pub fn prune(
        &mut self,
        now: f64,
        retention_10s: Duration,
        retention_1m: Duration,
        retention_events: Duration,
        outbox: OutboxLimits,
    ) -> Result<u64> {
        let tx = self.conn.transaction()?;
        let before = |d: Duration| now - d.as_secs_f64();
        tx.execute(
            "DELETE FROM rollup_10s WHERE ts < ?1",
            [before(retention_10s) as i64],
        )?;
        tx.execute(
            "DELETE FROM rollup_1m WHERE ts < ?1",
            [before(retention_1m) as i64],
        )?;
        // Names with no history left (an interface or disk gone, a container's veth): a host
        // with churning devices would otherwise list every name it ever saw.
        tx.execute(
            "DELETE FROM metric WHERE NOT EXISTS (SELECT 1 FROM rollup_10s WHERE metric = metric.id)
                 AND NOT EXISTS (SELECT 1 FROM rollup_1m WHERE metric = metric.id)",
            [],
        )?;
        let ev = before(retention_events);
        tx.execute("DELETE FROM forecast WHERE ts < ?1", [ev])?;
        tx.execute(
            "DELETE FROM decision WHERE ts < ?1 AND seq < (SELECT MAX(seq) FROM decision)",
            [ev],
        )?;
        tx.execute("DELETE FROM health WHERE ts < ?1", [ev])?;
        tx.execute(
            "DELETE FROM outbox WHERE delivered IS NOT NULL AND created < ?1",
            [ev],
        )?;
        let mut dropped = tx.execute(
            "DELETE FROM outbox WHERE delivered IS NULL AND created < ?1",
            [before(outbox.max_age)],
        )? as u64;
        let rows: u64 = tx.query_row("SELECT COUNT(*) FROM outbox", [], |r| r.get(0))?;
        if rows > outbox.max_rows {
            // Delivered signals (kept for audit) go first; only then undelivered ones, counted.
            let excess = rows - outbox.max_rows;
            let audit = tx.execute(
                "DELETE FROM outbox WHERE seq IN
                 (SELECT seq FROM outbox WHERE delivered IS NOT NULL ORDER BY seq LIMIT ?1)",
                [excess],
            )? as u64;
            if excess > audit {
                dropped += tx.execute(
                    "DELETE FROM outbox WHERE seq IN
                     (SELECT seq FROM outbox WHERE delivered IS NULL ORDER BY seq LIMIT ?1)",
                    [excess - audit],
                )? as u64;
            }
        }
        if dropped > 0 {
            tx.execute(
                "INSERT INTO meta (key, value) VALUES ('outbox_dropped', ?1)
                 ON CONFLICT (key) DO UPDATE SET value = CAST(value AS INTEGER) + ?1",
                [dropped],
            )?;
        }
        tx.commit()?;
        Ok(dropped)
    }
}

fn metric_id(conn: &Connection, name: &str) -> Result<i64> {
    let mut get = conn.prepare_cached("SELECT id FROM metric WHERE name = ?1")?;
    if let Some(id) = get.query_row([name], |r| r.get(0)).optional()? {
        return Ok(id);
    }
    conn.execute("INSERT INTO metric (name) VALUES (?1)", [name])?;
    Ok(conn.last_insert_rowid())
}

fn migrate(conn: &mut Connection) -> Result<()> {
    let version: i64 = conn.pragma_query_value(None, "user_version", |r| r.get(0))?;
    if version > SCHEMA_VERSION {
        return Err(StoreError::TooNew {
            found: version,
            known: SCHEMA_VERSION,
        });
    }
    let Ok(done) = usize::try_from(version) else {
        return Err(StoreError::BadVersion(version));
    };
    for (i, sql) in MIGRATIONS.iter().enumerate().skip(done) {
        let tx = conn.transaction()?;
        tx.execute_batch(sql)?;
        tx.pragma_update(None, "user_version", i as i64 + 1)?;
        tx.commit()?;
    }
    Ok(())
}

fn new_epoch() -> String {
    format!("{:016x}{:016x}", fastrand::u64(..), fastrand::u64(..))
}

/// Read-only queries, on their own connection so they never wait for the writer (WAL).
pub struct Reader {
    conn: Connection,
}

/// One point of a history query.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct Point {
    pub ts: i64,
    pub mean: f64,
    pub max: f64,
    pub last: f64,
}

/// Outbox counters.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize)]
pub struct OutboxStats {
    pub pending: u64,
    pub delivered: u64,
    pub dropped: u64,
    pub oldest_pending: Option<f64>,
}

impl Reader {
    /// Opens `path` for reading.
    pub fn open(path: &Path) -> Result<Reader> {
        Reader::open_with_cache(path, 256)
    }

    /// Opens `path` for reading with a page cache of `cache_kib`: a one-off scan needs only a
    /// few pages, and a cache it fills stays on the heap as free chunks after it closes.
    pub fn open_with_cache(path: &Path, cache_kib: u32) -> Result<Reader> {
        let conn = Connection::open_with_flags(
            path,
            OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_NO_MUTEX,
        )?;
        conn.busy_timeout(Duration::from_secs(2))?;
        conn.pragma_update(None, "cache_size", -i64::from(cache_kib))?;
        Ok(Reader { conn })
    }

    /// Every metric name with stored history.
    pub fn metrics(&self) -> Result<Vec<String>> {
        let mut q = self
            .conn
            .prepare_cached("SELECT name FROM metric ORDER BY name")?;
        let rows = q.query_map([], |r| r.get(0))?;
        Ok(rows.collect::<std::result::Result<_, _>>()?)
    }

    /// Points of `metric` at `resolution` with `ts >= since`, oldest first.
    pub fn history(&self, metric: &str, since: i64, resolution: Resolution) -> Result<Vec<Point>> {
        let mut out = Vec::new();
        self.each_point(metric, since..i64::MAX, resolution, |p| out.push(p))?;
        Ok(out)
    }

    /// Calls `f` with each point of `metric` at `resolution` whose `ts` is in `range`, oldest
    /// first, without holding them all (days of history at start-up).
    pub fn each_point(
        &self,
        metric: &str,
        range: std::ops::Range<i64>,
        resolution: Resolution,
        mut f: impl FnMut(Point),
    ) -> Result<()> {
        let mut q = self.conn.prepare_cached(&format!(
            "SELECT r.ts, r.mean, r.max, r.last FROM {} r JOIN metric m ON m.id = r.metric
             WHERE m.name = ?1 AND r.ts >= ?2 AND r.ts < ?3 ORDER BY r.ts",
            resolution.table()
        ))?;
        let mut rows = q.query(params![metric, range.start, range.end])?;
        while let Some(r) = rows.next()? {
            f(Point {
                ts: r.get(0)?,
                mean: r.get(1)?,
                max: r.get(2)?,
                last: r.get(3)?,
            });
        }
        Ok(())
    }

    /// Timestamp of the oldest point of `metric` at `resolution` with `ts >= since`.
    pub fn first_ts(
        &self,
        metric: &str,
        since: i64,
        resolution: Resolution,
    ) -> Result<Option<i64>> {
        let mut q = self.conn.prepare_cached(&format!(
            "SELECT MIN(r.ts) FROM {} r JOIN metric m ON m.id = r.metric
             WHERE m.name = ?1 AND r.ts >= ?2",
            resolution.table()
        ))?;
        Ok(q.query_row(params![metric, since], |r| r.get(0))?)
    }

    /// Decisions since `since`, oldest first.
    pub fn decisions(&self, since: f64) -> Result<Vec<DecisionRecord>> {
        let mut q = self.conn.prepare_cached(
            "SELECT seq, ts, action, current, desired, lead_s, demand, p50, p90, fallback, reason
             FROM decision WHERE ts >= ?1 ORDER BY seq",
        )?;
        let rows = q.query_map([since], |r| {
            Ok(DecisionRecord {
                seq: r.get(0)?,
                ts: r.get(1)?,
                action: r.get(2)?,
                current: r.get(3)?,
                desired: r.get(4)?,
                lead_s: r.get(5)?,
                demand: r.get(6)?,
                p50: r.get(7)?,
                p90: r.get(8)?,
                fallback: r.get(9)?,
                reason: r.get(10)?,
            })
        })?;
        Ok(rows.collect::<std::result::Result<_, _>>()?)
    }

    /// Health transitions since `since`, oldest first.
    pub fn health(&self, since: f64) -> Result<Vec<HealthRecord>> {
        let mut q = self
            .conn
            .prepare_cached("SELECT ts, state, reasons FROM health WHERE ts >= ?1 ORDER BY ts")?;
        let rows = q.query_map([since], |r| {
            let reasons: String = r.get(2)?;
            Ok(HealthRecord {
                ts: r.get(0)?,
                state: r.get(1)?,
                reasons: serde_json::from_str(&reasons).unwrap_or_default(),
            })
        })?;
        Ok(rows.collect::<std::result::Result<_, _>>()?)
    }

    /// What is committed now.
    pub fn committed(&self) -> Result<Committed> {
        let rollup_ts: Option<i64> =
            self.conn
                .query_row("SELECT MAX(ts) FROM rollup_10s", [], |r| r.get(0))?;
        let seq: Option<u64> = self
            .conn
            .query_row("SELECT MAX(seq) FROM decision", [], |r| r.get(0))?;
        Ok(Committed { rollup_ts, seq })
    }

    /// Outbox counters.
    pub fn outbox_stats(&self) -> Result<OutboxStats> {
        let (pending, oldest): (u64, Option<f64>) = self.conn.query_row(
            "SELECT COUNT(*), MIN(created) FROM outbox WHERE delivered IS NULL",
            [],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )?;
        let delivered: u64 = self.conn.query_row(
            "SELECT COUNT(*) FROM outbox WHERE delivered IS NOT NULL",
            [],
            |r| r.get(0),
        )?;
        let dropped: Option<String> = self
            .conn
            .query_row(
                "SELECT value FROM meta WHERE key = 'outbox_dropped'",
                [],
                |r| r.get(0),
            )
            .optional()?;
        Ok(OutboxStats {
            pending,
            delivered,
            dropped: dropped.and_then(|d| d.parse().ok()).unwrap_or(0),
            oldest_pending: oldest,
        })
    }

    /// Up to `limit` undelivered signals, oldest first: (seq, JSON payload).
    pub fn pending(&self, limit: usize) -> Result<Vec<(u64, String)>> {
        let mut q = self.conn.prepare_cached(
            "SELECT seq, payload FROM outbox WHERE delivered IS NULL ORDER BY seq LIMIT ?1",
        )?;
        let rows = q.query_map([limit as i64], |r| Ok((r.get(0)?, r.get(1)?)))?;
        Ok(rows.collect::<std::result::Result<_, _>>()?)
    }

    /// Marks signals delivered (acknowledged by the coordinator).
    pub fn mark_delivered(&self, seqs: &[u64], at: f64) -> Result<()> {
        let mut q = self.conn.prepare_cached(
            "UPDATE outbox SET delivered = ?2, attempts = attempts + 1 WHERE seq = ?1",
        )?;
        for s in seqs {
            q.execute(params![s, at])?;
        }
        Ok(())
    }

    /// Counts a failed delivery attempt.
    pub fn mark_attempt(&self, seq: u64) -> Result<()> {
        self.conn.execute(
            "UPDATE outbox SET attempts = attempts + 1 WHERE seq = ?1",
            [seq],
        )?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rollup(metric: &str, ts: i64, v: f64) -> Rollup {
        Rollup {
            metric: metric.into(),
            ts,
            mean: v,
            max: v,
            last: v,
            n: 10,
        }
    }

    fn decision(ts: f64) -> DecisionRecord {
        DecisionRecord {
            seq: 0,
            ts,
            action: "hold".into(),
            current: 1,
            desired: 1,
            lead_s: 310.0,
            demand: 0.5,
            p50: Some(0.5),
            p90: Some(0.7),
            fallback: false,
            reason: "test".into(),
        }
    }

    fn example_signal() -> crate::signal::Signal {
        crate::signal::Signal {
            version: crate::signal::SIGNAL_VERSION,
            host: "h1".into(),
            group: "g".into(),
            epoch: String::new(),
            seq: 0,
            decided_at: 1000.0,
            sent_at: 0.0,
            metric: "cpu.busy_cores".into(),
            demand_now: 1.0,
            capacity: 2.0,
            lead_s: 310.0,
            p50_at_lead: Some(1.0),
            p90_at_lead: Some(1.5),
            saturated: false,
            action: "hold".into(),
            desired_change: 0,
            reason: "test".into(),
            health: "healthy".into(),
            instance_id: None,
            health_reasons: vec![],
        }
    }

    #[test]
    fn batches_commit_and_read_back() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("h.db");
        let mut s = Store::open(&path, 256).unwrap();
        let epoch = s.epoch().to_string();
        let b = Batch {
            rollups_10s: vec![
                rollup("cpu.busy_cores", 100, 1.0),
                rollup("cpu.busy_cores", 110, 2.0),
            ],
            decision: Some(decision(110.0)),
            ..Batch::default()
        };
        let c = s.apply(&b).unwrap();
        assert_eq!(
            c,
            Committed {
                rollup_ts: Some(110),
                seq: Some(1)
            }
        );
        let c = s
            .apply(&Batch {
                decision: Some(decision(120.0)),
                ..Batch::default()
            })
            .unwrap();
        assert_eq!(c.seq, Some(2));
        drop(s);
        let s = Store::open(&path, 256).unwrap();
        assert_eq!(s.epoch(), epoch, "epoch survives reopening");
        let r = Reader::open(&path).unwrap();
        let h = r
            .history("cpu.busy_cores", 0, Resolution::TenSeconds)
            .unwrap();
        assert_eq!(h.iter().map(|p| p.mean).collect::<Vec<_>>(), vec![1.0, 2.0]);
        assert_eq!(r.metrics().unwrap(), vec!["cpu.busy_cores".to_string()]);
        assert_eq!(r.decisions(0.0).unwrap().len(), 2);
        assert_eq!(r.committed().unwrap().seq, Some(2));
    }

    #[test]
    fn a_bucket_written_twice_keeps_every_sample() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("h.db");
        let mut s = Store::open(&path, 256).unwrap();
        let part = |mean: f64, max: f64, last: f64, n: u32| Rollup {
            metric: "cpu.busy_cores".into(),
            ts: 60,
            mean,
            max,
            last,
            n,
        };
        // 30 samples before a restart, 30 after it, in the same minute.
        for r in [part(1.0, 2.0, 1.5, 30), part(3.0, 4.0, 2.5, 30)] {
            s.apply(&Batch {
                rollups_1m: vec![r],
                ..Batch::default()
            })
            .unwrap();
        }
        let h = Reader::open(&path)
            .unwrap()
            .history("cpu.busy_cores", 0, Resolution::OneMinute)
            .unwrap();
        assert_eq!(
            h.iter()
                .map(|p| (p.ts, p.mean, p.max, p.last))
                .collect::<Vec<_>>(),
            [(60, 2.0, 4.0, 2.5)]
        );
        let n: u32 = s
            .conn
            .query_row("SELECT n FROM rollup_1m", [], |r| r.get(0))
            .unwrap();
        assert_eq!(n, 60);
    }

    #[test]
    fn newer_schema_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("h.db");
        drop(Store::open(&path, 256).unwrap());
        let c = Connection::open(&path).unwrap();
        c.pragma_update(None, "user_version", 99).unwrap();
        drop(c);
        assert!(matches!(
            Store::open(&path, 256),
            Err(StoreError::TooNew { found: 99, .. })
        ));
        let c = Connection::open(&path).unwrap();
        c.pragma_update(None, "user_version", -1).unwrap();
        drop(c);
        assert!(matches!(
            Store::open(&path, 256),
            Err(StoreError::BadVersion(-1))
        ));
    }

    #[test]
    fn prune_bounds_the_outbox_and_counts_drops() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("h.db");
        let mut s = Store::open(&path, 256).unwrap();
        let signal = example_signal();
        for i in 0..10 {
            let b = Batch {
                decision: Some(decision(1000.0 + i as f64)),
                signal: Some(signal.clone()),
                ..Batch::default()
            };
            s.apply(&b).unwrap();
        }
        let limits = OutboxLimits {
            max_age: Duration::from_secs(3600),
            max_rows: 4,
        };
        let day = Duration::from_secs(86_400);
        let dropped = s.prune(1010.0, day, day, day, limits).unwrap();
        assert_eq!(dropped, 6);
        let r = Reader::open(&path).unwrap();
        let pending: Vec<u64> = r
            .pending(100)
            .unwrap()
            .into_iter()
            .map(|(s, _)| s)
            .collect();
        assert_eq!(pending, vec![7, 8, 9, 10], "the newest are kept");
        assert_eq!(r.outbox_stats().unwrap().dropped, 6);
        let payload = &r.pending(1).unwrap()[0].1;
        let back: crate::signal::Signal = serde_json::from_str(payload).unwrap();
        assert_eq!(back.seq, 7);
        assert_eq!(back.epoch, s.epoch());
    }

    #[test]
    fn prune_forgets_names_without_history() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("h.db");
        let mut s = Store::open(&path, 256).unwrap();
        let b = Batch {
            rollups_10s: vec![
                rollup("net.veth1a2b.rx_bytes", 1_000, 1.0),
                rollup("cpu.busy_cores", 100_000, 1.0),
            ],
            ..Batch::default()
        };
        s.apply(&b).unwrap();
        let limits = OutboxLimits {
            max_age: Duration::from_secs(86_400),
            max_rows: 1000,
        };
        let day = Duration::from_secs(86_400);
        s.prune(100_000.0, day, day, day, limits).unwrap();
        let r = Reader::open(&path).unwrap();
        assert_eq!(r.metrics().unwrap(), ["cpu.busy_cores"]);
        // A name seen again gets a new row.
        s.apply(&Batch {
            rollups_10s: vec![rollup("net.veth1a2b.rx_bytes", 100_010, 2.0)],
            ..Batch::default()
        })
        .unwrap();
        let h = r
            .history("net.veth1a2b.rx_bytes", 0, Resolution::TenSeconds)
            .unwrap();
        assert_eq!(h.len(), 1);
    }
}
