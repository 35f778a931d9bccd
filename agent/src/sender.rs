//! Delivers the outbox to the coordinator: oldest first, at least once, at a bounded rate, with
//! exponential backoff and jitter while the coordinator is unreachable.
//!
//! A signal leaves the outbox's pending set only when the coordinator acknowledged it (2xx), or
//! when it refused its content for good (400, 413, 422), which is logged with the seq; it then
//! stays in the table for audit until retention.

use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread::JoinHandle;
use std::time::Duration;

use anyhow::{Context, bail};

use crate::config::Config;
use crate::store::Reader;

/// Stops the sender thread.
pub struct SenderHandle {
    stop: Arc<AtomicBool>,
    thread: JoinHandle<()>,
}

impl SenderHandle {
    /// Asks the thread to stop and waits for it (at most one request timeout).
    pub fn stop(self) {
        self.stop.store(true, Ordering::Relaxed);
        self.thread.thread().unpark();
        let _ = self.thread.join();
    }
}

/// Reads a token file, refusing one that other users may read.
pub fn read_token(path: &Path) -> anyhow::Result<String> {
    let meta = std::fs::metadata(path)
        .with_context(|| format!("reading token file {}", path.display()))?;
    if meta.mode() & 0o004 != 0 {
        bail!(
            "token file {} is readable by every user; chmod o-r it",
            path.display()
        );
    }
    let token = std::fs::read_to_string(path)
        .with_context(|| format!("reading token file {}", path.display()))?;
    let token = token.trim().to_string();
    if token.is_empty() {
        bail!("token file {} is empty", path.display());
    }
    Ok(token)
}

/// Starts the sender when a coordinator is configured.
pub fn spawn(cfg: &Config, db: &Path) -> anyhow::Result<Option<SenderHandle>> {
    if cfg.coordinator.urls.is_empty() {
        tracing::info!("no coordinator configured: running standalone");
        return Ok(None);
    }
    let token_file = PathBuf::from(&cfg.coordinator.token_file);
    // Fail at start-up on an unreadable token rather than retrying forever.
    read_token(&token_file)?;
    let stop = Arc::new(AtomicBool::new(false));
    let mut sender = Sender {
        urls: cfg.coordinator.urls.clone(),
        token_file,
        timeout: cfg.coordinator.timeout,
        rate: cfg.coordinator.max_send_rate.max(1),
        db: db.to_path_buf(),
        stop: stop.clone(),
    };
    let thread = std::thread::Builder::new()
        .name("signal-sender".into())
        .spawn(move || sender.run())
        .context("starting the signal sender")?;
    Ok(Some(SenderHandle { stop, thread }))
}

struct Sender {
    urls: Vec<String>,
    token_file: PathBuf,
    timeout: Duration,
    rate: u32,
    db: PathBuf,
    stop: Arc<AtomicBool>,
}

/// What became of one delivery attempt.
enum Outcome {
    Acknowledged,
    Refused(String),
    Retry(String),
}

impl Sender {
    fn sleep(&self, d: Duration) {
        if !self.stop.load(Ordering::Relaxed) {
            std::thread::park_timeout(d);
        }
    }

