//! Fault tests of the built `headroom` binary: kill -9 at random moments, a full state
//! filesystem, broken /proc files, and recovery times (coordinator outages:
//! [`crate::delivery`]). Real processes, real SQLite files, real HTTP on 127.0.0.1, a fake proc
//! root copied from the real /proc.
//!
//! Long variants are `#[ignore]`d; each documents its command.

use std::collections::BTreeSet;
use std::path::Path;
use std::time::{Duration, Instant};

use crate::common::*;

/// A small xorshift generator; the seed is printed so a failing run can be replayed with
/// `HEADROOM_FAULT_SEED=N`.
struct Rng(u64);

impl Rng {
    fn seeded() -> Rng {
        let seed = std::env::var("HEADROOM_FAULT_SEED")
            .ok()
            .and_then(|s| s.parse().ok())
            .unwrap_or_else(|| (now() * 1e6) as u64 | 1);
        eprintln!("seed {seed}");
        Rng(seed)
    }
    fn below(&mut self, n: u64) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0 % n
    }
}

/// A coordinator for one agent: dry-run actuator, state file in `dir`.
pub(crate) fn coordinator(dir: &Path, listen: &str) -> (Coordinator, std::path::PathBuf) {
    let token = write_token(dir, "token", TOKEN);
    let state = dir.join("coordinator.db");
    let config = dir.join("coordinator.toml");
    std::fs::write(
        &config,
        coordinator_toml(listen, &state, &token, "kind = \"dry-run\""),
    )
    .unwrap();
    (Coordinator::start(dir, &config, &[]), state)
}

pub(crate) fn agent_coordinator_toml(url: &str, dir: &Path) -> String {
    format!(
        "[coordinator]\nurls = [\"{url}\"]\ntoken_file = \"{}\"\nmax_send_rate = 200\ntimeout = \"2s\"\n",
        dir.join("token").display()
    )
}

/// `(count, min, max)` of an integer column.
fn seq_range(conn: &rusqlite::Connection, table: &str) -> (i64, Option<i64>, Option<i64>) {
    conn.query_row(
        &format!("SELECT COUNT(*), MIN(seq), MAX(seq) FROM {table}"),
        [],
        |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
    )
    .unwrap()
}

/// Checks the agent's database after a kill: integrity, every committed rollup seen so far
/// present, decision and outbox seqs contiguous from 1, nothing committed lost.
fn check_db(db: &Path, rollups: &BTreeSet<i64>, committed_seq: u64) -> u64 {
    let conn = rusqlite::Connection::open(db).unwrap();
    let ok: String = conn
        .query_row("PRAGMA integrity_check", [], |r| r.get(0))
        .unwrap();
    assert_eq!(ok, "ok");
    for ts in rollups {
        let n: i64 = conn
            .query_row("SELECT COUNT(*) FROM rollup_10s WHERE ts = ?1", [ts], |r| {
                r.get(0)
            })
            .unwrap();
        assert!(n > 0, "committed rollup {ts} missing after kill -9");
    }
    for table in ["decision", "outbox"] {
        let (n, min, max) = seq_range(&conn, table);
        if n > 0 {
            assert_eq!(min, Some(1), "{table} starts at 1");
            assert_eq!(max, Some(n), "{table} seqs contiguous 1..={n}");
        }
    }
    let (_, _, max) = seq_range(&conn, "decision");
    let max = max.unwrap_or(0) as u64;
    assert!(
        max >= committed_seq,
        "decision {committed_seq} reported committed but only {max} stored"
    );
    max
}

