//! End-to-end tests of `headroom agent` and its CLI: the built binary, real /proc, a real SQLite
//! file and a real control socket in temporary directories.

use std::process::{Command, Output};
use std::time::{Duration, Instant};

use crate::common::{Agent, TOKEN, bin, committed, free_port, wait_for, write_token};

/// An agent with a fixed host id, as these tests expect.
fn agent() -> Agent {
    Agent::new("host_id = \"test-host\"\n")
}

fn cli_text(a: &Agent, args: &[&str]) -> String {
    let out = a.cli(args);
    assert!(
        out.status.success(),
        "{args:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).expect("utf-8")
}

#[test]
fn every_cli_command_answers_in_both_forms() {
    let mut a = agent();
    a.start();
    // The first 10 s bucket can close after a single sample (buckets follow the wall clock),
    // so wait for the ticks too.
    let st = a.wait_status("a committed rollup and decision, three ticks", 40, |v| {
        let (r, s) = committed(v);
        r.is_some()
            && s.is_some()
            && v["decision"].is_object()
            && v["sampler"]["ticks"].as_u64().is_some_and(|t| t >= 3)
    });
    assert_eq!(st["host"], "test-host");
    assert_eq!(st["interval_s"], 0.2);
    assert!(st["sampler"]["ticks"].as_u64().unwrap() >= 3);
    let sources = st["sources"].as_array().unwrap();
    let cpu = sources
        .iter()
        .find(|s| s["name"] == "cpu")
        .expect("cpu source");
    assert_eq!(cpu["state"], "ok");
    assert!(st["latest"]["cpu"]["cores"].as_u64().unwrap() >= 1);
    assert!(st["latest"]["memory"]["total_bytes"].as_u64().unwrap() > 0);
    let listed = st["latest"]["listeners"].as_array().map(Vec::len);
    let total = st["latest"]["listeners_total"].as_u64();
    assert!(
        listed.is_some() && total.is_some_and(|t| t as usize >= listed.unwrap_or(0)),
        "accept queues are reported, with the host's total: {st:#}"
    );

    // What the policy learned, with the decision: a price no lower than the budget's own, a
    // spend ceiling of at least target tracking's spend.
    let l = &st["learned"];
    assert!(
        l["price_factor"].as_f64().is_some_and(|p| p >= 1.0)
            && l["spend_ratio"].as_f64().is_some_and(|r| r > 0.0)
            && l["spend_ceiling"].as_f64().is_some_and(|c| c >= 1.0),
        "{st:#}"
    );

    let text = cli_text(&a, &["status"]);
    for want in [
        "headroom ",
        "health:",
        "sources:",
        "cpu ",
        "last decision",
        "policy: a short sample priced",
        "stored: rollups up to",
    ] {
        assert!(text.contains(want), "status lacks {want:?}:\n{text}");
    }

    let deadline = Instant::now() + Duration::from_secs(30);
    let f = loop {
        let f = a.json(&["forecast"]);
        if f["forecast"].is_object() || Instant::now() > deadline {
            break f;
        }
        std::thread::sleep(Duration::from_millis(200));
    };
    assert_eq!(f["metric"], "cpu.busy_cores");
    assert!(
        f["forecast"]["points"]
            .as_array()
            .is_some_and(|p| !p.is_empty()),
        "{f:#}"
    );
    let text = cli_text(&a, &["forecast"]);
    assert!(
        text.contains("cpu.busy_cores: now") && text.contains("p90"),
        "{text}"
    );

    let h = a.json(&["history", "--since", "10m"]);
    assert_eq!(h["resolution"], "10s");
    assert!(!h["points"].as_array().unwrap().is_empty());
    let list = cli_text(&a, &["history", "--list"]);
    assert!(
        list.contains("cpu.busy_cores  (demand)") && list.contains("memory.available_bytes"),
        "{list}"
    );
    let csv = cli_text(&a, &["history", "--csv", "--since", "10m"]);
    let mut lines = csv.lines();
    assert_eq!(lines.next(), Some("timestamp,value"));
    let row = lines.next().expect("a row");
    let (ts, v) = row.split_once(',').expect("two columns");
    assert!(
        ts.parse::<i64>().is_ok() && v.parse::<f64>().is_ok(),
        "{row}"
    );
    let text = cli_text(
        &a,
        &["history", "--metric", "memory.used", "--resolution", "10s"],
    );
    assert!(text.starts_with("memory.used at 10s"), "{text}");
    // Every sample of the last minutes, from memory, for the demand metric only.
    let raw = a.json(&["history", "--resolution", "raw", "--since", "5m"]);
    assert_eq!(raw["resolution"], "raw");
    let ts: Vec<f64> = raw["points"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["ts"].as_f64().unwrap())
        .collect();
    assert!(ts.len() > h["points"].as_array().unwrap().len(), "{raw:#}");
    assert!(ts.windows(2).all(|w| w[0] < w[1]), "{ts:?}");
    let text = cli_text(&a, &["history", "--resolution", "raw"]);
    assert!(text.starts_with("cpu.busy_cores at raw"), "{text}");
    let not_kept = a.cli(&["history", "--metric", "memory.used", "--resolution", "raw"]);
    assert!(!not_kept.status.success());
    assert!(
        String::from_utf8_lossy(&not_kept.stderr).contains("demand metric (cpu.busy_cores) only")
    );
    let bad = a.cli(&["history", "--metric", "no.such.metric"]);
    assert!(!bad.status.success());
    assert!(String::from_utf8_lossy(&bad.stderr).contains("no history for metric"));
    // Another stored metric: the same model, warmed from its history on request.
    let other = a.json(&["forecast", "--metric", "memory.used"]);
    assert_eq!(other["metric"], "memory.used");
    assert!(
        other["value"].as_f64().is_some_and(|v| v > 0.0),
        "{other:#}"
    );
    assert!(
        other["recent"].as_array().is_some_and(|r| !r.is_empty())
            && other["forecast"]["points"]
                .as_array()
                .is_some_and(|p| !p.is_empty()),
        "{other:#}"
    );
    let bad = a.cli(&["forecast", "--metric", "no.such.metric"]);
    assert!(!bad.status.success());
    assert!(String::from_utf8_lossy(&bad.stderr).contains("no history for metric"));

    // A reader that has read enough (`| head`) ends each command quietly, never in a panic.
    for args in [
        &["status"][..],
        &["forecast"],
        &["history", "--since", "10m"],
        &["history", "--csv"],
        &["history", "--list"],
        &["health"],
        &["decisions"],
        &["report"],
        &["decisions", "--json"],
    ] {
        let o = crate::common::to_a_closed_reader(
            Command::new(crate::common::bin())
                .args(args)
                .arg("--socket")
                .arg(a.socket()),
        );
        assert!(
            o.status.success() && o.stderr.is_empty(),
            "{args:?} to a closed pipe: {:?} {}",
            o.status,
            String::from_utf8_lossy(&o.stderr)
        );
    }

    let hj = a.json(&["health"]);
    assert!(["healthy", "degraded", "unhealthy"].contains(&hj["state"].as_str().unwrap()));
    let text = cli_text(&a, &["health"]);
    assert!(text.starts_with(hj["state"].as_str().unwrap()), "{text}");
    // A new host's history is filling up: said as a note, not counted as a fault.
    let filling = |h: &serde_json::Value| {
        h["notes"].as_array().is_some_and(|n| {
            n.iter()
                .any(|n| n.as_str().is_some_and(|n| n.starts_with("filling history")))
        })
    };
    let st = a.wait_status("the filling history's note", 20, |v| filling(&v["health"]));
    assert!(
        !st["health"]["reasons"]
            .to_string()
            .contains("model in fallback"),
        "{st:#}"
    );
    let hj = a.json(&["health"]);
    if filling(&hj) {
        let text = cli_text(&a, &["health"]);
        assert!(text.contains("(filling history"), "{text}");
    }

    let d = a.json(&["decisions", "--since", "1h"]);
    let ds = d["decisions"].as_array().unwrap();
    assert!(!ds.is_empty());
    let seqs: Vec<u64> = ds.iter().map(|d| d["seq"].as_u64().unwrap()).collect();
    assert!(
        seqs.windows(2).all(|w| w[1] == w[0] + 1),
        "contiguous seqs {seqs:?}"
    );
    assert!(ds[0]["reason"].as_str().is_some_and(|r| !r.is_empty()));
    let text = cli_text(&a, &["decisions"]);
    assert!(
        text.contains("decisions in the last 1h") && text.contains("reason"),
        "{text}"
    );

    // The ledger: the hour being filled counts every decided second, on both sides.
    // (Decided seconds accrue as the agent runs: wait for two, bounded.)
    let observed = |r: &serde_json::Value| r["total"]["observed_s"].as_f64().unwrap_or(0.0);
    let deadline = Instant::now() + Duration::from_secs(20);
    let mut r = a.json(&["report", "--since", "1h"]);
    while observed(&r) < 2.0 && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(200));
        r = a.json(&["report", "--since", "1h"]);
    }
    let t = &r["total"];
    assert!(observed(&r) >= 2.0, "{r:#}");
    assert!(
        t["plan_instance_hours"].as_f64().is_some_and(|h| h > 0.0)
            && t["shadow_instance_hours"].as_f64().is_some_and(|h| h > 0.0),
        "{r:#}"
    );
    assert_eq!(r["demand_metric"], "cpu.busy_cores");
    assert!(
        r["hours"].as_array().is_some_and(|h| !h.is_empty()),
        "{r:#}"
    );
    // Kept by the hour: the window starts at the hour `--since` reaches into, and says so.
    let from = r["from"].as_f64().expect("from");
    assert_eq!(from % 3600.0, 0.0, "{r:#}");
    // A window longer than time itself is everything kept, from the epoch, not a date
    // before it.
    let all = a.json(&["report", "--since", "1000000000y"]);
    assert_eq!(all["from"], 0, "{all:#}");
    assert!(observed(&all) >= observed(&r), "{all:#}");
    let text = cli_text(&a, &["report"]);
    assert!(
        text.starts_with("ledger of the last 7d, in whole hours from ")
            && text.contains("instance-hours")
            && text.contains("under-provisioned"),
        "{text}"
    );

    let status = a.signal("-TERM");
    assert!(
        status.success(),
        "clean exit on SIGTERM: {status:?}\n{}",
        a.log()
    );
    assert!(!a.socket().exists(), "socket removed on exit");
}