    fn run(&mut self) {
        let agent = ureq::Agent::config_builder()
            .timeout_global(Some(self.timeout))
            .http_status_as_error(false)
            .build()
            .new_agent();
        let mut backoff = Duration::ZERO;
        let mut reader: Option<Reader> = None;
        let mut token: Option<String> = None;
        let gap = Duration::from_secs_f64(1.0 / self.rate as f64);
        while !self.stop.load(Ordering::Relaxed) {
            if reader.is_none() {
                reader = Reader::open(&self.db)
                    .map_err(|e| tracing::warn!(error = %e, db = %self.db.display(), "outbox: opening the database failed"))
                    .ok();
            }
            let Some(r) = reader.as_ref() else {
                self.sleep(Duration::from_secs(5));
                continue;
            };
            let pending = match r.pending(self.rate as usize) {
                Ok(p) => p,
                Err(e) => {
                    tracing::warn!(error = %e, "outbox: reading pending signals failed");
                    self.sleep(Duration::from_secs(1));
                    continue;
                }
            };
            if pending.is_empty() {
                self.sleep(Duration::from_secs(1));
                continue;
            }
            for (seq, payload) in pending {
                if self.stop.load(Ordering::Relaxed) {
                    return;
                }
                if token.is_none() {
                    match read_token(&self.token_file) {
                        Ok(t) => token = Some(t),
                        Err(e) => {
                            tracing::error!(error = %e, "outbox: no token; signals wait");
                            self.sleep(Duration::from_secs(10));
                            break;
                        }
                    }
                }
                let body = match stamp(&payload) {
                    Ok(b) => b,
                    Err(e) => {
                        tracing::error!(seq, error = %e, "outbox: stored signal unreadable; skipped");
                        let _ = r.mark_delivered(&[seq], now_unix());
                        continue;
                    }
                };
                match self.deliver(&agent, token.as_deref().unwrap_or(""), &body) {
                    Outcome::Acknowledged => {
                        if backoff > Duration::ZERO {
                            tracing::info!(seq, "coordinator reachable again: draining the outbox");
                        }
                        backoff = Duration::ZERO;
                        if let Err(e) = r.mark_delivered(&[seq], now_unix()) {
                            tracing::warn!(seq, error = %e, "outbox: marking delivered failed; will resend");
                        }
                        self.sleep(gap);
                    }
                    Outcome::Refused(why) => {
                        tracing::error!(seq, reason = %why, "coordinator refused a signal for good; kept for audit");
                        let _ = r.mark_delivered(&[seq], now_unix());
                    }
                    Outcome::Retry(why) => {
                        let _ = r.mark_attempt(seq);
                        if why.contains("401") || why.contains("403") {
                            token = None;
                        }
                        backoff = next_backoff(backoff);
                        if backoff <= Duration::from_secs(1) || backoff >= Duration::from_secs(60) {
                            tracing::warn!(seq, reason = %why, retry_in_ms = backoff.as_millis() as u64, "coordinator unreachable; signals wait in the outbox");
                        }
                        self.sleep(backoff);
                        break;
                    }
                }
            }
        }
    }

    fn deliver(&self, agent: &ureq::Agent, token: &str, body: &str) -> Outcome {
        let mut last = String::new();
        for base in &self.urls {
            let url = format!("{}/v1/signals", base.trim_end_matches('/'));
            let resp = agent
                .post(&url)
                .header("Authorization", &format!("Bearer {token}"))
                .header("Content-Type", "application/json")
                .send(body);
            match resp {
                Ok(r) => {
                    let code = r.status().as_u16();
                    match code {
                        200..=299 => return Outcome::Acknowledged,
                        400 | 413 | 422 => {
                            return Outcome::Refused(format!("HTTP {code} from {url}"));
                        }
                        _ => last = format!("HTTP {code} from {url}"),
                    }
                }
                Err(e) => last = format!("{url}: {e}"),
            }
        }
        Outcome::Retry(last)
    }
}

/// Sets `sent_at` on a stored signal, leaving every other field as stored: a row written by
/// another version of the agent is sent as it was, for the coordinator to judge.
fn stamp(payload: &str) -> anyhow::Result<String> {
    let mut s: serde_json::Map<String, serde_json::Value> = serde_json::from_str(payload)?;
    s.insert("sent_at".into(), now_unix().into());
    Ok(serde_json::to_string(&s)?)
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

fn now_unix() -> f64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs_f64())
        .unwrap_or(0.0)
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

    #[test]
    fn stamping_keeps_fields_this_version_does_not_know() {
        let stored = r#"{"version":1,"seq":7,"sent_at":0.0,"field_of_a_later_version":[1,2]}"#;
        let v: serde_json::Value = serde_json::from_str(&stamp(stored).unwrap()).unwrap();
        assert_eq!(v["seq"], 7);
        assert_eq!(v["field_of_a_later_version"], serde_json::json!([1, 2]));
        assert!(v["sent_at"].as_f64().unwrap() > 1.0e9);
    }

    #[test]
    fn world_readable_tokens_are_refused() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("token");
        std::fs::write(&p, "secret\n").unwrap();
        std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o644)).unwrap();
        let e = read_token(&p).unwrap_err().to_string();
        assert!(e.contains("readable by every user"), "{e}");
        assert!(!e.contains("secret"));
        std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o600)).unwrap();
        assert_eq!(read_token(&p).unwrap(), "secret");
    }
}
