//! Delivers the outbox to every coordinator replica configured: to each, oldest first, at least
//! once, at a bounded rate, a backlog in batches ([`batch`] says how), with exponential backoff
//! and jitter while it is unreachable.
//!
//! One thread per destination, each with its own cursor, so a replica that is down never holds
//! back the others and catches up when it returns; a destination new to the store starts from
//! the oldest signal retained, so a new replica refills its history. A destination is done
//! with a signal when it acknowledged it (200 with a result for it), or refused it for good
//! (400, 413, 422 to a request of that signal alone, logged with the seq); the signal leaves
//! the outbox's pending set when every destination is, and stays in the table for audit until
//! retention. The threads read the outbox on read-only connections ([`Outbox`]) and write
//! nothing themselves: what became of each signal goes to the store writer, the database's one
//! writer, as a [`Delivery`], at least once a second.
//!
//! A signal of another group than the host's is done with unsent. It was made before the host
//! moved (the group changes at a restart), and the token the host holds is its new group's,
//! which need not open the old one: a coordinator that refuses it (401) refuses it at every
//! try, and the signals behind it would wait for ever. Each run of skipped signals is logged
//! once, with its group, how many and their seqs.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::SyncSender;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use anyhow::Context;
use headroom_common::clock::unix_now;
use headroom_common::signal::ErrorAnswer;
use headroom_common::token::Token;

use crate::config::Config;
use crate::pipeline::{ReplicaLink, Shared, WriterMsg};
use crate::store::{Batch, Delivery, Outbox, aside};
use batch::{Pending, Request, Sizing};

mod batch;

/// Stops the sender's threads.
pub struct SenderHandle {
    stop: Arc<AtomicBool>,
    threads: Vec<JoinHandle<()>>,
}

impl SenderHandle {
    /// Asks the threads to stop and waits for them (at most one request timeout).
    pub fn stop(self) {
        self.stop.store(true, Ordering::Relaxed);
        for t in &self.threads {
            t.thread().unpark();
        }
        for t in self.threads {
            let _ = t.join();
        }
    }
}

/// Starts the sender when a coordinator is configured; what becomes of each signal goes to
/// the store writer through `writer`.
pub fn spawn(
    cfg: &Config,
    db: &Path,
    writer: SyncSender<WriterMsg>,
    shared: Arc<Shared>,
) -> anyhow::Result<Option<SenderHandle>> {
    if cfg.coordinator.urls.is_empty() {
        tracing::info!("no coordinator configured: running standalone");
        return Ok(None);
    }
    let token_file = PathBuf::from(&cfg.coordinator.token_file);
    // The configuration's own check read it at start; a bad one now (rotated since) is
    // reported by the loop, and signals wait in the outbox.
    let tls = if cfg.coordinator.ca_cert.is_empty() {
        None
    } else {
        let ca = Path::new(&cfg.coordinator.ca_cert);
        Some(headroom_common::tls::trusting(ca).context("coordinator.ca_cert")?)
    };
    let stop = Arc::new(AtomicBool::new(false));
    // A destination new to the store starts at the oldest signal retained; one no longer
    // configured stops holding signals in the pending set.
    let registration = Batch {
        destinations: Some(cfg.coordinator.urls.clone()),
        ..Batch::default()
    };
    if writer
        .send(WriterMsg::Batch(Box::new(registration)))
        .is_err()
    {
        anyhow::bail!("the store writer stopped before the sender started");
    }
    shared.lock().replicas = cfg
        .coordinator
        .urls
        .iter()
        .map(|url| ReplicaLink {
            url: url.clone(),
            waiting_since: None,
            error: None,
            refused: 0,
        })
        .collect();
    let mut threads = Vec::new();
    for (i, url) in cfg.coordinator.urls.iter().enumerate() {
        let mut sender = Sender {
            url: Arc::from(url.as_str()),
            token_file: token_file.clone(),
            tls: tls.clone(),
            timeout: cfg.coordinator.timeout,
            rate: cfg.coordinator.max_send_rate.max(1),
            db: db.to_path_buf(),
            writer: writer.clone(),
            stop: stop.clone(),
            shared: shared.clone(),
            group: Arc::from(cfg.agent.group.as_str()),
            waiting: false,
        };
        let thread = std::thread::Builder::new()
            .name(format!("signal-sender-{i}"))
            .spawn(move || sender.run())
            .context("starting the signal sender")?;
        threads.push(thread);
    }
    Ok(Some(SenderHandle { stop, threads }))
}

