//! The coordinator's SQLite state file: every received signal keyed by (host, epoch, seq) (the
//! exactly-once record and the audit trail), each group's summed demand series, actions, and
//! ledger hours.
//!
//! One connection behind a mutex, WAL with `synchronous = FULL`: a commit is on disk before
//! the request that carried it is answered, and an agent forgets a signal once answered, so
//! not even an OS crash or power loss can lose one acknowledged. The writer commits the
//! requests that arrive together in one transaction, so one fsync serves them all. WAL
//! checkpoints run off the commit path (`checkpoint.rs`); the layout and its migrations are in
//! `schema.rs`.

use std::collections::HashMap;
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::AtomicBool;

use anyhow::Context;
use rusqlite::{Connection, OptionalExtension, params};

use crate::dedup::{Seen, Senders, Window};
use headroom_common::signal::Signal;
use headroom_model::PolicyMemory;
use headroom_model::ledger::Hour;

/// What happened to one received signal.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Outcome {
    /// New and fresh: it updates the group and may drive actuation.
    Applied,
    /// New but decided longer ago than the signal TTL: stored for audit only.
    Stored,
    /// Seen before (same host, epoch, seq): acknowledged, not applied again.
    Duplicate,
}

/// One recorded actuation or replacement, or a measured launch (`instance_ready`).
#[derive(Debug, Clone, Default, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct ActionRecord {
    /// Unix seconds.
    pub at: f64,
    /// `set_capacity` or `replace`.
    pub kind: String,
    /// Capacity before (set_capacity).
    pub from: Option<u32>,
    /// Capacity asked for (set_capacity).
    pub to: Option<u32>,
    /// Host reported (replace).
    pub host: Option<String>,
    /// Why.
    pub reason: String,
    /// Whether the actuator succeeded.
    pub ok: bool,
    /// What the actuator said (applied value, error).
    pub detail: String,
    /// A new instance's measured warm-up, seconds (`instance_ready`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub warmup_s: Option<f64>,
}

/// Counts of stored signals of a group.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct SignalCounts {
    /// Distinct signals that updated the group.
    pub applied: u64,
    /// Distinct signals stored for audit only (older than the signal TTL).
    pub stored: u64,
}

/// The state file.
pub struct State {
    conn: Connection,
    /// Set by the checkpoint thread when the log should start over.
    restart_due: Arc<AtomicBool>,
    /// Each sender's recorded seqs, as stored in `senders`.
    senders: Senders,
}

/// Creates the directory a state file goes in.
fn make_parent(path: &Path) -> anyhow::Result<()> {
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    }
    Ok(())
}

impl State {
    /// Holds the state file at `path` for this process (`PATH.lock` beside it): one
    /// coordinator per state file, or two would decide, and actuate, from the same rows.
    pub fn hold(path: &Path) -> anyhow::Result<std::fs::File> {
        make_parent(path)?;
        let mut lock = path.as_os_str().to_owned();
        lock.push(".lock");
        Ok(headroom_common::exclusive::hold(
            Path::new(&lock),
            path,
            "headroom coordinator",
        )?)
    }

    /// Opens (creating) the state file and its tables.
    pub fn open(path: &Path) -> anyhow::Result<State> {
        make_parent(path)?;
        let mut conn =
            Connection::open(path).with_context(|| format!("opening {}", path.display()))?;
        conn.execute_batch(
            "PRAGMA journal_mode = WAL;
             PRAGMA synchronous = FULL;
             PRAGMA busy_timeout = 5000;",
        )
        .with_context(|| format!("opening {}", path.display()))?;
        migrate(&mut conn).with_context(|| format!("initialising {}", path.display()))?;
        let senders = load_senders(&conn).with_context(|| format!("reading {}", path.display()))?;
        Ok(State {
            conn,
            restart_due: Arc::default(),
            senders,
        })
    }

    /// Records a batch in one transaction; `fresh(signal)` says whether a new one is applied.
    #[cfg(test)]
    pub fn record(
        &mut self,
        now: f64,
        signals: &[Signal],
        fresh: impl Fn(&Signal) -> bool,
    ) -> anyhow::Result<Vec<Outcome>> {
        let mut out = Vec::with_capacity(signals.len());
        self.record_all(signals.iter().map(|s| (now, s, fresh(s))), &mut out)?;
        Ok(out)
    }

