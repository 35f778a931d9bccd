//! One process per state: a lock file held for the life of the process, so a second agent on
//! one state directory, or a second coordinator on one state file, is refused at start instead
//! of writing the same history, sending the same outbox or deciding from the same rows. The
//! kernel drops the lock when the process ends, however it ends (`flock`), so a `kill -9`
//! leaves nothing to clean up.

use std::fs::File;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

/// Why the lock was not taken.
#[derive(Debug, thiserror::Error)]
pub enum ExclusiveError {
    /// Another process holds it.
    #[error("another {who} is running on {} (it holds {})", of.display(), lock.display())]
    Held {
        /// What the lock guards: "headroom agent", "headroom coordinator".
        who: &'static str,
        /// The state it guards.
        of: PathBuf,
        /// The lock file.
        lock: PathBuf,
    },
    /// The lock file could not be opened or locked.
    #[error("locking {}: {error}", lock.display())]
    Io {
        /// The lock file.
        lock: PathBuf,
        /// The OS error (in the message, not a source: said once).
        error: std::io::Error,
    },
}

/// Takes the lock file `lock` for the state `of`, held until the returned file is dropped.
pub fn hold(lock: &Path, of: &Path, who: &'static str) -> Result<File, ExclusiveError> {
    let io = |error| ExclusiveError::Io {
        lock: lock.to_path_buf(),
        error,
    };
    let file = std::fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .mode(0o640)
        .open(lock)
        .map_err(io)?;
    match rustix::fs::flock(&file, rustix::fs::FlockOperation::NonBlockingLockExclusive) {
        Ok(()) => Ok(file),
        Err(rustix::io::Errno::WOULDBLOCK) => Err(ExclusiveError::Held {
            who,
            of: of.to_path_buf(),
            lock: lock.to_path_buf(),
        }),
        Err(e) => Err(io(e.into())),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_second_holder_is_refused_until_the_first_lets_go() {
        let dir = tempfile::tempdir().unwrap();
        let lock = dir.path().join("state.lock");
        let first = hold(&lock, dir.path(), "headroom coordinator").unwrap();
        let e = hold(&lock, dir.path(), "headroom coordinator").unwrap_err();
        assert!(
            e.to_string()
                .starts_with("another headroom coordinator is running on"),
            "{e}"
        );
        drop(first);
        assert!(hold(&lock, dir.path(), "headroom coordinator").is_ok());
    }

    #[test]
    fn the_os_error_is_said_once_in_a_chain() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("a-file");
        std::fs::write(&file, "").unwrap();
        let e = hold(&file.join("x.lock"), &file, "headroom agent").unwrap_err();
        // As the binaries print an error: the whole chain.
        let said = format!("{:#}", anyhow::Error::from(e));
        assert_eq!(said.matches("os error").count(), 1, "{said}");
    }
}
