//! The state file's layout, and the migrations that bring an older file to it in one
//! transaction (a coordinator never runs on a file newer than it knows).

use rusqlite::Connection;

use super::save_window;
use crate::dedup::Window;

/// Layout of the state file, in `PRAGMA user_version`. 0: signals keyed by (host, epoch,
/// seq) in a WITHOUT ROWID table; 1: an append-only signal log plus one dedup window per
/// sender (`senders`); 2: each group's ledger, an hour a row (`ledger`).
///
/// A table an older coordinator can do without (it never reads it) comes with no new layout,
/// so that rolling back stays possible: [`OPTIONAL`], created at every open.
pub(super) const SCHEMA_VERSION: i64 = 2;

const SCHEMA: &str = "CREATE TABLE IF NOT EXISTS signals (
         id INTEGER PRIMARY KEY, host TEXT NOT NULL, epoch TEXT NOT NULL, seq INTEGER NOT NULL,
         grp TEXT NOT NULL, received_at REAL NOT NULL, decided_at REAL NOT NULL,
         applied INTEGER NOT NULL, body TEXT NOT NULL);
     CREATE INDEX IF NOT EXISTS signals_grp_received ON signals (grp, received_at);
     CREATE TABLE IF NOT EXISTS senders (
         host TEXT NOT NULL, epoch TEXT NOT NULL, high INTEGER NOT NULL, seen INTEGER NOT NULL,
         last_at REAL NOT NULL, PRIMARY KEY (host, epoch)) WITHOUT ROWID;
     CREATE TABLE IF NOT EXISTS demand (
         grp TEXT NOT NULL, t REAL NOT NULL, value REAL NOT NULL,
         PRIMARY KEY (grp, t)) WITHOUT ROWID;
     CREATE TABLE IF NOT EXISTS actions (
         id INTEGER PRIMARY KEY, grp TEXT NOT NULL, at REAL NOT NULL, body TEXT NOT NULL);
     CREATE TABLE IF NOT EXISTS ledger (
         grp TEXT NOT NULL, hour INTEGER NOT NULL, body TEXT NOT NULL,
         PRIMARY KEY (grp, hour)) WITHOUT ROWID;";

/// Each group's policy memory (what its policy learned, restored at start; see
/// `headroom_model::PolicyMemory`): a coordinator without it starts its policies afresh.
/// Each group's backfill (`crate::backfill`): when this replica first ran it, where its own
/// demand series began (none yet: NULL), and the newest signal row whose late demand is in it;
/// a coordinator without it takes the first demand point and the newest row, as before.
const OPTIONAL: &str = "CREATE TABLE IF NOT EXISTS policy_memory (
         grp TEXT PRIMARY KEY, body TEXT NOT NULL) WITHOUT ROWID;
     CREATE TABLE IF NOT EXISTS backfill (
         grp TEXT PRIMARY KEY, started REAL NOT NULL, own_from REAL,
         accounted INTEGER NOT NULL) WITHOUT ROWID;";

/// Brings the state file to [`SCHEMA_VERSION`] in one transaction, with the [`OPTIONAL`]
/// tables.
pub(super) fn migrate(conn: &mut Connection) -> anyhow::Result<()> {
    let version: i64 = conn.query_row("PRAGMA user_version", [], |r| r.get(0))?;
    if version > SCHEMA_VERSION {
        anyhow::bail!(
            "state file layout {version} is newer than this coordinator's ({SCHEMA_VERSION}); \
             upgrade the coordinator"
        );
    }
    if version == SCHEMA_VERSION {
        conn.execute_batch(OPTIONAL)?;
        return Ok(());
    }
    let tx = conn.transaction()?;
    let keyed: bool = tx
        .query_row(
            "SELECT COUNT(*) FROM sqlite_master WHERE type = 'table' AND name = 'signals'",
            [],
            |r| r.get::<_, i64>(0),
        )
        .map(|n| n > 0)?;
    if version == 0 && keyed {
        // Layout 0: the keyed table becomes the log, in arrival order, and each sender's
        // window is rebuilt from the keys it held.
        tx.execute_batch(
            "ALTER TABLE signals RENAME TO signals_keyed;
             DROP INDEX IF EXISTS signals_grp_received;",
        )?;
        tx.execute_batch(SCHEMA)?;
        tx.execute_batch(
            "INSERT INTO signals (host, epoch, seq, grp, received_at, decided_at, applied, body)
                 SELECT host, epoch, seq, grp, received_at, decided_at, applied, body
                 FROM signals_keyed ORDER BY received_at, host, epoch, seq;",
        )?;
        let mut senders: Vec<(String, String, Window, f64)> = Vec::new();
        {
            let mut keys = tx.prepare(
                "SELECT host, epoch, seq, received_at FROM signals_keyed ORDER BY host, epoch, seq",
            )?;
            let mut rows = keys.query([])?;
            while let Some(r) = rows.next()? {
                let (host, epoch): (String, String) = (r.get(0)?, r.get(1)?);
                let seq = r.get::<_, i64>(2)?.max(0) as u64;
                let at: f64 = r.get(3)?;
                match senders.last_mut() {
                    Some((h, e, w, last)) if *h == host && *e == epoch => {
                        w.record(seq);
                        *last = last.max(at);
                    }
                    _ => senders.push((host, epoch, Window::first(seq), at)),
                }
            }
        }
        for (host, epoch, w, at) in &senders {
            save_window(&tx, host, epoch, *w, *at)?;
        }
        tx.execute_batch("DROP TABLE signals_keyed;")?;
        tracing::info!(
            senders = senders.len(),
            "state file migrated to an append-only signal log with a dedup window per sender"
        );
    } else {
        tx.execute_batch(SCHEMA)?;
    }
    tx.execute_batch(OPTIONAL)?;
    tx.pragma_update(None, "user_version", SCHEMA_VERSION)?;
    tx.commit()?;
    Ok(())
}