/// Kills the agent `kills` times at random moments (0 to 3 s after spawn; one in five within
/// 60 ms, during start-up) with a coordinator configured, checking the database after each kill,
/// then drains and compares what the coordinator applied with what the agent produced.
fn crash_loop(kills: u32) {
    let dir = tempfile::tempdir().unwrap();
    let (c, cstate) = coordinator(dir.path(), "127.0.0.1:0");
    let mut a = Agent::options()
        .interval("100ms")
        .identity("fault-host", "web")
        .create(&agent_coordinator_toml(&c.url, dir.path()));
    let mut rng = Rng::seeded();
    let mut rollups = BTreeSet::new();
    let mut committed_seq = 0;
    let mut killed_ready = 0;
    // Warm up once so there is history to lose.
    a.start();
    a.wait_status("a committed rollup", 40, |v| committed(v).0.is_some());
    a.kill9();
    for i in 0..kills {
        a.spawn();
        // One kill in five lands within 60 ms of the spawn: during start-up and migration.
        let wait = if rng.below(5) == 0 {
            rng.below(60)
        } else {
            rng.below(3000)
        };
        std::thread::sleep(Duration::from_millis(wait));
        let out = a.cli(&["status", "--json"]);
        if out.status.success() {
            let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
            let (r, s) = committed(&v);
            rollups.extend(r);
            committed_seq = committed_seq.max(s.unwrap_or(0));
            killed_ready += 1;
        }
        a.kill9();
        let max = check_db(&a.db(), &rollups, committed_seq);
        eprintln!(
            "kill {}: {} rollups checked, decisions 1..={max}",
            i + 1,
            rollups.len()
        );
    }
    // Final run: wait for new decisions and an empty outbox, then stop cleanly.
    a.start();
    a.wait_status("new decisions after the last kill", 30, |v| {
        committed(v).1.is_some_and(|s| s > committed_seq + 2)
    });
    a.wait_status("the outbox drained", 60, |v| v["outbox"]["pending"] == 0);
    assert!(a.term().success());
    let produced = outbox_produced(&a.db());
    assert_eq!(
        a.json_offline_dropped(),
        0,
        "no signal dropped from the outbox"
    );
    let (recorded, applied) = check_delivery(&a.db(), &cstate, &produced, 3);
    assert_eq!(applied, recorded, "all fresh: every signal applied");
    eprintln!(
        "survived {kills} kill -9 ({killed_ready} after answering status); produced {} signals, coordinator applied {applied}",
        produced.len(),
    );
    drop(c);
}

trait OfflineDropped {
    fn json_offline_dropped(&self) -> u64;
}

impl OfflineDropped for Agent {
    /// The outbox drop counter, read from the stopped agent's database.
    fn json_offline_dropped(&self) -> u64 {
        let conn = rusqlite::Connection::open(self.db()).unwrap();
        conn.query_row(
            "SELECT value FROM meta WHERE key = 'outbox_dropped'",
            [],
            |r| r.get::<_, String>(0),
        )
        .map(|v| v.parse().unwrap_or(0))
        .unwrap_or(0)
    }
}

/// The signal TTL of the test coordinators (`coordinator_toml`): older signals are stored for
/// audit, not applied.
pub(crate) const SIGNAL_TTL_S: f64 = 60.0;

/// Recorded (coordinator) equals produced (outbox) except for at most `tail` signals still
/// undelivered at shutdown (decided after the last send); each recorded once; every signal that
/// arrived within the TTL applied, older ones stored only; per epoch, the coordinator received
/// seqs in increasing order. Returns (recorded, applied).
pub(crate) fn check_delivery(
    db: &Path,
    cstate: &Path,
    produced: &[(String, u64)],
    tail: usize,
) -> (usize, usize) {
    let recorded = coordinator_recorded(cstate, "fault-host");
    let recorded_set: BTreeSet<(String, u64)> =
        recorded.iter().map(|r| (r.epoch.clone(), r.seq)).collect();
    assert_eq!(recorded_set.len(), recorded.len(), "recorded once each");
    let produced_set: BTreeSet<(String, u64)> = produced.iter().cloned().collect();
    let extra: Vec<_> = recorded_set.difference(&produced_set).collect();
    assert!(extra.is_empty(), "recorded but never produced: {extra:?}");
    let conn = rusqlite::Connection::open(db).unwrap();
    let undelivered: BTreeSet<u64> = conn
        .prepare("SELECT seq FROM outbox WHERE delivered IS NULL")
        .unwrap()
        .query_map([], |r| r.get::<_, i64>(0))
        .unwrap()
        .map(|s| s.unwrap() as u64)
        .collect();
    let missing: Vec<_> = produced_set.difference(&recorded_set).collect();
    assert!(
        missing.len() <= tail && missing.iter().all(|(_, s)| undelivered.contains(s)),
        "produced but never recorded: {missing:?} (undelivered at shutdown: {undelivered:?})"
    );
    for r in &recorded {
        let fresh = r.received_at - r.decided_at <= SIGNAL_TTL_S - 1.0;
        let stale = r.received_at - r.decided_at > SIGNAL_TTL_S + 1.0;
        assert!(
            (r.applied || !fresh) && (!r.applied || !stale),
            "seq {} {:.1}s old at receipt, applied {}",
            r.seq,
            r.received_at - r.decided_at,
            r.applied
        );
    }
    let mut last: std::collections::BTreeMap<&str, u64> = Default::default();
    for r in &recorded {
        if let Some(prev) = last.insert(&r.epoch, r.seq) {
            assert!(
                r.seq > prev,
                "epoch {}: seq {} received after {prev}",
                r.epoch,
                r.seq
            );
        }
    }
    (
        recorded.len(),
        recorded.iter().filter(|r| r.applied).count(),
    )
}