/// A second agent started on the same state directory (an operator running it by hand while
/// the service runs) is refused, and leaves the running agent's socket in place; a file that
/// is not a socket is never taken for a stale one.
#[test]
fn a_second_agent_is_refused_and_leaves_the_first_answering() {
    let mut a = agent();
    a.start();
    // Another `headroom agent` with `config`: refused with `why`, the first still answering.
    let refused = |config: &std::path::Path, why: &str| {
        let out = Command::new(bin())
            .args(["agent", "--config"])
            .arg(config)
            .output()
            .unwrap();
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(!out.status.success() && err.contains(why), "{err}");
        assert!(
            a.cli(&["status"]).status.success(),
            "first agent lost its socket"
        );
    };
    refused(&a.config_path(), "another headroom agent is running");

    // Another state directory, the same socket: refused at the socket, which stays.
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("headroom.toml");
    let same_socket = std::fs::read_to_string(a.config_path())
        .unwrap()
        .replace(a.state.to_str().unwrap(), dir.path().to_str().unwrap());
    std::fs::write(&config, same_socket).unwrap();
    refused(&config, "already listening");
    assert!(a.term().success());

    // A regular file where the socket goes is reported, not replaced.
    std::fs::write(a.socket(), "not a socket").unwrap();
    let fourth = Command::new(bin())
        .args(["agent", "--config"])
        .arg(a.config_path())
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&fourth.stderr);
    assert!(err.contains("is not a socket"), "{err}");
    assert_eq!(std::fs::read_to_string(a.socket()).unwrap(), "not a socket");
}

