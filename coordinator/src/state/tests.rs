//! The state file's tests: real SQLite files in temporary directories.

use std::sync::atomic::Ordering;
use std::time::Duration;

use super::schema::SCHEMA_VERSION;
use super::*;

fn signal(host: &str, epoch: &str, seq: u64, decided_at: f64) -> Signal {
    let json = serde_json::json!({
        "version": 1, "host": host, "group": "g", "epoch": epoch, "seq": seq,
        "decided_at": decided_at, "sent_at": 100.0, "metric": "m", "demand_now": 1.0,
        "capacity": 1.0, "lead_s": 1.0, "p50_at_lead": null, "p90_at_lead": null,
        "saturated": false, "action": "hold", "desired_change": 0, "reason": "",
        "health": "healthy", "health_reasons": []
    });
    serde_json::from_value(json).unwrap()
}

/// Commits leave the WAL alone; the background thread copies it into the database file.
#[test]
fn checkpoints_run_in_the_background_not_in_commits() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("s.db");
    let mut st = State::open(&path).unwrap();
    let write = |st: &mut State, from: u64| {
        for b in 0..400 {
            let batch: Vec<Signal> = (0..5)
                .map(|i| signal("h", "e", from + b * 5 + i, 100.0))
                .collect();
            st.record(1.0, &batch, |_| true).unwrap();
        }
    };
    let db_len = || std::fs::metadata(&path).unwrap().len();

    // 400 commits write well over SQLite's automatic threshold (1,000 WAL pages).
    let idle = st
        .checkpoint_in_background(&path, Duration::from_secs(3600))
        .unwrap();
    let before = db_len();
    write(&mut st, 1);
    assert_eq!(db_len(), before, "a commit checkpointed");
    drop(idle);
    let after_last = db_len();
    assert!(after_last > before + 64 * 1024, "{before} -> {after_last}");

    let _every = st
        .checkpoint_in_background(&path, Duration::from_millis(20))
        .unwrap();
    write(&mut st, 10_000);
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    while db_len() < after_last + 64 * 1024 && std::time::Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(20));
    }
    assert!(
        db_len() >= after_last + 64 * 1024,
        "{after_last} -> {}",
        db_len()
    );
    assert_eq!(st.counts("g").unwrap().applied, 4000);
}

/// Under steady writes the log restarts once it passes the threshold instead of growing.
#[test]
fn the_log_restarts_under_steady_writes() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("s.db");
    let mut st = State::open(&path).unwrap();
    let _checkpointer = st
        .checkpoint_in_background(&path, Duration::from_millis(5))
        .unwrap();
    let mut restarts = 0;
    for b in 0..12_000u64 {
        let batch: Vec<Signal> = (0..5)
            .map(|i| signal("h", "e", b * 5 + i + 1, 100.0))
            .collect();
        st.record(1.0, &batch, |_| true).unwrap();
        if st.restart_wal_flag().load(Ordering::Relaxed) {
            restarts += 1;
        }
        st.restart_wal_if_due().unwrap();
    }
    let other = Connection::open(&path).unwrap();
    let log_frames: i64 = other
        .query_row("PRAGMA wal_checkpoint(PASSIVE)", [], |r| r.get(1))
        .unwrap();
    // 12,000 commits write tens of thousands of frames; a log that never restarted holds
    // them all.
    assert!(restarts >= 1, "no restart was asked for");
    assert!(
        log_frames < 2 * RESTART_FRAMES,
        "{log_frames} frames in the log"
    );
}

