//! The coordinator's SQLite state file: every received signal keyed by (host, epoch, seq) (the
//! exactly-once record and the audit trail), each group's summed demand series, actions, and
//! ledger hours.
//!
//! One connection behind a mutex, WAL with `synchronous = FULL`: a commit is on disk before
//! the request that carried it is answered, and an agent forgets a signal once answered, so
//! not even an OS crash or power loss can lose one acknowledged. The writer commits the
//! requests that arrive together in one transaction, so one fsync serves them all.
//!
//! The running coordinator checkpoints the WAL from a [`Checkpointer`] thread with its own
//! connection. SQLite's automatic checkpoint would run inside whichever commit crosses the
//! threshold, and its fsyncs would stall every request waiting for that commit. A passive
//! checkpoint never blocks the writer but, under steady writes, never catches up either, so
//! the log would grow without bound; once it is past `RESTART_FRAMES` the writer restarts it
//! between two batches ([`State::restart_wal_if_due`]), copying only the frames written since
//! the last passive pass.

use std::collections::HashMap;
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc;
use std::thread::JoinHandle;
use std::time::Duration;

use anyhow::Context;
use rusqlite::{Connection, OptionalExtension, params};

use crate::dedup::{Seen, Senders, Window};
use headroom_common::signal::Signal;
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

/// The background checkpoint thread; stops (after one last checkpoint) when dropped.
pub struct Checkpointer {
    stop: Option<mpsc::Sender<()>>,
    thread: Option<JoinHandle<()>>,
}