    /// Records `(received_at, signal, fresh)` items, possibly from many requests, in one
    /// transaction (group commit), pushing one outcome per item onto `out` in order. A key seen
    /// earlier in the same call is a duplicate, as it would be across calls. On error nothing is
    /// committed and `out` is left as it was.
    pub fn record_all<'a>(
        &mut self,
        items: impl IntoIterator<Item = (f64, &'a Signal, bool)>,
        out: &mut Vec<Outcome>,
    ) -> anyhow::Result<()> {
        let before = out.len();
        let result = self.insert_all(items, out);
        if result.is_err() {
            out.truncate(before);
        }
        result
    }

    fn insert_all<'a>(
        &mut self,
        items: impl IntoIterator<Item = (f64, &'a Signal, bool)>,
        out: &mut Vec<Outcome>,
    ) -> anyhow::Result<()> {
        // Windows this batch moved, applied to `self.senders` only once the commit succeeded.
        let mut moved = Senders::default();
        // The senders in this batch, with their latest receipt time.
        let mut touched: HashMap<(&'a str, &'a str), f64> = HashMap::new();
        let tx = self.conn.transaction().context("beginning a transaction")?;
        {
            let mut insert = tx
                .prepare_cached(
                    "INSERT INTO signals
                     (host, epoch, seq, grp, received_at, decided_at, applied, body)
                     VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
                )
                .context("preparing insert")?;
            for (now, s, applied) in items {
                let (host, epoch, seq) = s.key();
                let before = moved
                    .get(host, epoch)
                    .or_else(|| self.senders.get(host, epoch));
                let (window, seen) = Window::after(before, seq);
                moved.set(host, epoch, window);
                let last = touched.entry((host, epoch)).or_insert(now);
                *last = last.max(now);
                if seen == Seen::TooOld {
                    tracing::warn!(
                        host,
                        epoch,
                        seq,
                        "signal more than {} behind its sender's newest: treated as a retry",
                        crate::dedup::WINDOW
                    );
                }
                if seen != Seen::New {
                    out.push(Outcome::Duplicate);
                    continue;
                }
                let body = serde_json::to_string(s).context("encoding signal")?;
                insert
                    .execute(params![
                        host,
                        epoch,
                        stored_seq(seq),
                        s.group,
                        now,
                        s.decided_at,
                        applied,
                        body
                    ])
                    .context("storing signal")?;
                out.push(if applied {
                    Outcome::Applied
                } else {
                    Outcome::Stored
                });
            }
            for (&(host, epoch), &at) in &touched {
                if let Some(w) = moved.get(host, epoch) {
                    save_window(&tx, host, epoch, w, at).context("storing a sender's window")?;
                }
            }
        }
        tx.commit().context("committing signals")?;
        for (host, epoch) in touched.into_keys() {
            if let Some(w) = moved.get(host, epoch) {
                self.senders.set(host, epoch, w);
            }
        }
        Ok(())
    }

    /// The latest applied signal of each host of `group` received at or after `since`, with
    /// its receipt time, oldest first.
    pub fn latest_signals(&self, group: &str, since: f64) -> anyhow::Result<Vec<(f64, Signal)>> {
        let mut stmt = self.conn.prepare(
            "SELECT received_at, body FROM signals
             WHERE grp = ?1 AND applied = 1 AND received_at >= ?2
             ORDER BY received_at, decided_at",
        )?;
        let rows = stmt.query_map(params![group, since], |r| {
            Ok((r.get::<_, f64>(0)?, r.get::<_, String>(1)?))
        })?;
        let mut out = Vec::new();
        for row in rows {
            let (at, body) = row?;
            if let Ok(signal) = serde_json::from_str::<Signal>(&body) {
                out.push((at, signal));
            }
        }
        Ok(out)
    }

    /// Distinct signals stored for `group`.
    pub fn counts(&self, group: &str) -> anyhow::Result<SignalCounts> {
        let (applied, stored): (i64, i64) = self.conn.query_row(
            "SELECT COALESCE(SUM(applied = 1), 0), COALESCE(SUM(applied = 0), 0) FROM signals WHERE grp = ?1",
            params![group],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )?;
        Ok(SignalCounts {
            applied: applied.max(0) as u64,
            stored: stored.max(0) as u64,
        })
    }

