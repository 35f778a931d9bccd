//! The count a group's leader applied is kept in etcd, in the fenced transaction, for the
//! replicas that do not lead: an engine that cannot be read (a command hook) is then not taken
//! to hold just the hosts that report, which leave out instances still booting.

use std::time::Duration;

use super::cluster::Ha;
use crate::common::{wait_for, write_script};

/// Two replicas on a command hook, two hosts whose demand asks for more instances than there
/// are hosts: the standby plans from the count the leader applied, as etcd keeps it, not from
/// the two hosts that report.
#[test]
fn a_standby_plans_from_the_count_its_leader_applied() {
    let Some(mut ha) = Ha::new(2, 5, 20, 2) else {
        return;
    };
    let calls = ha.dir.path().join("calls.log");
    let hook = write_script(
        &ha.dir.path().join("hook.sh"),
        &format!("#!/bin/sh\necho \"$1 $2\" >> {}\n", calls.display()),
    );
    for i in 0..2 {
        ha.use_command_hook(i, &hook);
    }
    ha.start_replica(0, &[]);
    ha.start_replica(1, &[]);
    let leader = ha.wait_leader(Duration::from_secs(60));
    ha.start_hosts(&[3.0, 3.0]);
    let applied: u32 = wait_for(Duration::from_secs(60), || {
        let text = std::fs::read_to_string(&calls).unwrap_or_default();
        let last = text.lines().last()?.split(' ').nth(1)?.parse().ok()?;
        (last > 2).then_some(last)
    })
    .unwrap_or_else(|| panic!("the leader applied no count above 2:\n{}", ha.log(leader)));
    let standby = 1 - leader;
    let seen = wait_for(Duration::from_secs(30), || {
        let v = ha.view(standby)?;
        let e = &v["evaluation"];
        (e["actual_source"] == "last_set" && e["actual"].as_u64()? > 2).then(|| v.clone())
    })
    .unwrap_or_else(|| {
        panic!(
            "the standby did not plan from the applied count ({applied}): {:#}",
            ha.view(standby).unwrap_or_default()
        )
    });
    let key = "/headroom-test//applied/web";
    let kept = ha.etcd.get(key);
    assert!(
        kept.as_deref()
            .and_then(|v| v.parse::<u32>().ok())
            .is_some_and(|n| n > 2),
        "{key} in etcd: {kept:?}; standby: {seen:#}"
    );
    // What is no count, written by hand: said, once, and the standby goes on deciding.
    ha.etcd.put(key, "lots");
    wait_for(Duration::from_secs(30), || {
        ha.log(standby).contains("holds no count").then_some(())
    })
    .unwrap_or_else(|| panic!("not said: {}", ha.log(standby)));
    std::thread::sleep(Duration::from_secs(3));
    assert_eq!(ha.log(standby).matches("holds no count").count(), 1);
    assert!(ha.view(standby).is_some(), "the standby still answers");
}
