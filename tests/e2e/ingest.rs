//! The coordinator's ingest throughput, as an ignored test: many concurrent agents on
//! loopback against the built `headroom coordinator`, with its CPU time per signal from
//! schedstat (run on demand; see [`ingest_load`]).

use std::time::{Duration, Instant};

use crate::common::{Coordinator, group_toml, write_token};
use crate::coordinator::{TOKEN, group_view, signal, write_config};

/// On-CPU nanoseconds of every thread of process `pid` (from /proc/PID/task/*/schedstat).
fn cpu_ns(pid: u32) -> u64 {
    let Ok(tasks) = std::fs::read_dir(format!("/proc/{pid}/task")) else {
        return 0;
    };
    tasks
        .flatten()
        .filter_map(|t| std::fs::read_to_string(t.path().join("schedstat")).ok())
        .filter_map(|s| s.split_whitespace().next()?.parse::<u64>().ok())
        .sum()
}

/// The ingest load generator: `clients` keep-alive connections on one thread (a tokio
/// current-thread runtime writing preformatted requests and reading just the status line and
/// `Content-Length`), so that one generator core can outrun the coordinator's. Each client is
/// one (host, epoch) stream with contiguous seqs; returns the signals sent and every
/// request's latency in seconds. Bounded by `per_client` requests and `deadline`.
///
/// With `rate` (signals/s over all clients) each client sends on a fixed schedule instead of
/// as soon as its previous answer arrives, and latency counts from the scheduled time, so a
/// slow answer also counts against the requests it delayed (no coordinated omission).
fn generate_load(
    addr: std::net::SocketAddr,
    clients: usize,
    per_client: u64,
    batch: u64,
    rate: Option<f64>,
    deadline: Instant,
) -> (u64, Vec<f64>) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    async fn client(
        addr: std::net::SocketAddr,
        i: usize,
        per_client: u64,
        batch: u64,
        schedule: Option<(tokio::time::Instant, Duration)>,
        deadline: Instant,
    ) -> (u64, Vec<f64>) {
        const MARK: &str = "987654321987";
        let template = signal("web", &format!("host-{i}"), "e", 0, 0.5)
            .to_string()
            .replace("\"seq\":0", &format!("\"seq\":{MARK}"));
        let (pre, post) = template.split_once(MARK).unwrap();
        let mut s = tokio::net::TcpStream::connect(addr).await.unwrap();
        s.set_nodelay(true).unwrap();
        let mut latencies = Vec::with_capacity(per_client as usize);
        let mut buf = vec![0u8; 64 * 1024];
        let mut body = String::new();
        let mut request = Vec::new();
        let mut sent = 0;
        for r in 0..per_client {
            if Instant::now() > deadline {
                break;
            }
            body.clear();
            if batch > 1 {
                body.push('[');
            }
            for b in 0..batch {
                if b > 0 {
                    body.push(',');
                }
                body.push_str(&format!("{pre}{}{post}", r * batch + b + 1));
            }
            if batch > 1 {
                body.push(']');
            }
            request.clear();
            request.extend_from_slice(
                format!(
                    "POST /v1/signals HTTP/1.1\r\nHost: {addr}\r\nAuthorization: Bearer {TOKEN}\r\n\
                     Content-Type: application/json\r\nContent-Length: {}\r\n\r\n",
                    body.len()
                )
                .as_bytes(),
            );
            request.extend_from_slice(body.as_bytes());
            let t = match schedule {
                Some((first, every)) => {
                    let at = first + every * u32::try_from(r).unwrap();
                    tokio::time::sleep_until(at).await;
                    at.into_std()
                }
                None => Instant::now(),
            };
            s.write_all(&request).await.unwrap();
            // The answer: headers up to the blank line, then Content-Length bytes of body.
            let mut have = 0;
            let (head_end, length) = loop {
                let n = s.read(&mut buf[have..]).await.unwrap();
                assert!(n > 0, "the coordinator closed the connection");
                have += n;
                if let Some(end) = buf[..have].windows(4).position(|w| w == b"\r\n\r\n") {
                    let head = std::str::from_utf8(&buf[..end]).unwrap();
                    assert!(head.starts_with("HTTP/1.1 200"), "{head}");
                    let length = head
                        .lines()
                        .find_map(|l| {
                            let (k, v) = l.split_once(':')?;
                            k.eq_ignore_ascii_case("content-length")
                                .then(|| v.trim().parse::<usize>().ok())?
                        })
                        .expect("Content-Length");
                    break (end + 4, length);
                }
            };
            while have < head_end + length {
                let n = s.read(&mut buf[have..]).await.unwrap();
                assert!(n > 0, "the coordinator closed the connection");
                have += n;
            }
            latencies.push(t.elapsed().as_secs_f64());
            sent += batch;
        }
        (sent, latencies)
    }

    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(async move {
        // Paced clients start staggered over one interval, then keep their own schedule.
        let every = rate.map(|r| Duration::from_secs_f64(clients as f64 * batch as f64 / r));
        let start = tokio::time::Instant::now() + Duration::from_millis(50);
        let tasks: Vec<_> = (0..clients)
            .map(|i| {
                let schedule = every.map(|e| (start + e * i as u32 / clients as u32, e));
                tokio::spawn(client(addr, i, per_client, batch, schedule, deadline))
            })
            .collect();
        let mut total = 0;
        let mut latencies = Vec::new();
        for t in tasks {
            let (n, l) = t.await.unwrap();
            total += n;
            latencies.extend(l);
        }
        (total, latencies)
    })
}

