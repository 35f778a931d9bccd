//! The control socket: a Unix socket speaking versioned JSON lines, one request and one
//! response per line, used by the CLI.
//!
//! Access is decided by the socket's mode (0660) and group; every connection's peer
//! credentials are logged. [`protocol`] is the wire format (and the CLI's client),
//! [`answer`] computes what a request asks for; this module serves connections.
//!
//! A socket file removed under a running agent (a cleanup of `/run`, the purge of another
//! install) would leave it serving nobody while the CLI says no agent runs: its path is
//! checked every [`REBIND_CHECK`], and a socket gone or replaced by a dead one is bound again.

pub mod answer;
pub mod protocol;

use std::os::unix::fs::MetadataExt;
use std::os::unix::fs::PermissionsExt;
use std::os::unix::net::UnixStream as StdUnixStream;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, bail};
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader as AsyncBufReader};
use tokio::net::{UnixListener, UnixStream};

use self::protocol::{PROTOCOL_VERSION, Request, Response};
use crate::pipeline::Shared;

/// Longest request line accepted.
const MAX_REQUEST: usize = 64 * 1024;
/// Connections served at once; more are answered with an error and closed, so idle clients
/// cannot take every file descriptor.
const MAX_CONNECTIONS: usize = 64;
/// Answers computed at once (refilling a forecaster for another metric reads days of history): the agent's
/// own work keeps a core.
const MAX_ANSWERS: usize = 1;
/// Longest wait for a client to take an answer.
const WRITE_TIMEOUT: Duration = Duration::from_secs(10);
/// How often the socket's path is checked for the socket this agent listens on.
const REBIND_CHECK: Duration = Duration::from_secs(5);

/// Binds the control socket at `path` with mode 0660; refuses when another agent answers there.
pub fn bind(path: &Path) -> anyhow::Result<UnixListener> {
    if let Some(dir) = path.parent()
        && !dir.exists()
    {
        std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
        std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o750))
            .with_context(|| format!("setting the mode of {}", dir.display()))?;
    }
    if let Ok(md) = std::fs::symlink_metadata(path) {
        use std::os::unix::fs::FileTypeExt;
        if !md.file_type().is_socket() {
            bail!("{} exists and is not a socket", path.display());
        }
        if StdUnixStream::connect(path).is_ok() {
            bail!("another agent is already listening on {}", path.display());
        }
        std::fs::remove_file(path)
            .with_context(|| format!("removing stale socket {}", path.display()))?;
    }
    // The socket is created with the umask's mode: make it 0660 from the first instant.
    let old = rustix::process::umask(rustix::fs::Mode::from_bits_truncate(0o117));
    let listener = UnixListener::bind(path);
    rustix::process::umask(old);
    let listener = listener.with_context(|| format!("binding {}", path.display()))?;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o660))
        .with_context(|| format!("setting the mode of {}", path.display()))?;
    Ok(listener)
}

/// The identity of the file at `path` (device and inode), if there is one.
fn file_at(path: &Path) -> Option<(u64, u64)> {
    std::fs::symlink_metadata(path)
        .ok()
        .map(|m| (m.dev(), m.ino()))
}

/// The socket file this agent bound last (its device and inode), shared by the task serving
/// it and the daemon that removes it at exit: only that file is removed, never one another
/// agent bound at the same path since.
#[derive(Debug, Default)]
pub struct BoundSocket(std::sync::Mutex<Option<(u64, u64)>>);

impl BoundSocket {
    /// Notes the file now at `path` as this agent's, just after binding it.
    pub fn record(&self, path: &Path) {
        if let Ok(mut ours) = self.0.lock() {
            *ours = file_at(path);
        }
    }

    /// The file this agent bound, if any.
    fn ours(&self) -> Option<(u64, u64)> {
        self.0.lock().ok().and_then(|ours| *ours)
    }

    /// Removes the socket at `path` if it is still the one this agent bound.
    pub fn remove(&self, path: &Path) {
        if self.ours().is_some_and(|ours| file_at(path) == Some(ours)) {
            let _ = std::fs::remove_file(path);
        }
    }
}

