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
//!   single signal refused is refused for good;
//! - a request refused for its content (400, 422) is sent again one signal at a time, so the one
//!   at fault is refused alone and the others are taken.

/// The most signals in one request.
pub(super) const MAX_SIGNALS: usize = 64;
/// The largest body of a request of several signals, bytes.
pub(super) const MAX_BYTES: usize = 32 * 1024;

/// A stored signal as the sender found it.
pub(super) enum Stamped {
    /// To send: the body, `sent_at` set.
    Send(String),
    /// A signal of the group the host belonged to before (named).
    OtherGroup(String),
    /// The stored row cannot be read back as JSON.
    Unreadable(String),
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
    /// first): at least the first, at most `limit`, no more than [`MAX_BYTES`] of body when
    /// more than one, and none from the first signal not to send on. `None` when the first is
    /// not to send.
    pub(super) fn starting(rest: &[(u64, Stamped)], limit: usize) -> Option<Request> {
        let mut seqs = Vec::new();
        let mut bodies: Vec<&str> = Vec::new();
        // "[", "]" and a comma between each.
        let mut bytes = 2;
        for (seq, s) in rest.iter().take(limit.max(1)) {
            let Stamped::Send(body) = s else { break };
            bytes += body.len() + usize::from(!bodies.is_empty());
            if !bodies.is_empty() && bytes > MAX_BYTES {
                break;
            }
            seqs.push(*seq);
            bodies.push(body);
        }
        let last = *seqs.last()?;
        let body = if let [one] = bodies[..] {
            one.to_string()
        } else {
            format!("[{}]", bodies.join(","))
        };
        Some(Request { seqs, last, body })
    }
}

/// How many signals the next request may carry.
#[derive(Debug)]
pub(super) struct Sizing {
    /// The most per request now: [`MAX_SIGNALS`], the send rate when lower (a request never
    /// carries more than a second's worth), or less after a 413.
    most: usize,
    /// Up to this seq, signals go one per request: a request of them was refused for its
    /// content, and the one at fault must be refused alone.
    single_until: u64,
}

impl Sizing {
    /// Sizing for a destination sent at most `rate` signals per second.
    pub(super) fn new(rate: u32) -> Sizing {
        Sizing {
            most: MAX_SIGNALS.min(rate.max(1) as usize),
            single_until: 0,
        }
    }

    /// The most signals the request starting at `seq` may carry.
    pub(super) fn limit(&self, seq: u64) -> usize {
        if seq <= self.single_until {
            1
        } else {
            self.most
        }
    }

    /// A request of `sent` signals was too large (413); whether it is worth sending again in
    /// smaller ones (false: a single signal, refused for good).
    pub(super) fn too_large(&mut self, sent: usize) -> bool {
        if sent <= 1 {
            return false;
        }
        self.most = (sent / 2).max(1);
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

/// Whether `answer` is a coordinator's ingest answer with a result for every seq of `seqs`.
pub(super) fn answers_all(answer: &str, seqs: &[u64]) -> bool {
    let Ok(v) = serde_json::from_str::<serde_json::Value>(answer) else {
        return false;
    };
    let Some(results) = v["results"].as_array() else {
        return false;
    };
    let answered: std::collections::HashSet<u64> =
        results.iter().filter_map(|r| r["seq"].as_u64()).collect();
    seqs.iter().all(|s| answered.contains(s))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn to_send(bodies: &[String]) -> Vec<(u64, Stamped)> {
        (1..)
            .zip(bodies.iter().map(|b| Stamped::Send(b.clone())))
            .collect()
    }

    fn count(rest: &[(u64, Stamped)], limit: usize) -> usize {
        Request::starting(rest, limit).map_or(0, |r| r.seqs.len())
    }

    #[test]
    fn a_request_is_bounded_by_count_and_bytes_but_never_empty() {
        let small = to_send(&vec![r#"{"seq":0}"#.to_string(); 200]);
        assert_eq!(count(&small, 64), 64);
        assert_eq!(count(&small, 5), 5);
        assert_eq!(count(&small, 0), 1);
        let big = to_send(&vec![format!(r#"{{"x":"{}"}}"#, "y".repeat(10_000)); 10]);
        assert_eq!(count(&big, 64), 3, "3 x 10 kB fit 32 KiB");
        let huge = to_send(&vec!["z".repeat(MAX_BYTES * 2); 3]);
        assert_eq!(
            count(&huge, 64),
            1,
            "one signal goes alone, whatever its size"
        );
    }

    #[test]
    fn a_request_ends_before_a_signal_not_to_send() {
        let mut rest = to_send(&vec![r#"{"seq":0}"#.to_string(); 4]);
        rest[2].1 = Stamped::OtherGroup("old".into());
        let r = Request::starting(&rest, 64).unwrap();
        assert_eq!((r.seqs, r.last), (vec![1, 2], 2));
        assert!(Request::starting(&rest[2..], 64).is_none());
    }

    #[test]
    fn one_signal_is_sent_as_itself_and_several_as_an_array() {
        let one = to_send(&[r#"{"seq":1}"#.to_string()]);
        assert_eq!(Request::starting(&one, 64).unwrap().body, r#"{"seq":1}"#);
        let two = to_send(&[r#"{"seq":1}"#.to_string(), r#"{"seq":2}"#.to_string()]);
        let v: serde_json::Value =
            serde_json::from_str(&Request::starting(&two, 64).unwrap().body).unwrap();
        assert_eq!(v[1]["seq"], 2);
    }

    #[test]
    fn refusals_shrink_the_request_until_one_signal_is_refused_for_good() {
        let mut s = Sizing::new(1000);
        assert_eq!(s.limit(1), MAX_SIGNALS);
        assert!(s.too_large(64));
        assert_eq!(s.limit(1), 32);
        assert!(s.refused(32, 40), "content refused: one by one");
        assert_eq!(s.limit(40), 1);
        assert_eq!(s.limit(41), 32, "past the refused run, batches again");
        assert!(!s.refused(1, 40), "a single signal is refused for good");
        assert!(!s.too_large(1));
        assert_eq!(
            Sizing::new(10).limit(1),
            10,
            "never more than a second's worth"
        );
    }

    #[test]
    fn an_answer_must_name_every_seq_sent() {
        let answer = r#"{"applied":2,"results":[{"seq":7,"outcome":"applied"},{"seq":8,"outcome":"duplicate"}]}"#;
        assert!(answers_all(answer, &[7, 8]));
        assert!(!answers_all(answer, &[7, 8, 9]));
        assert!(!answers_all("<html>ok</html>", &[7]));
    }
}