#[test]
fn records_each_key_once_across_batches_and_reopen() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("s.db");
    let fresh = |s: &Signal| s.decided_at > 50.0;
    let a = [signal("h", "e1", 1, 100.0), signal("h", "e1", 2, 100.0)];
    let b = [
        signal("h", "e1", 2, 100.0),
        signal("h", "e2", 1, 10.0),
        signal("h", "e2", 1, 10.0),
    ];
    {
        let mut st = State::open(&path).unwrap();
        assert_eq!(
            st.record(1.0, &a, fresh).unwrap(),
            vec![Outcome::Applied, Outcome::Applied]
        );
        let out = st.record(1.0, &b, fresh).unwrap();
        assert_eq!(
            out,
            vec![Outcome::Duplicate, Outcome::Stored, Outcome::Duplicate]
        );
    }
    let mut st = State::open(&path).unwrap();
    assert_eq!(
        st.record(2.0, &a, fresh).unwrap(),
        vec![Outcome::Duplicate, Outcome::Duplicate]
    );
    assert_eq!(
        st.counts("g").unwrap(),
        SignalCounts {
            applied: 2,
            stored: 1
        }
    );
    assert_eq!(st.latest_signals("g", 0.0).unwrap().len(), 2);
}
#[test]
fn late_signals_within_the_window_are_applied_once() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("s.db");
    let all = |_: &Signal| true;
    {
        let mut st = State::open(&path).unwrap();
        let first = [signal("h", "e", 1, 100.0), signal("h", "e", 4, 100.0)];
        assert_eq!(
            st.record(1.0, &first, all).unwrap(),
            vec![Outcome::Applied, Outcome::Applied]
        );
    }
    // After a restart, 2 and 3 arrive late; 1 and 4 again are retries.
    let mut st = State::open(&path).unwrap();
    let late = [
        signal("h", "e", 3, 100.0),
        signal("h", "e", 1, 100.0),
        signal("h", "e", 2, 100.0),
        signal("h", "e", 4, 100.0),
        signal("h", "e", 3, 100.0),
    ];
    assert_eq!(
        st.record(2.0, &late, all).unwrap(),
        vec![
            Outcome::Applied,
            Outcome::Duplicate,
            Outcome::Applied,
            Outcome::Duplicate,
            Outcome::Duplicate
        ]
    );
    assert_eq!(st.counts("g").unwrap().applied, 4);
}

#[test]
fn a_failed_batch_moves_no_window() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("s.db");
    let mut st = State::open(&path).unwrap();
    let other = Connection::open(&path).unwrap();
    other.execute_batch("BEGIN IMMEDIATE").unwrap();
    st.conn.busy_timeout(Duration::ZERO).unwrap();
    let mut out = Vec::new();
    let batch = [signal("h", "e", 1, 100.0)];
    assert!(
        st.record_all(batch.iter().map(|s| (1.0, s, true)), &mut out)
            .is_err()
    );
    assert!(out.is_empty());
    other.execute_batch("ROLLBACK").unwrap();
    assert_eq!(
        st.record(1.0, &batch, |_| true).unwrap(),
        vec![Outcome::Applied]
    );
}