/// The sender of one destination.
struct Sender {
    url: Arc<str>,
    token_file: PathBuf,
    /// Roots to check an https coordinator against, when not the built-in ones.
    tls: Option<ureq::tls::TlsConfig>,
    timeout: Duration,
    rate: u32,
    db: PathBuf,
    writer: SyncSender<WriterMsg>,
    stop: Arc<AtomicBool>,
    /// Where health and `/metrics` read whether this replica takes the signals.
    shared: Arc<Shared>,
    /// The group the host belongs to now: only its signals are sent.
    group: Arc<str>,
    /// Whether its signals wait now (as last published).
    waiting: bool,
}

/// What became of one request.
enum Outcome {
    /// The destination took every signal of it (200 with a result for each).
    Acknowledged,
    /// The coordinator refused its content (400, 422).
    Refused(String),
    /// The coordinator refused it as too large (413).
    TooLarge(String),
    /// A coordinator's answer (200) without a result for every signal of it: one by one, each
    /// is answered or waits on its own.
    Partial(String),
    /// The coordinator is older than a signal of it (501): worth another try once it is
    /// upgraded; one by one, the signals it knows go now.
    Newer(String),
    /// Worth another try: unreachable, 5xx, 408, a redirect, an answer not the coordinator's.
    Retry(String),
    /// Worth another try with the token read again (401, 403: it may have been rotated).
    TokenRefused(String),
}

impl Sender {
    fn sleep(&self, d: Duration) {
        if !d.is_zero() && !self.stopping() {
            std::thread::park_timeout(d);
        }
    }

    fn run(&mut self) {
        // A redirect is not followed: a POST turned into a GET by it, without the token,
        // answered 200 by whatever page it leads to, would count as delivered.
        let mut config = ureq::Agent::config_builder()
            .timeout_global(Some(self.timeout))
            .http_status_as_error(false)
            .max_redirects(0);
        if let Some(tls) = &self.tls {
            config = config.tls_config(tls.clone());
        }
        let agent = config.build().new_agent();
        let mut backoff = Duration::ZERO;
        let mut outbox: Option<Outbox> = None;
        let mut token: Option<Token> = None;
        // The newest seq this run finished with: its outcome is on its way to the writer, and
        // until that commits the stored cursor lags.
        let mut after = None;
        let mut done = Vec::new();
        let mut skipped = OtherGroups::default();
        let mut sizing = Sizing::new(self.rate);
        let mut recorded = Instant::now();
        let gap = Duration::from_secs_f64(1.0 / self.rate as f64);
        while !self.stopping() {
            if outbox.is_none() {
                outbox = Outbox::open(&self.db)
                    .map_err(|e| {
                        aside::mark_if_damaged(&self.db, &e);
                        tracing::warn!(error = %e, db = %self.db.display(), "outbox: opening the database failed");
                    })
                    .ok();
            }
            let Some(o) = outbox.as_ref() else {
                self.sleep(Duration::from_secs(5));
                continue;
            };
            let from = match after {
                Some(seq) => Ok(seq),
                None => o.acked(&self.url),
            };
            let pending = match from.and_then(|seq| o.pending(seq, batch::MAX_SIGNALS)) {
                Ok(p) => p,
                Err(e) => {
                    // Damage here holds every signal back for good: marked, the next start
                    // sets the file aside.
                    aside::mark_if_damaged(&self.db, &e);
                    tracing::warn!(error = %e, "outbox: reading pending signals failed");
                    self.sleep(Duration::from_secs(1));
                    continue;
                }
            };
            if pending.is_empty() {
                self.record(&mut done);
                recorded = Instant::now();
                skipped.log(&self.group, &self.url);
                self.sleep(Duration::from_secs(1));
                continue;
            }
            let caught_up = pending.len() < batch::MAX_SIGNALS;
            // What each stored signal is to this host: to send, or why not.
            let signals: Vec<(u64, Pending)> = pending
                .into_iter()
                .map(|(seq, payload)| (seq, Pending::of(&payload, &self.group)))
                .collect();
            let mut wait = Duration::ZERO;
            let mut i = 0;
            while i < signals.len() && !self.stopping() {
                let seq = signals[i].0;
                let unsent = match &signals[i].1 {
                    Pending::OtherGroup(group) => {
                        skipped.note(group.clone(), seq);
                        true
                    }
                    Pending::Unreadable(why) => {
                        skipped.log(&self.group, &self.url);
                        tracing::error!(seq, error = %why, "outbox: stored signal unreadable; skipped");
                        true
                    }
                    Pending::Send(_) => {
                        skipped.log(&self.group, &self.url);
                        false
                    }
                };
                if unsent {
                    // Done with unsent.
                    done.push(self.delivered(seq));
                    after = Some(seq);
                    i += 1;
                    continue;
                }
                // Read only for a signal to send: one of another group needs none.
                if token.is_none() {
                    match Token::read(&self.token_file) {
                        Ok(t) => token = Some(t),
                        Err(e) => {
                            tracing::error!(error = %e, "outbox: no token; signals wait");
                            self.publish(Some(format!("no token: {e}")));
                            wait = Duration::from_secs(10);
                            break;
                        }
                    }
                }
                let limit = sizing.limit(seq, Instant::now());
                let Some(request) = Request::starting(&signals[i..], limit, unix_now()) else {
                    break;
                };
                let (seqs, n, last) = (&request.seqs, request.seqs.len(), request.last);
                let token_str = token.as_ref().map_or("", Token::as_str);
                match self.deliver(&agent, token_str, &request.body, seqs) {
                    Outcome::Acknowledged => {
                        if backoff > Duration::ZERO {
                            tracing::info!(seq, url = %self.url, "coordinator reachable again: catching up from the outbox");
                        }
                        backoff = Duration::ZERO;
                        self.publish(None);
                        done.extend(seqs.iter().map(|&s| self.delivered(s)));
                        after = Some(last);
                        i += n;
                        self.sleep(gap * n as u32);
                    }
                    Outcome::TooLarge(why) if sizing.too_large(n, Instant::now()) => {
                        tracing::info!(seq, signals = n, url = %self.url, reason = %why, "coordinator refused a batch as too large; sending smaller ones");
                    }
                    Outcome::Refused(why) | Outcome::Partial(why) | Outcome::Newer(why)
                        if sizing.refused(n, last) =>
                    {
                        tracing::warn!(seq, last, url = %self.url, reason = %why, "coordinator refused a batch; sending its signals one by one");
                    }
                    Outcome::Refused(why) | Outcome::TooLarge(why) => {
                        self.publish(None);
                        self.count_refused();
                        tracing::error!(seq, url = %self.url, reason = %why, "coordinator refused a signal for good; kept for audit");
                        done.push(self.delivered(seq));
                        after = Some(seq);
                        i += 1;
                    }
                    Outcome::TokenRefused(why) => {
                        // It may have been rotated: read again for the next try.
                        token = None;
                        wait = self.retry_later(&why, seqs, &mut backoff, &mut done);
                        break;
                    }
                    Outcome::Retry(why) | Outcome::Partial(why) | Outcome::Newer(why) => {
                        wait = self.retry_later(&why, seqs, &mut backoff, &mut done);
                        break;
                    }
                }
            }
            // Outcomes reach the writer at least once a second, not after every read: a
            // backlog drained at a thousand signals a second would otherwise commit (and sync)
            // the store fifteen times a second. The cursor in memory covers the lag.
            if caught_up || !wait.is_zero() || recorded.elapsed() >= RECORD_EVERY {
                self.record(&mut done);
                recorded = Instant::now();
            }
            self.sleep(wait);
        }
        self.record(&mut done);
        skipped.log(&self.group, &self.url);
    }

