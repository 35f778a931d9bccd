//! End-to-end tests of `headroom coordinator` and `headroom groups`: the built binary on
//! 127.0.0.1 with temp dirs, real HTTP, a real SQLite state file. The actuators have modules of
//! their own ([`crate::aws`], [`crate::keda`]), as do the API's answers to clients that
//! misbehave ([`crate::api_requests`]); all share this one's helpers.

use std::ffi::OsStr;
use std::io::{BufRead, BufReader};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::Duration;

use serde_json::{Value, json};

use crate::common::{
    Agent, Coordinator, bin, get, group_toml, now, post_signals as post, wait_for, write_script,
    write_token,
};

/// The token the coordinators of these tests (and of [`crate::keda`], [`crate::aws`]) accept.
pub(crate) const TOKEN: &str = "test-token-0123456789abcdef";

/// A signal as an agent sends it.
pub(crate) fn signal(group: &str, host: &str, epoch: &str, seq: u64, demand: f64) -> Value {
    let t = now();
    json!({
        "version": 1, "host": host, "group": group, "epoch": epoch, "seq": seq,
        "decided_at": t, "sent_at": t, "metric": "cpu.busy_cores", "demand_now": demand,
        "capacity": 1.0, "lead_s": 2.0, "p50_at_lead": demand, "p90_at_lead": demand * 1.2,
        "saturated": false, "action": "hold", "desired_change": 0, "reason": "scripted",
        "health": "healthy", "health_reasons": []
    })
}

pub(crate) fn group_view(url: &str, group: &str) -> Value {
    let (status, body) = get(url, &format!("/v1/groups/{group}"), Some(TOKEN));
    assert_eq!(status, 200, "{body}");
    serde_json::from_str(&body).unwrap()
}

/// Writes `dir/c.toml`: a coordinator on a free loopback port keeping its state in
/// `dir/state.db`, with `top` (top-level keys and tables) before `groups`.
pub(crate) fn write_config(dir: &Path, top: &str, groups: &str) -> PathBuf {
    let config = dir.join("c.toml");
    let toml = format!(
        "listen = \"127.0.0.1:0\"\nstate = \"{}\"\n{top}{groups}",
        dir.join("state.db").display()
    );
    std::fs::write(&config, toml).unwrap();
    config
}

/// A coordinator in a new temporary directory, accepting [`TOKEN`] for one group `web`
/// ([`group_toml`] with `stabilization_s` and `actuator`), with `top` as in [`write_config`].
pub(crate) fn web_coordinator(
    top: &str,
    stabilization_s: f64,
    actuator: &str,
) -> (tempfile::TempDir, Coordinator) {
    let dir = tempfile::tempdir().unwrap();
    let token = write_token(dir.path(), "token", TOKEN);
    let groups = group_toml("web", &token, stabilization_s, actuator);
    let config = write_config(dir.path(), top, &groups);
    let c = Coordinator::start(dir.path(), &config, &[]);
    (dir, c)
}

/// No arguments beyond the config's.
const NO_ARGS: [&str; 0] = [];

/// `coordinator --config CONFIG ARGS…` run to its exit: a start that is refused, or `--check`.
fn run_coordinator<A: AsRef<OsStr>>(config: &Path, args: impl IntoIterator<Item = A>) -> Output {
    Command::new(bin())
        .args(["coordinator", "--config"])
        .arg(config)
        .args(args)
        .output()
        .expect("the coordinator binary runs")
}