    /// Adds a live point of the group's summed demand series; the first one is where the
    /// group's own series begins ([`State::own_from`]): late signals decided before it are the
    /// backfill's.
    pub fn add_demand(&self, group: &str, t: f64, value: f64) -> anyhow::Result<()> {
        // One transaction: a point stored without the start it makes would let a rebuild
        // write after it.
        let tx = self.conn.unchecked_transaction()?;
        tx.prepare_cached("INSERT OR REPLACE INTO demand (grp, t, value) VALUES (?1, ?2, ?3)")?
            .execute(params![group, t, value])?;
        tx.prepare_cached("UPDATE backfill SET own_from = ?2 WHERE grp = ?1 AND own_from IS NULL")?
            .execute(params![group, t])?;
        tx.commit()?;
        Ok(())
    }

    /// The group's demand series since `since`, oldest first.
    pub fn demand(&self, group: &str, since: f64) -> anyhow::Result<Vec<(f64, f64)>> {
        let mut stmt = self
            .conn
            .prepare("SELECT t, value FROM demand WHERE grp = ?1 AND t >= ?2 ORDER BY t")?;
        let rows = stmt.query_map(params![group, since], |r| Ok((r.get(0)?, r.get(1)?)))?;
        Ok(rows.collect::<Result<Vec<_>, _>>()?)
    }

    /// Stores hours of the group's ledger, each replacing what its hour held.
    pub fn put_ledger(&self, group: &str, hours: &[Hour]) -> anyhow::Result<()> {
        let mut stmt = self.conn.prepare_cached(
            "INSERT OR REPLACE INTO ledger (grp, hour, body) VALUES (?1, ?2, ?3)",
        )?;
        for h in hours {
            stmt.execute(params![group, h.start, serde_json::to_string(h)?])?;
        }
        Ok(())
    }

    /// The group's ledger hours starting at or after `since`, oldest first (rows this
    /// coordinator cannot read are skipped).
    pub fn ledger(&self, group: &str, since: f64) -> anyhow::Result<Vec<Hour>> {
        let mut stmt = self
            .conn
            .prepare("SELECT body FROM ledger WHERE grp = ?1 AND hour >= ?2 ORDER BY hour")?;
        let rows = stmt.query_map(params![group, since], |r| r.get::<_, String>(0))?;
        let mut out = Vec::new();
        for body in rows {
            if let Ok(h) = serde_json::from_str(&body?) {
                out.push(h);
            }
        }
        Ok(out)
    }

    /// Keeps the group's policy memory (what its policy learned), replacing the last one.
    pub fn put_policy_memory(&self, group: &str, memory: &PolicyMemory) -> anyhow::Result<()> {
        self.conn
            .prepare_cached("INSERT OR REPLACE INTO policy_memory (grp, body) VALUES (?1, ?2)")?
            .execute(params![group, headroom_common::memory::stored(memory)?])?;
        Ok(())
    }

    /// The group's last policy memory, if one was kept and this coordinator can read it (one
    /// it cannot is logged and left: the policy then starts afresh).
    pub fn policy_memory(&self, group: &str) -> anyhow::Result<Option<PolicyMemory>> {
        let body: Option<String> = self
            .conn
            .query_row(
                "SELECT body FROM policy_memory WHERE grp = ?1",
                params![group],
                |r| r.get(0),
            )
            .optional()?;
        Ok(body.and_then(|b| headroom_common::memory::read(&b, group)))
    }

    /// Records an action.
    pub fn add_action(&self, group: &str, action: &ActionRecord) -> anyhow::Result<()> {
        let body = serde_json::to_string(action)?;
        self.conn
            .prepare_cached("INSERT INTO actions (grp, at, body) VALUES (?1, ?2, ?3)")?
            .execute(params![group, action.at, body])?;
        Ok(())
    }

    /// The group's last `n` actions, newest first.
    pub fn actions(&self, group: &str, n: usize) -> anyhow::Result<Vec<ActionRecord>> {
        let mut stmt = self
            .conn
            .prepare("SELECT body FROM actions WHERE grp = ?1 ORDER BY id DESC LIMIT ?2")?;
        let rows = stmt.query_map(params![group, n as i64], |r| r.get::<_, String>(0))?;
        let mut out = Vec::new();
        for body in rows {
            if let Ok(a) = serde_json::from_str(&body?) {
                out.push(a);
            }
        }
        Ok(out)
    }

