//! One agent's signals, produced and recorded: a dry-run coordinator for one agent, the agent's
//! config pointing at it, and the check that what the coordinator recorded is what the agent
//! produced.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use super::{Coordinator, TOKEN, coordinator_recorded, coordinator_toml, write_token};

/// A coordinator for one agent: dry-run actuator, state file in `dir`.
pub(crate) fn dry_run_coordinator(dir: &Path, listen: &str) -> (Coordinator, PathBuf) {
    let token = write_token(dir, "token", TOKEN);
    let state = dir.join("coordinator.db");
    let config = dir.join("coordinator.toml");
    std::fs::write(
        &config,
        coordinator_toml(listen, &state, &token, "kind = \"dry-run\""),
    )
    .unwrap();
    (Coordinator::start(dir, &config, &[]), state)
}

pub(crate) fn agent_coordinator_toml(url: &str, dir: &Path) -> String {
    format!(
        "[coordinator]\nurls = [\"{url}\"]\ntoken_file = \"{}\"\nmax_send_rate = 200\ntimeout = \"2s\"\n",
        dir.join("token").display()
    )
}

/// The signal TTL of the test coordinators (`coordinator_toml`): older signals are stored for
/// audit, not applied.
pub(crate) const SIGNAL_TTL_S: f64 = 60.0;

/// Recorded (coordinator) equals produced (outbox) except for at most `tail` signals still
/// undelivered at shutdown (decided after the last send); each recorded once; every signal that
/// arrived within the TTL applied, older ones stored only; per epoch, the coordinator received
/// seqs in increasing order. Returns (recorded, applied).
pub(crate) fn check_delivery(
    db: &Path,
    cstate: &Path,
    produced: &[(String, u64)],
    tail: usize,
) -> (usize, usize) {
    let recorded = coordinator_recorded(cstate, "fault-host");
    let recorded_set: BTreeSet<(String, u64)> =
        recorded.iter().map(|r| (r.epoch.clone(), r.seq)).collect();
    assert_eq!(recorded_set.len(), recorded.len(), "recorded once each");
    let produced_set: BTreeSet<(String, u64)> = produced.iter().cloned().collect();
    let extra: Vec<_> = recorded_set.difference(&produced_set).collect();
    assert!(extra.is_empty(), "recorded but never produced: {extra:?}");
    let conn = rusqlite::Connection::open(db).unwrap();
    let undelivered: BTreeSet<u64> = conn
        .prepare("SELECT seq FROM outbox WHERE delivered IS NULL")
        .unwrap()
        .query_map([], |r| r.get::<_, i64>(0))
        .unwrap()
        .map(|s| s.unwrap() as u64)
        .collect();
    let missing: Vec<_> = produced_set.difference(&recorded_set).collect();
    assert!(
        missing.len() <= tail && missing.iter().all(|(_, s)| undelivered.contains(s)),
        "produced but never recorded: {missing:?} (undelivered at shutdown: {undelivered:?})"
    );
    for r in &recorded {
        let fresh = r.received_at - r.decided_at <= SIGNAL_TTL_S - 1.0;
        let stale = r.received_at - r.decided_at > SIGNAL_TTL_S + 1.0;
        assert!(
            (r.applied || !fresh) && (!r.applied || !stale),
            "seq {} {:.1}s old at receipt, applied {}",
            r.seq,
            r.received_at - r.decided_at,
            r.applied
        );
    }
    let mut last: std::collections::BTreeMap<&str, u64> = Default::default();
    for r in &recorded {
        if let Some(prev) = last.insert(&r.epoch, r.seq) {
            assert!(
                r.seq > prev,
                "epoch {}: seq {} received after {prev}",
                r.epoch,
                r.seq
            );
        }
    }
    (
        recorded.len(),
        recorded.iter().filter(|r| r.applied).count(),
    )
}