/// Serves connections on `listener`, bound at `path` (as `bound` records), until the task is
/// dropped.
pub async fn serve(
    listener: UnixListener,
    path: PathBuf,
    bound: Arc<BoundSocket>,
    shared: Arc<Shared>,
) {
    let connections = Arc::new(tokio::sync::Semaphore::new(MAX_CONNECTIONS));
    let answers = Arc::new(tokio::sync::Semaphore::new(MAX_ANSWERS));
    let mut last_warning: Option<std::time::Instant> = None;
    let mut listener = listener;
    let mut check = tokio::time::interval(REBIND_CHECK);
    check.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
    // Whether the last attempt to bind again failed (said once, not every check).
    let mut rebind_failed = false;
    loop {
        let accepted = tokio::select! {
            accepted = listener.accept() => accepted,
            _ = check.tick() => {
                if file_at(&path) != bound.ours() {
                    match bind(&path) {
                        Ok(again) => {
                            listener = again;
                            bound.record(&path);
                            rebind_failed = false;
                            tracing::warn!(path = %path.display(), "the control socket was removed or replaced: bound again");
                        }
                        Err(e) if !rebind_failed => {
                            rebind_failed = true;
                            tracing::error!(path = %path.display(), error = %format!("{e:#}"), "the control socket was removed and cannot be bound again: the CLI cannot reach this agent");
                        }
                        Err(_) => {}
                    }
                }
                continue;
            }
        };
        let mut stream = match accepted {
            Ok((s, _)) => s,
            Err(e) => {
                // Out of file descriptors, typically: once per 10 s is enough to say so.
                if last_warning.is_none_or(|t| t.elapsed() > Duration::from_secs(10)) {
                    last_warning = Some(std::time::Instant::now());
                    tracing::warn!(error = %e, "accepting a control connection failed");
                }
                tokio::time::sleep(Duration::from_millis(100)).await;
                continue;
            }
        };
        let Ok(permit) = connections.clone().try_acquire_owned() else {
            tracing::warn!(
                max = MAX_CONNECTIONS,
                "control connection refused: too many open"
            );
            tokio::spawn(async move {
                let busy = Response::error(format!(
                    "the agent serves {MAX_CONNECTIONS} control connections at most; try again"
                ));
                if let Ok(mut out) = serde_json::to_vec(&busy) {
                    out.push(b'\n');
                    let _ = tokio::time::timeout(WRITE_TIMEOUT, stream.write_all(&out)).await;
                }
                // Take the client's request before closing, or its write fails (EPIPE) before
                // it reads the answer.
                let mut sink = [0u8; 1024];
                let _ = tokio::time::timeout(Duration::from_secs(1), async {
                    while matches!(stream.read(&mut sink).await, Ok(n) if n > 0) {}
                })
                .await;
            });
            continue;
        };
        let (shared, answers) = (shared.clone(), answers.clone());
        tokio::spawn(async move {
            if let Err(e) = handle(stream, shared, &answers).await {
                tracing::debug!(error = %e, "control connection ended with an error");
            }
            drop(permit);
        });
    }
}

async fn handle(
    stream: UnixStream,
    shared: Arc<Shared>,
    answers: &tokio::sync::Semaphore,
) -> anyhow::Result<()> {
    let cred = stream.peer_cred().ok();
    let (read, mut write) = stream.into_split();
    let mut lines = AsyncBufReader::new(read);
    let mut line = String::new();
    loop {
        line.clear();
        let mut limited = (&mut lines).take(MAX_REQUEST as u64 + 1);
        let n = tokio::time::timeout(Duration::from_secs(30), limited.read_line(&mut line))
            .await
            .context("idle control connection")??;
        if n == 0 {
            return Ok(());
        }
        let response = if line.len() > MAX_REQUEST {
            Response::error(format!("request longer than {MAX_REQUEST} bytes"))
        } else {
            match serde_json::from_str::<Request>(line.trim_end()) {
                Ok(req) => {
                    tracing::info!(
                        uid = cred.map(|c| c.uid()),
                        gid = cred.map(|c| c.gid()),
                        pid = cred.and_then(|c| c.pid()),
                        request = ?req,
                        "control request"
                    );
                    match answers.acquire().await {
                        Ok(_turn) => respond(req, shared.clone()).await,
                        Err(_) => Response::error("the agent is stopping".into()),
                    }
                }
                Err(e) => Response::error(format!("malformed request: {e}")),
            }
        };
        let mut out = serde_json::to_vec(&response)?;
        out.push(b'\n');
        tokio::time::timeout(WRITE_TIMEOUT, write.write_all(&out))
            .await
            .context("client not reading its answer")??;
        if line.len() > MAX_REQUEST {
            return Ok(());
        }
    }
}

async fn respond(req: Request, shared: Arc<Shared>) -> Response {
    if req.version() != PROTOCOL_VERSION {
        return Response::error(format!(
            "protocol version {} is not supported (this agent speaks {PROTOCOL_VERSION})",
            req.version()
        ));
    }
    let result = tokio::task::spawn_blocking(move || answer::answer(&req, &shared)).await;
    match result {
        Ok(Ok(data)) => Response {
            v: PROTOCOL_VERSION,
            ok: true,
            data: Some(data),
            error: None,
        },
        Ok(Err(e)) => Response::error(format!("{e:#}")),
        Err(e) => Response::error(format!("internal error: {e}")),
    }
}