/// `headroom coordinator` runs the `headroom-coordinator` binary beside it; without that
/// binary it says where it looked, in one line, and exits 69.
#[test]
fn coordinator_commands_run_the_sibling_binary_or_say_it_is_missing() {
    let out = run_coordinator(Path::new("/nonexistent/coordinator.toml"), NO_ARGS);
    assert_eq!(out.status.code(), Some(64), "{out:?}");
    assert!(String::from_utf8_lossy(&out.stderr).contains("/nonexistent/coordinator.toml"));

    let dir = tempfile::tempdir().unwrap();
    let alone = dir.path().join("headroom");
    std::fs::copy(bin(), &alone).unwrap();
    let out = Command::new(&alone)
        .args(["coordinator", "--config", "/nonexistent/coordinator.toml"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(69));
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(err.lines().count(), 1, "{err}");
    assert!(
        err.contains(
            &dir.path()
                .join("headroom-coordinator")
                .display()
                .to_string()
        ),
        "{err}"
    );
}

#[test]
fn refuses_world_readable_token_files_and_bad_config_with_64() {
    let dir = tempfile::tempdir().unwrap();
    let token = write_token(dir.path(), "token", TOKEN);
    std::fs::set_permissions(&token, std::fs::Permissions::from_mode(0o644)).unwrap();
    let config = dir.path().join("c.toml");
    // Every bad token file at once, and beside a bad key, named by the configuration's file
    // and key.
    let missing = dir.path().join("missing");
    let toml = group_toml("web", &token, 5.0, "kind = \"dry-run\"")
        .replace("max = 20", "max = 0")
        .replace(
            &format!("token_files = [\"{}\"]", token.display()),
            &format!(
                "token_files = [\"{}\", \"{}\"]",
                token.display(),
                missing.display()
            ),
        );
    assert!(toml.contains("missing"), "{toml}");
    std::fs::write(&config, &toml).unwrap();
    // Served or only checked (`--check`, as a deployment validates a file before it replaces
    // the old one), the same problems.
    for check in [&[][..], &["--check"][..]] {
        let out = run_coordinator(&config, check);
        assert_eq!(out.status.code(), Some(64));
        let err = String::from_utf8_lossy(&out.stderr);
        for want in [
            "c.toml (3 problems)",
            "groups.web.max",
            "groups.web.token_files[0]:",
            "accessible by others",
            "groups.web.token_files[1]:",
            "missing",
        ] {
            assert!(err.contains(want), "{want}: {err}");
        }
    }
    // Fixed, `--check` says so and exits without serving (nothing listens, no state file).
    std::fs::set_permissions(&token, std::fs::Permissions::from_mode(0o600)).unwrap();
    std::fs::write(
        &config,
        group_toml("web", &token, 5.0, "kind = \"dry-run\""),
    )
    .unwrap();
    let out = run_coordinator(&config, ["--check"]);
    let said = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{said}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(said.contains("c.toml: valid (1 group"), "{said}");
    // A flag's bad value is the flag's, not the file's.
    let out = run_coordinator(
        &config,
        [
            "--check".as_ref(),
            "--listen".as_ref(),
            "nonsense".as_ref(),
            "--token-file".as_ref(),
            missing.as_os_str(),
        ],
    );
    assert_eq!(out.status.code(), Some(64));
    let err = String::from_utf8_lossy(&out.stderr);
    for want in [
        "c.toml: --listen (command line): \"nonsense\"",
        "c.toml: --token-file (command line): ",
    ] {
        assert!(err.contains(want), "{want}: {err}");
    }

    std::fs::write(&config, "[groups.web]\ntarget_utilization = 3\n").unwrap();
    let out = run_coordinator(&config, NO_ARGS);
    assert_eq!(out.status.code(), Some(64));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("c.toml") && err.contains("groups.web.target_utilization"),
        "{err}"
    );
}

