//! A leader whose call is still running when its lease runs out: the call is abandoned at the
//! lease's deadline, with everything its hook started, and recorded as fenced, so a throttled
//! API or a slow hook cannot act for a replica that may no longer lead.

use std::time::Duration;

use super::cluster::Ha;
use crate::common::{now, wait_for, write_script};

/// Whether process `pid` runs (a killed one may stay a zombie until it is reaped).
fn running(pid: &str) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/stat")).is_ok_and(|stat| {
        let state = stat.rsplit(')').next().unwrap_or("").trim_start();
        !state.starts_with('Z') && !state.starts_with('X')
    })
}

/// The leader's hook starts a minute-long child; the leader is then cut from etcd. Before,
/// the hook ran its minute out for a replica whose lease had expired.
#[test]
fn a_call_still_running_at_the_lease_deadline_is_abandoned_with_what_it_started() {
    let Some(mut ha) = Ha::new(1, 5, 20, 2) else {
        return;
    };
    let dir = ha.dir.path().to_path_buf();
    let (calls, child) = (dir.join("calls.log"), dir.join("child.pid"));
    let hook = write_script(
        &dir.join("hook.sh"),
        &format!(
            "#!/bin/sh\necho \"start $(date +%s.%N)\" >> {log}\nsleep 60 &\necho $! > {pid}\n\
             wait\necho \"end $(date +%s.%N)\" >> {log}\n",
            log = calls.display(),
            pid = child.display()
        ),
    );
    ha.use_command_hook(0, &hook);
    ha.behind_proxies(0);
    ha.start_replica(0, &[]);
    ha.wait_leader(Duration::from_secs(60));
    ha.start_hosts(&[2.0, 2.0]);
    let pid = wait_for(Duration::from_secs(60), || {
        let pid = std::fs::read_to_string(&child).ok()?;
        (!pid.trim().is_empty()).then(|| pid.trim().to_string())
    })
    .unwrap_or_else(|| panic!("the leader never called its hook\n{}", ha.log(0)));
    assert!(running(&pid));
    for p in &ha.proxies {
        p.cut();
    }
    let cut_at = now();
    // The deadline is at most a TTL after the last renewal; the hook would run a minute.
    let gone_at = wait_for(Duration::from_secs(ha.ttl_s + 10), || {
        (!running(&pid)).then(now)
    })
    .unwrap_or_else(|| panic!("the hook's child outlived the lease\n{}", ha.log(0)));
    let abandoned = wait_for(Duration::from_secs(10), || {
        let v = ha.view(0)?;
        v["last_actions"]
            .as_array()?
            .iter()
            .find(|a| {
                a["detail"]
                    .as_str()
                    .is_some_and(|d| d.contains("abandoned"))
            })
            .cloned()
    })
    .unwrap_or_else(|| panic!("no abandoned call recorded: {:?}", ha.view(0)));
    assert_eq!(abandoned["ok"], false, "{abandoned}");
    let log = std::fs::read_to_string(&calls).unwrap_or_default();
    assert!(!log.contains("end"), "the hook ran to its end: {log}");
    let starts_after_cut = log
        .lines()
        .filter_map(|l| l.strip_prefix("start ")?.parse::<f64>().ok())
        .filter(|&t| t > cut_at + 0.5)
        .count();
    assert_eq!(starts_after_cut, 0, "a call started after the cut: {log}");
    eprintln!(
        "cut from etcd: the running call was abandoned {:.1}s later (TTL {} s)",
        gone_at - cut_at,
        ha.ttl_s
    );
}
