//! The state file's side of [`crate::backfill`]: late signals, the hosts' demand they carry,
//! and the rebuilt points of the group's series.
//!
//! Late signals are found by row id (the log is append-only, so ids after the last look are
//! a range scan), and their demand by receipt time (received since the replica first ran the
//! group, though decided before its own series began), on the existing `(grp, received_at)`
//! index.

use rusqlite::{OptionalExtension, params};

use super::State;
use crate::backfill::HostPoint;

/// The most signal rows one look for late signals scans.
const SCAN_ROWS: i64 = 100_000;

impl State {
    /// The newest row id of the signal log (0 when empty).
    pub fn last_signal_id(&self) -> anyhow::Result<i64> {
        Ok(self
            .conn
            .query_row("SELECT COALESCE(MAX(id), 0) FROM signals", [], |r| r.get(0))?)
    }

    /// Where `group`'s backfill stands, as its decision loop starts: (when this replica first
    /// ran the group, the newest signal row accounted for: no late signal up to it awaits a
    /// rebuild). Kept across restarts with the start of the own series ([`State::own_from`]),
    /// so a catch-up stopped before its rebuild is rebuilt after the restart, and a rebuilt
    /// point is never taken for the own series' start. Recorded at the first run: a file of an
    /// earlier version, which kept no record, has its first demand point stand for both, every
    /// signal logged so far accounted for, as that version had it.
    pub fn backfill(&self, group: &str, now: f64) -> anyhow::Result<(f64, i64)> {
        let kept = self
            .conn
            .query_row(
                "SELECT started, accounted FROM backfill WHERE grp = ?1",
                params![group],
                |r| Ok((r.get(0)?, r.get(1)?)),
            )
            .optional()?;
        if let Some(kept) = kept {
            return Ok(kept);
        }
        let last = self.last_signal_id()?;
        let first: Option<f64> = self.conn.query_row(
            "SELECT MIN(t) FROM demand WHERE grp = ?1",
            params![group],
            |r| r.get(0),
        )?;
        let started = first.unwrap_or(now);
        self.conn.execute(
            "INSERT INTO backfill (grp, started, own_from, accounted) VALUES (?1, ?2, ?3, ?4)",
            params![group, started, first, last],
        )?;
        Ok((started, last))
    }

    /// Where `group`'s own series began, at `now`: its first live point, recorded by
    /// [`State::add_demand`]; `now` while it has none (a signal decided well before now is then
    /// late: it may be rebuilt).
    pub fn own_from(&self, group: &str, now: f64) -> anyhow::Result<f64> {
        Ok(self
            .conn
            .prepare_cached("SELECT own_from FROM backfill WHERE grp = ?1")?
            .query_row(params![group], |r| r.get::<_, Option<f64>>(0))
            .optional()?
            .flatten()
            .unwrap_or(now))
    }

    /// Records that no late signal of `group` up to row `id` awaits a rebuild.
    pub fn put_backfill_accounted(&self, group: &str, id: i64) -> anyhow::Result<()> {
        self.conn.execute(
            "UPDATE backfill SET accounted = ?2 WHERE grp = ?1",
            params![group, id],
        )?;
        Ok(())
    }

    /// Among `group`'s signals logged after row `after`, at most [`SCAN_ROWS`] rows on (the
    /// scan holds the state file's lock, which ingest needs too: a long way behind is caught
    /// up over several looks): the newest row id looked at, and whether any is late. Row ids
    /// below `after` only (the log emptied by a prune, its ids given again from 1) are looked
    /// at from the first.
    ///
    /// Late: decided more than `live_s` (the hosts' time to live) before `before` (the own
    /// series' start), whenever it was received. A signal decided closer to the start than that
    /// could add at most `live_s` of history before it, not worth starting a warm forecaster
    /// again, and is mostly live in the first point anyway. At a first run the agents' first
    /// signals race the first evaluation (decided before it, received just before or just
    /// after), and taking them for late signals restarted the forecaster a minute in,
    /// mid-ramp. A replica's catch-up is still found: it brings signals decided long before.
    pub fn late_signals(
        &self,
        group: &str,
        after: i64,
        before: f64,
        live_s: f64,
    ) -> anyhow::Result<(i64, bool)> {
        let newest = self.last_signal_id()?;
        let after = if newest < after { 0 } else { after };
        let end = newest.min(after.saturating_add(SCAN_ROWS));
        let late: i64 = self.conn.query_row(
            "SELECT COALESCE(SUM(grp = ?3 AND decided_at < ?4 - ?5), 0)
             FROM signals WHERE id > ?1 AND id <= ?2",
            params![after, end, group, before, live_s],
            |r| r.get(0),
        )?;
        Ok((end, late > 0))
    }

    /// What every signal of `group` received at or after `since` (this replica's first run of
    /// it) and decided before `before` (its own series' start) carries: each host's demand,
    /// oldest decision first.
    pub fn late_demand(
        &self,
        group: &str,
        since: f64,
        before: f64,
    ) -> anyhow::Result<Vec<HostPoint>> {
        let mut stmt = self.conn.prepare(
            "SELECT host, decided_at, json_extract(body, '$.demand_now') FROM signals
             WHERE grp = ?1 AND received_at >= ?2 AND decided_at < ?3
             ORDER BY decided_at",
        )?;
        let rows = stmt.query_map(params![group, since, before], |r| {
            Ok(HostPoint {
                host: r.get(0)?,
                t: r.get(1)?,
                demand: r.get::<_, Option<f64>>(2)?.unwrap_or(f64::NAN),
            })
        })?;
        let mut out: Vec<HostPoint> = rows.collect::<Result<_, _>>()?;
        out.retain(|p| p.demand.is_finite());
        Ok(out)
    }

    /// Stores points of `group`'s demand series in one transaction, each replacing what its
    /// time held.
    pub fn put_demand(&mut self, group: &str, points: &[(f64, f64)]) -> anyhow::Result<()> {
        let tx = self.conn.transaction()?;
        {
            let mut ins = tx.prepare_cached(
                "INSERT OR REPLACE INTO demand (grp, t, value) VALUES (?1, ?2, ?3)",
            )?;
            for (t, v) in points {
                ins.execute(params![group, t, v])?;
            }
        }
        tx.commit()?;
        Ok(())
    }
}
