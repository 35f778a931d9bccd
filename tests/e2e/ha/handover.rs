//! A leader told to stop while its command hook runs hands the lease over only once the hook
//! has returned.

use std::time::Duration;

use super::cluster::Ha;
use crate::common::{now, wait_for, write_script};

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
