//! High availability end to end: a real three-member etcd cluster on loopback, two or three
//! coordinator replicas with `[lease]` driving one Auto Scaling group on moto through the AWS
//! SDK, and real agents (each with a scripted application gauge as its demand) delivering
//! every signal to every replica.
//!
//! What is checked is what the replicas did (each one's actuation log, its state file) against
//! what the engine shows (moto's DesiredCapacity): one replica actuates at a time, a standby
//! takes over a killed leader, a paused leader sends nothing when it wakes, nobody actuates
//! without etcd's quorum. Timings are printed; their assertions are loose, as for any timing
//! on a shared 2-core machine.
//!
//! The failover figure: `cargo test --release --test e2e -- --ignored --nocapture failover`
//! (trials: `HEADROOM_FAILOVER_TRIALS`, default 3).

use std::time::{Duration, Instant};

mod cluster;
mod deadline;

use cluster::{Actuation, CAPACITY, Ha};

use crate::common::{coordinator_recorded, get, now, wait_for, write_script};

/// Replicas that switched places in the actuation log beyond `expected` handovers: each switch
/// from one replica to another that was not a handover is two replicas actuating in turn.
fn interleavings(log: &[Actuation], expected: usize) -> usize {
    let switches = log
        .windows(2)
        .filter(|w| w[0].replica != w[1].replica)
        .count();
    switches.saturating_sub(expected)
}

/// One kill scenario: a demand ramp, the leader killed 10 s into it. Returns the seconds from
/// the kill to the new leader's first actuation, the interleavings and the signals lost. The
/// plateau's capacity must be in the engine before demand needs it, give or take `slack_s`
/// (the test reads moto through a python subprocess every half second).
fn kill_during_ramp(trial: usize, slack_s: f64) -> Option<(f64, usize, usize)> {
    let ttl_s = 10;
    let mut ha = Ha::new(3, ttl_s, 40, 4)?;
    for i in 0..3 {
        ha.start_replica(i, &[]);
    }
    // Two hosts: 2 each at first (4 instances), then a ramp to 14 each (28 instances) over
    // 50 s, then a plateau.
    let (base, top) = (2.0, 14.0);
    ha.start_hosts(&[base, base]);
    let leader = ha.wait_leader(Duration::from_secs(60));
    // Warm: every replica sees both hosts.
    let warm = wait_for(Duration::from_secs(60), || {
        (0..3)
            .all(|i| {
                ha.view(i)
                    .is_some_and(|v| v["evaluation"]["live_hosts"] == 2)
            })
            .then_some(())
    });
    assert!(warm.is_some(), "replicas never saw both hosts");
    std::thread::sleep(Duration::from_secs(10));
    let (ramp_s, plateau_s) = (50.0, 30.0);
    let plateau_need = (2.0 * top / CAPACITY).ceil() as u64;
    let start = Instant::now();
    let ramp_start = now();
    let mut killed_at = None;
    let mut crossed_at = None;
    let mut reached_at = None;
    let mut timeline = Vec::new();
    // What the engine held, as read every half second: its history, since moto keeps none.
    let mut engine_seen = std::collections::BTreeSet::new();
    while start.elapsed().as_secs_f64() < ramp_s + plateau_s {
        let t = start.elapsed().as_secs_f64();
        let level = base + (top - base) * (t / ramp_s).min(1.0);
        ha.set_demand(level);
        if killed_at.is_none() && t >= 10.0 {
            ha.replicas[leader].process.as_mut().unwrap().kill();
            ha.replicas[leader].process = None;
            killed_at = Some(now());
        }
        let need = (2.0 * level / CAPACITY - 1e-9).ceil() as u64;
        if crossed_at.is_none() && need >= plateau_need {
            crossed_at = Some(t);
        }
        let desired = ha.moto.web_desired();
        engine_seen.insert(desired);
        if reached_at.is_none() && desired >= plateau_need {
            reached_at = Some(t);
        }
        timeline.push(format!(
            "{t:5.1}s demand {:5.1} engine {desired}",
            2.0 * level
        ));
        std::thread::sleep(Duration::from_millis(500));
    }
    let killed_at = killed_at.expect("killed");
    let log = ha.actuations();
    // Every count the engine held came from a logged actuation (or was its start), but for at
    // most one: the killed leader's last call, if the kill came between the call and its log.
    let logged: std::collections::BTreeSet<u64> = log.iter().map(|a| a.to).collect();
    let unlogged: Vec<&u64> = engine_seen
        .iter()
        .filter(|d| **d != 4 && !logged.contains(*d))
        .collect();
    assert!(
        unlogged.len() <= 1,
        "the engine held counts no replica logged: {unlogged:?}; logged {log:?}"
    );
    let after: Vec<&Actuation> = log.iter().filter(|a| a.at > killed_at).collect();
    let first = after.first().unwrap_or_else(|| {
        panic!(
            "no actuation after the kill\n{}\n{}",
            timeline.join("\n"),
            (0..3).map(|i| ha.log(i)).collect::<String>()
        )
    });
    let takeover_s = first.at - killed_at;
    assert_ne!(first.replica, leader, "the dead leader actuated");
    // Only one survivor actuates, and the ramp's counts never go down while demand rises.
    let interleaved = interleavings(&log, 1);
    let ramp_end = ramp_start + ramp_s;
    let rising: Vec<u64> = log
        .iter()
        .filter(|a| a.at > ramp_start && a.at < ramp_end)
        .map(|a| a.to)
        .collect();
    let flip_flops = rising.windows(2).filter(|w| w[1] < w[0]).count();
    // The engine holds the last count logged (an actuation in flight is waited for).
    let agreed = wait_for(Duration::from_secs(15), || {
        let last = ha.actuations().last().map(|a| a.to);
        (last == Some(ha.moto.web_desired())).then_some(())
    });
    assert!(
        agreed.is_some(),
        "the engine's capacity {} is not the last one logged: {log:?}",
        ha.moto.web_desired()
    );
    let reached = reached_at
        .unwrap_or_else(|| panic!("never reached {plateau_need}\n{}", timeline.join("\n")));
    let crossed = crossed_at.expect("demand reached the plateau");
    let lost = ha.signals_lost(3);
    eprintln!(
        "trial {trial}: {} killed; {} took over and actuated {takeover_s:.1}s after the kill; engine reached {plateau_need} at {reached:.1}s, demand needed it at {crossed:.1}s; interleavings {interleaved}, flip-flops {flip_flops}, engine counts unlogged {}, signals lost {lost}",
        ha.replicas[leader].name,
        ha.replicas[first.replica].name,
        unlogged.len(),
    );
    assert!(
        reached <= crossed + slack_s,
        "the plateau's capacity came at {reached:.1}s, after demand needed it at {crossed:.1}s\n{}",
        timeline.join("\n")
    );
    assert_eq!(flip_flops, 0, "counts went down during the ramp: {log:?}");
    Some((takeover_s, interleaved, lost))
}

