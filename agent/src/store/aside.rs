//! Setting a damaged history aside, so the agent starts a new one instead of failing to start.
//!
//! A file SQLite calls corrupt, or no database at all, cannot be written again: left in place
//! it would keep a fleet's agent from starting (systemd restarting it for ever) or keep every
//! write failing. The agent renames it, with its `-wal` and `-shm` companions, to
//! `NAME.damaged-YYYYMMDDTHHMMSSZ` (and `-wal`, `-shm` after that, so SQLite opens the kept copy
//! with its log), and starts a new history with a new epoch. Nothing is deleted: what the file
//! still holds, the signals not yet delivered among it, stays there for the operator.
//!
//! Damage seen while running (a write refused as corrupt) cannot be mended under the open
//! connections. The writer leaves a mark, `NAME.damaged`, and the next start sets the file aside
//! even if its first reads happen to pass. Only damage is set aside: a file of a newer
//! headroom (a rollback), a read-only file or a full disk are the operator's to decide.

use std::path::{Path, PathBuf};

/// The companions SQLite keeps next to the database, moved with it.
const COMPANIONS: [&str; 2] = ["-wal", "-shm"];

/// The mark the writer leaves when a write finds `db` damaged.
pub fn damage_mark(db: &Path) -> PathBuf {
    with_suffix(db, ".damaged")
}

/// Leaves the mark that `db` was found damaged while running (best effort: the next start
/// still sets aside what its own reads find damaged).
pub fn mark_damaged(db: &Path) {
    if let Err(e) = std::fs::write(damage_mark(db), b"") {
        tracing::warn!(error = %e, path = %damage_mark(db).display(), "marking the history damaged");
    }
}

/// Whether a running agent marked `db` damaged.
pub fn marked_damaged(db: &Path) -> bool {
    damage_mark(db).exists()
}

/// Renames `db` and its companions aside, stamped with `now` (unix seconds), removes the mark,
/// and returns the new name of the database file. A name already taken gets `.1`, `.2`, ...
pub fn set_aside(db: &Path, now: f64) -> std::io::Result<PathBuf> {
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
    // Companions first: a database renamed without its log would be opened, at its old name,
    // with the log of the damaged one.
    for c in COMPANIONS {
        let from = with_suffix(db, c);
        if from.exists() {
            std::fs::rename(&from, with_suffix(&kept, c))?;
        }
    }
    if db.exists() {
        std::fs::rename(db, &kept)?;
    }
    match std::fs::remove_file(damage_mark(db)) {
        Err(e) if e.kind() != std::io::ErrorKind::NotFound => return Err(e),
        _ => {}
    }
    Ok(kept)
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
        let kept = set_aside(&db, t).unwrap();
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
        let second = set_aside(&db, t).unwrap();
        assert_eq!(
            second.file_name().unwrap(),
            "headroom.db.damaged-20261207T220000Z.1"
        );
        assert_eq!(std::fs::read_to_string(&kept).unwrap(), "main");
        assert_eq!(std::fs::read_to_string(&second).unwrap(), "again");
    }
}