impl Drop for Checkpointer {
    fn drop(&mut self) {
        self.stop.take();
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

fn checkpoint_loop(
    conn: &Connection,
    file: &Path,
    every: Duration,
    stop: &mpsc::Receiver<()>,
    restart_due: &AtomicBool,
) {
    // Copying the log into the database is background work: under load it must not take the
    // core from the requests whose commits fill the log (their p99 doubled when it did).
    if let Err(e) = rustix::process::setpriority_process(None, CHECKPOINT_NICE) {
        tracing::debug!(error = %e, "could not lower the checkpoint thread's priority");
    }
    let mut failing = false;
    let mut wait = every;
    loop {
        let last = !matches!(
            stop.recv_timeout(wait),
            Err(mpsc::RecvTimeoutError::Timeout)
        );
        let result = checkpoint(conn, restart_due);
        // While the log is long (a burst of writes), go again soon rather than let it grow
        // for a whole interval.
        wait = match result {
            Ok(true) => every.min(BUSY_EVERY),
            _ => every,
        };
        match result {
            Ok(_) if failing => {
                failing = false;
                tracing::info!(file = %file.display(), "WAL checkpoints work again");
            }
            Ok(_) => {}
            Err(e) if !failing => {
                failing = true;
                tracing::warn!(file = %file.display(), error = %e, "WAL checkpoint failed; retrying");
            }
            Err(_) => {}
        }
        if last {
            return;
        }
    }
}

/// WAL pages past which the writer restarts the log (64 MiB; the passive passes in between
/// copy most of it, so a restart copies little). Each restart holds up the requests behind it
/// for a copy and an fsync: 16 MiB gave a p99 of 13 ms under 64 busy clients, 64 MiB 7 ms.
pub(crate) const RESTART_FRAMES: i64 = 16000;

/// Bytes the log file keeps after a restart.
const WAL_SIZE_LIMIT: i64 = 128 * 1024 * 1024;

/// How long a statement waits for a lock held by another connection.
const BUSY_TIMEOUT: Duration = Duration::from_secs(5);

/// Pause between checkpoints while the log is past [`RESTART_FRAMES`].
const BUSY_EVERY: Duration = Duration::from_millis(10);

/// Nice value of the checkpoint thread (Linux priorities are per thread): on a busy core it
/// gets about a tenth of the time of a request thread, and all of an idle one.
const CHECKPOINT_NICE: i32 = 10;

/// One passive checkpoint: copies what it can without blocking anyone, and asks the writer
/// for a restart when the log has grown past [`RESTART_FRAMES`] (then returns true).
fn checkpoint(conn: &Connection, restart_due: &AtomicBool) -> rusqlite::Result<bool> {
    let log_frames =
        conn.query_row("PRAGMA wal_checkpoint(PASSIVE)", [], |r| r.get::<_, i64>(1))?;
    let long = log_frames >= RESTART_FRAMES;
    if long {
        restart_due.store(true, Ordering::Relaxed);
    }
    Ok(long)
}

/// Layout of the state file, in `PRAGMA user_version`. 0: signals keyed by (host, epoch,
/// seq) in a WITHOUT ROWID table; 1: an append-only signal log plus one dedup window per
/// sender (`senders`); 2: each group's ledger, an hour a row (`ledger`).
const SCHEMA_VERSION: i64 = 2;

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

/// The state file.
pub struct State {
    conn: Connection,
    /// Set by the checkpoint thread when the log should start over.
    restart_due: Arc<AtomicBool>,
    /// Each sender's recorded seqs, as stored in `senders`.
    senders: Senders,
}

impl State {
    /// Opens (creating) the state file and its tables.
    pub fn open(path: &Path) -> anyhow::Result<State> {
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
        }
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

    /// Moves WAL checkpoints of `path` (this state's file) off the commit path: commits stop
    /// checkpointing, and a background thread runs a passive checkpoint every `every`, which
    /// never blocks a writer. Keep the returned handle for as long as this state is written.
    pub fn checkpoint_in_background(
        &self,
        path: &Path,
        every: Duration,
    ) -> anyhow::Result<Checkpointer> {
        let conn = Connection::open(path).with_context(|| format!("opening {}", path.display()))?;
        conn.busy_timeout(BUSY_TIMEOUT)?;
        self.conn
            .pragma_update(None, "wal_autocheckpoint", 0)
            .context("turning automatic checkpoints off")?;
        // After a restart the log file is cut back to this size, so a burst does not keep its
        // disk space for good.
        self.conn
            .pragma_update(None, "journal_size_limit", WAL_SIZE_LIMIT)
            .context("limiting the log file's size")?;
        let (stop, stopped) = mpsc::channel::<()>();
        let file = path.to_path_buf();
        let restart_due = self.restart_due.clone();
        let thread = std::thread::Builder::new()
            .name("checkpoint".into())
            .spawn(move || checkpoint_loop(&conn, &file, every, &stopped, &restart_due))
            .context("starting the checkpoint thread")?;
        Ok(Checkpointer {
            stop: Some(stop),
            thread: Some(thread),
        })
    }

    /// Set by the checkpoint thread when it asks for the log to start over: the writer reads
    /// it between batches without taking the state's lock.
    pub fn restart_wal_flag(&self) -> Arc<AtomicBool> {
        self.restart_due.clone()
    }

    /// Restarts the WAL when the checkpoint thread asked for it: copies the frames not yet
    /// copied and makes the next commit write the log from its start. Called by the writer
    /// between batches, so no other write waits on it.
    pub fn restart_wal_if_due(&self) -> anyhow::Result<()> {
        if !self.restart_due.load(Ordering::Relaxed) {
            return Ok(());
        }
        // Without waiting: while the checkpoint thread is mid-pass, the next batch tries again.
        self.conn.busy_timeout(Duration::ZERO)?;
        let busy = self
            .conn
            .query_row("PRAGMA wal_checkpoint(RESTART)", [], |r| r.get::<_, i64>(0));
        self.conn.busy_timeout(BUSY_TIMEOUT)?;
        if busy.context("restarting the WAL")? == 0 {
            self.restart_due.store(false, Ordering::Relaxed);
        }
        Ok(())
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

    /// Adds a point of the group's summed demand series.
    pub fn add_demand(&self, group: &str, t: f64, value: f64) -> anyhow::Result<()> {
        self.conn
            .prepare_cached("INSERT OR REPLACE INTO demand (grp, t, value) VALUES (?1, ?2, ?3)")?
            .execute(params![group, t, value])?;
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

/// Brings the state file to [`SCHEMA_VERSION`] in one transaction.
fn migrate(conn: &mut Connection) -> anyhow::Result<()> {
    let version: i64 = conn.query_row("PRAGMA user_version", [], |r| r.get(0))?;
    if version > SCHEMA_VERSION {
        anyhow::bail!(
            "state file layout {version} is newer than this coordinator's ({SCHEMA_VERSION}); \
             upgrade the coordinator"
        );
    }
    if version == SCHEMA_VERSION {
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
    tx.pragma_update(None, "user_version", SCHEMA_VERSION)?;
    tx.commit()?;
    Ok(())
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

mod late;

#[cfg(test)]
mod tests;