/// kill -9 of the leader during a ramp, `HEADROOM_FAILOVER_TRIALS` times (default 3); prints
/// the figure last.
/// `cargo test --release --test e2e -- --ignored --nocapture failover`
#[test]
#[ignore]
fn failover_of_a_killed_leader_during_a_ramp() {
    let trials: usize = std::env::var("HEADROOM_FAILOVER_TRIALS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(3);
    let mut times = Vec::new();
    let (mut double, mut lost) = (0, 0);
    for trial in 0..trials {
        let Some((t, d, l)) = kill_during_ramp(trial, 0.0) else {
            return;
        };
        times.push(t);
        double += d;
        lost += l;
    }
    times.sort_by(f64::total_cmp);
    let median = times[times.len() / 2];
    let worst = times.last().copied().unwrap_or(f64::NAN);
    assert!(worst < 60.0, "a takeover took {worst:.1}s");
    assert_eq!(double, 0, "two replicas actuated in turn");
    assert_eq!(lost, 0, "signals lost");
    println!(
        "failover trials={trials} median_s={median:.1} worst_s={worst:.1} double_actuations={double} signals_lost={lost}"
    );
}

/// One kill in the regular suite, so a broken takeover fails CI: the same scenario once, with
/// 3 s of slack on the plateau for a debug build beside other tests.
#[test]
fn a_killed_leader_is_replaced_by_one_standby_before_the_plateau() {
    let Some((t, double, lost)) = kill_during_ramp(0, 3.0) else {
        return;
    };
    assert!(t < 60.0, "the takeover took {t:.1}s");
    assert_eq!((double, lost), (0, 0));
}

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

/// The leader cut off from etcd (a network partition, etcd itself healthy) for three TTLs: its
/// lease expires at etcd and the other replica takes over. Healed, it must see that its lease
/// is gone, win a new one, and lead again once the other replica is killed.
#[test]
fn a_leader_partitioned_from_etcd_past_its_ttl_campaigns_again_when_healed() {
    let Some(mut ha) = Ha::new(2, 5, 20, 2) else {
        return;
    };
    ha.behind_proxies(0);
    ha.start_replica(0, &[]);
    assert_eq!(ha.wait_leader(Duration::from_secs(60)), 0);
    ha.start_replica(1, &[]);
    ha.start_hosts(&[2.0, 2.0]);
    ha.wait_sized();
    for p in &ha.proxies {
        p.cut();
    }
    let cut_at = now();
    let mut level = 3.0;
    ha.alternate_demand_for(
        Duration::from_secs(3 * ha.ttl_s),
        Duration::from_secs(3),
        &mut level,
    );
    for p in &ha.proxies {
        p.heal();
    }
    let healed_at = now();
    let log = ha.actuations();
    assert!(
        log.iter().any(|a| a.replica == 1 && a.at > cut_at),
        "the other replica never took over: {log:?}\n{}",
        ha.log(1)
    );
    assert!(
        !log.iter()
            .any(|a| a.replica == 0 && a.at > cut_at + ha.ttl_s as f64),
        "the partitioned replica actuated: {log:?}"
    );
    // Time for the healed replica to reconnect and campaign behind the leader.
    std::thread::sleep(Duration::from_secs(2 * ha.ttl_s));
    ha.signal(1, "-KILL");
    let killed_at = now();
    let back = ha
        .wait_actuation_by(0, killed_at, &mut level)
        .unwrap_or_else(|| {
            panic!(
                "the healed replica never led again after the other was killed\n{}",
                ha.log(0)
            )
        });
    eprintln!(
        "partitioned {:.0}s: the other replica took over; healed, the replica led again {:.1}s after the other was killed",
        healed_at - cut_at,
        back.at - killed_at
    );
}

/// The election key deleted under a leader that keeps its lease (an operator's `etcdctl del
/// --prefix`): its next actuation is refused by the fence, and it campaigns again and acts.
#[test]
fn a_leader_whose_key_is_deleted_campaigns_again() {
    let Some(mut ha) = Ha::new(1, 5, 20, 2) else {
        return;
    };
    ha.start_replica(0, &[]);
    ha.start_hosts(&[2.0, 2.0]);
    ha.wait_leader(Duration::from_secs(60));
    ha.wait_sized();
    assert!(ha.etcd.delete_prefix("/headroom-test/") >= 1);
    let deleted_at = now();
    let mut level = 3.0;
    let acted = wait_for(Duration::from_secs(60), || {
        ha.alternate_demand(&mut level);
        std::thread::sleep(Duration::from_secs(3));
        ha.actuations().into_iter().find(|a| a.at > deleted_at)
    });
    let log = ha.log(0);
    assert!(
        acted.is_some() && log.contains("campaigning again"),
        "no actuation after the key was deleted\n{log}"
    );
    eprintln!(
        "key deleted: the replica campaigned again and acted {:.1}s later",
        acted.map_or(0.0, |a| a.at - deleted_at)
    );
}

/// The leader told to stop (SIGTERM) while its command hook runs: it starts no further call,
/// and hands the lease over only once the hook has returned, so the standby's first call never
/// overlaps it. Before, the standby's campaign key stays the same (it waits, not retries).
#[test]
fn a_stopping_leader_hands_over_only_after_its_actuation_ends() {
    let Some(mut ha) = Ha::new(2, 5, 40, 2) else {
        return;
    };
    let calls = ha.dir.path().join("calls.log");
    let hook = write_script(
        &ha.dir.path().join("hook.sh"),
        &format!(
            "#!/bin/sh\necho \"start $1 $(date +%s.%N)\" >> {log}\nsleep 4\necho \"end $1 $(date +%s.%N)\" >> {log}\n",
            log = calls.display()
        ),
    );
    for i in 0..2 {
        ha.use_command_hook(i, &hook);
    }
    ha.start_replica(0, &[]);
    let leader = ha.wait_leader(Duration::from_secs(60));
    ha.start_replica(1, &[]);
    // The standby waits in one campaign, its key written once: a campaign cancelled and
    // retried would recreate it (a new create revision) every few seconds.
    let keys = wait_for(Duration::from_secs(20), || {
        let keys = ha.etcd.create_revisions("/headroom-test/");
        (keys.len() == 2).then_some(keys)
    })
    .expect("both replicas campaign");
    std::thread::sleep(Duration::from_secs(2 * ha.ttl_s));
    assert_eq!(
        ha.etcd.create_revisions("/headroom-test/"),
        keys,
        "{}\n{}",
        ha.log(0),
        ha.log(1)
    );
    ha.start_hosts(&[2.0, 2.0]);
    let read = || std::fs::read_to_string(&calls).unwrap_or_default();
    wait_for(Duration::from_secs(60), || {
        read().contains("start coord-").then_some(())
    })
    .expect("the leader calls its hook");
    // Demand the standby will answer as soon as it leads, then stop the leader mid-call.
    ha.set_demand(5.0);
    let stopped_at = now();
    ha.signal(leader, "-TERM");
    let other = format!("start {}", ha.replicas[1 - leader].name);
    wait_for(Duration::from_secs(60), || {
        read().contains(&other).then_some(())
    })
    .unwrap_or_else(|| panic!("the standby never took over: {}", read()));
    std::thread::sleep(Duration::from_secs(5));
    // Each replica's calls as (start, end); an unfinished one runs to now.
    let mut spans: Vec<(String, f64, f64)> = Vec::new();
    for line in read().lines() {
        let f: Vec<&str> = line.split_whitespace().collect();
        let (Some(&kind), Some(&who), Some(at)) = (
            f.first(),
            f.get(1),
            f.get(2).and_then(|t| t.parse::<f64>().ok()),
        ) else {
            continue;
        };
        match kind {
            "start" => spans.push((who.to_string(), at, f64::INFINITY)),
            _ => {
                if let Some(s) = spans
                    .iter_mut()
                    .find(|s| s.0 == who && s.2 == f64::INFINITY)
                {
                    s.2 = at;
                }
            }
        }
    }
    for a in &spans {
        for b in spans.iter().filter(|b| b.0 != a.0) {
            assert!(
                a.2 <= b.1 || b.2 <= a.1,
                "two replicas' calls overlap: {a:?} and {b:?}\n{}",
                read()
            );
        }
    }
    let name = &ha.replicas[leader].name;
    assert!(
        !spans.iter().any(|s| &s.0 == name && s.1 > stopped_at),
        "the stopping leader started a call after SIGTERM: {spans:?}"
    );
    eprintln!("calls, one replica at a time: {spans:?}");
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
            .contains("the lease's deadline passed while the maximum was raised")
            .then_some(())
    });
    assert_only_replica_1_actuated(&ha, took_over);
    assert!(refused.is_some(), "the refusal is logged: {}", ha.log(0));
}

