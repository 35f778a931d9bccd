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
    #[error("{path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The OS error.
        source: io::Error,
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

/// Initial capacity of a file buffer; it grows (once) if a file is larger.
const INITIAL_BUF: usize = 16 * 1024;
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

    fn io_err(&self, source: io::Error) -> SourceError {
        SourceError::Io {
            path: self.path.clone(),
            source,
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
