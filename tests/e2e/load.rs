//! Load test of `headroom coordinator`: simulated agents on loopback, each one (host, epoch)
//! stream posting a signal every 10 s, with 50 slowloris clients (a connection trickling header
//! bytes) and oversized posters in the second half. Reports throughput, latency quantiles, the
//! coordinator's peak RSS and errors; asserts no errors, bounded RSS and that the slow and
//! oversized clients do not starve the others.
//!
//! The coordinator (with `taskset`) and the generator's own threads are pinned to different
//! CPUs when the test may run on at least two. Only the generator's threads: the tests
//! running beside this one, and every process they start, keep every CPU.
//!
//! Sizes: `HEADROOM_LOAD_AGENTS` (simulated agents), `HEADROOM_LOAD_SECS` (duration) override
//! each test's defaults.

use std::io::Write;
use std::net::TcpStream;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use rustix::thread::{CpuSet, sched_getaffinity, sched_setaffinity};

use crate::common::*;

/// Signals a simulated agent sends: one every `PERIOD`.
const PERIOD: Duration = Duration::from_secs(10);
const WORKERS: usize = 24;
const SLOW_CLIENTS: usize = 50;

fn env_or(key: &str, default: u64) -> u64 {
    std::env::var(key)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn signal(host: usize, seq: u64) -> String {
    let t = now();
    let demand = 0.2 + (host % 7) as f64 * 0.1;
    format!(
        r#"{{"version":1,"host":"load-{host}","group":"web","epoch":"e-{host}","seq":{seq},"decided_at":{t},"sent_at":{t},"metric":"cpu.busy_cores","demand_now":{demand},"capacity":1.0,"lead_s":20.0,"p50_at_lead":{demand},"p90_at_lead":{demand},"saturated":false,"action":"hold","desired_change":0,"reason":"load","health":"healthy","health_reasons":[]}}"#
    )
}

fn quantile(sorted: &[Duration], q: f64) -> Duration {
    if sorted.is_empty() {
        return Duration::ZERO;
    }
    sorted[((sorted.len() - 1) as f64 * q).round() as usize]
}

/// Latencies and errors of one phase.
#[derive(Default)]
struct Phase {
    lat: Vec<Duration>,
    errors: u64,
    first_error: Option<String>,
}

impl Phase {
    fn report(&mut self, name: &str, secs: f64) -> (Duration, Duration) {
        self.lat.sort();
        let (p50, p99) = (quantile(&self.lat, 0.5), quantile(&self.lat, 0.99));
        eprintln!(
            "{name}: {} signals in {secs:.0}s = {:.0}/s, errors {}, p50 {p50:?}, p99 {p99:?}, max {:?}",
            self.lat.len(),
            self.lat.len() as f64 / secs,
            self.errors,
            self.lat.last().copied().unwrap_or_default()
        );
        (p50, p99)
    }
}

/// The CPUs this test may run on, split: the first for the coordinator, the others for the
/// generator; none when it may run on one only.
fn split_cpus() -> Option<(usize, CpuSet)> {
    let allowed = sched_getaffinity(None).ok()?;
    let cpus: Vec<usize> = (0..CpuSet::MAX_CPU)
        .filter(|&c| allowed.is_set(c))
        .collect();
    let (&first, rest) = cpus.split_first()?;
    (!rest.is_empty()).then(|| {
        let mut set = CpuSet::new();
        rest.iter().for_each(|&c| set.set(c));
        (first, set)
    })
}

/// Spawns one of the generator's threads, on `cpus` when given.
fn spawn_generator<T: Send + 'static>(
    cpus: Option<CpuSet>,
    work: impl FnOnce() -> T + Send + 'static,
) -> JoinHandle<T> {
    std::thread::spawn(move || {
        if let Some(set) = cpus {
            // Best effort: unpinned, the figures are noisier, not wrong.
            let _ = sched_setaffinity(None, &set);
        }
        work()
    })
}

