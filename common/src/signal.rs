//! The versioned Signal an agent sends its coordinator after every decision, the one type the
//! two binaries exchange, and the shape of the coordinator's error answers ([`ErrorAnswer`]).
//!
//! This is the wire contract of `POST /v1/signals`: a JSON object (or an array of them, to drain
//! a backlog in one request). Unknown fields are refused so that a newer agent talking to an
//! older coordinator fails loudly instead of being half understood; new optional fields are
//! added with `#[serde(default)]` so older agents keep working.
//!
//! A signal of a version newer than [`SIGNAL_VERSION`] is not a bad signal but a coordinator
//! behind its agents (agents upgraded first): the coordinator finds it with [`newer_version`]
//! and answers so that the agent keeps the signal and sends it again, never drops it.

use serde::{Deserialize, Serialize};

use crate::id::{MAX_ID_LEN, check_id};

/// Current Signal schema version: 2 adds `busy`. An agent sends version 1 (without `busy`)
/// unless it reports the figure, so a coordinator that predates it still accepts its signals;
/// a coordinator accepts both.
pub const SIGNAL_VERSION: u32 = 2;

/// The first version: every field but `busy`.
pub const SIGNAL_VERSION_WITHOUT_BUSY: u32 = 1;

/// Largest demand, capacity, lead or forecast a signal may carry.
pub const MAX_FIGURE: f64 = 1e15;

/// Longest accepted free-text field (reason, metric, each health reason), bytes.
pub const MAX_TEXT_LEN: usize = 4096;

/// An error answer of the coordinator's API, `{"error": "..."}`: the coordinator writes it, the
/// agent's sender and `headroom groups` read its reason.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ErrorAnswer {
    /// What was wrong, in one line.
    pub error: String,
}

impl ErrorAnswer {
    /// The reason an answer body gives, if it is an error answer.
    pub fn reason_in(body: &str) -> Option<String> {
        serde_json::from_str::<ErrorAnswer>(body)
            .ok()
            .map(|a| a.error)
    }
}

/// One decision, with health and a forecast summary, as sent to `POST /v1/signals`.
/// Applied exactly once per (host, epoch, seq).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Signal {
    /// Schema version ([`SIGNAL_VERSION`]).
    pub version: u32,
    /// Stable host id (config `host_id`, else the machine id or hostname).
    pub host: String,
    /// The scaling group this host belongs to.
    pub group: String,
    /// Random id of the host's store, new when the store is recreated (reinstall).
    pub epoch: String,
    /// Sequence number within the epoch, contiguous from 1.
    pub seq: u64,
    /// When the decision was made, unix seconds.
    pub decided_at: f64,
    /// When the signal was (last) sent, unix seconds.
    pub sent_at: f64,
    /// Demand signal name (e.g. `cpu.busy_cores`).
    pub metric: String,
    /// The demand signal's value now, in the metric's unit.
    pub demand_now: f64,
    /// This host's capacity in the demand unit.
    pub capacity: f64,
    /// Lead time of the forecast summary, seconds.
    pub lead_s: f64,
    /// Median forecast at the lead time (absent in cold start).
    pub p50_at_lead: Option<f64>,
    /// 90th percentile forecast at the lead time (absent in cold start).
    pub p90_at_lead: Option<f64>,
    /// Demand is censored (saturated CPU, overflowing accept queue).
    pub saturated: bool,
    /// `scale_out`, `hold` or `scale_in`.
    pub action: String,
    /// Desired change for this host's share, in instances.
    pub desired_change: i32,
    /// Why the host decided so.
    pub reason: String,
    /// `healthy`, `degraded` or `unhealthy`.
    pub health: String,
    /// Why the host is not healthy (empty when healthy).
    pub health_reasons: Vec<String>,
    /// EC2 instance id (from IMDSv2, read by the agent at start), used to mark the instance unhealthy
    /// in its Auto Scaling group; absent off EC2.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub instance_id: Option<String>,
    /// Work in progress on the host (version 2): established connections on its listening
    /// ports, or an application gauge, as the agent is configured; the coordinator protects a
    /// busy instance from scale-in. Absent: not reported.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub busy: Option<f64>,
}

