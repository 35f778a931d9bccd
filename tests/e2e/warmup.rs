//! Instance warm-up, measured, on a fleet of real agents: a coordinator scales a group out
//! through a command hook; each time the desired capacity rises, the test starts a new real
//! agent (a new host id) after a delay, as a cloud would boot an instance. The coordinator
//! measures each launch from the rise to the new host's first healthy signal, plans with the
//! measured warm-up once five are seen, shows it in `headroom groups`, and keeps it across a
//! restart.

use std::process::Command;
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::common::{Agent, AppGauge, Coordinator, bin, get, wait_for, write_script, write_token};
use crate::coordinator::{TOKEN, group_view, write_config};

/// How long a "boot" takes: the delay between a rise and the new agent's start.
const BOOT: Duration = Duration::from_secs(3);
/// Launches measured.
const LAUNCHES: usize = 5;

#[test]
fn warm_up_is_measured_from_agents_that_start_after_the_rise() {
    let dir = tempfile::tempdir().unwrap();
    let token = write_token(dir.path(), "token", TOKEN);
    let desired_log = dir.path().join("desired.log");
    let hook = write_script(
        &dir.path().join("hook.sh"),
        &format!("#!/bin/sh\necho \"$1\" >> {}\n", desired_log.display()),
    );
    let groups = format!(
        r#"
[groups.web]
token_files = ["{token}"]
capacity_per_instance = 1.0
target_utilization = 1.0
mode = "reactive"
warmup = "20s"
instance_warmup = "measured"
warmup_floor = "1s"
warmup_ceiling = "60s"
decision_interval = "200ms"
min = 1
max = 12
scale_in_stabilization = "10m"
host_ttl = "4s"
signal_ttl = "60s"
actuation_interval = "0s"

[groups.web.actuator]
kind = "command"
program = "{hook}"
args = ["{{desired}}"]
"#,
        token = token.display(),
        hook = hook.display(),
    );
    let config = write_config(dir.path(), "", &groups);
    let coordinator = Coordinator::start(dir.path(), &config, &[]);
    let urls = [coordinator.url.clone()];
    // The host in service carries the demand; the launched ones carry none.
    let demand = AppGauge::serve("queue_depth", 1.0);
    let idle = AppGauge::serve("queue_depth", 0.0);
    let mut agents = vec![Agent::on_gauge(0, &demand.url, 1.0, &urls, &token, "")];
    agents[0].start();
    let desired = || -> Vec<u32> {
        std::fs::read_to_string(&desired_log)
            .unwrap_or_default()
            .lines()
            .filter_map(|l| l.trim().parse().ok())
            .collect()
    };
    // Let the coordinator settle (a host TTL) before the first rise.
    std::thread::sleep(Duration::from_secs(5));
    let deadline = Instant::now() + Duration::from_secs(120);
    let mut launched = 0;
    while launched < LAUNCHES && Instant::now() < deadline {
        let level = launched + 2;
        demand.set(level as f64);
        let rose = wait_for(Duration::from_secs(20), || {
            desired()
                .last()
                .is_some_and(|&d| d as usize >= level)
                .then_some(())
        });
        assert!(rose.is_some(), "no rise to {level}: {:?}", desired());
        std::thread::sleep(BOOT);
        launched += 1;
        let mut a = Agent::on_gauge(launched, &idle.url, 1.0, &urls, &token, "");
        a.start();
        agents.push(a);
        // The next rise after this instance reported.
        let ready = wait_for(Duration::from_secs(20), || {
            let v = group_view(&coordinator.url, "web");
            (v["policy"]["warmup"]["measured"].as_u64() == Some(launched as u64)).then_some(v)
        });
        assert!(
            ready.is_some(),
            "launch {launched} not measured: {}",
            group_view(&coordinator.url, "web")
        );
    }
    let v = group_view(&coordinator.url, "web");
    let measured: Vec<f64> = v["last_actions"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|a| a["kind"] == "instance_ready")
        .filter_map(|a| a["warmup_s"].as_f64())
        .collect();
    assert_eq!(measured.len(), LAUNCHES, "{v}");
    // From the rise: the boot delay, the agent's start and its first decision and signal.
    for s in &measured {
        assert!(
            *s >= BOOT.as_secs_f64() - 0.5 && *s <= BOOT.as_secs_f64() + 8.0,
            "measured {measured:?}"
        );
    }
    let warmup = &v["policy"]["warmup"];
    let largest = measured.iter().copied().fold(0.0, f64::max);
    assert_eq!(warmup["mode"], "measured");
    assert_eq!(warmup["launches"], LAUNCHES);
    assert_eq!(
        warmup["in_force_s"].as_f64(),
        Some(largest),
        "P90 of five: the largest"
    );
    assert_eq!(warmup["warming"], 0);
    // The plan's lead is the measured warm-up plus the decision interval (from the next
    // decision on).
    let lead = wait_for(Duration::from_secs(10), || {
        let v = group_view(&coordinator.url, "web");
        v["evaluation"]["forecast"]["lead_s"]
            .as_f64()
            .filter(|lead| (lead - (largest + 0.2)).abs() < 1e-6)
    });
    assert!(lead.is_some(), "{}", group_view(&coordinator.url, "web"));
    let metric = wait_for(Duration::from_secs(10), || {
        let (_, metrics) = get(&coordinator.url, "/metrics", None);
        metrics
            .lines()
            .find(|l| l.starts_with("headroom_coordinator_instance_warmup_seconds{group=\"web\"}"))
            .and_then(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
            .filter(|v| (v - largest).abs() < 1e-6)
    });
    assert!(
        metric.is_some(),
        "/metrics: {}",
        get(&coordinator.url, "/metrics", None).1
    );
    let groups = Command::new(bin())
        .args(["groups", "--url", &coordinator.url, "--token-file"])
        .arg(&token)
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&groups.stdout);
    assert!(
        text.contains("web warm-up: ")
            && text.contains("(measured: P90 of the last 5 launches); 0 instance(s) warming"),
        "{text}"
    );
    // A restart keeps the measurements.
    drop(coordinator);
    let coordinator = Coordinator::start(dir.path(), &config, &[]);
    let v: Value = group_view(&coordinator.url, "web");
    assert_eq!(v["policy"]["warmup"]["launches"], LAUNCHES, "{v}");
    assert_eq!(v["policy"]["warmup"]["in_force_s"].as_f64(), Some(largest));
}
