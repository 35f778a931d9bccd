//! The sources a [`Collector`](crate::Collector) reads, one module each, and the plumbing they
//! share: kept-open files read with `pread` into reused buffers, and per-source health.

pub mod accept_queue;
pub(crate) mod app_metrics;
pub(crate) mod cpu;
pub(crate) mod devices;
pub(crate) mod disk;
pub(crate) mod memory;
pub(crate) mod net;
pub(crate) mod netstat;
pub(crate) mod pressure;

use std::fs::File;
use std::io;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use crate::sample::SourceState;

/// Why a source stopped delivering values.
#[derive(Debug, thiserror::Error)]
pub enum SourceError {
    /// A file could not be opened or read.
    #[error("{path}: {error}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The OS error.
        error: io::Error,
    },
    /// A file was read but its contents did not have the expected shape.
    #[error("{path}: {what}")]
    Parse {
        /// The file.
        path: PathBuf,
        /// What was wrong.
        what: &'static str,
    },
    /// The sock_diag netlink exchange failed.
    #[error("sock_diag: {0}")]
    Netlink(io::Error),
    /// The sock_diag reply did not have the expected shape.
    #[error("sock_diag: {0}")]
    NetlinkParse(&'static str),
    /// The application endpoint could not be read.
    #[error("app endpoint: {0}")]
    App(String),
}

/// Initial capacity of a file buffer; it grows (once, at the first read) if a file is larger.
/// Most proc files fit in one page; the buffers are written whole, so each stays resident.
const INITIAL_BUF: usize = 4 * 1024;
/// Upper bound on what one file read may take, so a runaway file cannot exhaust memory.
const MAX_FILE: usize = 64 * 1024 * 1024;

/// A file kept open between ticks and re-read from offset 0 with `pread` into a reused buffer.
///
/// procfs regenerates a file's contents on every read from offset 0, so one descriptor serves
/// forever; the buffer only grows when a file outgrows it.
#[derive(Debug)]
pub(crate) struct ProcFile {
    path: PathBuf,
    file: Option<File>,
    buf: Vec<u8>,
}

impl ProcFile {
    /// A file under `root`; nothing is opened until the first read.
    pub(crate) fn new(root: &Path, rel: &str) -> Self {
        ProcFile {
            path: root.join(rel),
            file: None,
            buf: vec![0; INITIAL_BUF],
        }
    }

    /// Closes the descriptor so the next read opens the path afresh (the file may have been
    /// replaced).
    pub(crate) fn close(&mut self) {
        self.file = None;
    }

    /// Reads the whole file; the returned slice lives in the reused buffer.
    pub(crate) fn read(&mut self) -> Result<&[u8], SourceError> {
        if self.file.is_none() {
            let f = File::open(&self.path).map_err(|source| self.io_err(source))?;
            self.file = Some(f);
        }
        let mut filled = 0usize;
        loop {
            if filled == self.buf.len() {
                if self.buf.len() >= MAX_FILE {
                    return Err(self.parse_err("file too large"));
                }
                let new_len = (self.buf.len() * 2).min(MAX_FILE);
                self.buf.resize(new_len, 0);
            }
            let Some(file) = self.file.as_ref() else {
                return Err(self.parse_err("file closed"));
            };
            match file.read_at(&mut self.buf[filled..], filled as u64) {
                Ok(0) => break,
                Ok(n) => filled += n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(source) => {
                    self.file = None;
                    return Err(self.io_err(source));
                }
            }
        }
        // A file that was once huge (a runaway or hostile file) must not pin its buffer
        // forever: give the memory back when the content is far smaller again. A steady file
        // never triggers this, so a tick still allocates nothing.
        if self.buf.len() > INITIAL_BUF && filled.saturating_mul(8) < self.buf.len() {
            self.buf.truncate(filled.saturating_mul(2).max(INITIAL_BUF));
            self.buf.shrink_to_fit();
        }
        Ok(&self.buf[..filled])
    }

    /// Reads the file and runs `parse` over its bytes, naming the file in any error.
    pub(crate) fn parse<T>(
        &mut self,
        parse: impl FnOnce(&[u8]) -> Result<T, &'static str>,
    ) -> Result<T, SourceError> {
        let bytes = self.read()?;
        match parse(bytes) {
            Ok(v) => Ok(v),
            Err(what) => Err(self.parse_err(what)),
        }
    }

    fn io_err(&self, error: io::Error) -> SourceError {
        SourceError::Io {
            path: self.path.clone(),
            error,
        }
    }

    fn parse_err(&self, what: &'static str) -> SourceError {
        SourceError::Parse {
            path: self.path.clone(),
            what,
        }
    }
}

