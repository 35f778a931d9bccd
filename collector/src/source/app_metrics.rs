//! Application gauges from one local Prometheus text endpoint.
//!
//! HTTP is slow, variable I/O, so it never runs on the sampler thread: a reader thread polls the
//! endpoint (plain HTTP on loopback, short timeout) once per interval and publishes the latest
//! values and the time of the read into [`AppShared`]. The sampler takes them with `try_lock`:
//! if the reader happens to hold the lock that instant, the sampler reuses its previous copy, so
//! it never waits. An unreachable endpoint sets the source to Disabled (one warning), keeps
//! being retried, and is never fatal.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc::{Receiver, RecvTimeoutError, Sender};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use super::SourceError;
use crate::parse::{fields, lines, parse_f64};
use crate::sample::{AppGauge, MAX_APP_GAUGES, ShortName, SourceState};

/// Largest body read from the endpoint.
const MAX_BODY: u64 = 8 * 1024 * 1024;

/// The latest values read by the reader thread.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub(crate) struct AppSnapshot {
    pub(crate) values: [f64; MAX_APP_GAUGES],
    /// Bit i set: gauge i was present in the last good read.
    pub(crate) found: u8,
    /// When the last good read finished.
    pub(crate) read_at: Option<Instant>,
}

/// What the reader thread shares with the sampler.
#[derive(Debug, Default)]
pub(crate) struct AppShared {
    snapshot: Mutex<AppSnapshot>,
    state: Mutex<Option<SourceState>>,
    /// Bumped on every state change so the sampler copies the state only then.
    state_gen: AtomicU64,
}

impl AppShared {
    fn set_state(&self, s: SourceState) {
        if let Ok(mut g) = self.state.lock()
            && g.as_ref() != Some(&s)
        {
            match &s {
                SourceState::Disabled { reason } => {
                    tracing::warn!(source = "app_metrics", %reason, "source disabled")
                }
                SourceState::Ok => tracing::info!(source = "app_metrics", "source enabled"),
                SourceState::Off => {}
            }
            *g = Some(s);
            self.state_gen.fetch_add(1, Ordering::Release);
        }
    }
}

/// Where a series' name and labels end within a Prometheus text line (labels may hold quoted
/// `}` and escaped quotes).
fn series_end(line: &[u8]) -> Option<usize> {
    let name_end = line
        .iter()
        .position(|&b| b == b'{' || b.is_ascii_whitespace())?;
    if line[name_end] != b'{' {
        return Some(name_end);
    }
    let (mut in_quote, mut escaped) = (false, false);
    for (i, &b) in line.iter().enumerate().skip(name_end + 1) {
        match (in_quote, escaped, b) {
            (true, true, _) => escaped = false,
            (true, false, b'\\') => escaped = true,
            (true, false, b'"') => in_quote = false,
            (false, _, b'"') => in_quote = true,
            (false, _, b'}') => return Some(i + 1),
            _ => {}
        }
    }
    None
}

/// Reads the `wanted` series from a Prometheus text body. A wanted name with labels
/// (`q{pool="a"}`) must match a series exactly; a bare name sums every series of that metric.
pub(crate) fn parse_prometheus(body: &[u8], wanted: &[String], out: &mut AppSnapshot) {
    out.values = [0.0; MAX_APP_GAUGES];
    out.found = 0;
    for line in lines(body) {
        let line = line.trim_ascii_start();
        if line.is_empty() || line[0] == b'#' {
            continue;
        }
        let Some(end) = series_end(line) else {
            continue;
        };
        let series = &line[..end];
        let name = series.split(|&b| b == b'{').next().unwrap_or(series);
        // NaN and ±Inf are valid exposition values (an empty summary's quantile) but no
        // measure of load: the gauge reads as absent rather than poisoning sums and rollups.
        let Some(value) = fields(&line[end..])
            .next()
            .and_then(parse_f64)
            .filter(|v| v.is_finite())
        else {
            continue;
        };
        for (i, w) in wanted.iter().take(MAX_APP_GAUGES).enumerate() {
            let w = w.as_bytes();
            let hit = if w.contains(&b'{') {
                w == series
            } else {
                w == name
            };
            if hit {
                out.values[i] += value;
                out.found |= 1 << i;
            }
        }
    }
}

