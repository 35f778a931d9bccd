//! The control socket's protocol: versioned JSON lines, one [`Request`] and one [`Response`]
//! per line, and the CLI's side of it ([`request`]).

use std::io::{BufRead, BufReader, Write};
use std::os::unix::net::UnixStream;
use std::path::PathBuf;
use std::time::Duration;

use anyhow::{Context, bail};
use headroom_common::exit::{Exit, NO_PERMISSION, UNAVAILABLE};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

/// Protocol version spoken by this build.
pub const PROTOCOL_VERSION: u32 = 1;
/// How long the CLI waits for an answer.
const ANSWER_TIMEOUT: Duration = Duration::from_secs(30);

/// A request from the CLI.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "cmd", rename_all = "snake_case", deny_unknown_fields)]
pub enum Request {
    /// Everything `headroom status` shows.
    Status {
        /// Protocol version.
        v: u32,
    },
    /// The forecast of `metric`.
    Forecast {
        /// Protocol version.
        v: u32,
        /// The metric (default: the demand signal).
        metric: Option<String>,
    },
    /// Stored history.
    History {
        /// Protocol version.
        v: u32,
        /// The metric (default: the demand signal).
        metric: Option<String>,
        /// How far back, seconds.
        since_s: f64,
        /// `raw`, `10s` or `1m` (default: by `since_s`).
        resolution: Option<String>,
    },
    /// Every stored metric name.
    Metrics {
        /// Protocol version.
        v: u32,
    },
    /// Health and its recent transitions.
    Health {
        /// Protocol version.
        v: u32,
    },
    /// Decisions since some seconds ago.
    Decisions {
        /// Protocol version.
        v: u32,
        /// How far back, seconds.
        since_s: f64,
    },
    /// The ledger since some seconds ago.
    Report {
        /// Protocol version.
        v: u32,
        /// How far back, seconds.
        since_s: f64,
    },
}

impl Request {
    /// The protocol version the client speaks.
    pub fn version(&self) -> u32 {
        match self {
            Request::Status { v }
            | Request::Forecast { v, .. }
            | Request::History { v, .. }
            | Request::Metrics { v }
            | Request::Health { v }
            | Request::Decisions { v, .. }
            | Request::Report { v, .. } => *v,
        }
    }
}

/// A response line.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Response {
    /// Protocol version of the answer.
    pub v: u32,
    /// Whether the request was answered.
    pub ok: bool,
    /// The answer, when `ok`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub data: Option<Value>,
    /// Why not, when not `ok`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

impl Response {
    /// A refusal or failure, said in one line.
    pub fn error(error: String) -> Response {
        Response {
            v: PROTOCOL_VERSION,
            ok: false,
            data: None,
            error: Some(error),
        }
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
    let stream = UnixStream::connect(path).map_err(|e| {
        if e.kind() == std::io::ErrorKind::PermissionDenied {
            // The socket is there: its mode and group keep this user out.
            Exit::new(
                NO_PERMISSION,
                format!(
                    "the agent's socket {} is not open to this user ({e}): members of its \
                     group may use it (`sudo usermod -aG headroom \"$USER\"`, then log in again)",
                    path.display()
                ),
            )
        } else {
            unavailable(e.to_string())
        }
    })?;
    stream.set_read_timeout(Some(ANSWER_TIMEOUT)).ok();
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
            line in "\\{(\"(cmd|v|metric|since_s|resolution)\":(\"(status|forecast|history|metrics|health|decisions|report|raw|10s|1m)\"|-?[0-9]{1,20}(\\.[0-9]+)?(e[0-9]{1,3})?|null),?){0,5}\\}",
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
