//! The host's work in progress, sent with each signal (`[coordinator] busy`) so the
//! coordinator can protect a busy instance from scale-in.
//!
//! - `connections`: established TCP connections on the ports this host listens on (the
//!   latest sample's listeners), one sock_diag dump per decision, not per sample: its cost
//!   grows with the host's connections, and a decision is when the figure is sent.
//! - `app.GAUGE`: that gauge of the latest sample.
//!
//! A figure that cannot be read is not sent (the signal says nothing rather than "idle"); the
//! first failure is logged, and the socket is opened again at the next decision.

use headroom_collector::{Sample, SockDiagSocket, SourceKind};

use super::demand_of;

/// How the busy figure is read.
#[derive(Debug)]
pub(super) enum Busy {
    /// Not sent.
    Off,
    /// An application gauge, by metric name (`app.jobs_running`).
    App(String),
    /// Established connections on listening ports, through this socket once opened.
    Connections {
        diag: Option<SockDiagSocket>,
        failing: bool,
    },
}

impl Busy {
    /// From the `[coordinator] busy` setting (validated with the configuration).
    pub(super) fn new(setting: &str) -> Busy {
        match setting {
            "" => Busy::Off,
            "connections" => Busy::Connections {
                diag: None,
                failing: false,
            },
            app => Busy::App(app.to_string()),
        }
    }

    /// The figure for sample `s`, if one is configured and could be read.
    pub(super) fn measure(&mut self, s: &Sample) -> Option<f64> {
        match self {
            Busy::Off => None,
            Busy::App(metric) => demand_of(s, metric),
            Busy::Connections { diag, failing } => {
                if !s.has(SourceKind::AcceptQueue) {
                    return None;
                }
                let n = usize::from(s.listener_count).min(s.listeners.len());
                let mut ports: Vec<u16> = s.listeners[..n].iter().map(|l| l.port).collect();
                ports.sort_unstable();
                ports.dedup();
                let result = match diag {
                    Some(d) => d.established_on(&ports).map_err(|e| e.to_string()),
                    None => SockDiagSocket::open()
                        .map_err(|e| e.to_string())
                        .and_then(|mut d| {
                            let n = d.established_on(&ports).map_err(|e| e.to_string());
                            *diag = Some(d);
                            n
                        }),
                };
                match result {
                    Ok(count) => {
                        *failing = false;
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
                        None
                    }
                }
            }
        }
    }
}