/// Fast variant: 10 kills at a 100 ms cadence.
#[test]
fn kill_9_ten_times_loses_nothing() {
    crash_loop(10);
}

/// Long variant: 50 kills.
/// `cargo test --test e2e -- --ignored kill_9_fifty_times --nocapture`
#[test]
#[ignore]
fn kill_9_fifty_times_loses_nothing() {
    crash_loop(50);
}

/// Fills `dir` until the filesystem refuses; returns the filler path.
fn fill(dir: &Path) -> std::path::PathBuf {
    use std::io::Write;
    let path = dir.join("filler");
    let mut f = std::fs::File::create(&path).unwrap();
    let chunk = vec![0x5a_u8; 64 * 1024];
    while f.write_all(&chunk).is_ok() {}
    let small = vec![0x5a_u8; 512];
    while f.write_all(&small).is_ok() {}
    let _ = f.sync_all();
    path
}

/// A tiny tmpfs holds the state directory; once full the agent keeps sampling, deciding and
/// answering, says degraded with the reason, and recovers by itself when space returns.
#[test]
fn full_state_filesystem_degrades_then_recovers() {
    let dir = tempfile::tempdir().unwrap();
    let mnt = dir.path().join("mnt");
    std::fs::create_dir(&mnt).unwrap();
    let ok = std::process::Command::new("mount")
        .args(["-t", "tmpfs", "-o", "size=8m,mode=0750", "tmpfs"])
        .arg(&mnt)
        .status()
        .map(|s| s.success())
        .unwrap_or(false);
    if !ok {
        eprintln!("SKIPPED: cannot mount a tmpfs here (needs root)");
        return;
    }
    struct Unmount(std::path::PathBuf);
    impl Drop for Unmount {
        fn drop(&mut self) {
            let _ = std::process::Command::new("umount")
                .arg("-l")
                .arg(&self.0)
                .status();
        }
    }
    let _unmount = Unmount(mnt.clone());
    let state = mnt.join("state");
    let a_dir = tempfile::tempdir().unwrap();
    let mut a = Agent::options()
        .identity("fault-host", "web")
        .state(a_dir, state)
        .create("");
    a.start();
    a.wait_status("a committed rollup", 40, |v| committed(v).0.is_some());
    let filler = fill(&mnt);
    let full = Instant::now();
    let v = a.wait_status("the store error", 90, |v| !v["store_error"].is_null());
    eprintln!(
        "store error after {:?}: {}",
        full.elapsed(),
        v["store_error"]
    );
    let says_why = |h: &serde_json::Value| {
        h["state"] == "degraded"
            && h["reasons"]
                .as_array()
                .unwrap()
                .iter()
                .any(|r| r.as_str().unwrap().contains("history not being written"))
    };
    wait_for(Duration::from_secs(15), || {
        says_why(&a.json(&["health"])).then_some(())
    })
    .unwrap_or_else(|| panic!("health does not say why: {:#}", a.json(&["health"])));
    // Still sampling and deciding, the CLI answering.
    let d0 = v["decision"].clone();
    let t0 = v["sampler"]["ticks"].as_u64().unwrap();
    std::thread::sleep(Duration::from_secs(3));
    let v = a.json(&["status"]);
    assert!(v["sampler"]["ticks"].as_u64().unwrap() > t0);
    assert_ne!(
        v["decision"], d0,
        "decisions continue while the disk is full"
    );
    assert!(!v["store_error"].is_null(), "still full");
    let frozen = committed(&v);
    std::fs::remove_file(&filler).unwrap();
    let freed = Instant::now();
    let v = a.wait_status("recovery", 60, |v| {
        v["store_error"].is_null() && committed(v) != frozen && committed(v).0 > frozen.0
    });
    eprintln!("recovered {:?} after space returned", freed.elapsed());
    assert!(
        !a.json(&["health"])["reasons"]
            .to_string()
            .contains("history not being written")
    );
    let conn = rusqlite::Connection::open(a.db()).unwrap();
    let ok: String = conn
        .query_row("PRAGMA integrity_check", [], |r| r.get(0))
        .unwrap();
    assert_eq!(ok, "ok");
    let _ = v;
    assert!(a.term().success(), "{}", tail(&a.log(), 20));
}