#[test]
fn demand_step_drives_the_command_actuator_and_signals_apply_once_across_restart() {
    let dir = tempfile::tempdir().unwrap();
    let token = write_token(dir.path(), "token", TOKEN);
    let calls = dir.path().join("calls.txt");
    let script = write_script(
        &dir.path().join("scale.sh"),
        &format!(
            "#!/bin/sh\nprintf '%s|' \"$@\" >> '{0}'\nprintf 'env=%s,%s\\n' \"$HEADROOM_DESIRED\" \"$HEADROOM_GROUP\" >> '{0}'\n",
            calls.display()
        ),
    );
    let actuator = format!(
        "kind = \"command\"\nprogram = \"{}\"\nargs = [\"--group\", \"{{group}}\", \"--desired\", \"{{desired}}\", \"--reason\", \"{{reason}}\"]\ntimeout = \"5s\"",
        script.display()
    );
    let config = write_config(dir.path(), "", &group_toml("web", &token, 60.0, &actuator));
    let mut c = Coordinator::start(dir.path(), &config, &[]);

    let hosts = ["h1", "h2", "h3"];
    let mut produced: Vec<Value> = Vec::new();
    let mut seq = 0;
    let mut send_round = |url: &str, demand: [f64; 3], produced: &mut Vec<Value>| {
        seq += 1;
        for (h, d) in hosts.iter().zip(demand) {
            let s = signal("web", h, &format!("epoch-{h}"), seq, d);
            let (status, body) = post(url, Some(TOKEN), &s.to_string());
            assert_eq!(status, 200, "{body}");
            produced.push(s);
        }
    };
    // Three hosts, 1.0 + 0.8 + 0.9 = 2.7 busy cores -> 3 instances: as many as there are hosts.
    send_round(&c.url, [1.0, 0.8, 0.9], &mut produced);
    let held = wait_for(Duration::from_secs(5), || {
        let v = group_view(&c.url, "web");
        (v["evaluation"]["live_hosts"] == 3).then_some(v)
    })
    .unwrap_or_else(|| panic!("no evaluation: {}", c.log()));
    assert_eq!(held["evaluation"]["desired"], 3, "{held}");
    assert!(!calls.exists(), "no actuation while demand fits");
    // Step: 2 + 3 + 2.5 = 7.5 -> 8 instances.
    send_round(&c.url, [2.0, 3.0, 2.5], &mut produced);
    let line = wait_for(Duration::from_secs(10), || {
        let text = std::fs::read_to_string(&calls).ok()?;
        text.lines()
            // A whole line: the hook writes it in two appends.
            .find(|l| l.contains("--desired|8|") && l.ends_with("env=8,web"))
            .map(str::to_string)
    })
    .unwrap_or_else(|| {
        panic!(
            "no actuation to 8: {:?}\n{}",
            std::fs::read_to_string(&calls),
            c.log()
        )
    });
    assert!(
        line.starts_with("--group|web|--desired|8|--reason|"),
        "{line}"
    );
    assert!(line.ends_with("env=8,web"), "{line}");

    // Recorded once the hook has exited, which comes after its line.
    let v = wait_for(Duration::from_secs(10), || {
        let v = group_view(&c.url, "web");
        (v["last_actions"][0]["to"] == 8).then_some(v)
    })
    .unwrap_or_else(|| panic!("no actuation to 8 recorded: {}", c.log()));
    assert_eq!(v["name"], "web");
    assert_eq!(v["actuator"], "command");
    assert_eq!(v["hosts"].as_array().unwrap().len(), 3);
    assert_eq!(v["hosts"][0]["host"], "h1");
    assert_eq!(v["evaluation"]["demand"].as_f64(), Some(7.5));
    assert_eq!(v["evaluation"]["desired"], 8);
    assert!(
        v["evaluation"]["reason"]
            .as_str()
            .is_some_and(|r| !r.is_empty())
    );
    assert_eq!(v["last_actions"][0]["kind"], "set_capacity");
    assert_eq!(v["last_actions"][0]["to"], 8);
    assert_eq!(v["signals"]["applied"], 6);
    // The ledger: the plan next to target tracking on the same summed demand, every evaluation.
    let day = &v["ledger"]["last_day"];
    let judged = day["observed_s"].as_f64().unwrap_or(0.0);
    assert!(
        judged > 0.0
            && day["plan_instance_hours"].as_f64().is_some_and(|h| h > 0.0)
            && day["shadow_instance_hours"]
                .as_f64()
                .is_some_and(|h| h > 0.0),
        "{v:#}"
    );
    assert!(v["ledger"]["this_hour"].is_object(), "{v:#}");
    let (_, metrics) = get(&c.url, "/metrics", None);
    for needle in [
        "headroom_coordinator_ledger_instance_seconds_total{group=\"web\",policy=\"plan\"}",
        "headroom_coordinator_ledger_short_seconds_total{group=\"web\",policy=\"target_tracking\"}",
        "headroom_coordinator_ledger_observed_seconds_total{group=\"web\"}",
        "headroom_coordinator_policy_price_factor{group=\"web\"} 1",
        "headroom_coordinator_policy_spend_ratio{group=\"web\"}",
    ] {
        assert!(metrics.contains(needle), "{needle} not in\n{metrics}");
    }
    let (status, body) = get(&c.url, "/v1/groups", Some(TOKEN));
    assert_eq!(status, 200);
    let all: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(all["groups"].as_array().unwrap().len(), 1);

    // `headroom groups` against it: JSON and the table.
    let out = Command::new(bin())
        .args(["groups", "--json", "--url", &c.url, "--token-file"])
        .arg(&token)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let cli: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(cli["groups"][0]["name"], "web");
    let out = Command::new(bin())
        .args(["groups", "web", "--url", &c.url, "--token-file"])
        .arg(&token)
        .output()
        .unwrap();
    let table = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success()
            && table.contains("GROUP")
            && table.contains("h3")
            && table.contains("web ledger, last 24h: plan")
            // Its factor depends on how many evaluations fell inside the 1 s warm-up.
            && table.contains("web policy: a short sample priced ")
            && table.contains("x the budget's; spend "),
        "{table}"
    );
    // A reader that has read enough (`| head`) ends it quietly, never in a panic.
    for form in [&["--json"][..], &[]] {
        let o = crate::common::to_a_closed_reader(
            Command::new(bin())
                .args(["groups", "--url", &c.url, "--token-file"])
                .arg(&token)
                .args(form),
        );
        assert!(
            o.status.success() && o.stderr.is_empty(),
            "groups {form:?} to a closed pipe: {:?} {}",
            o.status,
            String::from_utf8_lossy(&o.stderr)
        );
    }

    // Resending everything (at-least-once delivery) applies nothing twice.
    let batch = serde_json::to_string(&produced).unwrap();
    let v: Value = serde_json::from_str(&post(&c.url, Some(TOKEN), &batch).1).unwrap();
    assert_eq!(
        (v["applied"].as_u64(), v["duplicates"].as_u64()),
        (Some(0), Some(6))
    );

    // Stop the coordinator; agents keep producing; restart on the same state file and drain.
    c.kill();
    let mut backlog = Vec::new();
    send_round_offline(&hosts, 3, &mut backlog);
    let mut c = Coordinator::start(dir.path(), &config, &[]);
    let mut all_sent = produced.clone();
    all_sent.extend(backlog.iter().cloned());
    let v: Value = serde_json::from_str(
        &post(
            &c.url,
            Some(TOKEN),
            &serde_json::to_string(&all_sent).unwrap(),
        )
        .1,
    )
    .unwrap();
    assert_eq!(
        (v["applied"].as_u64(), v["duplicates"].as_u64()),
        (Some(3), Some(6)),
        "{v}"
    );
    let v: Value = serde_json::from_str(
        &post(
            &c.url,
            Some(TOKEN),
            &serde_json::to_string(&all_sent).unwrap(),
        )
        .1,
    )
    .unwrap();
    assert_eq!(v["applied"], 0);
    let distinct_produced = all_sent.len() as u64;
    let v = group_view(&c.url, "web");
    assert_eq!(
        v["signals"]["applied"].as_u64(),
        Some(distinct_produced),
        "{v}"
    );
    assert_eq!(
        v["hosts"].as_array().unwrap().len(),
        3,
        "hosts restored: {v}"
    );
    // The ledger's hours were stored as they filled: the restart goes on from them.
    assert!(
        v["ledger"]["last_day"]["observed_s"]
            .as_f64()
            .is_some_and(|s| s >= judged),
        "ledger restarted from zero: {v:#}"
    );
    // So was what the policy learned (its price, spend, stabilisation window, unit of
    // demand): the first decision after the restart goes on from it rather than from nothing.
    let restored = wait_for(Duration::from_secs(10), || {
        c.log().contains("policy memory restored").then_some(())
    });
    let log = c.log();
    assert!(
        restored.is_some() && !log.contains("policy memory not restored"),
        "{log}"
    );
    // The group's state logs within a span that names the group.
    assert!(
        log.lines()
            .any(|l| l.contains("policy memory restored") && l.contains("group{name=web}")),
        "{log}"
    );
    c.kill();
}

