//! The host's health state and its reasons, a pure function of the latest readings.

use headroom_collector::{Sample, SourceKind, SourceState};
use headroom_model::forecast::Filling;
use serde::Serialize;

use crate::config::HealthSection;
use crate::pipeline::ReplicaLink;

/// How well the host serves its load.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum HealthState {
    /// Nothing wrong.
    Healthy,
    /// Working, but something needs attention (stalls, overflows, a disabled source).
    Degraded,
    /// Failing its load (memory nearly exhausted, severe stalls).
    Unhealthy,
}

impl HealthState {
    /// Lower-case name used in signals, the CLI and metrics.
    pub fn name(self) -> &'static str {
        match self {
            HealthState::Healthy => "healthy",
            HealthState::Degraded => "degraded",
            HealthState::Unhealthy => "unhealthy",
        }
    }
}

/// A state with the reasons behind it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Health {
    /// The worst state any reason calls for.
    pub state: HealthState,
    /// Why it is not healthy, one line each.
    pub reasons: Vec<String>,
    /// What is expected and worth knowing, but no fault (a new host's history filling up).
    pub notes: Vec<String>,
}

/// Everything health is judged on.
#[derive(Debug, Clone, Copy)]
pub struct Inputs<'a> {
    /// The latest sample, if any arrived.
    pub sample: Option<&'a Sample>,
    /// Every source's state.
    pub sources: &'a [(SourceKind, SourceState)],
    /// Why the model is in fallback, if it is.
    pub model_fallback: Option<&'a str>,
    /// Whether that fallback is only the history filling up (a new host), and how far.
    pub model_filling: Option<Filling>,
    /// The last store write error, if writes are failing.
    pub store_error: Option<&'a str>,
    /// Used fraction of the state directory's filesystem.
    pub disk_used: Option<f64>,
    /// Whether each coordinator replica takes the signals.
    pub replicas: &'a [ReplicaLink],
    /// Why the last configuration reload was refused, if it was (until one is taken).
    pub reload_refused: Option<&'a str>,
    /// Where this start set a damaged history aside, if it did.
    pub history_set_aside: Option<&'a str>,
    /// Now, unix seconds (to age a replica's waiting signals).
    pub now: f64,
}

/// Judges health.
pub fn evaluate(cfg: &HealthSection, inputs: &Inputs<'_>) -> Health {
    let mut state = HealthState::Healthy;
    let mut reasons = Vec::new();
    let mut flag = |s: HealthState, reason: String| {
        state = state.max(s);
        reasons.push(reason);
    };
    if let Some(s) = inputs.sample {
        if s.has(SourceKind::Pressure) {
            let p = &s.pressure;
            for (what, v) in [("memory", p.memory_full_avg10), ("io", p.io_full_avg10)] {
                if v > cfg.psi_full_unhealthy {
                    flag(
                        HealthState::Unhealthy,
                        format!(
                            "{what} pressure: full avg10 {v:.1}% > {}%",
                            cfg.psi_full_unhealthy
                        ),
                    );
                } else if v > cfg.psi_full_degraded {
                    flag(
                        HealthState::Degraded,
                        format!(
                            "{what} pressure: full avg10 {v:.1}% > {}%",
                            cfg.psi_full_degraded
                        ),
                    );
                }
            }
        }
        if s.has(SourceKind::Memory) && s.memory.total_bytes > 0 {
            let avail = s.memory.available_bytes as f64 / s.memory.total_bytes as f64;
            if avail < cfg.memory_available_unhealthy {
                flag(
                    HealthState::Unhealthy,
                    format!("memory: {:.1}% available", avail * 100.0),
                );
            } else if avail < cfg.memory_available_degraded {
                flag(
                    HealthState::Degraded,
                    format!("memory: {:.1}% available", avail * 100.0),
                );
            }
        }
        if s.has(SourceKind::Netstat) && (s.listen_overflows > 0 || s.listen_drops > 0) {
            flag(
                HealthState::Degraded,
                format!(
                    "accept queues overflowing: {} overflows, {} drops in the last interval",
                    s.listen_overflows, s.listen_drops
                ),
            );
        }
    } else {
        flag(HealthState::Degraded, "no sample received yet".into());
    }
    for (kind, st) in inputs.sources {
        if let SourceState::Disabled { reason } = st {
            flag(
                HealthState::Degraded,
                format!("source {} disabled: {reason}", kind.name()),
            );
        }
    }
    if let Some(used) = inputs.disk_used
        && used > cfg.disk_used_degraded
    {
        flag(
            HealthState::Degraded,
            format!("state filesystem {:.1}% full", used * 100.0),
        );
    }
    if let Some(err) = inputs.store_error {
        flag(
            HealthState::Degraded,
            format!("history not being written: {err}"),
        );
    }
    for link in inputs.replicas {
        if let Some(since) = link.waiting_since
            && inputs.now - since >= cfg.undelivered_degraded.as_secs_f64()
        {
            flag(
                HealthState::Degraded,
                format!(
                    "coordinator {}: signals waiting for {} ({}); kept in the outbox",
                    link.url,
                    headroom_common::duration::format(std::time::Duration::from_secs_f64(
                        (inputs.now - since).max(0.0).round()
                    )),
                    link.error.as_deref().unwrap_or("no answer")
                ),
            );
        }
    }
    let mut notes = Vec::new();
    match (inputs.model_fallback, inputs.model_filling) {
        (Some(_), Some(fill)) => notes.push(filling_note(fill)),
        (Some(why), None) => flag(HealthState::Degraded, format!("model in fallback: {why}")),
        (None, _) => {}
    }
    // The new history works, so no fault now; but what the host had learned is gone, and the
    // operator may want what the old file holds.
    if let Some(kept) = inputs.history_set_aside {
        notes.push(format!(
            "history started anew at this start: the damaged file was kept as {kept}"
        ));
    }
    // No fault of the host (it runs on the configuration it has), but what an operator who
    // just ran `systemctl reload` (which returns 0 whatever happens) needs to see.
    if let Some(why) = inputs.reload_refused {
        notes.push(format!(
            "configuration reload refused, the running one kept: {why}"
        ));
    }
    Health {
        state,
        reasons,
        notes,
    }
}