/// The newest `version` among the signals of `body` (one object or an array) when it is above
/// [`SIGNAL_VERSION`]; read leniently (every other field ignored), for a body that failed the
/// strict reading.
pub fn newer_version(body: &[u8]) -> Option<u32> {
    #[derive(Deserialize)]
    struct Versioned {
        version: u32,
    }
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum Body {
        Many(Vec<Versioned>),
        One(Versioned),
    }
    let newest = match serde_json::from_slice::<Body>(body).ok()? {
        Body::Many(all) => all.iter().map(|s| s.version).max()?,
        Body::One(s) => s.version,
    };
    (newest > SIGNAL_VERSION).then_some(newest)
}

/// Why a Signal is refused although it parsed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SignalError {
    /// The version is not one this coordinator understands.
    #[error("unsupported signal version {0} (this coordinator understands 1 to {SIGNAL_VERSION})")]
    Version(u32),
    /// An id is not one [`check_id`] accepts.
    #[error(
        "field `{0}` must be 1..={MAX_ID_LEN} bytes, without spaces or control characters, not starting with '-'"
    )]
    Id(&'static str),
    /// A field of a later version than the signal says.
    #[error("field `{0}` needs signal {1}")]
    Field(&'static str, &'static str),
    /// A text field is too long.
    #[error("field `{0}` is longer than {MAX_TEXT_LEN} bytes")]
    Text(&'static str),
    /// A number is NaN, infinite or out of range.
    #[error("field `{0}` must be a finite number{1}")]
    Number(&'static str, &'static str),
    /// The sequence number is 0 (sequences start at 1) or past `i64::MAX`.
    #[error("field `seq` must be in 1..=9223372036854775807")]
    Seq,
    /// `health` is not one of the known states.
    #[error("field `health` must be healthy, degraded or unhealthy, not {0:?}")]
    Health(String),
}

/// A host's health as reported in a Signal.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Health {
    /// Everything works.
    Healthy,
    /// Works with reduced confidence (a source missing, forecast fallback).
    Degraded,
    /// The host should be replaced if this persists.
    Unhealthy,
}

impl Signal {
    /// The exactly-once key: (host, epoch, seq).
    pub fn key(&self) -> (&str, &str, u64) {
        (&self.host, &self.epoch, self.seq)
    }

    /// Seconds from the decision to the (last) send, both on the agent's clock, so another
    /// host's clock does not enter it; never negative.
    pub fn age_s(&self) -> f64 {
        (self.sent_at - self.decided_at).max(0.0)
    }

    /// The parsed health state (call after [`Signal::validate`]).
    pub fn health_state(&self) -> Health {
        match self.health.as_str() {
            "unhealthy" => Health::Unhealthy,
            "degraded" => Health::Degraded,
            _ => Health::Healthy,
        }
    }

    /// This signal as [`Signal::validate`] accepts it, where a sender's own figures and texts
    /// could break a bound: a figure not finite reads 0, one out of `0..=`[`MAX_FIGURE`] the
    /// nearest bound; each text is cut at [`MAX_TEXT_LEN`] bytes (on a character boundary);
    /// health reasons are kept while they fit, the last kept one saying how many were left
    /// out. A coordinator refuses a signal that breaks a bound for good, so the agent fits
    /// each before storing it: one out-of-range gauge must not lose every decision.
    pub fn fitted(mut self) -> Signal {
        // NaN says nothing: 0. An infinity is a figure past every bound: the nearest one (an
        // overloaded host's gauge reading +Inf must not read as no demand).
        let fit = |v: f64| {
            if v.is_nan() {
                0.0
            } else {
                v.clamp(0.0, MAX_FIGURE)
            }
        };
        self.demand_now = fit(self.demand_now);
        self.capacity = fit(self.capacity);
        self.lead_s = fit(self.lead_s);
        // A forecast that overflowed is no forecast, not one of the largest figure.
        self.p50_at_lead = self.p50_at_lead.filter(|v| v.is_finite()).map(fit);
        self.p90_at_lead = self.p90_at_lead.filter(|v| v.is_finite()).map(fit);
        self.busy = self.busy.map(fit);
        for text in [&mut self.metric, &mut self.reason, &mut self.action] {
            cut(text, MAX_TEXT_LEN);
        }
        let total: usize = self.health_reasons.iter().map(String::len).sum();
        if total > MAX_TEXT_LEN {
            let all = std::mem::take(&mut self.health_reasons);
            let n = all.len();
            // Room for the note on the ones left out.
            let mut room = MAX_TEXT_LEN - 64;
            for mut r in all {
                cut(&mut r, room);
                if r.is_empty() {
                    break;
                }
                room -= r.len();
                self.health_reasons.push(r);
            }
            let left = n - self.health_reasons.len();
            self.health_reasons.push(if left == 0 {
                "health reasons cut to fit".to_string()
            } else {
                format!("and {left} more health reasons, left out")
            });
        }
        self
    }