    /// The group's last `n` actions of `kind` (`replace`, `instance_ready`, ...), newest first.
    pub fn actions_of_kind(
        &self,
        group: &str,
        kind: &str,
        n: usize,
    ) -> anyhow::Result<Vec<ActionRecord>> {
        let pattern = format!("%\"kind\":\"{kind}\"%");
        let mut stmt = self.conn.prepare(
            "SELECT body FROM actions WHERE grp = ?1 AND body LIKE ?2 ORDER BY id DESC LIMIT ?3",
        )?;
        let rows = stmt.query_map(params![group, pattern, n as i64], |r| r.get::<_, String>(0))?;
        let mut out = Vec::new();
        for body in rows {
            if let Ok(a) = serde_json::from_str::<ActionRecord>(&body?)
                && a.kind == kind
            {
                out.push(a);
            }
        }
        Ok(out)
    }

    /// The group's last `n` measured warm-ups (`instance_ready` actions), oldest first.
    pub fn warmups(&self, group: &str, n: usize) -> anyhow::Result<Vec<f64>> {
        let mut out: Vec<f64> = self
            .actions_of_kind(group, "instance_ready", n)?
            .into_iter()
            .filter_map(|a| a.warmup_s)
            .collect();
        out.reverse();
        Ok(out)
    }

    /// The last capacity the coordinator set for the group, if any.
    pub fn last_set(&self, group: &str) -> anyhow::Result<Option<u32>> {
        let body: Option<String> = self
            .conn
            .query_row(
                "SELECT body FROM actions WHERE grp = ?1 AND body LIKE '%\"kind\":\"set_capacity\"%'
                 ORDER BY id DESC LIMIT 1",
                params![group],
                |r| r.get(0),
            )
            .optional()?;
        Ok(body
            .and_then(|b| serde_json::from_str::<ActionRecord>(&b).ok())
            .and_then(|a| if a.ok { a.to } else { a.from }))
    }

    /// Deletes what is older than `before`, and forgets senders silent since then (as the
    /// signals they sent are gone, so is the proof that a resend of them is one).
    pub fn prune(&mut self, before: f64) -> anyhow::Result<()> {
        self.conn.execute(
            "DELETE FROM signals WHERE received_at < ?1",
            params![before],
        )?;
        let gone: Vec<(String, String)> = self
            .conn
            .prepare("DELETE FROM senders WHERE last_at < ?1 RETURNING host, epoch")?
            .query_map(params![before], |r| Ok((r.get(0)?, r.get(1)?)))?
            .collect::<Result<_, _>>()?;
        for (host, epoch) in gone {
            self.senders.remove(&host, &epoch);
        }
        self.conn
            .execute("DELETE FROM demand WHERE t < ?1", params![before])?;
        self.conn
            .execute("DELETE FROM actions WHERE at < ?1", params![before])?;
        self.conn
            .execute("DELETE FROM ledger WHERE hour < ?1", params![before])?;
        Ok(())
    }
}

/// A seq as SQLite stores it (seqs past `i64::MAX` are clamped; no agent gets there).
fn stored_seq(seq: u64) -> i64 {
    i64::try_from(seq).unwrap_or(i64::MAX)
}

/// Stores the window of (`host`, `epoch`), last heard from at `at`. The bitmap is stored as
/// its bits (an `i64` in SQLite); [`load_senders`] reads it back.
fn save_window(
    conn: &Connection,
    host: &str,
    epoch: &str,
    w: Window,
    at: f64,
) -> rusqlite::Result<usize> {
    conn.prepare_cached(
        "INSERT OR REPLACE INTO senders (host, epoch, high, seen, last_at)
         VALUES (?1, ?2, ?3, ?4, ?5)",
    )?
    .execute(params![host, epoch, stored_seq(w.high), w.seen as i64, at])
}

/// Every sender's window, from `senders`.
fn load_senders(conn: &Connection) -> anyhow::Result<Senders> {
    let mut senders = Senders::default();
    let mut stmt = conn.prepare("SELECT host, epoch, high, seen FROM senders")?;
    let mut rows = stmt.query([])?;
    while let Some(r) = rows.next()? {
        let (host, epoch): (String, String) = (r.get(0)?, r.get(1)?);
        let window = Window {
            high: r.get::<_, i64>(2)?.max(0) as u64,
            seen: r.get::<_, i64>(3)? as u64,
        };
        senders.set(&host, &epoch, window);
    }
    Ok(senders)
}

mod checkpoint;
mod late;
mod schema;

pub use checkpoint::Checkpointer;
#[cfg(test)]
pub(crate) use checkpoint::RESTART_FRAMES;
use schema::migrate;

#[cfg(test)]
mod tests;