/// Idle clients cannot take the agent's file descriptors: past 64 open control connections a
/// new one gets a one-line error, and the CLI works again once they close.
#[test]
fn control_connections_are_bounded() {
    let mut a = agent();
    a.start();
    let idle: Vec<_> = (0..64)
        .map(|_| std::os::unix::net::UnixStream::connect(a.socket()).unwrap())
        .collect();
    // The agent counts a connection once it accepts it: give it the moment to.
    let refused = (0..50).find_map(|_| {
        let out = a.cli(&["status"]);
        if out.status.success() {
            std::thread::sleep(Duration::from_millis(50));
            return None;
        }
        Some(String::from_utf8_lossy(&out.stderr).into_owned())
    });
    let refused = refused.expect("a 65th connection was served");
    assert!(refused.contains("control connections at most"), "{refused}");
    drop(idle);
    let served = (0..50).any(|_| {
        std::thread::sleep(Duration::from_millis(50));
        a.cli(&["status"]).status.success()
    });
    assert!(served, "{}", a.log());
    assert!(a.term().success());
}

#[test]
fn socket_is_not_world_accessible() {
    use std::os::unix::fs::PermissionsExt;
    let mut a = agent();
    a.start();
    let mode = std::fs::metadata(a.socket()).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o660);
    assert!(
        a.log().contains("control request"),
        "peer credentials are logged"
    );
    assert!(a.log().contains("uid="));
}