/// Holds `SLOW_CLIENTS` connections open, each trickling one header byte every 500 ms, until
/// `stop`; returns how many the server closed.
fn slowloris(addr: String, stop: Arc<AtomicBool>, cpus: Option<CpuSet>) -> JoinHandle<u64> {
    spawn_generator(cpus, move || {
        let mut conns: Vec<Option<TcpStream>> = (0..SLOW_CLIENTS)
            .map(|_| {
                let mut s = TcpStream::connect(&addr).ok()?;
                s.set_write_timeout(Some(Duration::from_secs(1))).ok()?;
                s.write_all(
                    b"POST /v1/signals HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: 100000\r\n",
                )
                .ok()?;
                Some(s)
            })
            .collect();
        let mut closed = 0;
        while !stop.load(Ordering::Relaxed) {
            for c in conns.iter_mut() {
                if let Some(s) = c
                    && s.write_all(b"X").is_err()
                {
                    closed += 1;
                    *c = None;
                }
            }
            std::thread::sleep(Duration::from_millis(500));
        }
        closed
    })
}

/// Posts an 8 MiB body in a loop until `stop`; returns (requests, accepted). A refusal is a 413
/// or the server closing the connection before the whole body is sent.
fn oversized(url: String, stop: Arc<AtomicBool>, cpus: Option<CpuSet>) -> JoinHandle<(u64, u64)> {
    spawn_generator(cpus, move || {
        let http = http();
        let body = vec![b'['; 8 << 20];
        let (mut n, mut odd) = (0, 0);
        while !stop.load(Ordering::Relaxed) {
            n += 1;
            match http
                .post(format!("{url}/v1/signals"))
                .header("Authorization", &format!("Bearer {TOKEN}"))
                .header("Content-Type", "application/json")
                .send(&body[..])
            {
                Ok(r) if r.status() != 413 => odd += 1,
                _ => {}
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        (n, odd)
    })
}

/// Runs `agents` simulated agents for `secs` seconds against a fresh coordinator.
fn load(agents: usize, secs: u64, p99_bound: Duration) {
    let agents = env_or("HEADROOM_LOAD_AGENTS", agents as u64) as usize;
    let secs = env_or("HEADROOM_LOAD_SECS", secs);
    let dir = tempfile::tempdir().unwrap();
    let token = write_token(dir.path(), "token", TOKEN);
    let state = dir.path().join("coordinator.db");
    let config = dir.path().join("coordinator.toml");
    let toml = coordinator_toml("127.0.0.1:0", &state, &token, "kind = \"dry-run\"")
        .replace("max = 20", "max = 100000")
        .replace(
            "decision_interval = \"200ms\"",
            "decision_interval = \"1s\"",
        );
    std::fs::write(&config, toml).unwrap();
    let split = split_cpus();
    let (pin, cpus) = (split.is_some(), split.map(|(_, set)| set));
    let coordinator_cpu = split.map(|(cpu, _)| cpu.to_string());
    let c = Coordinator::start_pinned(dir.path(), &config, &[], coordinator_cpu.as_deref());
    let pid = c.child.id();
    let addr = c.url.trim_start_matches("http://").to_string();
    let rate = agents as f64 / PERIOD.as_secs_f64();
    eprintln!(
        "{agents} agents, {rate:.0} signals/s for {secs}s, coordinator pid {pid}, pinned {pin}"
    );

    let stop = Arc::new(AtomicBool::new(false));
    let peak_rss = Arc::new(AtomicU64::new(0));
    let sampler = {
        let (stop, peak) = (stop.clone(), peak_rss.clone());
        std::thread::spawn(move || {
            while !stop.load(Ordering::Relaxed) {
                if let Some(r) = rss_kib(pid) {
                    peak.fetch_max(r, Ordering::Relaxed);
                }
                std::thread::sleep(Duration::from_millis(250));
            }
        })
    };
    let start = Instant::now();
    let half = Duration::from_secs(secs) / 2;
    let end = Duration::from_secs(secs);
    let workers: Vec<_> = (0..WORKERS)
        .map(|w| {
            let url = c.url.clone();
            spawn_generator(cpus, move || {
                let http = http();
                let hosts: Vec<usize> = (w..agents).step_by(WORKERS).collect();
                let gap = Duration::from_secs_f64(WORKERS as f64 / rate);
                let mut phases = [Phase::default(), Phase::default()];
                let mut k: u32 = 0;
                loop {
                    let due = gap * k;
                    if due >= end || hosts.is_empty() {
                        break;
                    }
                    let host = hosts[k as usize % hosts.len()];
                    let seq = (k as usize / hosts.len()) as u64 + 1;
                    k += 1;
                    if let Some(wait) = due.checked_sub(start.elapsed()) {
                        std::thread::sleep(wait);
                    }
                    let phase = &mut phases[usize::from(start.elapsed() >= half)];
                    let t = Instant::now();
                    let res = http
                        .post(format!("{url}/v1/signals"))
                        .header("Authorization", &format!("Bearer {TOKEN}"))
                        .header("Content-Type", "application/json")
                        .send(signal(host, seq));
                    let ok = match res {
                        Ok(mut r) if r.status() == 200 => {
                            let body = r.body_mut().read_to_string().unwrap_or_default();
                            body.contains("\"applied\":1").then_some(()).ok_or(body)
                        }
                        Ok(mut r) => Err(format!(
                            "{} {}",
                            r.status(),
                            r.body_mut().read_to_string().unwrap_or_default()
                        )),
                        Err(e) => Err(e.to_string()),
                    };
                    phase.lat.push(t.elapsed());
                    if let Err(e) = ok {
                        phase.errors += 1;
                        phase.first_error.get_or_insert(e);
                    }
                }
                phases
            })
        })
        .collect();
    std::thread::sleep(half);
    let rss_half = peak_rss.load(Ordering::Relaxed);
    let hostile_stop = Arc::new(AtomicBool::new(false));
    let slow = slowloris(addr, hostile_stop.clone(), cpus);
    let big: Vec<_> = (0..2)
        .map(|_| oversized(c.url.clone(), hostile_stop.clone(), cpus))
        .collect();
    let mut phases = [Phase::default(), Phase::default()];
    for w in workers {
        for (into, from) in phases.iter_mut().zip(w.join().unwrap()) {
            into.lat.extend(from.lat);
            into.errors += from.errors;
            if into.first_error.is_none() {
                into.first_error = from.first_error;
            }
        }
    }
    let elapsed = start.elapsed().as_secs_f64();
    // Give the server its header timeout (10 s) and some slack to drop the slow clients.
    let slow_until = start + half + Duration::from_secs(14);
    if let Some(left) = slow_until.checked_duration_since(Instant::now()) {
        std::thread::sleep(left);
    }
    hostile_stop.store(true, Ordering::Relaxed);
    let closed = slow.join().unwrap();
    let (mut big_n, mut big_odd) = (0, 0);
    for b in big {
        let (n, odd) = b.join().unwrap();
        big_n += n;
        big_odd += odd;
    }
    stop.store(true, Ordering::Relaxed);
    sampler.join().unwrap();
    let peak = peak_rss.load(Ordering::Relaxed);
    let (_, p99_normal) = phases[0].report("normal clients only", elapsed / 2.0);
    let (_, p99_hostile) =
        phases[1].report("with 50 slowloris + 2 oversized posters", elapsed / 2.0);
    eprintln!(
        "slowloris connections closed by the server: {closed}/{SLOW_CLIENTS}; oversized posts {big_n} ({big_odd} accepted)"
    );
    eprintln!("coordinator RSS: {rss_half} KiB at half time, peak {peak} KiB");
    let log = c.log();
    for p in &phases {
        assert_eq!(
            p.errors,
            0,
            "errors, first: {:?}\n{}",
            p.first_error,
            tail(&log, 20)
        );
    }
    let sent: usize = phases.iter().map(|p| p.lat.len()).sum();
    assert!(
        sent as f64 >= rate * elapsed * 0.9,
        "the generator kept up: {sent} sent at {rate}/s over {elapsed:.0}s"
    );
    assert_eq!(big_odd, 0, "oversized bodies are refused");
    assert_eq!(
        closed, SLOW_CLIENTS as u64,
        "slowloris connections are closed"
    );
    assert!(p99_normal < p99_bound, "p99 {p99_normal:?}");
    assert!(
        p99_hostile < p99_bound,
        "slow/oversized clients starve the others: p99 {p99_hostile:?}"
    );
    assert!(peak < 512 * 1024, "coordinator RSS bounded: {peak} KiB");
}

/// Fast variant: 1,000 agents (100 signals/s) for 16 s.
#[test]
fn load_smoke_with_slow_and_oversized_clients() {
    load(1_000, 16, Duration::from_secs(1));
}

/// Long variant: 10,000 agents (1,000 signals/s) for 5 minutes.
/// `cargo test --release --test e2e -- --ignored load:: --nocapture`
#[test]
#[ignore]
fn load_ten_thousand_agents_five_minutes() {
    load(10_000, 300, Duration::from_millis(500));
}
