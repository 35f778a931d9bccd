//! How the outbox's pending signals are cut into requests.
//!
//! `POST /v1/signals` takes one signal or an array of them, and 200 means every one of the
//! request is durably recorded. A backlog (a replica new to the agent, or back after an outage)
//! is therefore sent in arrays: one request per signal took a replica new to an agent with 14
//! days of decisions most of an hour to reach the agent's current signals, and the coordinator
//! records an array in one transaction. Order is kept: a request is a run of consecutive
//! signals, so the coordinator's replay window sees seqs rise as before.
//!
//! Invariants:
//! - a request never holds more than [`MAX_SIGNALS`] signals, nor (unless it is one signal)
//!   more than [`MAX_BYTES`] of body, half the coordinator's default body limit;
//! - a request refused for its size (413) is sent again in halves, down to one signal: only a
//!   single signal refused is refused for good. The size grows back, doubling, once
//!   [`REGROW_AFTER`] passed without a 413: a coordinator's limit raised (or a proxy gone) is
//!   taken up, at the cost of at most one refused request per that time;
//! - a request refused for its content (400, 422) is sent again one signal at a time, so the one
//!   at fault is refused alone and the others are taken.

use std::time::{Duration, Instant};

/// The most signals in one request.
pub(super) const MAX_SIGNALS: usize = 64;
/// The largest body of a request of several signals, bytes.
pub(super) const MAX_BYTES: usize = 32 * 1024;
/// How long after a 413 the request size doubles back toward its ceiling.
pub(super) const REGROW_AFTER: Duration = Duration::from_secs(600);

/// A stored signal as the sender found it.
pub(super) enum Pending {
    /// To send: the signal as stored, every field kept (a row written by another version of
    /// the agent is sent as it was, for the coordinator to judge).
    Send(serde_json::Map<String, serde_json::Value>),
    /// A signal of the group the host belonged to before (named).
    OtherGroup(String),
    /// The stored row cannot be read back as JSON.
    Unreadable(String),
}

impl Pending {
    /// What the stored `payload` is to a host of `group`.
    pub(super) fn of(payload: &str, group: &str) -> Pending {
        match serde_json::from_str::<serde_json::Map<String, serde_json::Value>>(payload) {
            Ok(s) => match s.get("group").and_then(|g| g.as_str()) {
                Some(g) if g != group => Pending::OtherGroup(g.to_string()),
                _ => Pending::Send(s),
            },
            Err(e) => Pending::Unreadable(e.to_string()),
        }
    }
}

/// One request: the seqs of its signals, in order, and its body.
#[derive(Debug)]
pub(super) struct Request {
    pub(super) seqs: Vec<u64>,
    /// The last of them.
    pub(super) last: u64,
    /// The signal itself when there is one, else a JSON array of them.
    pub(super) body: String,
}

impl Request {
    /// The request for the signals at the start of `rest` (each `(seq, signal)`, oldest
    /// first), each with `sent_at` set to `now` (the coordinator reads a signal's age from it,
    /// so it is set as the request is made): at least the first, at most `limit`, no more
    /// than [`MAX_BYTES`] of body when more than one, and none from the first signal not to
    /// send on. `None` when the first is not to send.
    pub(super) fn starting(rest: &[(u64, Pending)], limit: usize, now: f64) -> Option<Request> {
        let mut seqs = Vec::new();
        let mut bodies: Vec<String> = Vec::new();
        // "[", "]" and a comma between each.
        let mut bytes = 2;
        for (seq, s) in rest.iter().take(limit.max(1)) {
            let Pending::Send(signal) = s else { break };
            let mut signal = signal.clone();
            signal.insert("sent_at".into(), now.into());
            let Ok(body) = serde_json::to_string(&signal) else {
                break;
            };
            bytes += body.len() + usize::from(!bodies.is_empty());
            if !bodies.is_empty() && bytes > MAX_BYTES {
                break;
            }
            seqs.push(*seq);
            bodies.push(body);
        }
        let last = *seqs.last()?;
        let body = match bodies.len() {
            1 => bodies.swap_remove(0),
            _ => format!("[{}]", bodies.join(",")),
        };
        Some(Request { seqs, last, body })
    }
}