#[test]
fn log_filter_from_the_environment_wins_and_a_bad_one_is_reported() {
    // $HEADROOM_LOG beats $RUST_LOG (info): the agent's INFO lines are filtered out.
    let mut a = agent();
    a.env = vec![("HEADROOM_LOG", "warn")];
    a.start();
    a.cli(&["status"]);
    assert!(a.term().success(), "{}", a.log());
    assert!(!a.log().contains("INFO"), "{}", a.log());
    // A filter that does not parse is ignored, with a warning, and $RUST_LOG applies.
    let mut a = agent();
    a.env = vec![("HEADROOM_LOG", "warn,headroom=loud")];
    a.start();
    let log = a.log();
    assert!(
        log.contains("ignoring the log filter in the environment")
            && log.contains("HEADROOM_LOG")
            && log.contains("INFO"),
        "{log}"
    );
}

#[test]
fn history_survives_sigterm_and_restart() {
    let mut a = agent();
    a.start();
    let st = a.wait_status("a committed rollup", 40, |v| committed(v).0.is_some());
    let (rollup, _) = committed(&st);
    let observed = |a: &Agent| a.json(&["report"])["total"]["observed_s"].as_f64().unwrap();
    let before = observed(&a);
    assert!(a.signal("-TERM").success());
    // The hour being filled is written at the stop, not lost with the process.
    let conn = rusqlite::Connection::open(a.db()).unwrap();
    let stored: f64 = conn
        .query_row("SELECT COALESCE(SUM(observed_s), 0) FROM ledger", [], |r| {
            r.get(0)
        })
        .unwrap();
    drop(conn);
    // Summed in another order than the report's: equal up to rounding.
    assert!(
        stored >= before - 1e-6,
        "ledger at stop {stored} < {before} seen"
    );
    a.start();
    // The model warms up from the stored history: the first decision after the restart
    // already has a forecast, though no new 10 s rollup has closed yet.
    let first = a.wait_status("the first decision after restart", 20, |v| {
        v["decision"].is_object()
    });
    let reason = first["decision"]["reason"].as_str().unwrap_or_default();
    assert!(
        !reason.contains("no forecast"),
        "model started from zero: {reason}"
    );
    let h = a.json(&["history", "--since", "1h"]);
    let ts: Vec<i64> = h["points"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["ts"].as_i64().unwrap())
        .collect();
    assert!(
        ts.contains(&rollup.unwrap()),
        "rollup {rollup:?} still there after restart: {ts:?}"
    );
    assert!(observed(&a) >= stored, "the ledger restarted from zero");
}

