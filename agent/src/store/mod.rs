//! The agent's history in SQLite (WAL): rollups, forecasts, decisions, health transitions and the
//! signal outbox.
//!
//! One connection writes: the [`Writer`], driven by the store writer thread. All writes of one
//! pipeline step go in one transaction ([`Batch`]), so `kill -9` loses nothing committed and
//! never half a batch. What it loses is what was not committed yet: the batch being written and
//! the rollup buckets still open in memory: up to 10 s of samples, more while writes fail (a
//! full disk holds batches in memory). The open 1-minute bucket is not lost with them: the next
//! start folds what that minute's committed 10-second rows hold and its 1-minute row lacks back
//! into it ([`Reader::unrolled_minute`]). A decision and its signal commit together, and the sender's
//! delivery marks ([`Delivery`]) reach the database the same way, in a later batch. Everything
//! else reads on connections of its own, opened read-only, which never wait for the writer
//! (WAL): the [`Reader`] answers the CLI, the [`Outbox`] hands the sender its pending signals.

pub mod aside;
mod outbox;
mod reader;
mod record;
mod schema;
mod writer;

pub use outbox::Outbox;
pub use reader::Reader;
pub use record::{
    Batch, Committed, DecisionRecord, Delivery, DestinationStats, ForecastRecord, HealthRecord,
    MemoryRecord, OutboxLimits, OutboxStats, Point, Resolution, Retention, Rollup,
};
pub use schema::SCHEMA_VERSION;
pub use writer::Writer;

/// Errors of the store.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// SQLite refused an operation.
    #[error("database: {0}")]
    Sqlite(#[from] rusqlite::Error),
    /// The file was written by a newer headroom.
    #[error(
        "database schema version {found} is newer than this headroom understands ({known}): \
         run the headroom that wrote it, or move the file aside to start a new history"
    )]
    TooNew {
        /// The file's schema version.
        found: i64,
        /// The newest this build knows.
        known: i64,
    },
    /// The file's schema version is not one any headroom writes.
    #[error("database schema version {0} is not a headroom version (the file is damaged)")]
    BadVersion(i64),
    /// The file is not writable by this user.
    #[error("the database file is read-only to this user: check its owner and mode")]
    ReadOnly,
    /// A stored signal could not be encoded.
    #[error("encoding a signal: {0}")]
    Json(#[from] serde_json::Error),
}

impl StoreError {
    /// Whether another connection holds a lock that kept this write out.
    pub fn is_locked(&self) -> bool {
        matches!(
            self,
            StoreError::Sqlite(rusqlite::Error::SqliteFailure(e, _))
                if matches!(e.code, rusqlite::ErrorCode::DatabaseBusy | rusqlite::ErrorCode::DatabaseLocked)
        )
    }

    /// Whether the file is damaged (or not a database at all, or of a schema version no
    /// headroom writes): no retry will write it ([`aside`]).
    pub fn is_damaged(&self) -> bool {
        match self {
            StoreError::Sqlite(e) => sqlite_damaged(e),
            StoreError::BadVersion(_) => true,
            _ => false,
        }
    }

    /// Whether SQLite refused the data itself (a constraint, a value it cannot store): writing
    /// the same batch again can never succeed, unlike a full disk or a lock.
    pub fn is_in_the_data(&self) -> bool {
        match self {
            StoreError::Sqlite(rusqlite::Error::SqliteFailure(e, _)) => matches!(
                e.code,
                rusqlite::ErrorCode::ConstraintViolation | rusqlite::ErrorCode::TypeMismatch
            ),
            StoreError::Sqlite(rusqlite::Error::ToSqlConversionFailure(_)) => true,
            StoreError::Json(_) => true,
            _ => false,
        }
    }
}

/// Whether SQLite says the file is damaged, or no database at all.
fn sqlite_damaged(e: &rusqlite::Error) -> bool {
    matches!(
        e,
        rusqlite::Error::SqliteFailure(f, _)
            if matches!(f.code, rusqlite::ErrorCode::DatabaseCorrupt | rusqlite::ErrorCode::NotADatabase)
    )
}

/// A store operation's result.
pub type Result<T> = std::result::Result<T, StoreError>;

/// Overwrites pages 2 to 5 of the database at `path` with garbage: the file still opens, and
/// what reads or writes those pages finds it damaged.
#[cfg(test)]
pub(crate) fn damage_pages(path: &std::path::Path) {
    let mut bytes = std::fs::read(path).unwrap();
    assert!(
        bytes.len() > 6 * 4096,
        "{} bytes: too few pages",
        bytes.len()
    );
    for b in &mut bytes[2 * 4096..6 * 4096] {
        *b = 0xA5;
    }
    std::fs::write(path, bytes).unwrap();
}

#[cfg(test)]
mod tests;