#[test]
fn a_keyed_state_file_migrates_with_its_history() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("s.db");
    {
        // The layout of earlier versions, with two senders' signals.
        let old = Connection::open(&path).unwrap();
        old.execute_batch(
            "PRAGMA journal_mode = WAL;
             CREATE TABLE signals (
                 host TEXT NOT NULL, epoch TEXT NOT NULL, seq INTEGER NOT NULL,
                 grp TEXT NOT NULL, received_at REAL NOT NULL, decided_at REAL NOT NULL,
                 applied INTEGER NOT NULL, body TEXT NOT NULL,
                 PRIMARY KEY (host, epoch, seq)) WITHOUT ROWID;
             CREATE INDEX signals_grp_received ON signals (grp, received_at);
             CREATE TABLE demand (grp TEXT NOT NULL, t REAL NOT NULL, value REAL NOT NULL,
                 PRIMARY KEY (grp, t)) WITHOUT ROWID;
             CREATE TABLE actions (id INTEGER PRIMARY KEY, grp TEXT NOT NULL,
                 at REAL NOT NULL, body TEXT NOT NULL);",
        )
        .unwrap();
        for (host, seq, at) in [
            ("a", 1, 10.0),
            ("a", 2, 11.0),
            ("a", 5, 12.0),
            ("b", 7, 13.0),
        ] {
            let body = serde_json::to_string(&signal(host, "e", seq, 100.0)).unwrap();
            old.execute(
                "INSERT INTO signals VALUES (?1, 'e', ?2, 'g', ?3, 100.0, 1, ?4)",
                params![host, seq, at, body],
            )
            .unwrap();
        }
    }
    let mut st = State::open(&path).unwrap();
    assert_eq!(st.counts("g").unwrap().applied, 4);
    assert_eq!(st.latest_signals("g", 0.0).unwrap().len(), 4);
    let again = [
        signal("a", "e", 2, 100.0),
        signal("a", "e", 3, 100.0),
        signal("b", "e", 7, 100.0),
        signal("b", "e", 8, 100.0),
    ];
    assert_eq!(
        st.record(20.0, &again, |_| true).unwrap(),
        vec![
            Outcome::Duplicate,
            Outcome::Applied,
            Outcome::Duplicate,
            Outcome::Applied
        ]
    );
    drop(st);
    let version: i64 = Connection::open(&path)
        .unwrap()
        .query_row("PRAGMA user_version", [], |r| r.get(0))
        .unwrap();
    assert_eq!(version, SCHEMA_VERSION);
}

#[test]
fn pruning_forgets_silent_senders_only() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("s.db");
    let mut st = State::open(&path).unwrap();
    st.record(10.0, &[signal("old", "e", 1, 100.0)], |_| true)
        .unwrap();
    st.record(50.0, &[signal("new", "e", 1, 100.0)], |_| true)
        .unwrap();
    st.prune(20.0).unwrap();
    assert_eq!(st.senders.get("old", "e"), None);
    assert!(st.senders.get("new", "e").is_some());
    assert_eq!(
        st.record(60.0, &[signal("new", "e", 1, 100.0)], |_| true)
            .unwrap(),
        vec![Outcome::Duplicate]
    );
    let reopened = State::open(&path).unwrap();
    assert_eq!(reopened.senders.get("old", "e"), None);
    assert!(reopened.senders.get("new", "e").is_some());
}

#[test]
fn refuses_a_newer_layout() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("s.db");
    Connection::open(&path)
        .unwrap()
        .pragma_update(None, "user_version", SCHEMA_VERSION + 1)
        .unwrap();
    let err = State::open(&path).err().expect("refused");
    assert!(format!("{err:#}").contains("newer"), "{err:#}");
}

/// A file of layout 1 (no ledger) keeps its signals and senders and gains the ledger table;
/// hours replace themselves and are pruned by their start.
#[test]
fn a_layout_1_file_gains_the_ledger_and_its_signals_stay() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("s.db");
    {
        let mut st = State::open(&path).unwrap();
        st.record(10.0, &[signal("a", "e", 1, 100.0)], |_| true)
            .unwrap();
        st.conn.execute_batch("DROP TABLE ledger;").unwrap();
        st.conn.pragma_update(None, "user_version", 1).unwrap();
    }
    let mut st = State::open(&path).unwrap();
    assert_eq!(st.counts("g").unwrap().applied, 1);
    assert_eq!(
        st.record(20.0, &[signal("a", "e", 1, 100.0)], |_| true)
            .unwrap(),
        vec![Outcome::Duplicate],
        "the sender's window survived"
    );
    let hour = |start: i64, observed_s: f64| Hour {
        start,
        observed_s,
        ..Hour::default()
    };
    st.put_ledger("g", &[hour(0, 10.0), hour(3600, 5.0)])
        .unwrap();
    st.put_ledger("g", &[hour(3600, 20.0)]).unwrap();
    st.put_ledger("other", &[hour(3600, 99.0)]).unwrap();
    assert_eq!(
        st.ledger("g", 0.0).unwrap(),
        vec![hour(0, 10.0), hour(3600, 20.0)]
    );
    st.prune(1800.0).unwrap();
    assert_eq!(st.ledger("g", 0.0).unwrap(), vec![hour(3600, 20.0)]);
}