    /// Checks what serde cannot: version, id lengths, finite numbers, known health.
    pub fn validate(&self) -> Result<(), SignalError> {
        if self.version == 0 || self.version > SIGNAL_VERSION {
            return Err(SignalError::Version(self.version));
        }
        if self.busy.is_some() && self.version < SIGNAL_VERSION {
            return Err(SignalError::Field("busy", "version 2"));
        }
        for (name, value) in [
            ("host", &self.host),
            ("group", &self.group),
            ("epoch", &self.epoch),
        ] {
            if check_id(value).is_err() {
                return Err(SignalError::Id(name));
            }
        }
        if let Some(id) = &self.instance_id
            && check_id(id).is_err()
        {
            return Err(SignalError::Id("instance_id"));
        }
        // Stored as SQLite integers: past i64::MAX a seq could not be told apart after a restart.
        if self.seq == 0 || i64::try_from(self.seq).is_err() {
            return Err(SignalError::Seq);
        }
        let texts = [
            ("metric", &self.metric),
            ("reason", &self.reason),
            ("action", &self.action),
        ];
        for (name, value) in texts {
            if value.len() > MAX_TEXT_LEN {
                return Err(SignalError::Text(name));
            }
        }
        if self.health_reasons.iter().map(String::len).sum::<usize>() > MAX_TEXT_LEN {
            return Err(SignalError::Text("health_reasons"));
        }
        let non_negative = [
            ("demand_now", Some(self.demand_now)),
            ("capacity", Some(self.capacity)),
            ("lead_s", Some(self.lead_s)),
            ("p50_at_lead", self.p50_at_lead),
            ("p90_at_lead", self.p90_at_lead),
            ("busy", self.busy),
        ];
        for (name, value) in non_negative {
            // Bounded so that a group's sum over any number of hosts stays finite.
            if let Some(v) = value
                && !(v.is_finite() && (0.0..=MAX_FIGURE).contains(&v))
            {
                return Err(SignalError::Number(name, " in 0..=1e15"));
            }
        }
        for (name, v) in [("decided_at", self.decided_at), ("sent_at", self.sent_at)] {
            if !(v.is_finite() && v >= 0.0) {
                return Err(SignalError::Number(name, " (unix seconds)"));
            }
        }
        match self.health.as_str() {
            "healthy" | "degraded" | "unhealthy" => Ok(()),
            other => Err(SignalError::Health(other.chars().take(64).collect())),
        }
    }
}