/// Ingest load: many concurrent agents on loopback, bounded in count and time. Prints
/// signals/s, latency percentiles and the coordinator's CPU time per signal (all its threads,
/// from schedstat: the figure that holds on a loaded machine, where wall-clock rates measure
/// the neighbours). Run (pinning coordinator and generator apart):
/// `HEADROOM_LOAD_PIN=0 taskset -c 1 cargo test --release --test e2e -- --ignored ingest_load --nocapture`
#[test]
#[ignore]
fn ingest_load() {
    let clients: usize = std::env::var("HEADROOM_LOAD_CLIENTS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(64);
    let per_client: u64 = std::env::var("HEADROOM_LOAD_REQUESTS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(500);
    let batch: u64 = std::env::var("HEADROOM_LOAD_BATCH")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(1);
    // Offered signals/s over all clients; unset: each client sends as fast as it is answered.
    let rate: Option<f64> = std::env::var("HEADROOM_LOAD_RATE")
        .ok()
        .and_then(|v| v.parse().ok());
    let dir = tempfile::tempdir().unwrap();
    let token = write_token(dir.path(), "token", TOKEN);
    let config = write_config(
        dir.path(),
        "",
        &group_toml("web", &token, 60.0, "kind = \"dry-run\""),
    );
    let pin = std::env::var("HEADROOM_LOAD_PIN").ok();
    let c = Coordinator::start_pinned(
        dir.path(),
        &config,
        &[("HEADROOM_LOG", "warn")],
        pin.as_deref(),
    );
    let addr: std::net::SocketAddr = c.url.trim_start_matches("http://").parse().unwrap();
    let cpu_before = cpu_ns(c.child.id());
    let deadline = Instant::now() + Duration::from_secs(120);
    let started = Instant::now();
    let (total, mut latencies) = generate_load(addr, clients, per_client, batch, rate, deadline);
    let elapsed = started.elapsed().as_secs_f64();
    let cpu_s = cpu_ns(c.child.id()).saturating_sub(cpu_before) as f64 / 1e9;
    latencies.sort_by(f64::total_cmp);
    let pct =
        |p: f64| latencies[((latencies.len() as f64 * p) as usize).min(latencies.len() - 1)] * 1e3;
    println!(
        "ingest: {clients} clients x {per_client} requests x {batch} signals{}: {total} signals in {elapsed:.2}s = {:.0} signals/s, {:.0} requests/s; latency p50 {:.2} ms, p99 {:.2} ms, max {:.2} ms",
        rate.map_or(String::new(), |r| format!(", offered {r:.0}/s")),
        total as f64 / elapsed,
        latencies.len() as f64 / elapsed,
        pct(0.50),
        pct(0.99),
        pct(1.0)
    );
    println!(
        "coordinator CPU: {cpu_s:.2}s = {:.1} us per signal, {:.0}% of one core; one core's worth = {:.0} signals/s",
        cpu_s * 1e6 / total as f64,
        cpu_s * 100.0 / elapsed,
        total as f64 / cpu_s.max(1e-9)
    );
    let v = group_view(&c.url, "web");
    assert_eq!(
        v["signals"]["applied"].as_u64(),
        Some(total),
        "every distinct signal applied once"
    );
}