/// Actions by kind: newest first, only that kind (`protect` is not `unprotect`), and the
/// measured warm-ups oldest first, surviving a reopen.
#[test]
fn actions_are_found_by_kind_and_warm_ups_survive_a_reopen() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("s.db");
    {
        let st = State::open(&path).unwrap();
        let mut at = 0.0;
        let mut add = |kind: &str, warmup_s: Option<f64>| {
            at += 1.0;
            st.add_action(
                "g",
                &ActionRecord {
                    at,
                    kind: kind.into(),
                    ok: true,
                    warmup_s,
                    ..ActionRecord::default()
                },
            )
            .unwrap();
        };
        add("replace", None);
        add("instance_ready", Some(40.0));
        add("unprotect", None);
        add("protect", None);
        add("instance_ready", Some(50.0));
        add("replace", None);
    }
    let st = State::open(&path).unwrap();
    let replaced: Vec<f64> = st
        .actions_of_kind("g", "replace", 10)
        .unwrap()
        .iter()
        .map(|a| a.at)
        .collect();
    assert_eq!(replaced, [6.0, 1.0]);
    let protect = st.actions_of_kind("g", "protect", 10).unwrap();
    assert_eq!(protect.len(), 1);
    assert_eq!(protect[0].at, 4.0);
    assert_eq!(st.warmups("g", 20).unwrap(), [40.0, 50.0]);
    assert_eq!(st.warmups("g", 1).unwrap(), [50.0]);
    assert!(
        st.actions_of_kind("other", "replace", 10)
            .unwrap()
            .is_empty()
    );
}

/// A file of layout 2 written without the policy memories (by an older coordinator, or before
/// a rollback) gains them and stays layout 2; one per group, the last kept replacing the one
/// before, read back as kept after a reopen; one this coordinator cannot read is left.
#[test]
fn each_groups_last_policy_memory_is_kept_without_a_new_layout() {
    use headroom_model::{Policy, PolicyConfig};
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("s.db");
    {
        let st = State::open(&path).unwrap();
        st.conn.execute_batch("DROP TABLE policy_memory;").unwrap();
    }
    // Two memories of one policy, taken at different times.
    let policy = Policy::new(PolicyConfig::default());
    let (first, last) = (policy.memory(10.0), policy.memory(20.0));
    assert_ne!(first, last);
    {
        let st = State::open(&path).unwrap();
        assert_eq!(st.policy_memory("g").unwrap(), None);
        st.put_policy_memory("g", &first).unwrap();
        st.put_policy_memory("g", &last).unwrap();
        st.put_policy_memory("other", &first).unwrap();
    }
    let st = State::open(&path).unwrap();
    let version: i64 = st
        .conn
        .query_row("PRAGMA user_version", [], |r| r.get(0))
        .unwrap();
    assert_eq!(version, 2, "an older coordinator can still open it");
    assert_eq!(st.policy_memory("g").unwrap(), Some(last));
    assert_eq!(st.policy_memory("other").unwrap(), Some(first));
    st.conn
        .execute(
            "UPDATE policy_memory SET body = '{\"layout\": 1}' WHERE grp = 'other'",
            [],
        )
        .unwrap();
    assert_eq!(st.policy_memory("other").unwrap(), None);
}

