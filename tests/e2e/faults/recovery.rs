//! How long recovery takes: a coordinator killed and restarted to its first actuation, an agent
//! restarted to its first decision from stored history.

use std::time::{Duration, Instant};

use crate::common::*;

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