/// How many signals the next request may carry.
#[derive(Debug)]
pub(super) struct Sizing {
    /// The most per request now: [`Sizing::ceiling`], or less after a 413.
    most: usize,
    /// The most per request: [`MAX_SIGNALS`], the send rate when lower (a request never
    /// carries more than a second's worth).
    ceiling: usize,
    /// When `most` was last cut or grown, while it is below the ceiling.
    resized_at: Option<Instant>,
    /// Up to this seq, signals go one per request: a request of them was refused for its
    /// content, and the one at fault must be refused alone.
    single_until: u64,
}

impl Sizing {
    /// Sizing for a destination sent at most `rate` signals per second.
    pub(super) fn new(rate: u32) -> Sizing {
        let ceiling = MAX_SIGNALS.min(rate.max(1) as usize);
        Sizing {
            most: ceiling,
            ceiling,
            resized_at: None,
            single_until: 0,
        }
    }

    /// The most signals the request starting at `seq` may carry, made at `now`.
    pub(super) fn limit(&mut self, seq: u64, now: Instant) -> usize {
        if let Some(at) = self.resized_at
            && now.saturating_duration_since(at) >= REGROW_AFTER
        {
            self.most = (self.most * 2).min(self.ceiling);
            self.resized_at = (self.most < self.ceiling).then_some(now);
        }
        if seq <= self.single_until {
            1
        } else {
            self.most
        }
    }

    /// A request of `sent` signals was too large (413); whether it is worth sending again in
    /// smaller ones (false: a single signal, refused for good).
    pub(super) fn too_large(&mut self, sent: usize, now: Instant) -> bool {
        if sent <= 1 {
            return false;
        }
        self.most = (sent / 2).max(1);
        self.resized_at = Some(now);
        true
    }

    /// A request of `sent` signals up to `last` was refused for its content (400, 422);
    /// whether to send them again one by one (false: a single signal, refused for good).
    pub(super) fn refused(&mut self, sent: usize, last: u64) -> bool {
        if sent <= 1 {
            return false;
        }
        self.single_until = self.single_until.max(last);
        true
    }
}