/// Two of three etcd members stopped: nobody actuates (within the TTL) and signals are still
/// recorded; with the quorum back, one replica actuates again. The member left is the raft
/// leader, the hardest case: until it steps down it still renews leases on its own, and it
/// answers any read that does not ask for the quorum.
#[test]
fn without_etcd_quorum_nobody_actuates_and_signals_are_still_recorded() {
    let Some((mut ha, _)) = Ha::pair_sized() else {
        return;
    };
    let recorded = |ha: &Ha| -> usize {
        ha.replicas
            .iter()
            .map(|r| coordinator_recorded(&r.state, "host-0").len())
            .sum()
    };
    let before = recorded(&ha);
    let survivor = wait_for(Duration::from_secs(30), || ha.etcd.raft_leader())
        .expect("etcd has a raft leader");
    let stopped: Vec<usize> = (0..3).filter(|&i| i != survivor).collect();
    for &i in &stopped {
        ha.etcd.stop(i);
    }
    let lost_at = now();
    let mut level = 3.0;
    ha.alternate_demand_for(
        Duration::from_secs(4 * ha.ttl_s),
        Duration::from_secs(3),
        &mut level,
    );
    let restored_at = now();
    // An actuation is stamped with its decision's time, before the fence: one decided a
    // second after the quorum went had to pass a fence without it. The lease's deadline is
    // still ahead then (the last renewal + the TTL − the margin, later still while the
    // survivor renews as a stale raft leader), so only the fence's quorum read refuses it.
    let during: Vec<Actuation> = ha
        .actuations()
        .into_iter()
        .filter(|a| a.at > lost_at + 1.0 && a.at < restored_at)
        .collect();
    assert!(
        during.is_empty(),
        "actuated without quorum: {during:?}\n{}\n{}",
        ha.log(0),
        ha.log(1)
    );
    let after = recorded(&ha);
    assert!(
        after >= before + 2 * ha.ttl_s as usize,
        "signals recorded without quorum: {before} then {after}"
    );
    let v = ha.view(0).expect("replica 0 answers");
    assert_eq!(v["lease"]["leader_here"], false, "{v:#}");
    for &i in &stopped {
        ha.etcd.restart(i);
    }
    let back = wait_for(Duration::from_secs(90), || {
        ha.alternate_demand(&mut level);
        std::thread::sleep(Duration::from_secs(2));
        ha.actuations().into_iter().find(|a| a.at > restored_at)
    })
    .unwrap_or_else(|| {
        panic!(
            "nobody actuated after the quorum returned\n{}\n{}",
            ha.log(0),
            ha.log(1)
        )
    });
    let log = ha.actuations();
    let after_restore: std::collections::BTreeSet<usize> = log
        .iter()
        .filter(|a| a.at > restored_at)
        .map(|a| a.replica)
        .collect();
    assert_eq!(after_restore.len(), 1, "one replica actuates: {log:?}");
    eprintln!(
        "quorum lost for {:.0}s: no actuation, signals {before} -> {after}; {} actuated {:.1}s after the quorum returned",
        restored_at - lost_at,
        ha.replicas[back.replica].name,
        back.at - restored_at
    );
}