/// Copies the proc files the sources read into `root`.
fn fake_proc(root: &Path) {
    for f in [
        "stat",
        "meminfo",
        "loadavg",
        "diskstats",
        "net/dev",
        "net/netstat",
        "net/tcp",
        "net/tcp6",
        "pressure/cpu",
        "pressure/io",
        "pressure/memory",
    ] {
        let to = root.join(f);
        std::fs::create_dir_all(to.parent().unwrap()).unwrap();
        match std::fs::read(Path::new("/proc").join(f)) {
            Ok(b) => std::fs::write(&to, b).unwrap(),
            Err(e) => eprintln!("/proc/{f} unreadable here ({e}); skipped"),
        }
    }
}

fn source_state(v: &serde_json::Value, name: &str) -> (String, String) {
    let Some(s) = v["sources"]
        .as_array()
        .and_then(|a| a.iter().find(|s| s["name"] == name))
    else {
        return (String::new(), String::new());
    };
    (
        s["state"].as_str().unwrap_or_default().to_string(),
        s["reason"].as_str().unwrap_or_default().to_string(),
    )
}

/// Missing, empty, truncated, garbage and huge files in a fake proc root: the agent never
/// crashes, reports those sources disabled with a reason and health degraded, and re-enables
/// them by itself when the files are restored (the collector retries every 30 s).
#[test]
fn broken_proc_files_disable_sources_then_recover() {
    let dir = tempfile::tempdir().unwrap();
    let proc = dir.path().join("proc");
    fake_proc(&proc);
    let good: Vec<(std::path::PathBuf, Vec<u8>)> = [
        "stat",
        "meminfo",
        "diskstats",
        "net/dev",
        "net/netstat",
        "pressure/io",
        "net/tcp",
    ]
    .iter()
    .map(|f| (proc.join(f), std::fs::read(proc.join(f)).unwrap()))
    .collect();
    // netstat missing from the start.
    std::fs::remove_file(proc.join("net/netstat")).unwrap();
    let mut a = Agent::options()
        .identity("fault-host", "web")
        .create(&format!(
            "[sources]\nproc_root = \"{}\"\nsock_diag = false\n",
            proc.display()
        ));
    a.start();
    let v = a.wait_status("netstat disabled", 20, |v| {
        source_state(v, "netstat").0 == "disabled"
    });
    let (_, why) = source_state(&v, "netstat");
    assert!(!why.is_empty(), "a reason is given");
    assert_eq!(source_state(&v, "cpu").0, "ok", "{v:#}");
    // Break files in place (the sources keep them open).
    std::fs::write(proc.join("stat"), b"").unwrap(); // empty
    let m = &good[1].1;
    std::fs::write(proc.join("meminfo"), &m[..m.len().min(20)]).unwrap(); // truncated mid-line
    std::fs::write(
        proc.join("diskstats"),
        b"\x00\xff garbage \n\n 8 0 sda x y z\n",
    )
    .unwrap();
    std::fs::write(proc.join("pressure/io"), b"some avg10=banana\n").unwrap();
    std::fs::write(
        proc.join("net/tcp"),
        b"  sl  local_address\n 0: ZZZZ:0050 0A\n",
    )
    .unwrap();
    let huge: Vec<u8> = b"eth0: zz 1 2 3 4 5 6 7 8 9 10 11 12 13 14 15\n"
        .iter()
        .copied()
        .cycle()
        .take(50 << 20)
        .collect();
    std::fs::write(proc.join("net/dev"), &huge).unwrap();
    let broken = [
        "cpu",
        "memory",
        "disk",
        "pressure",
        "network",
        "accept_queue",
    ];
    let v = a.wait_status("broken sources disabled", 20, |v| {
        broken.iter().all(|s| source_state(v, s).0 == "disabled")
    });
    for s in broken {
        let (_, why) = source_state(&v, s);
        assert!(!why.is_empty(), "{s} has a reason");
        eprintln!("{s}: {why}");
    }
    assert_ne!(v["health"]["state"], "healthy", "{v:#}");
    let rss = rss_kib(a.pid().unwrap()).unwrap();
    eprintln!("agent RSS with a 50 MB proc file: {rss} KiB");
    assert!(rss < 200 * 1024, "RSS bounded: {rss} KiB");
    // Still alive and answering.
    assert!(a.child.as_mut().unwrap().try_wait().unwrap().is_none());
    for (path, bytes) in &good {
        std::fs::write(path, bytes).unwrap();
    }
    let restored = Instant::now();
    let all = [
        "cpu",
        "memory",
        "disk",
        "pressure",
        "network",
        "netstat",
        "accept_queue",
    ];
    let v = a.wait_status("every source back", 70, |v| {
        all.iter().all(|s| source_state(v, s).0 == "ok")
    });
    eprintln!(
        "sources back {:?} after the files were restored",
        restored.elapsed()
    );
    let _ = v;
    let rss = rss_kib(a.pid().unwrap()).unwrap();
    eprintln!("agent RSS after the files were restored: {rss} KiB");
    assert!(
        rss < 80 * 1024,
        "the 50 MB file's read buffer is given back: {rss} KiB"
    );
    assert!(a.term().success(), "{}", tail(&a.log(), 20));
}

