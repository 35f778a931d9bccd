//! The control socket: a Unix socket speaking versioned JSON lines, one request and one
//! response per line, used by the CLI.
//!
//! Access is decided by the socket's mode (0660) and group; every connection's peer
//! credentials are logged.

use std::io::{BufRead, BufReader, Write};
use std::os::unix::fs::PermissionsExt;
use std::os::unix::net::UnixStream as StdUnixStream;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, bail};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader as AsyncBufReader};
use tokio::net::{UnixListener, UnixStream};

use crate::exit::{Exit, UNAVAILABLE};
use crate::pipeline::Shared;
use crate::report;

/// Protocol version spoken by this build.
pub const PROTOCOL_VERSION: u32 = 1;
/// Longest request line accepted.
const MAX_REQUEST: usize = 64 * 1024;
/// Connections served at once; more are answered with an error and closed, so idle clients
/// cannot take every file descriptor.
const MAX_CONNECTIONS: usize = 64;
/// Answers computed at once (a warm-up of another metric reads days of history): the agent's
/// own work keeps a core.
const MAX_ANSWERS: usize = 1;
/// Longest wait for a client to take an answer.
const WRITE_TIMEOUT: Duration = Duration::from_secs(10);

/// A request from the CLI.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "cmd", rename_all = "snake_case", deny_unknown_fields)]
pub enum Request {
    /// Everything `headroom status` shows.
    Status { v: u32 },
    /// The forecast of `metric` (default: the demand signal).
    Forecast { v: u32, metric: Option<String> },
    /// Stored history.
    History {
        v: u32,
        metric: Option<String>,
        since_s: f64,
        resolution: Option<String>,
    },
    /// Every stored metric name.
    Metrics { v: u32 },
    /// Health and its recent transitions.
    Health { v: u32 },
    /// Decisions since some seconds ago.
    Decisions { v: u32, since_s: f64 },
}

impl Request {
    fn version(&self) -> u32 {
        match self {
            Request::Status { v }
            | Request::Forecast { v, .. }
            | Request::History { v, .. }
            | Request::Metrics { v }
            | Request::Health { v }
            | Request::Decisions { v, .. } => *v,
        }
    }
}

/// A response line.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Response {
    pub v: u32,
    pub ok: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub data: Option<Value>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

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

/// Serves connections until the task is dropped.
pub async fn serve(listener: UnixListener, shared: Arc<Shared>) {
    let connections = Arc::new(tokio::sync::Semaphore::new(MAX_CONNECTIONS));
    let answers = Arc::new(tokio::sync::Semaphore::new(MAX_ANSWERS));
    let mut last_warning: Option<std::time::Instant> = None;
    loop {
        let mut stream = match listener.accept().await {
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
                let busy = error_response(format!(
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
            error_response(format!("request longer than {MAX_REQUEST} bytes"))
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
                        Ok(_turn) => answer(req, shared.clone()).await,
                        Err(_) => error_response("the agent is stopping".into()),
                    }
                }
                Err(e) => error_response(format!("malformed request: {e}")),
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

fn error_response(error: String) -> Response {
    Response {
        v: PROTOCOL_VERSION,
        ok: false,
        data: None,
        error: Some(error),
    }
}

async fn answer(req: Request, shared: Arc<Shared>) -> Response {
    if req.version() != PROTOCOL_VERSION {
        return error_response(format!(
            "protocol version {} is not supported (this agent speaks {PROTOCOL_VERSION})",
            req.version()
        ));
    }
    let result = tokio::task::spawn_blocking(move || report::answer(&req, &shared)).await;
    match result {
        Ok(Ok(data)) => Response {
            v: PROTOCOL_VERSION,
            ok: true,
            data: Some(data),
            error: None,
        },
        Ok(Err(e)) => error_response(format!("{e:#}")),
        Err(e) => error_response(format!("internal error: {e}")),
    }
}

/// Sends one request to the agent and returns its data.
pub fn request(candidates: &[PathBuf], req: &Request) -> anyhow::Result<Value> {
    let path = candidates
        .iter()
        .find(|p| p.exists())
        .or(candidates.first())
        .context("no control socket location known")?;
    let unavailable = |why: String| {
        Exit::new(
            UNAVAILABLE,
            format!("no agent running at {} ({why})", path.display()),
        )
    };
    let stream = StdUnixStream::connect(path).map_err(|e| unavailable(e.to_string()))?;
    stream.set_read_timeout(Some(Duration::from_secs(30))).ok();
    let mut w = &stream;
    let mut line = serde_json::to_vec(req)?;
    line.push(b'\n');
    // An agent that refuses the connection answers before closing it: a failed write may
    // still leave its answer to read.
    let wrote = w.write_all(&line);
    let mut reader = BufReader::new(&stream);
    let mut answer = String::new();
    let read = reader.read_line(&mut answer);
    if let Err(e) = wrote
        && answer.is_empty()
    {
        return Err(unavailable(e.to_string()));
    }
    read.map_err(|e| match e.kind() {
        std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut => Exit::new(
            UNAVAILABLE,
            format!(
                "the agent at {} did not answer within 30 s (busy or stuck)",
                path.display()
            ),
        ),
        _ => unavailable(e.to_string()),
    })?;
    if answer.is_empty() {
        return Err(unavailable("the agent closed the connection".into()));
    }
    let resp: Response =
        serde_json::from_str(&answer).context("malformed answer from the agent")?;
    if !resp.ok {
        bail!(
            "the agent answered: {}",
            resp.error.unwrap_or_else(|| "unknown error".into())
        );
    }
    Ok(resp.data.unwrap_or(json!(null)))
}

#[cfg(test)]
mod tests {
    use super::*;

    proptest::proptest! {
        /// Any request line is a request or a parse error, never a panic; a parsed request
        /// serialises back to one that parses the same.
        #[test]
        fn arbitrary_request_lines_never_panic(
            line in "\\{(\"(cmd|v|metric|since_s|resolution)\":(\"(status|forecast|history|metrics|health|decisions|raw|10s|1m)\"|-?[0-9]{1,20}(\\.[0-9]+)?(e[0-9]{1,3})?|null),?){0,5}\\}",
            raw in "\\PC{0,200}",
        ) {
            for l in [&line, &raw] {
                if let Ok(req) = serde_json::from_str::<Request>(l) {
                    let back = serde_json::to_string(&req).unwrap();
                    let again: Request = serde_json::from_str(&back).unwrap();
                    proptest::prop_assert_eq!(format!("{req:?}"), format!("{again:?}"));
                }
            }
        }
    }
}
