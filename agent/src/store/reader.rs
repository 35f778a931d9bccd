//! Queries for the CLI's answers and the agent's start-up, on a read-only connection of their
//! own: they never wait for the writer (WAL), and cannot write.

use std::path::Path;
use std::time::Duration;

use rusqlite::{Connection, OptionalExtension, params};

use headroom_model::PolicyMemory;
use headroom_model::ledger::Hour;

use super::record::{
    Committed, DecisionRecord, DestinationStats, HealthRecord, MemoryRecord, OutboxStats, Point,
    Resolution, Rollup,
};
use super::{Result, schema};

/// Read-only queries.
pub struct Reader {
    conn: Connection,
}

impl Reader {
    /// Opens `path` for reading.
    pub fn open(path: &Path) -> Result<Reader> {
        Reader::open_with_cache(path, 256)
    }

    /// Opens `path` for reading with a page cache of `cache_kib`: a one-off scan needs only a
    /// few pages, and a cache it fills stays on the heap as free chunks after it closes.
    pub fn open_with_cache(path: &Path, cache_kib: u32) -> Result<Reader> {
        let conn = schema::open_read_only(path, cache_kib, Duration::from_secs(2))?;
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

    /// What the policy learned by its last stored decision on `metric`, if this headroom can
    /// read it (one it cannot is logged and left: the policy then starts afresh).
    pub fn policy_memory(&self, metric: &str) -> Result<Option<PolicyMemory>> {
        let body: Option<String> = self
            .conn
            .query_row(
                "SELECT value FROM meta WHERE key = ?1",
                [MemoryRecord::key(metric)],
                |r| r.get(0),
            )
            .optional()?;
        Ok(body.and_then(|b| headroom_common::memory::read(&b, metric)))
    }

    /// The ledger's hours starting at or after `since` (unix seconds), oldest first.
    pub fn ledger(&self, since: i64) -> Result<Vec<Hour>> {
        let mut q = self.conn.prepare_cached(
            "SELECT hour, observed_s, plan_instance_s, shadow_instance_s, plan_short_s,
                 shadow_short_s, scored, abs_error, actual, pct_error, zero_actuals, p90_covered
             FROM ledger WHERE hour >= ?1 ORDER BY hour",
        )?;
        let rows = q.query_map([since], |r| {
            Ok(Hour {
                start: r.get(0)?,
                observed_s: r.get(1)?,
                plan_instance_s: r.get(2)?,
                shadow_instance_s: r.get(3)?,
                plan_short_s: r.get(4)?,
                shadow_short_s: r.get(5)?,
                scored: r.get(6)?,
                abs_error: r.get(7)?,
                actual: r.get(8)?,
                pct_error: r.get(9)?,
                zero_actuals: r.get(10)?,
                p90_covered: r.get(11)?,
            })
        })?;
        Ok(rows.collect::<std::result::Result<_, _>>()?)
    }

    /// What a kill -9 left unrolled in the newest minute up to `now` (unix seconds): for each
    /// metric whose 10-second rows of that minute hold samples its 1-minute row does not (the
    /// open 1-minute bucket died with the process, the committed 10-second rows did not), those
    /// samples, as a 1-minute rollup of that minute to go on from. Written back, it merges with
    /// the row already there (a stop writes one part-full) into exactly the 10-second rows'
    /// totals. Rows stamped after `now` (a clock stepped back) do not pick the minute. Point
    /// lookups per metric on the primary keys, not a scan of the tables.
    pub fn unrolled_minute(&self, now: f64) -> Result<Vec<Rollup>> {
        let metrics: Vec<(i64, String)> = self
            .conn
            .prepare_cached("SELECT id, name FROM metric")?
            .query_map([], |r| Ok((r.get(0)?, r.get(1)?)))?
            .collect::<std::result::Result<_, _>>()?;
        let mut newest: Option<i64> = None;
        let mut last = self
            .conn
            .prepare_cached("SELECT MAX(ts) FROM rollup_10s WHERE metric = ?1 AND ts <= ?2")?;
        for (id, _) in &metrics {
            let ts: Option<i64> = last.query_row(params![id, now.floor() as i64], |r| r.get(0))?;
            newest = newest.max(ts);
        }
        let Some(newest) = newest else {
            return Ok(Vec::new());
        };
        let minute = newest.div_euclid(60) * 60;
        let mut coarse = self
            .conn
            .prepare_cached("SELECT mean, n FROM rollup_1m WHERE metric = ?1 AND ts = ?2")?;
        let mut fine = self.conn.prepare_cached(
            "SELECT mean, max, last, n FROM rollup_10s
             WHERE metric = ?1 AND ts >= ?2 AND ts < ?2 + 60 ORDER BY ts",
        )?;
        let mut out = Vec::new();
        for (id, name) in metrics {
            // Totals of the 10-second rows: sum, max, last, count.
            let mut total: Option<(f64, f64, f64, u32)> = None;
            let mut q = fine.query(params![id, minute])?;
            while let Some(r) = q.next()? {
                let (mean, max, last, n): (f64, f64, f64, u32) =
                    (r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?);
                let t = total.get_or_insert((0.0, max, last, 0));
                t.0 += mean * f64::from(n);
                t.1 = t.1.max(max);
                t.2 = last;
                t.3 += n;
            }
            let Some((sum, max, last, n)) = total else {
                continue;
            };
            let (rolled_sum, rolled_n) = coarse
                .query_row(params![id, minute], |r| {
                    Ok((
                        r.get::<_, f64>(0)? * f64::from(r.get::<_, u32>(1)?),
                        r.get(1)?,
                    ))
                })
                .optional()?
                .unwrap_or((0.0, 0));
            if n > rolled_n {
                let missing = n - rolled_n;
                out.push(Rollup {
                    metric: name,
                    ts: minute,
                    mean: (sum - rolled_sum) / f64::from(missing),
                    max,
                    last,
                    n: missing,
                });
            }
        }
        Ok(out)
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
        let destinations = self
            .conn
            .prepare_cached(
                "SELECT url, acked, acked_at, dropped,
                     (SELECT COUNT(*) FROM outbox WHERE seq > destination.acked)
                 FROM destination ORDER BY url",
            )?
            .query_map([], |r| {
                Ok(DestinationStats {
                    url: r.get(0)?,
                    acked: r.get(1)?,
                    acked_at: r.get(2)?,
                    dropped: r.get(3)?,
                    pending: r.get(4)?,
                })
            })?
            .collect::<std::result::Result<_, _>>()?;
        Ok(OutboxStats {
            pending,
            delivered,
            dropped: dropped.and_then(|d| d.parse().ok()).unwrap_or(0),
            oldest_pending: oldest,
            destinations,
        })
    }
}