#[test]
fn kill_9_loses_nothing_committed() {
    let mut a = agent();
    a.start();
    let mut st = a.wait_status("two committed decisions", 40, |v| {
        committed(v).1.is_some_and(|s| s >= 2)
    });
    // Kill while writes are happening: right after a fresh commit.
    let before = committed(&st);
    st = a.wait_status("another commit", 20, |v| committed(v) != before);
    let (rollup, seq) = committed(&st);
    a.signal("-KILL");
    let conn = rusqlite::Connection::open(a.db()).unwrap();
    let ok: String = conn
        .query_row("PRAGMA integrity_check", [], |r| r.get(0))
        .unwrap();
    assert_eq!(ok, "ok");
    if let Some(ts) = rollup {
        let n: i64 = conn
            .query_row("SELECT COUNT(*) FROM rollup_10s WHERE ts = ?1", [ts], |r| {
                r.get(0)
            })
            .unwrap();
        assert!(n > 0, "committed rollup {ts} present");
    }
    let max: i64 = conn
        .query_row("SELECT MAX(seq) FROM decision", [], |r| r.get(0))
        .unwrap();
    assert!(max as u64 >= seq.unwrap());
    let outbox: i64 = conn
        .query_row("SELECT COUNT(*) FROM outbox", [], |r| r.get(0))
        .unwrap();
    assert_eq!(outbox, 0, "standalone agents keep no outbox");
    drop(conn);
    a.start();
    let after = a.wait_status("a new decision after restart", 20, |v| committed(v).1 > seq);
    assert!(committed(&after).1 > seq);
    // What the policy learned was committed with each decision, and the restart took it back.
    let log = a.log();
    assert!(
        log.contains("policy memory restored") && !log.contains("policy memory not restored"),
        "{log}"
    );
}

fn run(args: &[&str]) -> Output {
    Command::new(bin()).args(args).output().expect("run")
}

/// A flag clap refuses exits 64 like every other bad input, in both binaries (through
/// `headroom coordinator`/`groups` too); help and version exit 0.
#[test]
fn a_refused_flag_exits_64_and_help_exits_0() {
    for args in [
        &["history", "--resolution", "5s"][..],
        &["backtest", "--history", "xyz"],
        &["groups", "--bogus"],
        &["nonsense"],
    ] {
        let out = run(args);
        assert_eq!(out.status.code(), Some(64), "{args:?}: {out:?}");
        assert!(
            String::from_utf8_lossy(&out.stderr).contains("error:"),
            "{args:?}: {out:?}"
        );
    }
    for args in [
        &["--help"][..],
        &["--version"],
        &["simulate", "--help"],
        &["groups", "--help"],
    ] {
        let out = run(args);
        assert_eq!(out.status.code(), Some(0), "{args:?}: {out:?}");
        assert!(!out.stdout.is_empty(), "{args:?}");
    }
}

