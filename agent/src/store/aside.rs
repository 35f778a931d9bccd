//! Setting a damaged history aside, so the agent starts a new one instead of failing to start.
//!
//! A file SQLite calls corrupt, or no database at all, cannot be written again: left in place
//! it would keep a fleet's agent from starting (systemd restarting it for ever) or keep every
//! write failing. The agent renames it, with its `-wal` and `-shm` companions, to
//! `NAME.damaged-YYYYMMDDTHHMMSSZ` (and `-wal`, `-shm` after that, so SQLite opens the kept copy
//! with its log), and starts a new history with a new epoch. Nothing is deleted: what the file
//! still holds, the signals not yet delivered among it, stays there for the operator.
//!
//! Damage seen while running (a write, the prune or the sender's reads refused as corrupt)
//! cannot be mended under the open connections. Whoever saw it leaves a mark, `NAME.damaged`;
//! the writer also stops counting as progress, so systemd's watchdog restarts the agent. A start
//! that finds the mark runs SQLite's `quick_check` on the file, which reads every page the first
//! reads may not: the file is set aside if it fails, and kept (the mark removed as stale) if it
//! passes, as it does after the operator repaired or restored it. Only damage is set aside: a
//! file of a newer headroom (a rollback), a read-only file or a full disk are the operator's to
//! decide.
//!
//! Renaming is safe from this agent's own connections (none is open at start) and from a second
//! agent (the state directory's lock). Another program holding the damaged file open (an
//! operator's `sqlite3`) should be closed first: SQLite may remove the log by its old name.

use std::path::{Path, PathBuf};

use rusqlite::{Connection, OpenFlags};

/// The companions SQLite keeps next to the database, moved with it.
const COMPANIONS: [&str; 2] = ["-wal", "-shm"];

/// The mark the writer leaves when a write finds `db` damaged.
pub fn damage_mark(db: &Path) -> PathBuf {
    with_suffix(db, ".damaged")
}

/// Leaves the mark that `db` was found damaged while running, once (best effort: the next
/// start still sets aside what its own reads find damaged).
pub fn mark_damaged(db: &Path) {
    let mark = damage_mark(db);
    if mark.exists() {
        return;
    }
    match std::fs::write(&mark, b"") {
        Ok(()) => tracing::error!(
            database = %db.display(),
            "the history is damaged: marked, the next start checks it and sets it aside"
        ),
        Err(e) => tracing::warn!(error = %e, path = %mark.display(), "marking the history damaged"),
    }
}

/// Leaves the mark when `e` says `db` is damaged: what every reader and writer that meets an
/// error does.
pub fn mark_if_damaged(db: &Path, e: &super::StoreError) {
    if e.is_damaged() {
        mark_damaged(db);
    }
}

/// Removes the mark, if any (a failure is logged: the next start checks the file again).
pub fn clear_mark(db: &Path) {
    match std::fs::remove_file(damage_mark(db)) {
        Err(e) if e.kind() != std::io::ErrorKind::NotFound => {
            tracing::warn!(error = %e, path = %damage_mark(db).display(), "removing the damage mark");
        }
        _ => {}
    }
}

/// Whether SQLite's `quick_check` passes on `db`: `Ok(false)` when it finds damage or the file
/// is no database, an error when the file cannot be read for another reason (the caller's to
/// report).
pub fn passes_quick_check(db: &Path) -> super::Result<bool> {
    let checked = Connection::open_with_flags(db, OpenFlags::SQLITE_OPEN_READ_ONLY)
        .and_then(|conn| conn.query_row("PRAGMA quick_check(1)", [], |r| r.get::<_, String>(0)));
    match checked {
        Ok(answer) => Ok(answer == "ok"),
        Err(e) if super::sqlite_damaged(&e) => Ok(false),
        Err(e) => Err(e.into()),
    }
}

/// Whether a running agent marked `db` damaged.
pub fn marked_damaged(db: &Path) -> bool {
    damage_mark(db).exists()
}