#[test]
fn where_the_backfill_stands_survives_a_reopen_and_rebuilt_points() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("s.db");
    {
        let mut st = State::open(&path).unwrap();
        st.record(
            1.0,
            &[signal("h", "e", 1, 1.0), signal("h", "e", 2, 1.0)],
            |_| true,
        )
        .unwrap();
        // A file of an earlier version: its series began at its first demand point.
        st.conn
            .execute(
                "INSERT INTO demand (grp, t, value) VALUES ('g', 500.0, 1.0)",
                [],
            )
            .unwrap();
        assert_eq!(st.backfill("g", 900.0).unwrap(), (500.0, 2));
        assert_eq!(st.own_from("g", 900.0).unwrap(), 500.0);
        // A new group: first run now; its series begins with its first live point, and a
        // signal decided well before that is late until then.
        assert_eq!(st.backfill("new", 900.0).unwrap(), (900.0, 2));
        assert_eq!(st.own_from("new", 950.0).unwrap(), 950.0);
        st.add_demand("new", 960.0, 1.0).unwrap();
        st.add_demand("new", 970.0, 1.0).unwrap();
        assert_eq!(st.own_from("new", 990.0).unwrap(), 960.0);
        st.put_backfill_accounted("g", 1).unwrap();
        // Points rebuilt before the series' start do not move it.
        st.put_demand("g", &[(100.0, 3.0), (200.0, 4.0)]).unwrap();
        st.put_demand("new", &[(100.0, 3.0)]).unwrap();
    }
    let st = State::open(&path).unwrap();
    assert_eq!(st.backfill("g", 2000.0).unwrap(), (500.0, 1), "kept");
    assert_eq!(st.backfill("new", 2000.0).unwrap(), (900.0, 2));
    assert_eq!(st.own_from("new", 2000.0).unwrap(), 960.0);
    // Late: decided before the start, looked at after row 0.
    assert_eq!(st.late_signals("g", 0, 500.0, 30.0).unwrap(), (2, true));
    assert_eq!(st.late_signals("g", 2, 500.0, 30.0).unwrap(), (2, false));
    // Row ids given again after the log was emptied: looked at from the first.
    assert_eq!(st.late_signals("g", 9, 500.0, 30.0).unwrap(), (2, true));
    // Their demand: received since the first run (at 1.0 here), decided before the start.
    assert_eq!(st.late_demand("g", 0.0, 500.0).unwrap().len(), 2);
    assert!(st.late_demand("g", 5.0, 500.0).unwrap().is_empty());
}

#[test]
fn a_signal_live_when_the_series_began_is_not_late() {
    let dir = tempfile::tempdir().unwrap();
    let mut st = State::open(&dir.path().join("s.db")).unwrap();
    let all = |_: &Signal| true;
    st.backfill("g", 1000.0).unwrap();
    // The agents' first signals race the first evaluation: decided a second or two before the
    // series began (at 1002), received just before it or just after.
    st.record(1001.5, &[signal("a", "e", 1, 1000.3)], all)
        .unwrap();
    st.add_demand("g", 1002.0, 1.0).unwrap();
    let own_from = st.own_from("g", 1100.0).unwrap();
    assert_eq!(own_from, 1002.0);
    assert_eq!(st.late_signals("g", 0, own_from, 30.0).unwrap(), (1, false));
    st.record(1002.4, &[signal("b", "e", 1, 1001.0)], all)
        .unwrap();
    assert_eq!(st.late_signals("g", 1, own_from, 30.0).unwrap(), (2, false));
    // Decided and received after the start: live, not late.
    st.record(1010.0, &[signal("a", "e", 2, 1009.0)], all)
        .unwrap();
    assert_eq!(st.late_signals("g", 2, own_from, 30.0).unwrap(), (3, false));
    // Decided longer than a host lives before the start (a replica's catch-up), received
    // after it or before it: late.
    st.record(1011.0, &[signal("c", "e", 1, 900.0)], all)
        .unwrap();
    assert_eq!(st.late_signals("g", 3, own_from, 30.0).unwrap(), (4, true));
    st.record(1001.8, &[signal("d", "e", 1, 950.0)], all)
        .unwrap();
    assert_eq!(st.late_signals("g", 4, own_from, 30.0).unwrap(), (5, true));
}
