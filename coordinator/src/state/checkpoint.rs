//! The running coordinator checkpoints the WAL from a [`Checkpointer`] thread with its own
//! connection. SQLite's automatic checkpoint would run inside whichever commit crosses the
//! threshold, and its fsyncs would stall every request waiting for that commit. A passive
//! checkpoint never blocks the writer but, under steady writes, never catches up either, so
//! the log would grow without bound; once it is past `RESTART_FRAMES` the writer restarts it
//! between two batches ([`State::restart_wal_if_due`]), copying only the frames written since
//! the last passive pass.

use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc;
use std::thread::JoinHandle;
use std::time::Duration;

use anyhow::Context;
use rusqlite::Connection;

use super::State;

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

impl State {
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
}