/// Whether `url` is plain HTTP to a loopback address.
pub fn is_loopback_http(url: &str) -> bool {
    let Some(rest) = url.strip_prefix("http://") else {
        return false;
    };
    let host_port = rest.split(['/', '?', '#']).next().unwrap_or("");
    // Host and port only: user info (`127.0.0.1:80@elsewhere`) would send the request to the
    // host after the `@`.
    let plain = |c: char| c.is_ascii_alphanumeric() || matches!(c, '.' | ':' | '[' | ']' | '-');
    if !host_port.chars().all(plain) {
        return false;
    }
    let host = if let Some(v6) = host_port.strip_prefix('[') {
        v6.split(']').next().unwrap_or("")
    } else {
        host_port.split(':').next().unwrap_or("")
    };
    host == "localhost"
        || host
            .parse::<std::net::IpAddr>()
            .is_ok_and(|ip| ip.is_loopback())
}

/// The reader thread and the sampler's view of its results.
#[derive(Debug)]
pub(crate) struct AppSource {
    shared: Arc<AppShared>,
    names: [ShortName; MAX_APP_GAUGES],
    count: usize,
    last: AppSnapshot,
    seen_gen: u64,
    /// Dropping this (with the source) tells the reader to exit. The reader is not joined: it
    /// may be inside a request for up to its timeout, and stopping the sampler must not wait
    /// for that; it exits right after.
    _stop: Sender<()>,
    _thread: Option<JoinHandle<()>>,
}

impl AppSource {
    /// Starts the reader thread polling `endpoint` every `every`.
    pub(crate) fn spawn(
        endpoint: &str,
        gauges: &[String],
        every: Duration,
        timeout: Duration,
    ) -> std::io::Result<Self> {
        let shared = Arc::new(AppShared::default());
        let mut names = [ShortName::default(); MAX_APP_GAUGES];
        for (slot, g) in names.iter_mut().zip(gauges) {
            *slot = ShortName::new(g);
        }
        let count = gauges.len().min(MAX_APP_GAUGES);
        if gauges.len() > MAX_APP_GAUGES {
            tracing::warn!(
                max = MAX_APP_GAUGES,
                "too many app gauges configured; extra ignored"
            );
        }
        let (tx, rx) = std::sync::mpsc::channel();
        let mut src = AppSource {
            shared: Arc::clone(&shared),
            names,
            count,
            last: AppSnapshot::default(),
            seen_gen: 0,
            _stop: tx,
            _thread: None,
        };
        if !is_loopback_http(endpoint) {
            let reason = format!("{endpoint}: not a plain http loopback endpoint");
            shared.set_state(SourceState::Disabled { reason });
            return Ok(src);
        }
        let wanted: Vec<String> = gauges.iter().take(MAX_APP_GAUGES).cloned().collect();
        let url = endpoint.to_string();
        let thread = std::thread::Builder::new()
            .name("headroom-app-metrics".into())
            .spawn(move || reader(&url, &wanted, every, timeout, &shared, &rx))?;
        src._thread = Some(thread);
        Ok(src)
    }

    /// The current state when it changed since the last call (allocates only then).
    pub(crate) fn state_change(&mut self) -> Option<SourceState> {
        let g = self.shared.state_gen.load(Ordering::Acquire);
        if g == self.seen_gen {
            return None;
        }
        self.seen_gen = g;
        self.shared.state.lock().ok().and_then(|s| s.clone())
    }

    /// Copies the latest values into `out` without waiting; returns whether they are fresh
    /// from a good read (`app_age` is set whenever any read ever succeeded).
    pub(crate) fn read(
        &mut self,
        now: Instant,
        ok: bool,
        out: &mut [AppGauge; MAX_APP_GAUGES],
        count: &mut u8,
        age: &mut Option<Duration>,
    ) -> bool {
        if let Ok(s) = self.shared.snapshot.try_lock() {
            self.last = *s;
        }
        *age = self.last.read_at.map(|t| now.saturating_duration_since(t));
        let mut n = 0;
        for i in 0..self.count {
            if self.last.found & (1 << i) != 0 {
                out[n] = AppGauge {
                    name: self.names[i],
                    value: self.last.values[i],
                };
                n += 1;
            }
        }
        *count = n as u8;
        ok && self.last.read_at.is_some()
    }
}

