//! The notify protocol under a fake systemd: READY, watchdog pings only while the pipeline
//! progresses, STOPPING.

use super::*;

struct Notified {
    at: Instant,
    msg: String,
}

fn recv_all(sock: &UnixDatagram, until: Instant, log: &mut Vec<Notified>) {
    let mut buf = [0u8; 4096];
    loop {
        let left = until.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return;
        }
        sock.set_read_timeout(Some(left.min(Duration::from_millis(100))))
            .unwrap();
        match sock.recv(&mut buf) {
            Ok(n) => {
                let msg = String::from_utf8_lossy(&buf[..n]).to_string();
                for m in msg.lines().filter(|l| !l.is_empty()) {
                    log.push(Notified {
                        at: Instant::now(),
                        msg: m.to_string(),
                    });
                }
            }
            Err(e)
                if matches!(
                    e.kind(),
                    std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                ) => {}
            Err(e) => panic!("notify socket: {e}"),
        }
    }
}

/// Waits until a message satisfying `f` arrives, or panics after `secs`.
fn wait_for(
    sock: &UnixDatagram,
    log: &mut Vec<Notified>,
    secs: u64,
    what: &str,
    f: impl Fn(&str) -> bool,
) -> Instant {
    let from = log.len();
    let deadline = Instant::now() + Duration::from_secs(secs);
    while Instant::now() < deadline {
        recv_all(sock, Instant::now() + Duration::from_millis(100), log);
        if let Some(n) = log[from..].iter().find(|n| f(&n.msg)) {
            return n.at;
        }
    }
    let seen: Vec<&str> = log.iter().map(|n| n.msg.as_str()).collect();
    panic!("no {what} within {secs} s; seen: {seen:?}");
}

fn pings_between(log: &[Notified], from: Instant, to: Instant) -> Vec<Instant> {
    log.iter()
        .filter(|n| n.msg == "WATCHDOG=1" && n.at >= from && n.at <= to)
        .map(|n| n.at)
        .collect()
}

/// Longest silence between pings (and the window's edges) in `[from, to]`.
fn longest_gap(pings: &[Instant], from: Instant, to: Instant) -> Duration {
    let mut prev = from;
    let mut gap = Duration::ZERO;
    for &p in pings.iter().chain(std::iter::once(&to)) {
        gap = gap.max(p.saturating_duration_since(prev));
        prev = p;
    }
    gap
}

/// The coordinator says READY=1 once it accepts signals, and STOPPING=1 on SIGTERM.
#[test]
fn coordinator_notifies_ready_when_listening_and_stopping_on_sigterm() {
    let dir = tempfile::tempdir().unwrap();
    let notify = dir.path().join("notify.sock");
    let sock = UnixDatagram::bind(&notify).unwrap();
    let token = write_token(dir.path(), "token", TOKEN);
    let config = dir.path().join("c.toml");
    let toml = coordinator_toml(
        "127.0.0.1:0",
        &dir.path().join("state.db"),
        &token,
        "kind = \"dry-run\"",
    );
    std::fs::write(&config, toml).unwrap();
    let notify_env = notify.to_str().unwrap();
    let c = Coordinator::start(dir.path(), &config, &[("NOTIFY_SOCKET", notify_env)]);
    let mut log = Vec::new();
    wait_for(&sock, &mut log, 10, "READY=1", |m| m == "READY=1");
    let accepts = std::net::TcpStream::connect(c.url.trim_start_matches("http://"));
    assert!(accepts.is_ok(), "READY=1 before the listener accepts");
    let pid = c.child.id().to_string();
    assert!(
        Command::new("kill")
            .args(["-TERM", &pid])
            .status()
            .unwrap()
            .success()
    );
    wait_for(&sock, &mut log, 10, "STOPPING=1", |m| m == "STOPPING=1");
}

