//! The one connection that writes the agent's database, owned by the store writer thread:
//! each [`Batch`] in one transaction, and the hourly prune.

use std::path::Path;
use std::time::Duration;

use rusqlite::{Connection, OptionalExtension, params};

use super::record::{Batch, Committed, Delivery, MemoryRecord, Retention};
use super::{Result, StoreError, schema};

/// The database's writer.
pub struct Writer {
    conn: Connection,
    epoch: String,
    path: std::path::PathBuf,
}

impl Writer {
    /// Opens (creating and migrating as needed) the database at `path`.
    pub fn open(path: &Path, cache_kib: u32) -> Result<Writer> {
        let mut conn = Connection::open(path)?;
        // SQLite opens a file it may not write read-only, without a word: every batch would
        // then fail while the agent looked up.
        if conn.is_readonly(rusqlite::MAIN_DB)? {
            return Err(StoreError::ReadOnly);
        }
        schema::set_up(&mut conn, cache_kib)?;
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
        Ok(Writer {
            conn,
            epoch,
            path: path.to_path_buf(),
        })
    }

    /// The database file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Random id of this database, new when the file is recreated; signals carry it so a
    /// reinstalled host is not taken for a replay.
    pub fn epoch(&self) -> &str {
        &self.epoch
    }

    /// Undelivered signals dropped by the outbox's bounds before each destination had them
    /// (URL, count), by URL.
    pub fn dropped_per_destination(&self) -> Result<Vec<(String, u64)>> {
        Ok(self
            .conn
            .prepare_cached("SELECT url, dropped FROM destination ORDER BY url")?
            .query_map([], |r| Ok((r.get(0)?, r.get(1)?)))?
            .collect::<std::result::Result<_, _>>()?)
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
        if let Some(urls) = &batch.destinations {
            let known: Vec<String> = tx
                .prepare_cached("SELECT url FROM destination")?
                .query_map([], |r| r.get(0))?
                .collect::<std::result::Result<_, _>>()?;
            for gone in known.iter().filter(|k| !urls.contains(k)) {
                tx.execute("DELETE FROM destination WHERE url = ?1", [gone])?;
            }
            for url in urls {
                tx.execute(
                    "INSERT OR IGNORE INTO destination (url, acked) VALUES (?1, 0)",
                    [url],
                )?;
            }
        }
        let mut done_at = None;
        for d in &batch.deliveries {
            let seq = match d {
                Delivery::Delivered {
                    destination,
                    seq,
                    at,
                } => {
                    tx.prepare_cached(
                        "INSERT INTO destination (url, acked, acked_at) VALUES (?1, ?2, ?3)
                         ON CONFLICT (url) DO UPDATE SET
                             acked = max(acked, excluded.acked), acked_at = excluded.acked_at",
                    )?
                    .execute(params![destination.as_ref(), seq, at])?;
                    done_at = Some(done_at.map_or(*at, |d: f64| d.max(*at)));
                    seq
                }
                Delivery::Failed { seq } => seq,
            };
            tx.prepare_cached("UPDATE outbox SET attempts = attempts + 1 WHERE seq = ?1")?
                .execute([seq])?;
        }
        if let Some(at) = done_at {
            // Every destination has them: they leave the pending set.
            tx.prepare_cached(
                "UPDATE outbox SET delivered = ?1
                 WHERE delivered IS NULL AND seq <= (SELECT MIN(acked) FROM destination)",
            )?
            .execute([at])?;
        }
        if !batch.ledger.is_empty() {
            let mut add = tx.prepare_cached(
                "INSERT INTO ledger (hour, observed_s, plan_instance_s, shadow_instance_s,
                     plan_short_s, shadow_short_s, scored, abs_error, actual, pct_error,
                     zero_actuals, p90_covered)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12)
                 ON CONFLICT (hour) DO UPDATE SET
                     observed_s = observed_s + excluded.observed_s,
                     plan_instance_s = plan_instance_s + excluded.plan_instance_s,
                     shadow_instance_s = shadow_instance_s + excluded.shadow_instance_s,
                     plan_short_s = plan_short_s + excluded.plan_short_s,
                     shadow_short_s = shadow_short_s + excluded.shadow_short_s,
                     scored = scored + excluded.scored,
                     abs_error = abs_error + excluded.abs_error,
                     actual = actual + excluded.actual,
                     pct_error = pct_error + excluded.pct_error,
                     zero_actuals = zero_actuals + excluded.zero_actuals,
                     p90_covered = p90_covered + excluded.p90_covered",
            )?;
            for h in &batch.ledger {
                add.execute(params![
                    h.start,
                    h.observed_s,
                    h.plan_instance_s,
                    h.shadow_instance_s,
                    h.plan_short_s,
                    h.shadow_short_s,
                    h.scored,
                    h.abs_error,
                    h.actual,
                    h.pct_error,
                    h.zero_actuals,
                    h.p90_covered
                ])?;
            }
        }
        if let Some(m) = &batch.policy_memory {
            tx.prepare_cached(
                "INSERT INTO meta (key, value) VALUES (?1, ?2)
                 ON CONFLICT (key) DO UPDATE SET value = excluded.value",
            )?
            .execute([
                MemoryRecord::key(&m.metric),
                headroom_common::memory::stored(&m.memory)?,
            ])?;
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
    pub fn prune(&mut self, now: f64, retention: &Retention) -> Result<u64> {
        let tx = self.conn.transaction()?;
        let before = |d: Duration| now - d.as_secs_f64();
        tx.execute(
            "DELETE FROM rollup_10s WHERE ts < ?1",
            [before(retention.ten_seconds) as i64],
        )?;
        tx.execute(
            "DELETE FROM rollup_1m WHERE ts < ?1",
            [before(retention.one_minute) as i64],
        )?;
        // Names with no history left (an interface or disk gone, a container's veth): a host
        // with churning devices would otherwise list every name it ever saw.
        tx.execute(
            "DELETE FROM metric WHERE NOT EXISTS (SELECT 1 FROM rollup_10s WHERE metric = metric.id)
                 AND NOT EXISTS (SELECT 1 FROM rollup_1m WHERE metric = metric.id)",
            [],
        )?;
        let ev = before(retention.events);
        tx.execute("DELETE FROM forecast WHERE ts < ?1", [ev])?;
        tx.execute(
            "DELETE FROM decision WHERE ts < ?1 AND seq < (SELECT MAX(seq) FROM decision)",
            [ev],
        )?;
        tx.execute("DELETE FROM health WHERE ts < ?1", [ev])?;
        tx.execute(
            "DELETE FROM ledger WHERE hour < ?1",
            [before(retention.ledger) as i64],
        )?;
        tx.execute(
            "DELETE FROM outbox WHERE delivered IS NOT NULL AND created < ?1",
            [ev],
        )?;
        let mut dropped = drop_undelivered(&tx, "created < ?1", before(retention.outbox.max_age))?;
        let rows: u64 = tx.query_row("SELECT COUNT(*) FROM outbox", [], |r| r.get(0))?;
        if rows > retention.outbox.max_rows {
            // Delivered signals (kept for audit) go first; only then undelivered ones, counted.
            let excess = rows - retention.outbox.max_rows;
            let audit = tx.execute(
                "DELETE FROM outbox WHERE seq IN
                 (SELECT seq FROM outbox WHERE delivered IS NOT NULL ORDER BY seq LIMIT ?1)",
                [excess],
            )? as u64;
            if excess > audit {
                let last: Option<u64> = tx.query_row(
                    "SELECT MAX(seq) FROM (SELECT seq FROM outbox WHERE delivered IS NULL
                     ORDER BY seq LIMIT ?1)",
                    [excess - audit],
                    |r| r.get(0),
                )?;
                if let Some(last) = last {
                    dropped += drop_undelivered(&tx, "seq <= ?1", last as f64)?;
                }
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

/// Deletes the undelivered signals that `condition` (on `?1`) picks, counting them against each
/// destination that had not had them yet; returns how many rows went.
fn drop_undelivered(tx: &Connection, condition: &str, bound: f64) -> Result<u64> {
    let missed: Vec<(String, u64)> = tx
        .prepare(&format!(
            "SELECT url, (SELECT COUNT(*) FROM outbox
                 WHERE delivered IS NULL AND seq > destination.acked AND {condition})
             FROM destination"
        ))?
        .query_map([bound], |r| Ok((r.get(0)?, r.get(1)?)))?
        .collect::<std::result::Result<_, _>>()?;
    for (url, n) in missed.iter().filter(|(_, n)| *n > 0) {
        tracing::warn!(destination = %url, dropped = n, "outbox bound reached: signals this coordinator never had were dropped");
        tx.execute(
            "UPDATE destination SET dropped = dropped + ?2 WHERE url = ?1",
            params![url, n],
        )?;
    }
    Ok(tx.execute(
        &format!("DELETE FROM outbox WHERE delivered IS NULL AND {condition}"),
        [bound],
    )? as u64)
}

fn metric_id(conn: &Connection, name: &str) -> Result<i64> {
    let mut get = conn.prepare_cached("SELECT id FROM metric WHERE name = ?1")?;
    if let Some(id) = get.query_row([name], |r| r.get(0)).optional()? {
        return Ok(id);
    }
    conn.execute("INSERT INTO metric (name) VALUES (?1)", [name])?;
    Ok(conn.last_insert_rowid())
}

fn new_epoch() -> String {
    format!("{:016x}{:016x}", fastrand::u64(..), fastrand::u64(..))
}

#[cfg(test)]
impl Writer {
    /// The connection, for tests that look at rows no query returns.
    pub(super) fn connection(&self) -> &Connection {
        &self.conn
    }
}