/// "filling history: 2 of 30 minutes" (rounded up, so the first minute is 1).
fn filling_note(fill: Filling) -> String {
    let minutes = |s: f64| (s / 60.0).ceil().max(1.0);
    match fill.needed_s {
        Some(needed) => format!(
            "filling history: {:.0} of {:.0} minutes before the forecast is scored",
            minutes(fill.seen_s).min(minutes(needed)),
            minutes(needed)
        ),
        None => "filling history: the first observation".into(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> Sample {
        let mut s = Sample {
            valid: 0xff,
            ..Sample::default()
        };
        s.memory.total_bytes = 1000;
        s.memory.available_bytes = 500;
        s
    }

    /// Inputs with nothing wrong but `sample`, for a test to change what it judges.
    fn calm(sample: &Sample) -> Inputs<'_> {
        Inputs {
            sample: Some(sample),
            sources: &[],
            model_fallback: None,
            model_filling: None,
            store_error: None,
            disk_used: None,
            replicas: &[],
            reload_refused: None,
            history_set_aside: None,
            now: 0.0,
        }
    }

    #[test]
    fn a_refused_reload_is_a_note() {
        let s = sample();
        let h = evaluate(
            &HealthSection::default(),
            &Inputs {
                reload_refused: Some("headroom.toml (1 problem)"),
                ..calm(&s)
            },
        );
        assert_eq!(h.state, HealthState::Healthy);
        assert_eq!(
            h.notes,
            ["configuration reload refused, the running one kept: headroom.toml (1 problem)"]
        );
    }

    #[test]
    fn healthy_when_nothing_is_wrong() {
        let s = sample();
        let h = evaluate(
            &HealthSection::default(),
            &Inputs {
                disk_used: Some(0.5),
                ..calm(&s)
            },
        );
        assert_eq!(
            h,
            Health {
                state: HealthState::Healthy,
                reasons: vec![],
                notes: vec![],
            }
        );
    }

    #[test]
    fn a_filling_history_is_a_note_and_a_lasting_fallback_a_fault() {
        let s = sample();
        let judge = |fallback: Option<&str>, filling: Option<Filling>| {
            evaluate(
                &HealthSection::default(),
                &Inputs {
                    model_fallback: fallback,
                    model_filling: filling,
                    ..calm(&s)
                },
            )
        };
        let fill = Filling {
            seen_s: 90.0,
            needed_s: Some(1_800.0),
        };
        let h = judge(Some("cold start: 10 observations"), Some(fill));
        assert_eq!(h.state, HealthState::Healthy, "{h:?}");
        assert_eq!(
            h.notes,
            ["filling history: 2 of 30 minutes before the forecast is scored"]
        );
        let h = judge(Some("cold start: 400 observations"), None);
        assert_eq!(h.state, HealthState::Degraded, "{h:?}");
        assert_eq!(
            h.reasons,
            ["model in fallback: cold start: 400 observations"]
        );
        assert!(h.notes.is_empty());
        // A distrusted forecast later on is no filling history: the forecaster says so.
        let h = judge(Some("forecast error 1.6x the naive forecast's"), None);
        assert_eq!(h.state, HealthState::Degraded);
    }

    #[test]
    fn worst_reason_wins_and_all_are_listed() {
        let mut s = sample();
        s.memory.available_bytes = 10;
        s.listen_overflows = 3;
        s.pressure.io_full_avg10 = 15.0;
        let sources = [(
            SourceKind::Disk,
            SourceState::Disabled {
                reason: "gone".into(),
            },
        )];
        let h = evaluate(
            &HealthSection::default(),
            &Inputs {
                sources: &sources,
                model_fallback: Some("cold start"),
                store_error: Some("disk full"),
                disk_used: Some(0.99),
                ..calm(&s)
            },
        );
        assert_eq!(h.state, HealthState::Unhealthy);
        assert_eq!(h.reasons.len(), 7, "{:?}", h.reasons);
        assert!(
            h.reasons
                .iter()
                .any(|r| r.contains("source disk disabled: gone"))
        );
    }

    #[test]
    fn a_replica_leaving_signals_waiting_past_the_limit_degrades() {
        let s = sample();
        let link = |since: Option<f64>| ReplicaLink {
            url: "http://c1:7180".into(),
            waiting_since: since,
            error: since.map(|_| "HTTP 401 from http://c1:7180/v1/signals".into()),
            refused: 0,
        };
        let judge = |links: &[ReplicaLink]| {
            evaluate(
                &HealthSection::default(),
                &Inputs {
                    replicas: links,
                    now: 10_000.0,
                    ..calm(&s)
                },
            )
        };
        assert_eq!(judge(&[link(None)]).state, HealthState::Healthy);
        assert_eq!(judge(&[link(Some(9_800.0))]).state, HealthState::Healthy);
        let h = judge(&[link(None), link(Some(9_600.0))]);
        assert_eq!(h.state, HealthState::Degraded);
        assert_eq!(
            h.reasons,
            [
                "coordinator http://c1:7180: signals waiting for 6m 40s (HTTP 401 from \
                 http://c1:7180/v1/signals); kept in the outbox"
            ]
        );
    }
}
