//! The state file's side of [`crate::backfill`]: late signals, the hosts' demand they carry,
//! and the rebuilt points of the group's series.
//!
//! Late signals are found by row id (the log is append-only, so ids after the last look are
//! a range scan), and their demand by receipt time (they were received after the replica's own
//! series began, though decided before it), on the existing `(grp, received_at)` index.

use rusqlite::params;

use super::State;
use crate::backfill::HostPoint;

impl State {
    /// The newest row id of the signal log (0 when empty).
    pub fn last_signal_id(&self) -> anyhow::Result<i64> {
        Ok(self
            .conn
            .query_row("SELECT COALESCE(MAX(id), 0) FROM signals", [], |r| r.get(0))?)
    }

    /// The first point of `group`'s demand series.
    pub fn first_demand(&self, group: &str) -> anyhow::Result<Option<f64>> {
        Ok(self.conn.query_row(
            "SELECT MIN(t) FROM demand WHERE grp = ?1",
            params![group],
            |r| r.get(0),
        )?)
    }

    /// Among `group`'s signals logged after row `after`: the newest row id, and whether any
    /// was decided before `before`.
    pub fn late_signals(
        &self,
        group: &str,
        after: i64,
        before: f64,
    ) -> anyhow::Result<(i64, bool)> {
        let (newest, late): (Option<i64>, i64) = self.conn.query_row(
            "SELECT MAX(id), COALESCE(SUM(grp = ?2 AND decided_at < ?3), 0) FROM signals
             WHERE id > ?1",
            params![after, group, before],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )?;
        Ok((newest.unwrap_or(after), late > 0))
    }

    /// What every signal of `group` received at or after `since` and decided before it
    /// carries: each host's demand, oldest decision first.
    pub fn late_demand(&self, group: &str, since: f64) -> anyhow::Result<Vec<HostPoint>> {
        let mut stmt = self.conn.prepare(
            "SELECT host, decided_at, json_extract(body, '$.demand_now') FROM signals
             WHERE grp = ?1 AND received_at >= ?2 AND decided_at < ?2
             ORDER BY decided_at",
        )?;
        let rows = stmt.query_map(params![group, since], |r| {
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