    /// Records a failed try of `seqs` and publishes why; the backoff before the next.
    fn retry_later(
        &mut self,
        why: &str,
        seqs: &[u64],
        backoff: &mut Duration,
        done: &mut Vec<Delivery>,
    ) -> Duration {
        self.publish(Some(why.to_string()));
        done.extend(seqs.iter().map(|&seq| Delivery::Failed { seq }));
        *backoff = next_backoff(*backoff);
        if *backoff <= Duration::from_secs(1) || *backoff >= Duration::from_secs(60) {
            tracing::warn!(seq = seqs.first(), url = %self.url, reason = %why, retry_in_ms = backoff.as_millis() as u64, "coordinator unreachable; signals wait in the outbox");
        }
        *backoff
    }

    fn delivered(&self, seq: u64) -> Delivery {
        Delivery::Delivered {
            destination: self.url.clone(),
            seq,
            at: unix_now(),
        }
    }

    /// Publishes whether this replica's signals wait (`Some(why)`) or are taken (`None`): the
    /// first failure since a success stamps the time, later ones only the reason.
    fn publish(&mut self, error: Option<String>) {
        if error.is_none() && !self.waiting {
            return;
        }
        self.waiting = error.is_some();
        let mut snap = self.shared.lock();
        if let Some(link) = snap.replicas.iter_mut().find(|l| *l.url == *self.url) {
            if error.is_none() {
                link.waiting_since = None;
            } else if link.waiting_since.is_none() {
                link.waiting_since = Some(unix_now());
            }
            link.error = error;
        }
    }

    /// Counts a signal this replica refused for good, for `/metrics`.
    fn count_refused(&self) {
        let mut snap = self.shared.lock();
        if let Some(link) = snap.replicas.iter_mut().find(|l| *l.url == *self.url) {
            link.refused += 1;
        }
    }

    fn stopping(&self) -> bool {
        self.stop.load(Ordering::Relaxed)
    }