/// Coordinator killed -> restarted -> first actuation (a command actuator writing a file),
/// and agent restarted -> first decision from stored history; both measured and printed.
#[test]
fn recovery_times_are_seconds() {
    let dir = tempfile::tempdir().unwrap();
    let token = write_token(dir.path(), "token", TOKEN);
    let calls = dir.path().join("calls.txt");
    let script = write_script(
        &dir.path().join("scale.sh"),
        &format!(
            "#!/bin/sh\necho \"$HEADROOM_DESIRED\" >> '{}'\n",
            calls.display()
        ),
    );
    let state = dir.path().join("coordinator.db");
    let config = dir.path().join("coordinator.toml");
    let listen = format!("127.0.0.1:{}", free_port());
    std::fs::write(
        &config,
        coordinator_toml(
            &listen,
            &state,
            &token,
            &format!(
                "kind = \"command\"\nprogram = \"{}\"\ntimeout = \"5s\"",
                script.display()
            ),
        ),
    )
    .unwrap();
    let mut c = Coordinator::start(dir.path(), &config, &[]);
    let http = http_within(Duration::from_secs(2));
    let mut seq = 0;
    let mut post = |url: &str, demand: f64| -> bool {
        seq += 1;
        let t = now();
        let body = serde_json::json!({
            "version": 1, "host": "r1", "group": "web", "epoch": "e1", "seq": seq,
            "decided_at": t, "sent_at": t, "metric": "cpu.busy_cores", "demand_now": demand,
            "capacity": 1.0, "lead_s": 2.0, "p50_at_lead": demand, "p90_at_lead": demand,
            "saturated": false, "action": "hold", "desired_change": 0, "reason": "scripted",
            "health": "healthy", "health_reasons": []
        });
        http.post(format!("{url}/v1/signals"))
            .header("Authorization", &format!("Bearer {TOKEN}"))
            .send_json(&body)
            .is_ok_and(|r| r.status() == 200)
    };
    let actuated = |want: &str| {
        std::fs::read_to_string(&calls)
            .unwrap_or_default()
            .lines()
            .any(|l| l == want)
    };
    assert!(post(&c.url, 2.0));
    wait_for(Duration::from_secs(10), || actuated("2").then_some(()))
        .unwrap_or_else(|| panic!("no first actuation: {}", c.log()));
    c.kill();
    let t0 = Instant::now();
    let c = Coordinator::start(dir.path(), &config, &[]);
    let listening = t0.elapsed();
    wait_for(Duration::from_secs(60), || {
        post(&c.url, 6.0);
        actuated("6").then_some(())
    })
    .unwrap_or_else(|| panic!("no actuation after restart: {}", c.log()));
    let coord_recovery = t0.elapsed();
    eprintln!(
        "coordinator restart -> listening {listening:?}, -> first actuation {coord_recovery:?}"
    );
    assert!(coord_recovery < Duration::from_secs(60));

    let mut a = Agent::options().identity("fault-host", "web").create("");
    a.start();
    let st = a.wait_status("decisions", 40, |v| committed(v).1.is_some_and(|s| s >= 3));
    assert!(a.term().success());
    let last = committed(&st).1.unwrap();
    let t0 = Instant::now();
    a.start();
    let ready = t0.elapsed();
    let v = a.wait_status("a decision after restart", 60, |v| {
        committed(v).1.is_some_and(|s| s > last)
    });
    let agent_recovery = t0.elapsed();
    eprintln!(
        "agent restart -> control socket {ready:?}, -> first decision {agent_recovery:?} (seq {:?})",
        committed(&v).1
    );
    assert!(agent_recovery < Duration::from_secs(60));
    assert!(
        v["decision"]["reason"]
            .as_str()
            .is_some_and(|r| !r.is_empty()),
        "{v:#}"
    );
}

