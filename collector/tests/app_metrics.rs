//! Application gauges from a real HTTP endpoint on loopback: values and age, unreachable and
//! failing endpoints reported (not fatal) and retried, and a hanging endpoint never slowing
//! the sampler.

use std::io::{Read, Write};
use std::net::TcpListener;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use headroom_collector::{Collector, Sample, SamplerConfig, SourceKind, SourceState};

const BODY: &str = "# TYPE http_requests_in_flight gauge\n\
http_requests_in_flight{handler=\"/a\"} 3\n\
http_requests_in_flight{handler=\"/b\"} 4\n\
queue_depth{pool=\"a\"} 7\n\
queue_depth{pool=\"b\"} 1\n";

/// Serves `BODY` over HTTP/1.1 on 127.0.0.1; the first `fail_first` requests get a 503, and
/// with `hang` set requests are read but never answered. Bounded: 20 s and 500 requests.
fn serve(fail_first: usize, hang: bool) -> (String, Arc<AtomicUsize>) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    listener.set_nonblocking(true).unwrap();
    let url = format!("http://{}/metrics", listener.local_addr().unwrap());
    let served = Arc::new(AtomicUsize::new(0));
    let count = Arc::clone(&served);
    std::thread::spawn(move || {
        let end = Instant::now() + Duration::from_secs(20);
        let mut held = Vec::new();
        while Instant::now() < end && count.load(Ordering::Relaxed) < 500 {
            let Ok((mut stream, _)) = listener.accept() else {
                std::thread::sleep(Duration::from_millis(5));
                continue;
            };
            stream.set_nonblocking(false).unwrap();
            stream
                .set_read_timeout(Some(Duration::from_secs(1)))
                .unwrap();
            let mut req = [0u8; 4096];
            let _ = stream.read(&mut req);
            let n = count.fetch_add(1, Ordering::Relaxed);
            if hang {
                held.push(stream);
                continue;
            }
            let resp = if n < fail_first {
                "HTTP/1.1 503 Service Unavailable\r\ncontent-length: 0\r\nconnection: close\r\n\r\n"
                    .to_string()
            } else {
                format!(
                    "HTTP/1.1 200 OK\r\ncontent-type: text/plain\r\ncontent-length: {}\r\n\
                     connection: close\r\n\r\n{BODY}",
                    BODY.len()
                )
            };
            let _ = stream.write_all(resp.as_bytes());
        }
    });
    (url, served)
}

fn config(url: String) -> SamplerConfig {
    SamplerConfig {
        interval: Duration::from_millis(100),
        app_endpoint: Some(url),
        app_gauges: vec![
            "http_requests_in_flight".into(),
            "queue_depth{pool=\"a\"}".into(),
            "not_exported".into(),
        ],
        app_timeout: Duration::from_millis(100),
        ..SamplerConfig::default()
    }
}

fn app_state(c: &Collector) -> SourceState {
    c.source_states()
        .into_iter()
        .find(|(k, _)| *k == SourceKind::AppMetrics)
        .unwrap()
        .1
}

/// Samples until `f` holds (5 s at most).
fn sample_until(c: &mut Collector, s: &mut Sample, mut f: impl FnMut(&Collector, &Sample) -> bool) {
    let end = Instant::now() + Duration::from_secs(5);
    loop {
        c.sample_into(s);
        if f(c, s) || Instant::now() > end {
            return;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[test]
fn reads_configured_gauges_with_their_age() {
    let (url, _) = serve(0, false);
    let mut c = Collector::new(&config(url)).unwrap();
    let mut s = Sample::default();
    sample_until(&mut c, &mut s, |_, s| s.has(SourceKind::AppMetrics));
    assert!(s.has(SourceKind::AppMetrics), "state {:?}", app_state(&c));
    let got: Vec<_> = s.app[..s.app_count as usize]
        .iter()
        .map(|g| (g.name.as_str(), g.value))
        .collect();
    assert_eq!(
        got,
        [
            ("http_requests_in_flight", 7.0),
            ("queue_depth{pool=\"a\"}", 7.0)
        ]
    );
    assert!(s.app_age.unwrap() < Duration::from_secs(2));
    assert_eq!(app_state(&c), SourceState::Ok);
}

#[test]
fn failing_endpoint_is_reported_then_recovers() {
    let (url, served) = serve(3, false);
    let mut c = Collector::new(&config(url)).unwrap();
    let mut s = Sample::default();
    sample_until(&mut c, &mut s, |c, _| {
        matches!(app_state(c), SourceState::Disabled { .. })
    });
    match app_state(&c) {
        SourceState::Disabled { reason } => assert!(reason.contains("503"), "{reason}"),
        other => panic!("expected disabled, got {other:?}"),
    }
    assert!(!s.has(SourceKind::AppMetrics));
    sample_until(&mut c, &mut s, |_, s| s.has(SourceKind::AppMetrics));
    assert_eq!(app_state(&c), SourceState::Ok);
    assert!(served.load(Ordering::Relaxed) > 3);
}

#[test]
fn unreachable_or_foreign_endpoints_are_not_fatal() {
    let port = TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    for url in [
        format!("http://127.0.0.1:{port}/metrics"),
        "http://192.0.2.1/metrics".into(),
    ] {
        let mut c = Collector::new(&config(url.clone())).unwrap();
        let mut s = Sample::default();
        // The CPU's first figures need a clock tick between two reads.
        sample_until(&mut c, &mut s, |c, s| {
            matches!(app_state(c), SourceState::Disabled { .. }) && s.has(SourceKind::Cpu)
        });
        assert!(
            matches!(app_state(&c), SourceState::Disabled { .. }),
            "{url}"
        );
        assert!(!s.has(SourceKind::AppMetrics) && s.has(SourceKind::Cpu));
    }
}

#[test]
fn hanging_endpoint_never_slows_sampling() {
    let (url, served) = serve(0, true);
    // Each read of the endpoint hangs for its full 1 s timeout.
    let cfg = SamplerConfig {
        app_timeout: Duration::from_secs(1),
        ..config(url)
    };
    let mut c = Collector::new(&cfg).unwrap();
    let mut s = Sample::default();
    let mut slowest = Duration::ZERO;
    let end = Instant::now() + Duration::from_millis(1500);
    while Instant::now() < end {
        let t = Instant::now();
        c.sample_into(&mut s);
        slowest = slowest.max(t.elapsed());
        std::thread::sleep(Duration::from_millis(10));
    }
    assert!(served.load(Ordering::Relaxed) >= 1);
    assert!(matches!(app_state(&c), SourceState::Disabled { .. }));
    assert!(
        slowest < Duration::from_millis(50),
        "a sample took {slowest:?}"
    );
}

#[test]
fn sampler_stops_promptly_while_the_endpoint_hangs() {
    let (url, served) = serve(0, true);
    let cfg = SamplerConfig {
        app_timeout: Duration::from_secs(2),
        ..config(url)
    };
    let (handle, _rx) = headroom_collector::Sampler::spawn(cfg).unwrap();
    let end = Instant::now() + Duration::from_secs(2);
    while served.load(Ordering::Relaxed) == 0 && Instant::now() < end {
        std::thread::sleep(Duration::from_millis(10));
    }
    let t = Instant::now();
    handle.stop();
    assert!(
        t.elapsed() < Duration::from_millis(500),
        "stop took {:?}",
        t.elapsed()
    );
}
