//! A leader that loses etcd: cut off past its TTL, its election key deleted, or the cluster
//! without quorum. Nobody actuates without a lease; signals are still recorded; the leader
//! campaigns again once etcd is back.

use std::time::Duration;

use super::cluster::{Actuation, Ha};
use crate::common::{coordinator_recorded, now, wait_for};

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