/// Signals produced while the coordinator is down (round `seq`, same epochs).
fn send_round_offline(hosts: &[&str], seq: u64, out: &mut Vec<Value>) {
    for h in hosts {
        out.push(signal("web", h, &format!("epoch-{h}"), seq, 2.0));
    }
}

#[test]
fn sighup_reloads_tokens() {
    let (dir, c) = web_coordinator("", 5.0, "kind = \"dry-run\"");
    let hup = || {
        let status = Command::new("kill")
            .arg("-HUP")
            .arg(c.child.id().to_string())
            .status()
            .unwrap();
        assert!(status.success());
    };
    let s = signal("web", "h1", "e1", 1, 1.0).to_string();
    assert_eq!(post(&c.url, Some(TOKEN), &s).0, 200);
    let rotated = "rotated-token-0123456789abcdef";
    write_token(dir.path(), "token", rotated);
    hup();
    let ok = wait_for(Duration::from_secs(5), || {
        (post(&c.url, Some(rotated), &s).0 == 200).then_some(())
    });
    assert!(ok.is_some(), "new token refused after SIGHUP: {}", c.log());
    assert_eq!(post(&c.url, Some(TOKEN), &s).0, 401);
    // Deleting a token's file revokes the token at the next SIGHUP (the reload does not fail
    // and keep it), and the log names the file.
    std::fs::remove_file(dir.path().join("token")).unwrap();
    hup();
    let revoked = wait_for(Duration::from_secs(5), || {
        (post(&c.url, Some(rotated), &s).0 == 401).then_some(())
    });
    assert!(
        revoked.is_some(),
        "deleted token still accepted: {}",
        c.log()
    );
    // Logged right after the tokens are swapped: the 401 can come first.
    let logged = wait_for(Duration::from_secs(5), || {
        c.log()
            .contains("no token of this file is accepted")
            .then_some(())
    });
    assert!(logged.is_some(), "{}", c.log());
    // A changed file is said to apply at the next restart, and one that would not start says
    // why; the running configuration stays.
    write_token(dir.path(), "token", rotated);
    let config = dir.path().join("c.toml");
    let text = std::fs::read_to_string(&config).unwrap();
    std::fs::write(&config, text.replace("max = 20", "max = 30")).unwrap();
    hup();
    let said = wait_for(Duration::from_secs(5), || {
        c.log()
            .contains("applies at the next restart")
            .then_some(())
    });
    assert!(said.is_some(), "{}", c.log());
    std::fs::write(&config, text.replace("max = 20", "max = 0")).unwrap();
    hup();
    let said = wait_for(Duration::from_secs(5), || {
        c.log().contains("would not start as it is").then_some(())
    });
    assert!(said.is_some(), "{}", c.log());
    assert!(c.log().contains("groups.web.max"), "{}", c.log());
    assert_eq!(post(&c.url, Some(rotated), &s).0, 200);
}

