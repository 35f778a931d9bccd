//! A leader paused (SIGSTOP, as a paused VM) past its lease: on waking it sends nothing, at
//! any point of an actuation, and leads again only after winning a new lease.

use std::time::Duration;

use super::cluster::{Actuation, Ha};
use crate::common::{get, now, wait_for};

/// The leader stopped (SIGSTOP) for three TTLs, as a paused VM, then woken: it must not
/// actuate on waking, since another replica won the lease meanwhile; and with its own lease
/// expired, it must win a new one and lead again once the other replica is killed.
#[test]
fn a_leader_paused_for_three_ttls_does_not_actuate_on_waking() {
    let Some((ha, leader)) = Ha::pair_sized() else {
        return;
    };
    let other = 1 - leader;
    ha.signal(leader, "-STOP");
    let stopped_at = now();
    let pause = Duration::from_secs(3 * ha.ttl_s);
    // While it sleeps, demand moves: the standby must take over and follow it.
    let mut level = 3.0;
    ha.alternate_demand_for(pause, Duration::from_secs(4), &mut level);
    ha.signal(leader, "-CONT");
    let woke_at = now();
    for _ in 0..4 {
        ha.alternate_demand(&mut level);
        std::thread::sleep(Duration::from_secs(3));
    }
    let log = ha.actuations();
    let by_paused: Vec<&Actuation> = log
        .iter()
        .filter(|a| a.replica == leader && a.at >= stopped_at)
        .collect();
    assert!(
        by_paused.is_empty(),
        "the paused leader actuated after waking at {woke_at:.1}: {by_paused:?}\n{}",
        ha.log(leader)
    );
    let by_other = log
        .iter()
        .filter(|a| a.replica == other && a.at > stopped_at)
        .count();
    assert!(
        by_other > 0,
        "the standby never took over: {log:?}\n{}",
        ha.log(other)
    );
    assert_eq!(ha.leader(), Some(other), "one leader after the wake");
    let v = ha.view(leader).expect("the woken replica answers");
    // `headroom groups` on the woken replica names the leader and why it does not act.
    let out = std::process::Command::new(crate::common::bin())
        .args([
            "groups",
            "web",
            "--url",
            &ha.replicas[leader].url,
            "--token-file",
        ])
        .arg(ha.dir.path().join("token"))
        .output()
        .unwrap();
    let table = String::from_utf8_lossy(&out.stdout);
    let want = format!(
        "web lease: leader {} (this replica: {}, not actuating",
        ha.replicas[other].name, ha.replicas[leader].name
    );
    assert!(out.status.success() && table.contains(&want), "{table}");
    // Its lease expired at etcd while it slept: it must win a new one, and lead again when the
    // other replica goes.
    ha.signal(other, "-KILL");
    let killed_at = now();
    let back = ha
        .wait_actuation_by(leader, killed_at, &mut level)
        .unwrap_or_else(|| {
            panic!(
                "the woken replica never led again after the other was killed\n{}",
                ha.log(leader)
            )
        });
    eprintln!(
        "paused {pause:?}: the standby actuated {by_other} times; the woken replica says {}; \
         it led again {:.1}s after the other was killed",
        v["lease"],
        back.at - killed_at
    );
}

/// Whether process `pid` is stopped (state T in /proc).
fn is_stopped(pid: u32) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .ok()
        .and_then(|s| s.rsplit_once(") ").map(|(_, rest)| rest.starts_with('T')))
        .unwrap_or(false)
}

/// Replica 0 leads with `fault` set; replica 1 stands by; hosts at `demand` make replica 0
/// actuate, and the fault stops it on the way. `stopped` runs while it is stopped, which lasts
/// three TTLs. Returns when it was stopped, and whether replica 1 took over after that.
fn pause_the_leader(
    ha: &mut Ha,
    fault: &str,
    demand: &[f64],
    stopped: impl FnOnce(&Ha),
) -> (f64, bool) {
    stop_the_leader_at(ha, fault, demand);
    let stopped_at = now();
    stopped(ha);
    std::thread::sleep(Duration::from_secs(3 * ha.ttl_s));
    ha.signal(0, "-CONT");
    let took_over = wait_for(Duration::from_secs(60), || {
        ha.actuations()
            .iter()
            .any(|a| a.replica == 1 && a.at > stopped_at)
            .then_some(())
    });
    (stopped_at, took_over.is_some())
}

/// Replica 0 leads with `fault` set; replica 1 stands by; hosts at `demand` make replica 0
/// actuate; returns once the fault stopped it on the way.
fn stop_the_leader_at(ha: &mut Ha, fault: &str, demand: &[f64]) {
    ha.start_replica(0, &[(fault, "1")]);
    let won = wait_for(Duration::from_secs(60), || {
        ha.log(0)
            .contains("leader: this replica actuates the group")
            .then_some(())
    });
    assert!(won.is_some(), "replica 0 never led: {}", ha.log(0));
    ha.start_replica(1, &[]);
    ha.start_hosts(demand);
    let pid = ha.pid(0);
    wait_for(Duration::from_secs(60), || is_stopped(pid).then_some(()))
        .unwrap_or_else(|| panic!("replica 0 never reached the fault: {}", ha.log(0)));
}