fn fetch(agent: &ureq::Agent, url: &str) -> Result<Vec<u8>, SourceError> {
    let mut resp = agent
        .get(url)
        .call()
        .map_err(|e| SourceError::App(format!("{url}: {e}")))?;
    resp.body_mut()
        .with_config()
        .limit(MAX_BODY)
        .read_to_vec()
        .map_err(|e| SourceError::App(format!("{url}: {e}")))
}

fn reader(
    url: &str,
    wanted: &[String],
    every: Duration,
    timeout: Duration,
    shared: &AppShared,
    stop: &Receiver<()>,
) {
    let agent: ureq::Agent = ureq::Agent::config_builder()
        .timeout_global(Some(timeout))
        .max_redirects(0)
        .http_status_as_error(true)
        .build()
        .into();
    let mut snap = AppSnapshot::default();
    loop {
        let started = Instant::now();
        match fetch(&agent, url) {
            Ok(body) => {
                parse_prometheus(&body, wanted, &mut snap);
                snap.read_at = Some(Instant::now());
                if let Ok(mut s) = shared.snapshot.lock() {
                    *s = snap;
                }
                if snap.found == 0 && !wanted.is_empty() {
                    let reason = format!("{url}: none of the configured gauges found");
                    shared.set_state(SourceState::Disabled { reason });
                } else {
                    shared.set_state(SourceState::Ok);
                }
            }
            Err(e) => shared.set_state(SourceState::Disabled {
                reason: e.to_string(),
            }),
        }
        let wait = every.saturating_sub(started.elapsed());
        match stop.recv_timeout(wait) {
            Err(RecvTimeoutError::Timeout) => {}
            Ok(()) | Err(RecvTimeoutError::Disconnected) => return,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    const BODY: &[u8] = br#"# HELP http_requests_in_flight Requests being served.
# TYPE http_requests_in_flight gauge
http_requests_in_flight{handler="/a"} 3
http_requests_in_flight{handler="/b {x}"} 4
queue_depth{pool="a"} 7 1700000000000
queue_depth{pool="b"} 1
up 1
"#;

    #[test]
    fn sums_series_or_matches_labels() {
        let wanted = [
            "http_requests_in_flight".to_string(),
            r#"queue_depth{pool="a"}"#.into(),
            "nope".into(),
        ];
        let mut s = AppSnapshot::default();
        parse_prometheus(BODY, &wanted, &mut s);
        assert_eq!(s.values[0], 7.0);
        assert_eq!(s.values[1], 7.0);
        assert_eq!(s.found, 0b011);
    }

    #[test]
    fn non_finite_values_read_as_absent() {
        let body = b"a NaN\nb +Inf\nc -Inf\nd 2\nd NaN\n";
        let wanted = ["a", "b", "c", "d"].map(String::from);
        let mut s = AppSnapshot::default();
        parse_prometheus(body, &wanted, &mut s);
        assert_eq!(s.found, 0b1000);
        assert_eq!(s.values[3], 2.0);
    }

    #[test]
    fn loopback_only() {
        assert!(is_loopback_http("http://127.0.0.1:9100/metrics"));
        assert!(is_loopback_http("http://[::1]:9100/metrics"));
        assert!(is_loopback_http("http://localhost/metrics"));
        assert!(!is_loopback_http("https://127.0.0.1/metrics"));
        assert!(!is_loopback_http("http://10.0.0.1:9100/metrics"));
        assert!(!is_loopback_http("http://127.0.0.1:80@example.com/metrics"));
        assert!(!is_loopback_http("http://localhost@10.0.0.1/metrics"));
        assert!(!is_loopback_http("http://127.0.0.1%2f@10.0.0.1/"));
        assert!(is_loopback_http("http://127.0.0.1:9100?x=@y"));
    }

    proptest! {
        #[test]
        fn never_panics(data in proptest::collection::vec(any::<u8>(), 0..512)) {
            let mut s = AppSnapshot::default();
            parse_prometheus(&data, &["a".to_string(), "a{b=\"c\"}".to_string()], &mut s);
        }

        #[test]
        fn urls_never_panic(url in "\\PC{0,40}") {
            let _ = is_loopback_http(&url);
        }
    }
}
