//! A leader killed (kill -9) during a demand ramp: one standby takes over before the plateau,
//! nothing actuates twice, no signal is lost. The figure is the ignored trial loop.

use std::time::{Duration, Instant};

use super::cluster::{Actuation, CAPACITY, Ha};
use super::interleavings;
use crate::common::{now, wait_for};

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
