//! The store writer thread: the pipeline's batches, the sender's delivery outcomes and the
//! hourly prune, each written by the one [`Writer`] connection. A batch SQLite cannot take now
//! (a full disk, a lock) is kept and retried with the next; one it refuses as data is dropped
//! and said. What it is doing shows in the [`Snapshot`](super::Snapshot) (the watchdog stops
//! while it is stuck).

use std::collections::VecDeque;
use std::sync::Arc;
use std::sync::mpsc::{Receiver, Sender};
use std::time::Instant;

use super::Shared;
use crate::store::{Batch, Retention, Writer, aside};

/// Messages to the store writer.
pub enum WriterMsg {
    /// Write this batch in one transaction.
    Batch(Box<Batch>),
    /// Delete what is past its retention, as of `now` (unix seconds).
    Prune {
        /// Unix seconds now.
        now: f64,
    },
}

/// Runs the store writer until the channel closes: one transaction per batch; a failed batch
/// is kept and retried with the next, so a full disk delays history instead of losing it.
pub fn run_writer(
    mut store: Writer,
    rx: Receiver<WriterMsg>,
    shared: Arc<Shared>,
    retention: Retention,
    done: Sender<()>,
) {
    let mut backlog: VecDeque<Batch> = VecDeque::new();
    const MAX_BACKLOG: usize = 8192;
    let mut lost: u64 = 0;
    publish_drops(&store, &shared);
    while let Ok(msg) = rx.recv() {
        match msg {
            WriterMsg::Batch(b) => {
                let b = *b;
                match backlog.back_mut() {
                    Some(last) => {
                        if let Some(rest) = last.merge(b) {
                            backlog.push_back(rest);
                        }
                    }
                    None => backlog.push_back(b),
                }
                while backlog.len() > MAX_BACKLOG {
                    backlog.pop_front();
                    lost += 1;
                    shared.lock().store_lost = lost;
                    tracing::error!(lost, "store backlog full: oldest unwritten batch dropped");
                }
            }
            WriterMsg::Prune { now } => match store.prune(now, &retention) {
                Ok(0) => {}
                Ok(n) => {
                    tracing::warn!(
                        dropped = n,
                        "outbox bound reached: undelivered signals dropped"
                    );
                    publish_drops(&store, &shared);
                }
                Err(e) => {
                    aside::mark_if_damaged(store.path(), &e);
                    tracing::warn!(error = %e, "pruning history failed");
                }
            },
        }
        while let Some(b) = backlog.front() {
            shared.lock().writer_busy_since = Some(Instant::now());
            let result = store.apply(b);
            shared.lock().writer_busy_since = None;
            match result {
                Ok(c) => {
                    backlog.pop_front();
                    let mut snap = shared.lock();
                    snap.store_locked_since = None;
                    snap.store_damaged_since = None;
                    if c.rollup_ts.is_some() {
                        snap.committed.rollup_ts = c.rollup_ts.max(snap.committed.rollup_ts);
                    }
                    if c.seq.is_some() {
                        snap.committed.seq = c.seq;
                    }
                    if snap.store_error.take().is_some() {
                        tracing::info!("history writes recovered");
                    }
                    snap.store_backlog = backlog.len();
                }
                Err(e) if e.is_in_the_data() => {
                    // Kept, it would hold back every batch after it (they merge into it) for
                    // ever; no value the agent makes should get here.
                    backlog.pop_front();
                    lost += 1;
                    shared.lock().store_lost = lost;
                    tracing::error!(lost, error = %e, "a batch the database refuses as data was dropped");
                }
                Err(e) => {
                    aside::mark_if_damaged(store.path(), &e);
                    let mut snap = shared.lock();
                    since_while(e.is_locked(), &mut snap.store_locked_since);
                    since_while(e.is_damaged(), &mut snap.store_damaged_since);
                    // A damaged file is retried all the same (the batch is kept), but it is
                    // marked, so the next start sets it aside, and no longer counts as progress,
                    // so systemd's watchdog makes that start.
                    let error = if e.is_damaged() {
                        format!(
                            "{e}: {} is damaged; the next start sets it aside and starts a new \
                             history (under systemd the watchdog restarts the agent; the old file \
                             is kept for inspection, its undelivered signals are not sent)",
                            store.path().display()
                        )
                    } else {
                        e.to_string()
                    };
                    if snap.store_error.is_none() {
                        tracing::error!(%error, "writing history failed; keeping the batch to retry");
                    }
                    snap.store_error = Some(error);
                    snap.store_backlog = backlog.len();
                    break;
                }
            }
        }
    }
    if !backlog.is_empty() {
        tracing::error!(
            batches = backlog.len(),
            error = shared.lock().store_error.as_deref().unwrap_or(""),
            "stopping with history the database did not take; it is lost"
        );
    }
    let _ = done.send(());
}