/// Cuts `text` to at most `max` bytes, on a character boundary.
fn cut(text: &mut String, max: usize) {
    if text.len() > max {
        let mut at = max;
        while !text.is_char_boundary(at) {
            at -= 1;
        }
        text.truncate(at);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// An error answer's reason is read back as written; any other body has none.
    #[test]
    fn an_error_answer_reads_back_its_reason() {
        let written = serde_json::to_string(&ErrorAnswer {
            error: "token not valid".into(),
        })
        .unwrap();
        assert_eq!(written, r#"{"error":"token not valid"}"#);
        assert_eq!(
            ErrorAnswer::reason_in(&written).as_deref(),
            Some("token not valid")
        );
        for other in ["", "ok", r#"{"error":3}"#, r#"{"results":[]}"#] {
            assert_eq!(ErrorAnswer::reason_in(other), None, "{other}");
        }
    }

    /// What a sender's own values can break is fitted: the signal is then one a coordinator
    /// accepts.
    #[test]
    fn a_fitted_signal_is_valid() {
        let mut s = sample();
        s.demand_now = 2e15;
        s.capacity = f64::NAN;
        s.version = SIGNAL_VERSION;
        s.busy = Some(f64::INFINITY);
        s.p50_at_lead = Some(-3.0);
        s.p90_at_lead = Some(f64::INFINITY);
        s.reason = "é".repeat(MAX_TEXT_LEN);
        s.health_reasons = vec!["x".repeat(1000); 10];
        assert!(s.validate().is_err());
        let f = s.fitted();
        f.validate().unwrap();
        assert_eq!((f.demand_now, f.capacity), (MAX_FIGURE, 0.0));
        assert_eq!(f.busy, Some(MAX_FIGURE));
        assert_eq!((f.p50_at_lead, f.p90_at_lead), (Some(0.0), None));
        assert_eq!(f.reason.len(), MAX_TEXT_LEN);
        // Four whole, the fifth cut, then the note.
        assert_eq!(f.health_reasons.len(), 6);
        assert!(
            f.health_reasons[5].contains("5 more"),
            "{:?}",
            f.health_reasons[5]
        );
        // One that fits is left as it was.
        assert_eq!(sample().fitted(), sample());
    }

    fn sample() -> Signal {
        Signal {
            version: 1,
            host: "h1".into(),
            group: "web".into(),
            epoch: "e1".into(),
            seq: 1,
            decided_at: 1.0e9,
            sent_at: 1.0e9,
            metric: "cpu.busy_cores".into(),
            demand_now: 1.5,
            capacity: 4.0,
            lead_s: 310.0,
            p50_at_lead: Some(1.6),
            p90_at_lead: None,
            saturated: false,
            action: "hold".into(),
            desired_change: 0,
            reason: "ok".into(),
            health: "healthy".into(),
            health_reasons: vec![],
            instance_id: None,
            busy: None,
        }
    }

    #[test]
    fn a_newer_version_is_found_in_a_body_this_version_cannot_read() {
        let later = br#"{"version": 3, "host": "h", "field_of_version_3": true}"#;
        assert_eq!(newer_version(later), Some(3));
        let batch = br#"[{"version": 1}, {"version": 4, "x": 1}, {"version": 2}]"#;
        assert_eq!(newer_version(batch), Some(4));
        assert_eq!(newer_version(br#"[{"version": 1}, {"version": 2}]"#), None);
        assert_eq!(newer_version(br#"{"version": 1, "host": "#), None);
        assert_eq!(newer_version(br#"{"host": "h"}"#), None);
        assert_eq!(newer_version(b"[]"), None);
    }

    #[test]
    fn busy_needs_version_2_and_a_figure_in_range() {
        let mut s = sample();
        s.busy = Some(3.0);
        assert_eq!(s.validate(), Err(SignalError::Field("busy", "version 2")));
        s.version = 2;
        assert_eq!(s.validate(), Ok(()));
        s.busy = Some(-1.0);
        assert!(matches!(s.validate(), Err(SignalError::Number("busy", _))));
        s.busy = None;
        assert_eq!(s.validate(), Ok(()), "version 2 without the figure");
        s.version = 3;
        assert_eq!(s.validate(), Err(SignalError::Version(3)));
    }

    #[test]
    fn round_trips_and_omits_absent_instance_id() {
        let s = sample();
        let json = serde_json::to_string(&s).unwrap();
        assert!(!json.contains("instance_id"));
        assert_eq!(serde_json::from_str::<Signal>(&json).unwrap(), s);
    }

    #[test]
    fn refuses_unknown_fields_and_bad_values() {
        let mut v = serde_json::to_value(sample()).unwrap();
        v["extra"] = 1.into();
        assert!(serde_json::from_value::<Signal>(v).is_err());
        let mut s = sample();
        s.demand_now = f64::NAN;
        assert_eq!(
            s.validate(),
            Err(SignalError::Number("demand_now", " in 0..=1e15"))
        );
        let mut s = sample();
        s.demand_now = 1e308;
        assert!(s.validate().is_err(), "two of these would sum to infinity");
        let mut s = sample();
        s.seq = u64::MAX;
        assert_eq!(s.validate(), Err(SignalError::Seq));
        let mut s = sample();
        s.version = 0;
        assert_eq!(s.validate(), Err(SignalError::Version(0)));
        let mut s = sample();
        s.health = "meh".into();
        assert!(s.validate().is_err());
        for (host, ok) in [
            ("web-1.example", true),
            ("--config=/tmp/x", false),
            ("web 1", false),
            ("web\nforged log line", false),
            ("", false),
        ] {
            let mut s = sample();
            s.host = host.into();
            assert_eq!(s.validate().is_ok(), ok, "{host:?}");
        }
        assert!(sample().validate().is_ok());
    }

    proptest::proptest! {
        /// Any body, as the coordinator reads it, is an error or a signal, never a panic.
        #[test]
        fn arbitrary_bodies_never_panic(body in proptest::collection::vec(proptest::prelude::any::<u8>(), 0..400),
                                        text in "[\\[\\]{}\",:0-9a-z_. -]{0,300}") {
            for b in [&body[..], text.as_bytes()] {
                if let Ok(s) = serde_json::from_slice::<Signal>(b) {
                    let _ = s.validate();
                }
                let _ = serde_json::from_slice::<Vec<Signal>>(b);
            }
        }
    }
}