#[test]
fn malformed_configs_exit_64_with_file_key_and_reason() {
    let dir = tempfile::tempdir().unwrap();
    let bad = dir.path().join("bad.toml");
    std::fs::write(
        &bad,
        "[agent]\ninterval = \"5ms\"\nflavour = 1\n[policy]\ntarget_utilization = 2.0\n",
    )
    .unwrap();
    for args in [vec!["config", "check"], vec!["agent", "--config"]] {
        let mut a = args.clone();
        let p = bad.to_str().unwrap();
        a.push(p);
        let out = run(&a);
        assert_eq!(out.status.code(), Some(64), "{args:?}");
        let err = String::from_utf8_lossy(&out.stderr);
        for want in [
            format!("{p}: agent.interval: 5ms is outside 100ms..=60s"),
            format!("{p}: agent.flavour: unknown key"),
            format!("{p}: policy.target_utilization: 2 is outside (0, 1]"),
        ] {
            assert!(err.contains(&want), "{args:?}: missing {want:?} in\n{err}");
        }
    }
    let syntax = dir.path().join("syntax.toml");
    std::fs::write(&syntax, "[agent\n").unwrap();
    let out = run(&["config", "check", syntax.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(64));
    assert!(String::from_utf8_lossy(&out.stderr).contains("syntax.toml"));
    let missing = dir.path().join("missing.toml");
    let out = run(&["agent", "--config", missing.to_str().unwrap()]);
    assert_eq!(
        out.status.code(),
        Some(64),
        "an explicitly named file must exist"
    );
}

#[test]
fn default_config_prints_and_checks_ok() {
    let out = run(&["config", "default"]);
    assert!(out.status.success());
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("d.toml");
    std::fs::write(&p, &out.stdout).unwrap();
    let out = run(&["config", "check", p.to_str().unwrap()]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(String::from_utf8_lossy(&out.stdout).contains("OK"));
}

#[test]
fn cli_without_agent_says_so_in_one_line() {
    let dir = tempfile::tempdir().unwrap();
    let sock = dir.path().join("none.sock");
    for cmd in [
        "status",
        "forecast",
        "history",
        "health",
        "decisions",
        "report",
    ] {
        let out = Command::new(bin())
            .args([cmd, "--socket"])
            .arg(&sock)
            .output()
            .unwrap();
        assert_eq!(out.status.code(), Some(69), "{cmd}");
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(err.lines().count(), 1, "{cmd}: {err}");
        assert!(err.contains("no agent running at"), "{cmd}: {err}");
    }
    // $HEADROOM_SOCKET names it too; set empty, it is as if unset (not a flag without its
    // value, refused with 64).
    let out = Command::new(bin())
        .arg("status")
        .env("HEADROOM_SOCKET", &sock)
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains(&*sock.to_string_lossy()), "{err}");
    let out = Command::new(bin())
        .arg("status")
        .env("HEADROOM_SOCKET", "")
        .env("RUNTIME_DIRECTORY", dir.path())
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(69), "{err}");
    assert!(err.contains("no agent running at"), "{err}");
}

/// A token the coordinator would refuse is the agent's configuration error: it stops the start
/// (exit 64, naming the key and why) rather than meeting a 401 for ever, and a reload that
/// would bring one in keeps the running configuration and says why.
#[test]
fn a_token_the_coordinator_would_refuse_stops_the_start_and_no_reload_takes_it() {
    let tokens = tempfile::tempdir().unwrap();
    let token = write_token(tokens.path(), "token", "short");
    let mut a = Agent::new(&format!(
        "[coordinator]\nurls = [\"http://127.0.0.1:{}\"]\ntoken_file = \"{}\"\n",
        free_port(),
        token.display()
    ));
    a.spawn();
    let status = a.child.take().unwrap().wait().unwrap();
    assert_eq!(status.code(), Some(64), "{}", a.log());
    assert!(
        a.log().contains("coordinator.token_file: ")
            && a.log()
                .contains("token must be at least 16 bytes (it has 5)"),
        "{}",
        a.log()
    );
    assert!(
        !a.log().contains("short"),
        "the token itself is never printed"
    );

    write_token(tokens.path(), "token", TOKEN);
    a.start();
    write_token(tokens.path(), "token", "short");
    a.reload();
    let kept = wait_for(Duration::from_secs(10), || {
        a.log()
            .contains("reloading the configuration failed; keeping the old one")
            .then_some(())
    });
    assert!(kept.is_some(), "{}", a.log());
    assert!(a.log().contains("at least 16 bytes"), "{}", a.log());
    assert!(a.cli(&["status"]).status.success(), "still running");
    // `systemctl reload` says nothing of it: the health notes do, until a reload is taken.
    let refused = |a: &Agent| {
        a.json(&["health"])["notes"].as_array().is_some_and(|n| {
            n.iter().any(|n| {
                n.as_str()
                    .is_some_and(|n| n.contains("configuration reload refused"))
            })
        })
    };
    let noted = wait_for(Duration::from_secs(10), || refused(&a).then_some(()));
    assert!(noted.is_some(), "{}", a.json(&["health"]));
    write_token(tokens.path(), "token", TOKEN);
    a.reload();
    let cleared = wait_for(Duration::from_secs(10), || (!refused(&a)).then_some(()));
    assert!(cleared.is_some(), "{}", a.json(&["health"]));
}