/// Keeps `since` at the first time `now_so` held, while it holds; clears it when not.
fn since_while(now_so: bool, since: &mut Option<Instant>) {
    if now_so {
        since.get_or_insert_with(Instant::now);
    } else {
        *since = None;
    }
}

/// Puts each replica's count of dropped signals in the snapshot (for `/metrics`).
fn publish_drops(store: &Writer, shared: &Shared) {
    match store.dropped_per_destination() {
        Ok(drops) => shared.lock().signals_dropped = drops,
        Err(e) => tracing::warn!(error = %e, "reading the outbox's drops failed"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Config;
    use crate::pipeline::Snapshot;
    use crate::store::{Committed, Rollup};
    use std::time::Duration;

    /// The writer thread on a store at `path`: its channel, its snapshot, and a wait for it to
    /// end once the channel is dropped.
    fn writer_on(
        path: &std::path::Path,
    ) -> (
        std::sync::mpsc::SyncSender<WriterMsg>,
        Arc<Shared>,
        impl FnOnce(),
    ) {
        let store = Writer::open(path, 256).unwrap();
        let (tx, rx) = std::sync::mpsc::sync_channel(4);
        let (done_tx, done_rx) = std::sync::mpsc::channel();
        let shared = Shared::new(Snapshot::starting(
            &Config::default(),
            "h".into(),
            4.0,
            Committed::default(),
            path.to_path_buf(),
            0.0,
        ));
        let retention = Config::default().retention();
        let writing = shared.clone();
        let writer = std::thread::spawn(move || run_writer(store, rx, writing, retention, done_tx));
        let finished = move || {
            done_rx.recv().unwrap();
            writer.join().unwrap();
        };
        (tx, shared, finished)
    }

    #[test]
    fn a_batch_the_database_refuses_does_not_hold_back_the_next() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("headroom.db");
        let (tx, _, finished) = writer_on(&path);
        let rollup = |ts: i64, mean: f64| Rollup {
            metric: "cpu.busy_cores".into(),
            ts,
            mean,
            max: 1.0,
            last: 1.0,
            n: 1,
        };
        for (ts, mean) in [(100, f64::NAN), (110, 1.0)] {
            let batch = Batch {
                rollups_10s: vec![rollup(ts, mean)],
                ..Batch::default()
            };
            tx.send(WriterMsg::Batch(Box::new(batch))).unwrap();
        }
        drop(tx);
        finished();
        let conn = rusqlite::Connection::open(&path).unwrap();
        let stored: Vec<i64> = conn
            .prepare("SELECT ts FROM rollup_10s")
            .unwrap()
            .query_map([], |r| r.get(0))
            .unwrap()
            .collect::<Result<_, _>>()
            .unwrap();
        assert_eq!(stored, [110]);
    }
    #[test]
    fn a_write_that_finds_the_file_damaged_marks_it_for_the_next_start() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("headroom.db");
        let rollup = |ts: i64| Rollup {
            metric: "cpu.busy_cores".into(),
            ts,
            mean: 1.0,
            max: 1.0,
            last: 1.0,
            n: 1,
        };
        let mut store = Writer::open(&path, 256).unwrap();
        store
            .apply(&Batch {
                rollups_10s: (0..2000).map(|i| rollup(i * 10)).collect(),
                ..Batch::default()
            })
            .unwrap();
        drop(store);
        // Pages past the schema's overwritten: the file opens, a write finds the damage.
        crate::store::damage_pages(&path);
        assert!(!aside::marked_damaged(&path));
        let (tx, seen, finished) = writer_on(&path);
        let batch = Batch {
            rollups_10s: (0..2000).map(|i| rollup(i * 10 + 5)).collect(),
            ..Batch::default()
        };
        tx.send(WriterMsg::Batch(Box::new(batch))).unwrap();
        drop(tx);
        finished();
        let error = seen.lock().store_error.clone().unwrap_or_default();
        assert!(error.contains("the next start sets it aside"), "{error}");
        assert!(aside::marked_damaged(&path));
        // No progress while it lasts: the watchdog restarts the agent, and that start sets the
        // file aside.
        assert!(seen.lock().store_damaged_since.is_some());
        assert!(!seen.lock().progressing(Duration::ZERO));
    }
}