/// Renames `db` and its companions aside, stamped with `now` (unix seconds), removes the mark,
/// and returns the new name of the database file (`None` when there was no file to move). A name
/// already taken gets `.1`, `.2`, ...
pub fn set_aside(db: &Path, now: f64) -> std::io::Result<Option<PathBuf>> {
    if !db.exists() {
        clear_mark(db);
        return Ok(None);
    }
    let stamp = chrono::DateTime::from_timestamp(now as i64, 0)
        .map(|t| t.format("%Y%m%dT%H%M%SZ").to_string())
        .unwrap_or_else(|| format!("{}", now as i64));
    let base = with_suffix(db, &format!(".damaged-{stamp}"));
    let kept = (0..)
        .map(|n| {
            if n == 0 {
                base.clone()
            } else {
                with_suffix(&base, &format!(".{n}"))
            }
        })
        .find(|p| !p.exists() && COMPANIONS.iter().all(|c| !with_suffix(p, c).exists()))
        .unwrap_or(base);
    // Companions first: a new database at the old name must not find the damaged one's log.
    // Should the database itself not move, they are moved back, so file and log stay paired.
    let mut moved = Vec::new();
    let mut renamed = || -> std::io::Result<()> {
        for c in COMPANIONS {
            let (from, to) = (with_suffix(db, c), with_suffix(&kept, c));
            if from.exists() {
                std::fs::rename(&from, &to)?;
                moved.push((from, to));
            }
        }
        std::fs::rename(db, &kept)
    };
    if let Err(e) = renamed() {
        for (from, to) in moved {
            let _ = std::fs::rename(to, from);
        }
        return Err(e);
    }
    clear_mark(db);
    Ok(Some(kept))
}

fn with_suffix(path: &Path, suffix: &str) -> PathBuf {
    let mut s = path.as_os_str().to_os_string();
    s.push(suffix);
    PathBuf::from(s)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_file_and_its_companions_move_together_and_nothing_is_overwritten() {
        let dir = tempfile::tempdir().unwrap();
        let db = dir.path().join("headroom.db");
        for (name, body) in [
            ("headroom.db", "main"),
            ("headroom.db-wal", "wal"),
            ("headroom.db-shm", "shm"),
        ] {
            std::fs::write(dir.path().join(name), body).unwrap();
        }
        mark_damaged(&db);
        assert!(marked_damaged(&db));
        // 2026-12-07 22:00:00 UTC
        let t = 1_796_680_800.0;
        let kept = set_aside(&db, t).unwrap().unwrap();
        assert_eq!(
            kept.file_name().unwrap(),
            "headroom.db.damaged-20261207T220000Z"
        );
        assert_eq!(std::fs::read_to_string(&kept).unwrap(), "main");
        assert_eq!(
            std::fs::read_to_string(with_suffix(&kept, "-wal")).unwrap(),
            "wal"
        );
        assert_eq!(
            std::fs::read_to_string(with_suffix(&kept, "-shm")).unwrap(),
            "shm"
        );
        assert!(!db.exists() && !with_suffix(&db, "-wal").exists());
        assert!(!marked_damaged(&db));

        // Damaged again within the same second: a second copy, the first untouched.
        std::fs::write(&db, "again").unwrap();
        let second = set_aside(&db, t).unwrap().unwrap();
        assert_eq!(
            second.file_name().unwrap(),
            "headroom.db.damaged-20261207T220000Z.1"
        );
        assert_eq!(std::fs::read_to_string(&kept).unwrap(), "main");
        assert_eq!(std::fs::read_to_string(&second).unwrap(), "again");

        // A mark with no file left (the operator moved it): nothing to set aside, the mark goes.
        mark_damaged(&db);
        assert_eq!(set_aside(&db, t).unwrap(), None);
        assert!(!marked_damaged(&db));
    }

    #[test]
    fn quick_check_tells_a_sound_file_from_a_damaged_one() {
        let dir = tempfile::tempdir().unwrap();
        let db = dir.path().join("headroom.db");
        let conn = Connection::open(&db).unwrap();
        conn.execute_batch(
            "CREATE TABLE t (x); WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 5000) INSERT INTO t SELECT randomblob(100) FROM n;",
        )
        .unwrap();
        drop(conn);
        assert!(passes_quick_check(&db).unwrap());
        super::super::damage_pages(&db);
        assert!(!passes_quick_check(&db).unwrap());
        std::fs::write(&db, b"not a database, not even its header").unwrap();
        assert!(!passes_quick_check(&db).unwrap());
    }
}