/// Hostile control-socket clients: garbage, invalid UTF-8, an oversized line, absurd values and
/// a client that connects and says nothing. Each gets an error or is disconnected; the agent
/// keeps answering everyone else.
#[test]
fn hostile_control_requests_get_errors_and_the_agent_survives() {
    use std::io::{BufRead, BufReader, Write};
    use std::os::unix::net::UnixStream;
    let mut a = Agent::options().identity("fault-host", "web").create("");
    a.start();
    let idle = UnixStream::connect(a.socket()).unwrap();
    let ask = |line: &[u8]| -> Option<serde_json::Value> {
        let mut s = UnixStream::connect(a.socket()).unwrap();
        s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
        s.write_all(line).ok()?;
        s.write_all(b"\n").ok()?;
        let mut answer = String::new();
        BufReader::new(s).read_line(&mut answer).ok()?;
        serde_json::from_str(&answer).ok()
    };
    let huge = vec![b'{'; 2 << 20];
    for (line, want_error) in [
        (&b"hello"[..], true),
        (b"\xff\xfe\x00garbage", true),
        (b"{\"cmd\":\"status\"}", true),
        (b"{\"cmd\":\"status\",\"v\":99}", true),
        (b"{\"cmd\":\"decisions\",\"v\":1,\"since_s\":-1e308}", false),
        (b"{\"cmd\":\"decisions\",\"v\":1,\"since_s\":1e308}", false),
        (
            b"{\"cmd\":\"history\",\"v\":1,\"since_s\":1e308,\"resolution\":\"1m\"}",
            false,
        ),
        (
            b"{\"cmd\":\"history\",\"v\":1,\"since_s\":60,\"resolution\":\"7y\"}",
            true,
        ),
        (
            b"{\"cmd\":\"forecast\",\"v\":1,\"metric\":\"\\u0000\"}",
            false,
        ),
        (&huge, true),
    ] {
        let shown = String::from_utf8_lossy(&line[..line.len().min(60)]).to_string();
        match ask(line) {
            Some(v) => {
                if want_error {
                    assert_eq!(v["ok"], false, "{shown}: {v}");
                }
                assert!(
                    v["ok"] == true || v["error"].as_str().is_some_and(|e| !e.is_empty()),
                    "{shown}: {v}"
                );
                assert!(
                    !v["error"]
                        .as_str()
                        .unwrap_or_default()
                        .contains("internal error"),
                    "{shown}: a handler panicked: {v}"
                );
            }
            None => assert!(want_error, "{shown}: no answer"),
        }
        assert!(
            a.cli(&["status", "--json"]).status.success(),
            "agent still answers after {shown}: {}",
            tail(&a.log(), 20)
        );
    }
    drop(idle);
    assert!(a.child.as_mut().unwrap().try_wait().unwrap().is_none());
    assert!(a.term().success());
}