    /// Hands the outcomes gathered so far to the store writer.
    fn record(&self, done: &mut Vec<Delivery>) {
        if done.is_empty() {
            return;
        }
        let batch = Batch {
            deliveries: std::mem::take(done),
            ..Batch::default()
        };
        if self.writer.send(WriterMsg::Batch(Box::new(batch))).is_err() {
            tracing::warn!(
                "outbox: the store writer has stopped; these signals are sent again after a restart"
            );
        }
    }

    /// Sends one request of the signals `seqs`. Delivered only when the coordinator answers 200
    /// with its ingest answer for every one of them: any other 2xx, a redirect, is something
    /// else answering (a proxy's page, a login) and the signals wait.
    fn deliver(&self, agent: &ureq::Agent, token: &str, body: &str, seqs: &[u64]) -> Outcome {
        let url = format!("{}/v1/signals", self.url.trim_end_matches('/'));
        let resp = agent
            .post(&url)
            .header("Authorization", &format!("Bearer {token}"))
            .header("Content-Type", "application/json")
            .send(body);
        let mut r = match resp {
            Ok(r) => r,
            Err(e) => return Outcome::Retry(format!("{url}: {e}")),
        };
        let code = r.status().as_u16();
        let location = r
            .headers()
            .get("location")
            .and_then(|v| v.to_str().ok())
            .map(str::to_string);
        let answer = r
            .body_mut()
            .with_config()
            .limit(MAX_ANSWER)
            .read_to_string()
            .unwrap_or_default();
        let answered = if code == 200 {
            batch::answered(&answer, seqs)
        } else {
            None
        };
        match code {
            200 if answered == Some(true) => Outcome::Acknowledged,
            200 if answered == Some(false) => Outcome::Partial(format!(
                "HTTP 200 from {url} without a result for every signal of the request"
            )),
            200..=299 => Outcome::Retry(format!(
                "HTTP {code} from {url} without a coordinator's answer for the signal: is this \
                 URL the coordinator?"
            )),
            300..=399 => Outcome::Retry(format!(
                "HTTP {code} from {url}, a redirect to {}: redirects are not followed, \
                 coordinator.urls must name the coordinator itself",
                location.as_deref().unwrap_or("nowhere")
            )),
            400 | 422 => Outcome::Refused(format!("HTTP {code} from {url}: {}", error_of(&answer))),
            413 => Outcome::TooLarge(format!("HTTP {code} from {url}: {}", error_of(&answer))),
            401 | 403 => {
                Outcome::TokenRefused(format!("HTTP {code} from {url}: {}", error_of(&answer)))
            }
            501 => Outcome::Newer(format!("HTTP {code} from {url}: {}", error_of(&answer))),
            _ => Outcome::Retry(format!("HTTP {code} from {url}: {}", error_of(&answer))),
        }
    }
}

/// How often, at the least, outcomes go to the store writer while a backlog drains.
const RECORD_EVERY: Duration = Duration::from_secs(1);

/// The longest answer read, bytes: an ingest answer holds a short result per signal, each
/// smaller than the signal, and a request of several is at most [`batch::MAX_BYTES`].
const MAX_ANSWER: u64 = 64 * 1024;

/// The coordinator's reason in an error answer, or the start of the body.
fn error_of(answer: &str) -> String {
    ErrorAnswer::reason_in(answer).unwrap_or_else(|| answer.chars().take(200).collect())
}

/// Signals of other groups than the host's, skipped since the last log line: per group, how
/// many and the seqs of the first and the last. A run of them is logged once, however many
/// batches it spans.
#[derive(Default)]
struct OtherGroups(std::collections::BTreeMap<String, (u64, u64, u64)>);

impl OtherGroups {
    fn note(&mut self, group: String, seq: u64) {
        let e = self.0.entry(group).or_insert((0, seq, seq));
        e.0 += 1;
        e.2 = seq;
    }

    /// One line per group skipped, then forgets them.
    fn log(&mut self, now: &str, url: &str) {
        for (group, (count, first, last)) in std::mem::take(&mut self.0) {
            tracing::warn!(%url, %group, count, first, last, host_group = %now, "outbox: signals of a group this host has left are not sent (its token is the new group's)");
        }
    }
}

/// Exponential backoff from 250 ms to 60 s with full jitter on the upper half.
fn next_backoff(prev: Duration) -> Duration {
    let base = if prev.is_zero() {
        Duration::from_millis(250)
    } else {
        (prev * 2).min(Duration::from_secs(60))
    };
    let half = base / 2;
    half + Duration::from_secs_f64(half.as_secs_f64() * fastrand::f64())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_grows_with_jitter_and_is_capped() {
        let mut b = Duration::ZERO;
        for _ in 0..20 {
            let n = next_backoff(b);
            assert!(n >= Duration::from_millis(125));
            assert!(n <= Duration::from_secs(60));
            b = n;
        }
        assert!(b >= Duration::from_secs(15), "{b:?}");
    }
}