/// Health bookkeeping of one source: its state, and when a disabled source is next retried.
#[derive(Debug)]
pub(crate) struct Health {
    pub(crate) state: SourceState,
    retry_at: Option<Instant>,
    retry_every: Duration,
    /// Set whenever `state` changes; the sampler publishes states only then.
    pub(crate) changed: bool,
}

impl Health {
    pub(crate) fn new(retry_every: Duration) -> Self {
        Health {
            state: SourceState::Ok,
            retry_at: None,
            retry_every,
            changed: true,
        }
    }

    /// A health that stays [`SourceState::Off`].
    pub(crate) fn off() -> Self {
        Health {
            state: SourceState::Off,
            retry_at: None,
            retry_every: Duration::MAX,
            changed: true,
        }
    }

    /// Whether the source should be read at `now`; a disabled source is read again once its
    /// retry time has come.
    pub(crate) fn due(&self, now: Instant) -> bool {
        match self.state {
            SourceState::Ok => true,
            SourceState::Off => false,
            SourceState::Disabled { .. } => self.retry_at.is_none_or(|t| now >= t),
        }
    }

    /// Whether the next read is a retry of a disabled source (the caller reopens its files).
    pub(crate) fn retrying(&self) -> bool {
        matches!(self.state, SourceState::Disabled { .. })
    }

    /// Records a good read; re-enables a disabled source.
    pub(crate) fn ok(&mut self, name: &str) {
        if self.retrying() {
            tracing::info!(source = name, "source re-enabled");
            self.state = SourceState::Ok;
            self.retry_at = None;
            self.changed = true;
        }
    }

    /// Records a failed read: the first failure disables the source with one warning; later
    /// failures only push the retry time on.
    pub(crate) fn failed(&mut self, name: &str, err: &SourceError, now: Instant) {
        self.retry_at = now.checked_add(self.retry_every);
        if !self.retrying() {
            let reason = err.to_string();
            tracing::warn!(source = name, %reason, "source disabled");
            self.state = SourceState::Disabled { reason };
            self.changed = true;
        }
    }
}

/// Seconds between two instants as `f64`, never zero (rates divide by it).
pub(crate) fn seconds(from: Instant, to: Instant) -> f64 {
    to.saturating_duration_since(from).as_secs_f64().max(1e-6)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn err() -> SourceError {
        SourceError::Parse {
            path: PathBuf::from("/proc/x"),
            what: "bad",
        }
    }

    #[test]
    fn one_warning_then_periodic_retries() {
        let t0 = Instant::now();
        let every = Duration::from_secs(30);
        let mut h = Health::new(every);
        h.changed = false;
        h.failed("x", &err(), t0);
        assert!(h.changed, "the first failure disables (and warns)");
        assert_eq!(
            h.state,
            SourceState::Disabled {
                reason: "/proc/x: bad".into()
            }
        );
        h.changed = false;
        assert!(!h.due(t0 + Duration::from_secs(29)));
        assert!(h.due(t0 + every) && h.retrying());
        h.failed("x", &err(), t0 + every);
        assert!(!h.changed, "a failed retry does not warn again");
        assert!(!h.due(t0 + every + Duration::from_secs(1)));
        h.ok("x");
        assert!(h.changed && h.state == SourceState::Ok && h.due(t0));
    }

    #[test]
    fn proc_file_rereads_in_place_and_grows() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("f");
        std::fs::write(&path, b"one").unwrap();
        let mut f = ProcFile::new(dir.path(), "f");
        assert_eq!(f.read().unwrap(), b"one");
        let big = vec![b'x'; INITIAL_BUF * 3 + 7];
        std::fs::write(&path, &big).unwrap();
        assert_eq!(f.read().unwrap(), &big[..]);
        std::fs::remove_file(&path).unwrap();
        f.close();
        assert!(matches!(f.read(), Err(SourceError::Io { .. })));
    }

    #[test]
    fn proc_file_gives_memory_back_after_a_huge_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("f");
        std::fs::write(&path, vec![b'x'; 4 << 20]).unwrap();
        let mut f = ProcFile::new(dir.path(), "f");
        assert_eq!(f.read().unwrap().len(), 4 << 20);
        assert!(f.buf.len() >= 4 << 20);
        std::fs::write(&path, b"small again").unwrap();
        assert_eq!(f.read().unwrap(), b"small again");
        assert_eq!(f.buf.len(), INITIAL_BUF);
        assert!(f.buf.capacity() < 2 * INITIAL_BUF);
        assert_eq!(f.read().unwrap(), b"small again");
    }
}