/// Asserts that replica 0 never set the count and that replica 1 took over.
fn assert_only_replica_1_actuated(ha: &Ha, took_over: bool) {
    let log = ha.actuations();
    let zero: Vec<&Actuation> = log.iter().filter(|a| a.replica == 0).collect();
    assert!(
        zero.is_empty(),
        "replica 0 actuated though it woke past its deadline: {zero:?}\n{}",
        ha.log(0)
    );
    assert!(took_over, "replica 1 never took over: {}", ha.log(1));
    eprintln!("replica 0 sent nothing; replica 1 took over: {log:?}");
}

/// The leader paused between its lease check and its AWS call, past its deadline: the call
/// is not sent.
#[test]
fn a_leader_paused_between_its_lease_check_and_its_call_sends_nothing() {
    let Some(mut ha) = Ha::new(2, 5, 20, 2) else {
        return;
    };
    // 4 instances needed against 2: replica 0 checks its lease, then stops before the call.
    let (_, took_over) = pause_the_leader(
        &mut ha,
        "HEADROOM_FAULT_STOP_AFTER_FENCE",
        &[2.0, 2.0],
        |_| {},
    );
    std::thread::sleep(Duration::from_secs(2));
    assert_only_replica_1_actuated(&ha, took_over);
    assert!(
        ha.log(0)
            .contains("past the lease's deadline after the check"),
        "the refusal is logged: {}",
        ha.log(0)
    );
    let (_, metrics) = get(&ha.replicas[0].url, "/metrics", None);
    assert!(
        metrics.lines().any(|l| l
            .starts_with("headroom_coordinator_fenced_actuations_total{group=\"web\"} ")
            && !l.ends_with(" 0")),
        "the refusal is counted: {metrics}"
    );
}

/// The leader raised the scaler's maximum for a plan above `max`, then paused past its deadline
/// before setting the count: the count is not set. Each further call of one actuation starts
/// only while the deadline is ahead, as the first one does after the fence.
#[test]
fn a_leader_paused_between_raising_the_maximum_and_setting_the_count_sets_nothing() {
    let Some(mut ha) = Ha::new(2, 5, 4, 2) else {
        return;
    };
    ha.add_group_keys("max_breach = \"raise\"\nmax_breach_buffer = 0.1");
    // 6 instances needed against a maximum of 4: replica 0 raises the maximum to 7, then stops
    // before it sets the count.
    let (_, took_over) = pause_the_leader(
        &mut ha,
        "HEADROOM_FAULT_STOP_AFTER_RAISE",
        &[3.0, 3.0],
        |ha| {
            assert_eq!(
                ha.moto.web_max(),
                7,
                "the first call went through before the pause"
            );
        },
    );
    let refused = wait_for(Duration::from_secs(30), || {
        ha.log(0)
            .contains("leadership not confirmed again while the maximum was raised")
            .then_some(())
    });
    assert_only_replica_1_actuated(&ha, took_over);
    assert!(refused.is_some(), "the refusal is logged: {}", ha.log(0));
}

/// The leader raised the scaler's maximum, and while it was stopped before setting the count,
/// its election key was deleted and the other replica won the group: woken with its lease still
/// good, it must not set the count. The deadline alone would let it; fencing again through etcd
/// before each further call of an actuation does not.
#[test]
fn a_leader_whose_key_was_taken_between_raising_the_maximum_and_setting_the_count_sets_nothing() {
    // A TTL long enough that the lease outlives the takeover, however slow etcd is to tell
    // replica 1: the deadline is renewal + 4/5 TTL with renewals every TTL/3, so at least
    // 0.47 TTL (21 s) after the stop, and replica 0 is woken within about 16 s of it.
    let Some(mut ha) = Ha::new(2, 45, 4, 2) else {
        return;
    };
    ha.add_group_keys("max_breach = \"raise\"\nmax_breach_buffer = 0.1");
    stop_the_leader_at(&mut ha, "HEADROOM_FAULT_STOP_AFTER_RAISE", &[3.0, 3.0]);
    assert_eq!(ha.moto.web_max(), 7, "the maximum was raised first");
    // Replica 0's key is the one created first; replica 1's campaign waits behind it.
    let keys = ha.etcd.create_revisions("/headroom-test/");
    let (first, _) = keys
        .iter()
        .min_by_key(|(_, rev)| rev.parse::<i64>().unwrap_or(i64::MAX))
        .expect("campaign keys");
    assert_eq!(ha.etcd.delete_prefix(first), 1, "{keys:?}");
    let took = wait_for(Duration::from_secs(15), || {
        ha.log(1)
            .contains("leader: this replica actuates the group")
            .then_some(())
    });
    assert!(took.is_some(), "replica 1 never won: {}", ha.log(1));
    ha.signal(0, "-CONT");
    let refused = wait_for(Duration::from_secs(20), || {
        ha.log(0)
            .contains("leadership not confirmed again while the maximum was raised")
            .then_some(())
    });
    let log = ha.log(0);
    assert!(refused.is_some(), "the refusal is logged: {log}");
    assert!(
        log.contains("the leader key changed in etcd"),
        "refused for its key, not its deadline: {log}"
    );
    let zero: Vec<Actuation> = ha
        .actuations()
        .into_iter()
        .filter(|a| a.replica == 0)
        .collect();
    assert!(zero.is_empty(), "replica 0 set the count: {zero:?}\n{log}");
}