#[test]
fn notify_ready_watchdog_stops_on_stalled_store_and_stopping_on_sigterm() {
    const WATCHDOG: Duration = Duration::from_secs(2);
    let dir = tempfile::tempdir().unwrap();
    let notify = dir.path().join("notify.sock");
    let sock = UnixDatagram::bind(&notify).unwrap();
    let state = dir.path().join("state");
    let config = dir.path().join("headroom.toml");
    std::fs::write(
        &config,
        format!(
            "[agent]\nstate_directory = \"{}\"\nsocket = \"{}\"\ninterval = \"200ms\"\ndecision_interval = \"1s\"\n",
            state.display(),
            dir.path().join("headroom.sock").display()
        ),
    )
    .unwrap();
    let log_path = dir.path().join("agent.log");
    // As systemd does, WATCHDOG_PID names the main process: the shell execs the agent, so
    // its pid is the agent's (sd-notify ignores WATCHDOG_USEC without a matching pid).
    let mut child = KillOnDrop::spawn_logged(
        Command::new("sh")
            .args(["-c", "WATCHDOG_PID=$$ exec \"$0\" agent --config \"$1\""])
            .arg(bin())
            .arg(&config)
            .env("NOTIFY_SOCKET", &notify)
            .env("WATCHDOG_USEC", WATCHDOG.as_micros().to_string())
            .env("RUST_LOG", "info"),
        &log_path,
    );
    let agent_log = || std::fs::read_to_string(&log_path).unwrap_or_default();
    let mut log = Vec::new();

    wait_for(&sock, &mut log, 30, "READY=1", |m| m == "READY=1");

    // Healthy: pings every WATCHDOG/4 or so, never a silence reaching the watchdog timeout.
    let from = Instant::now();
    recv_all(&sock, from + Duration::from_secs(4), &mut log);
    let to = Instant::now();
    let healthy = pings_between(&log, from, to);
    let gap = longest_gap(&healthy, from, to);
    println!(
        "healthy: {} pings in {:?}, longest gap {gap:?}",
        healthy.len(),
        to - from
    );
    assert!(
        healthy.len() >= 3,
        "too few pings while healthy: {}\n{}",
        healthy.len(),
        agent_log()
    );
    // Expected every WATCHDOG/4; a loaded machine may delay a tick, never to the timeout.
    assert!(gap < WATCHDOG, "healthy gap {gap:?}\n{}", agent_log());

    // Stall the store: hold SQLite's write lock so every commit of the writer waits.
    let db = state.join("headroom.db");
    let conn = rusqlite::Connection::open(&db).unwrap();
    conn.busy_timeout(Duration::from_secs(10)).unwrap();
    conn.execute_batch("BEGIN EXCLUSIVE").unwrap();
    let locked_at = Instant::now();
    // The writer meets the lock with its next batch (decisions every second, rollups every
    // 10 s); from then on the pings must stop. Hold until a silence twice the watchdog
    // timeout is seen, at most 30 s.
    let deadline = locked_at + Duration::from_secs(30);
    let silence = loop {
        recv_all(&sock, Instant::now() + Duration::from_millis(100), &mut log);
        let now = Instant::now();
        let last = pings_between(&log, locked_at, now)
            .last()
            .copied()
            .unwrap_or(locked_at);
        if now - last >= WATCHDOG * 2 {
            break now - last;
        }
        assert!(
            now < deadline,
            "pings went on for 30 s while the store was locked\n{}",
            agent_log()
        );
    };
    let unlocked_at = Instant::now();
    let stalled = pings_between(&log, locked_at, unlocked_at);
    println!(
        "stalled: {} pings in the {:?} the store was locked, then silence for {silence:?} (systemd restarts after {WATCHDOG:?})",
        stalled.len(),
        unlocked_at - locked_at
    );
    conn.execute_batch("COMMIT").unwrap();
    drop(conn);

    // Released: the writer catches up and the pings resume.
    let resumed = wait_for(&sock, &mut log, 20, "WATCHDOG=1 after release", |m| {
        m == "WATCHDOG=1"
    });
    println!("pings resumed {:?} after release", resumed - unlocked_at);
    let from = Instant::now();
    recv_all(&sock, from + Duration::from_secs(3), &mut log);
    let after = pings_between(&log, from, Instant::now());
    assert!(
        after.len() >= 2,
        "pings did not resume regularly\n{}",
        agent_log()
    );

    // SIGTERM: STOPPING=1, then a clean exit.
    rustix::process::kill_process(
        rustix::process::Pid::from_child(&child.0),
        rustix::process::Signal::TERM,
    )
    .unwrap();
    wait_for(&sock, &mut log, 20, "STOPPING=1", |m| m == "STOPPING=1");
    let deadline = Instant::now() + Duration::from_secs(40);
    let status = loop {
        if let Some(s) = child.0.try_wait().unwrap() {
            break s;
        }
        assert!(
            Instant::now() < deadline,
            "agent did not exit after SIGTERM"
        );
        std::thread::sleep(Duration::from_millis(50));
    };
    assert!(status.success(), "exit {status:?}\n{}", agent_log());
    let _ = std::io::stdout().flush();
}
