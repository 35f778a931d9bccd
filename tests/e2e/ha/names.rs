//! Two replicas configured under one name (a copied config, cloned hosts with one host name):
//! each says so, as an error, and the election still has one leader, since who leads is told by
//! the lease that holds the key, not by the name it carries.

use std::time::Duration;

use super::cluster::Ha;
use crate::common::*;

#[test]
fn replicas_that_share_a_name_say_so_and_one_still_leads() {
    let Some(mut ha) = Ha::new(2, 5, 20, 2) else {
        return;
    };
    let config = &ha.replicas[1].config;
    let text = std::fs::read_to_string(config).unwrap();
    assert!(text.contains("replica = \"coord-1\""));
    std::fs::write(
        config,
        text.replace("replica = \"coord-1\"", "replica = \"coord-0\""),
    )
    .unwrap();
    ha.start_replica(0, &[]);
    ha.start_replica(1, &[]);
    let leader = ha.wait_leader(Duration::from_secs(60));
    let said = "another replica campaigns under this replica's name";
    for i in 0..2 {
        wait_for(Duration::from_secs(30), || {
            ha.log(i).contains(said).then_some(())
        })
        .unwrap_or_else(|| panic!("replica {i} did not say so:\n{}", ha.log(i)));
    }
    assert_eq!(ha.leader(), Some(leader), "one leads, the other stands by");
    let standby = ha.view(1 - leader).unwrap();
    assert_eq!(standby["lease"]["leader_here"], false, "{standby:#}");
}

/// A replica killed and started again within its lease's TTL finds its previous process's key,
/// under its own name, until that lease ends: that is no namesake.
#[test]
fn a_replica_restarted_after_kill_9_is_not_its_own_namesake() {
    let Some(mut ha) = Ha::new(1, 5, 20, 2) else {
        return;
    };
    ha.start_replica(0, &[]);
    ha.wait_leader(Duration::from_secs(60));
    // kill -9, and reaped: its lock on the state file is gone, its lease is not.
    ha.replicas[0].process.as_mut().unwrap().kill();
    ha.start_replica(0, &[]);
    ha.wait_leader(Duration::from_secs(60));
    // Past the old lease's end, and past the two TTLs the check waits.
    std::thread::sleep(Duration::from_secs(3 * ha.ttl_s + 2));
    let log = ha.log(0);
    assert!(
        !log.contains("another replica campaigns under this replica's name"),
        "{log}"
    );
}