/// Whether `answer`, a coordinator's ingest answer, has a result for every seq of `seqs`;
/// `None` when it is no ingest answer (no `results` array: a proxy's page, a login).
pub(super) fn answered(answer: &str, seqs: &[u64]) -> Option<bool> {
    let v = serde_json::from_str::<serde_json::Value>(answer).ok()?;
    let results = v["results"].as_array()?;
    let answered: std::collections::HashSet<u64> =
        results.iter().filter_map(|r| r["seq"].as_u64()).collect();
    Some(seqs.iter().all(|s| answered.contains(s)))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn to_send(bodies: &[String]) -> Vec<(u64, Pending)> {
        (1..)
            .zip(bodies.iter().map(|b| Pending::of(b, "web")))
            .collect()
    }

    fn count(rest: &[(u64, Pending)], limit: usize) -> usize {
        Request::starting(rest, limit, 1.0e9).map_or(0, |r| r.seqs.len())
    }

    #[test]
    fn a_request_is_bounded_by_count_and_bytes_but_never_empty() {
        let small = to_send(&vec![r#"{"seq":0}"#.to_string(); 200]);
        assert_eq!(count(&small, 64), 64);
        assert_eq!(count(&small, 5), 5);
        assert_eq!(count(&small, 0), 1);
        let big = to_send(&vec![format!(r#"{{"x":"{}"}}"#, "y".repeat(10_000)); 10]);
        assert_eq!(count(&big, 64), 3, "3 x 10 kB fit 32 KiB");
        let huge = to_send(&vec![
            format!(r#"{{"x":"{}"}}"#, "z".repeat(MAX_BYTES * 2));
            3
        ]);
        assert_eq!(
            count(&huge, 64),
            1,
            "one signal goes alone, whatever its size"
        );
    }

    #[test]
    fn a_request_ends_before_a_signal_not_to_send() {
        let mut rest = to_send(&vec![r#"{"seq":0}"#.to_string(); 4]);
        rest[2].1 = Pending::of(r#"{"group":"old"}"#, "web");
        assert!(matches!(&rest[2].1, Pending::OtherGroup(g) if g == "old"));
        let r = Request::starting(&rest, 64, 1.0e9).unwrap();
        assert_eq!((r.seqs, r.last), (vec![1, 2], 2));
        assert!(Request::starting(&rest[2..], 64, 1.0e9).is_none());
        assert!(matches!(
            Pending::of("{not json", "web"),
            Pending::Unreadable(_)
        ));
    }

    #[test]
    fn signals_are_sent_as_stored_with_sent_at_set_when_the_request_is_made() {
        let stored =
            r#"{"version":1,"seq":7,"group":"web","sent_at":0.0,"field_of_a_later_version":[1,2]}"#;
        let one = to_send(&[stored.to_string()]);
        let v: serde_json::Value =
            serde_json::from_str(&Request::starting(&one, 64, 1.5e9).unwrap().body).unwrap();
        assert_eq!(v["seq"], 7);
        assert_eq!(v["field_of_a_later_version"], serde_json::json!([1, 2]));
        assert_eq!(v["sent_at"], 1.5e9);
        let two = to_send(&[stored.to_string(), stored.replace(":7,", ":8,")]);
        let v: serde_json::Value =
            serde_json::from_str(&Request::starting(&two, 64, 1.5e9).unwrap().body).unwrap();
        assert_eq!(v[1]["seq"], 8, "several go as an array");
    }

    #[test]
    fn refusals_shrink_the_request_until_one_signal_is_refused_for_good() {
        let t = Instant::now();
        let mut s = Sizing::new(1000);
        assert_eq!(s.limit(1, t), MAX_SIGNALS);
        assert!(s.too_large(64, t));
        assert_eq!(s.limit(1, t), 32);
        assert!(s.refused(32, 40), "content refused: one by one");
        assert_eq!(s.limit(40, t), 1);
        assert_eq!(s.limit(41, t), 32, "past the refused run, batches again");
        assert!(!s.refused(1, 40), "a single signal is refused for good");
        assert!(!s.too_large(1, t));
        assert_eq!(
            Sizing::new(10).limit(1, t),
            10,
            "never more than a second's worth"
        );
    }

    #[test]
    fn the_size_grows_back_after_a_while_without_a_413() {
        let t = Instant::now();
        let mut s = Sizing::new(1000);
        assert!(s.too_large(64, t));
        assert!(s.too_large(32, t));
        assert_eq!(s.limit(1, t + REGROW_AFTER / 2), 16, "too soon");
        assert_eq!(s.limit(1, t + REGROW_AFTER), 32, "doubles");
        assert_eq!(s.limit(1, t + REGROW_AFTER * 3 / 2), 32, "once per period");
        // Refused again at 32: back to 16, and the period starts over.
        let later = t + REGROW_AFTER * 3 / 2;
        assert!(s.too_large(32, later));
        assert_eq!(s.limit(1, later + REGROW_AFTER / 2), 16);
        assert_eq!(s.limit(1, later + REGROW_AFTER), 32);
        assert_eq!(s.limit(1, later + REGROW_AFTER * 2), MAX_SIGNALS);
        assert_eq!(
            s.limit(1, later + REGROW_AFTER * 10),
            MAX_SIGNALS,
            "never past the ceiling"
        );
        let mut slow = Sizing::new(10);
        assert!(slow.too_large(10, t));
        assert_eq!(
            slow.limit(1, t + REGROW_AFTER * 5),
            10,
            "the rate's ceiling"
        );
    }

    #[test]
    fn an_answer_must_name_every_seq_sent() {
        let answer = r#"{"applied":2,"results":[{"seq":7,"outcome":"applied"},{"seq":8,"outcome":"duplicate"}]}"#;
        assert_eq!(answered(answer, &[7, 8]), Some(true));
        assert_eq!(answered(answer, &[7, 8, 9]), Some(false));
        assert_eq!(answered("<html>ok</html>", &[7]), None);
    }
}
