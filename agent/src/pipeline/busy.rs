//! The host's work in progress, sent with each signal (`[coordinator] busy`) so the
//! coordinator can protect a busy instance from scale-in.
//!
//! - `connections`: established TCP connections on the ports this host listens on (the
//!   latest sample's listeners, or only `busy_ports`), counted by a sock_diag dump of established sockets at most
//!   once per [`CONNECTIONS_EVERY`] and sent with every decision in between. The dump costs
//!   the kernel a walk of its whole established-socket hash table (milliseconds on a large
//!   host, whatever the connection count), far more than a sample: per decision at a 1 s
//!   cadence it tripled the agent's CPU (`benches/overhead/busy.sh`). Protection is cleared
//!   after minutes of idleness, so a figure up to half a minute old costs it nothing.
//! - `app.GAUGE`: that gauge of the latest sample.
//!
//! A figure that cannot be read is not sent (the signal says nothing rather than "idle"); the
//! first failure is logged, and the socket is opened again at the next decision.

use std::time::Duration;

use headroom_collector::{Sample, SockDiagSocket, SourceKind};

use super::demand_of;

/// Connections are counted at most this often (by the sampler's clock).
pub(super) const CONNECTIONS_EVERY: Duration = Duration::from_secs(30);

/// How the busy figure is read.
#[derive(Debug)]
pub(super) enum Busy {
    /// Not sent.
    Off,
    /// An application gauge, by metric name (`app.jobs_running`).
    App(String),
    /// Established connections on listening ports, through this socket once opened.
    Connections {
        /// Only these local ports; empty = every port the host listens on.
        only: Vec<u16>,
        diag: Option<SockDiagSocket>,
        failing: bool,
        /// The last count and the sample clock it was taken at.
        last: Option<(Duration, f64)>,
    },
}

impl Busy {
    /// From the `[coordinator] busy` and `busy_ports` settings (validated with the
    /// configuration).
    pub(super) fn new(setting: &str, ports: &[u16]) -> Busy {
        match setting {
            "" => Busy::Off,
            "connections" => Busy::Connections {
                only: ports.to_vec(),
                diag: None,
                failing: false,
                last: None,
            },
            app => Busy::App(app.to_string()),
        }
    }

    /// The figure for sample `s`, if one is configured and could be read.
    pub(super) fn measure(&mut self, s: &Sample) -> Option<f64> {
        match self {
            Busy::Off => None,
            Busy::App(metric) => demand_of(s, metric),
            Busy::Connections {
                only,
                diag,
                failing,
                last,
            } => {
                if only.is_empty() && !s.has(SourceKind::AcceptQueue) {
                    return None;
                }
                if let Some((at, count)) = *last
                    && s.mono
                        .checked_sub(at)
                        .is_some_and(|d| d < CONNECTIONS_EVERY)
                {
                    return Some(count);
                }
                let ports: Vec<u16> = if only.is_empty() {
                    let n = usize::from(s.listener_count).min(s.listeners.len());
                    let mut ports: Vec<u16> = s.listeners[..n].iter().map(|l| l.port).collect();
                    ports.sort_unstable();
                    ports.dedup();
                    ports
                } else {
                    only.clone()
                };
                match established(diag, &ports) {
                    Ok(count) => {
                        *failing = false;
                        *last = Some((s.mono, count as f64));
                        Some(count as f64)
                    }
                    Err(e) => {
                        if !*failing {
                            tracing::warn!(
                                "busy: cannot count established connections: {e}; not sent until it works"
                            );
                        }
                        *failing = true;
                        *diag = None;
                        *last = None;
                        None
                    }
                }
            }
        }
    }
}

/// Established connections on `ports`, through the socket in `diag`, opened first if closed.
fn established(diag: &mut Option<SockDiagSocket>, ports: &[u16]) -> Result<u64, String> {
    let d = match diag {
        Some(d) => d,
        None => diag.insert(SockDiagSocket::open().map_err(|e| e.to_string())?),
    };
    d.established_on(ports).map_err(|e| e.to_string())
}
