//! The sender's handle on the outbox: a destination's cursor and the signals after it, oldest
//! first, on a read-only connection of its own.
//!
//! The sender never writes: what became of each signal goes to the store writer as a
//! [`Delivery`](super::Delivery) in a [`Batch`](super::Batch), so the database keeps one
//! writer. Each destination (coordinator replica) has its own cursor, the highest seq it is done
//! with, so one that is down holds back no other. Until a batch commits, the stored cursor lags,
//! so each of the sender's threads also keeps the last seq it finished with and never sends a
//! signal twice in one run; after a restart it starts from the stored cursor, which the
//! coordinator's dedup window makes safe (at least once, applied once).

use std::path::Path;
use std::time::Duration;

use rusqlite::{Connection, OptionalExtension};

use super::{Result, schema};

/// Page cache of the sender's connection, KiB: it reads a few rows at a time.
const CACHE_KIB: u32 = 64;

/// The sender's read-only view of the outbox.
pub struct Outbox {
    conn: Connection,
}

impl Outbox {
    /// Opens the outbox of the database at `path`.
    pub fn open(path: &Path) -> Result<Outbox> {
        let conn = schema::open_read_only(path, CACHE_KIB, Duration::from_secs(2))?;
        Ok(Outbox { conn })
    }

    /// Where `destination` stands: every signal up to this seq is done with there (0 for a
    /// destination new to the store, which starts from the oldest signal retained).
    pub fn acked(&self, destination: &str) -> Result<u64> {
        Ok(self
            .conn
            .prepare_cached("SELECT acked FROM destination WHERE url = ?1")?
            .query_row([destination], |r| r.get(0))
            .optional()?
            .unwrap_or(0))
    }

    /// Up to `limit` signals with a seq above `after`, oldest first: (seq, JSON payload).
    pub fn pending(&self, after: u64, limit: usize) -> Result<Vec<(u64, String)>> {
        let mut q = self.conn.prepare_cached(
            "SELECT seq, payload FROM outbox WHERE seq > ?1 ORDER BY seq LIMIT ?2",
        )?;
        let rows = q.query_map(rusqlite::params![after, limit as i64], |r| {
            Ok((r.get(0)?, r.get(1)?))
        })?;
        Ok(rows.collect::<std::result::Result<_, _>>()?)
    }
}