#[test]
fn serves_https_when_a_certificate_is_configured() {
    let dir = tempfile::tempdir().unwrap();
    let p = |name: &str| dir.path().join(name).display().to_string();
    let (ca, cert, key) = (p("ca.pem"), p("cert.pem"), p("key.pem"));
    std::fs::write(
        p("ext.cnf"),
        "subjectAltName=IP:127.0.0.1,DNS:localhost\nbasicConstraints=CA:FALSE\n",
    )
    .unwrap();
    let steps: [Vec<String>; 3] = [
        "req -x509 -newkey rsa:2048 -nodes -days 1 -subj /CN=headroom-test-ca -keyout CAKEY -out CA",
        "req -newkey rsa:2048 -nodes -subj /CN=localhost -keyout KEY -out CSR",
        "x509 -req -in CSR -CA CA -CAkey CAKEY -CAcreateserial -days 1 -extfile EXT -out CERT",
    ]
    .map(|cmd| {
        cmd.split(' ')
            .map(|a| match a {
                "CAKEY" => p("ca.key"),
                "CA" => ca.clone(),
                "KEY" => key.clone(),
                "CSR" => p("leaf.csr"),
                "EXT" => p("ext.cnf"),
                "CERT" => cert.clone(),
                other => other.to_string(),
            })
            .collect()
    });
    for args in steps {
        let out = Command::new("openssl")
            .args(&args)
            .output()
            .expect("openssl is needed for the TLS test (.ci/apt-packages.txt)");
        assert!(
            out.status.success(),
            "openssl {args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    let token = write_token(dir.path(), "token", TOKEN);
    let config = write_config(
        dir.path(),
        &format!("[tls]\ncert = \"{cert}\"\nkey = \"{key}\"\n"),
        &group_toml("web", &token, 5.0, "kind = \"dry-run\""),
    );
    // `--check` loads the pair as a start would: a key that is no key is found before one.
    let check = |config: &Path| run_coordinator(config, ["--check"]);
    let good = std::fs::read_to_string(&config).unwrap();
    std::fs::write(
        &config,
        good.replace(&format!("key = \"{key}\""), &format!("key = \"{cert}\"")),
    )
    .unwrap();
    let out = check(&config);
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(64), "{err}");
    assert!(err.contains("tls: loading TLS certificate"), "{err}");
    std::fs::write(&config, good).unwrap();
    assert!(check(&config).status.success());
    let c = Coordinator::start(dir.path(), &config, &[]);
    assert!(c.url.starts_with("https://"), "{}", c.url);
    let out = Command::new(bin())
        .args(["groups", "--json", "--url", &c.url, "--ca-cert", &ca])
        .arg("--token-file")
        .arg(&token)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}\n{}",
        String::from_utf8_lossy(&out.stderr),
        c.log()
    );
    let v: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["groups"][0]["name"], "web");
    // HTTP/1.1 only: a client asking for HTTP/2 (no header timeout there) does not get it.
    let alpn = Command::new("openssl")
        .args(["s_client", "-connect", c.url.trim_start_matches("https://")])
        .args(["-alpn", "h2,http/1.1", "-CAfile", &ca])
        .stdin(Stdio::null())
        .output()
        .unwrap();
    let alpn = String::from_utf8_lossy(&alpn.stdout);
    assert!(alpn.contains("ALPN protocol: http/1.1"), "{alpn}");
    // A client that completes the handshake and then says nothing is closed within the header
    // timeout (10 s), as over plain HTTP: it would hold a place under the connection cap.
    let mut silent = Command::new("openssl")
        .args([
            "s_client",
            "-quiet",
            "-connect",
            c.url.trim_start_matches("https://"),
        ])
        .args(["-CAfile", &ca])
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let started = std::time::Instant::now();
    let closed = wait_for(Duration::from_secs(30), || {
        silent.try_wait().ok().flatten().map(|_| ())
    });
    let _ = silent.kill();
    let _ = silent.wait();
    assert!(
        closed.is_some() && started.elapsed() < Duration::from_secs(20),
        "a silent TLS client still open after {:?}",
        started.elapsed()
    );
    // An agent trusting the same private CA delivers its signals over TLS.
    let mut a = Agent::options()
        .identity("tls-host", "web")
        .create(&format!(
            "[coordinator]\nurls = [\"{}\"]\ntoken_file = \"{}\"\nca_cert = \"{ca}\"\n",
            c.url,
            token.display()
        ));
    a.start();
    a.wait_status("signals delivered over TLS", 40, |v| {
        v["outbox"]["delivered"].as_u64().is_some_and(|n| n > 0)
    });
    assert!(a.term().success());
    // Without trusting the certificate the client refuses the connection.
    let out = Command::new(bin())
        .args(["groups", "--url", &c.url, "--token-file"])
        .arg(&token)
        .output()
        .unwrap();
    assert!(!out.status.success());
}

