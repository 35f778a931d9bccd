//! The database's layout and its migrations, and how every connection is set up.
//!
//! `PRAGMA user_version` holds the schema version; each entry of [`MIGRATIONS`] takes the
//! schema from version i to i + 1 in a transaction of its own. A file written by a newer
//! headroom is refused, never rewritten.

use std::time::Duration;

use rusqlite::Connection;

use super::{Result, StoreError};

/// Each migration takes the schema from version i to i + 1.
const MIGRATIONS: &[&str] = &[
    // 1: the first schema.
    "CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL) WITHOUT ROWID;
     CREATE TABLE metric (id INTEGER PRIMARY KEY, name TEXT NOT NULL UNIQUE);
     CREATE TABLE rollup_10s (metric INTEGER NOT NULL, ts INTEGER NOT NULL, mean REAL NOT NULL,
         max REAL NOT NULL, last REAL NOT NULL, n INTEGER NOT NULL, PRIMARY KEY (metric, ts)) WITHOUT ROWID;
     CREATE TABLE rollup_1m (metric INTEGER NOT NULL, ts INTEGER NOT NULL, mean REAL NOT NULL,
         max REAL NOT NULL, last REAL NOT NULL, n INTEGER NOT NULL, PRIMARY KEY (metric, ts)) WITHOUT ROWID;
     CREATE TABLE forecast (ts REAL NOT NULL, metric TEXT NOT NULL, model TEXT NOT NULL,
         horizon_s REAL NOT NULL, p50 REAL NOT NULL, p90 REAL NOT NULL, p99 REAL NOT NULL);
     CREATE INDEX forecast_ts ON forecast (ts);
     CREATE TABLE decision (seq INTEGER PRIMARY KEY, ts REAL NOT NULL, action TEXT NOT NULL,
         current INTEGER NOT NULL, desired INTEGER NOT NULL, lead_s REAL NOT NULL,
         demand REAL NOT NULL, p50 REAL, p90 REAL, fallback INTEGER NOT NULL, reason TEXT NOT NULL);
     CREATE INDEX decision_ts ON decision (ts);
     CREATE TABLE health (ts REAL NOT NULL, state TEXT NOT NULL, reasons TEXT NOT NULL);
     CREATE TABLE outbox (seq INTEGER PRIMARY KEY, created REAL NOT NULL, payload TEXT NOT NULL,
         attempts INTEGER NOT NULL DEFAULT 0, delivered REAL);
     CREATE INDEX outbox_pending ON outbox (seq) WHERE delivered IS NULL;",
    // 2: the ledger, an hour a row (model::ledger::Hour); parts of an hour written apart sum.
    "CREATE TABLE ledger (hour INTEGER PRIMARY KEY, observed_s REAL NOT NULL,
         plan_instance_s REAL NOT NULL, shadow_instance_s REAL NOT NULL,
         plan_short_s REAL NOT NULL, shadow_short_s REAL NOT NULL, scored INTEGER NOT NULL,
         abs_error REAL NOT NULL, actual REAL NOT NULL, pct_error REAL NOT NULL,
         zero_actuals INTEGER NOT NULL, p90_covered INTEGER NOT NULL) WITHOUT ROWID;",
    // 3: one cursor per coordinator replica: every signal up to `acked` is done with there
    // (acknowledged, or refused for good); `dropped` counts signals the outbox's bound deleted
    // before this destination had them. A signal is `delivered` once every destination has it.
    "CREATE TABLE destination (url TEXT PRIMARY KEY, acked INTEGER NOT NULL,
         acked_at REAL, dropped INTEGER NOT NULL DEFAULT 0) WITHOUT ROWID;",
];

/// The size the WAL is cut back to after a checkpoint, bytes.
const WAL_LIMIT_BYTES: i64 = 8 << 20;

/// Current schema version.
pub const SCHEMA_VERSION: i64 = MIGRATIONS.len() as i64;

/// Sets up the writer's connection and its schema: the version is judged first (a file
/// written by a newer headroom is refused before anything rewrites its header, as WAL mode
/// does), then WAL, every commit synced, a small page cache, then the migrations. A reader
/// recovering the WAL, or an agent stopping, may hold a lock for a moment: waited for.
pub(super) fn set_up(conn: &mut Connection, cache_kib: u32) -> Result<()> {
    conn.busy_timeout(Duration::from_secs(5))?;
    let done = check_version(conn)?;
    configure(conn, cache_kib)?;
    migrate(conn, done)
}

/// WAL, every commit synced, a small page cache.
fn configure(conn: &Connection, cache_kib: u32) -> Result<()> {
    conn.pragma_update(None, "journal_mode", "WAL")?;
    // FULL: every commit is on disk before the writer goes on. NORMAL would survive kill -9
    // but not an OS crash or power loss, which could take back committed signals whose
    // sequence numbers the coordinator already holds; the next ones would reuse them and be
    // dropped there as duplicates. The writer commits a few times a minute (once a second while
    // a backlog drains to a coordinator), so the fsyncs cost nothing that matters.
    conn.pragma_update(None, "synchronous", "FULL")?;
    // A large transaction (the prune after days down, or after a retention was lowered) grows
    // the WAL; without a limit it keeps that size for as long as the connection lives.
    conn.pragma_update(None, "journal_size_limit", WAL_LIMIT_BYTES)?;
    conn.pragma_update(None, "cache_size", -(cache_kib as i64))?;
    conn.pragma_update(None, "foreign_keys", "ON")?;
    Ok(())
}

/// Opens `path` read-only with a page cache of `cache_kib`, waiting at most `busy` for a lock.
pub(super) fn open_read_only(
    path: &std::path::Path,
    cache_kib: u32,
    busy: Duration,
) -> Result<Connection> {
    use rusqlite::OpenFlags;
    let conn = Connection::open_with_flags(
        path,
        OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX,
    )?;
    conn.busy_timeout(busy)?;
    conn.pragma_update(None, "cache_size", -i64::from(cache_kib))?;
    Ok(conn)
}

/// The file's schema version, refusing one newer than [`SCHEMA_VERSION`] or not one any
/// headroom writes.
fn check_version(conn: &Connection) -> Result<usize> {
    let version: i64 = conn.pragma_query_value(None, "user_version", |r| r.get(0))?;
    if version > SCHEMA_VERSION {
        return Err(StoreError::TooNew {
            found: version,
            known: SCHEMA_VERSION,
        });
    }
    usize::try_from(version).map_err(|_| StoreError::BadVersion(version))
}

/// Brings the schema from version `done` to [`SCHEMA_VERSION`].
fn migrate(conn: &mut Connection, done: usize) -> Result<()> {
    for (i, sql) in MIGRATIONS.iter().enumerate().skip(done) {
        let tx = conn.transaction()?;
        tx.execute_batch(sql)?;
        tx.pragma_update(None, "user_version", i as i64 + 1)?;
        tx.commit()?;
    }
    Ok(())
}