#[test]
fn quick_start_flags_run_one_dry_run_group_without_a_file() {
    let dir = tempfile::tempdir().unwrap();
    let token = write_token(dir.path(), "token", TOKEN);
    let mut child = Command::new(bin())
        .args(["coordinator", "--listen", "127.0.0.1:0", "--token-file"])
        .arg(&token)
        .arg("--state")
        .arg(dir.path().join("state.db"))
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut line = String::new();
    BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    let url = line
        .trim()
        .strip_prefix("headroom coordinator listening on ")
        .map(str::to_string);
    let result = std::panic::catch_unwind(|| {
        let url = url.expect("listen line");
        let s = signal("default", "h1", "e1", 1, 1.0);
        assert_eq!(post(&url, Some(TOKEN), &s.to_string()).0, 200);
        let v = group_view(&url, "default");
        assert_eq!(v["actuator"], "dry-run");
    });
    let _ = child.kill();
    let _ = child.wait();
    result.unwrap();
}

/// A second coordinator on the state file of a running one is refused at start: two would
/// decide, and actuate, from the same rows. The first keeps serving.
#[test]
fn a_second_coordinator_on_one_state_file_is_refused() {
    let (dir, c) = web_coordinator("", 5.0, "kind = \"dry-run\"");
    let coordinator = Path::new(bin()).with_file_name("headroom-coordinator");
    let out = Command::new(coordinator)
        .args(["coordinator", "--config"])
        .arg(dir.path().join("c.toml"))
        .stdin(Stdio::null())
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "{stderr}");
    assert!(
        stderr.contains("another headroom coordinator is running on"),
        "{stderr}"
    );
    assert_eq!(get(&c.url, "/healthz", None).0, 200);
}
