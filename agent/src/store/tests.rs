//! The store's tests: real SQLite files in temporary directories.

use std::sync::Arc;
use std::time::Duration;

use rusqlite::Connection;

use super::*;

fn rollup(metric: &str, ts: i64, v: f64) -> Rollup {
    Rollup {
        metric: metric.into(),
        ts,
        mean: v,
        max: v,
        last: v,
        n: 10,
    }
}

fn decision(ts: f64) -> DecisionRecord {
    DecisionRecord {
        seq: 0,
        ts,
        action: "hold".into(),
        current: 1,
        desired: 1,
        lead_s: 310.0,
        demand: 0.5,
        p50: Some(0.5),
        p90: Some(0.7),
        fallback: false,
        reason: "test".into(),
    }
}

fn retention(outbox_max_age: Duration, outbox_max_rows: u64) -> Retention {
    let day = Duration::from_secs(86_400);
    Retention {
        ten_seconds: day,
        one_minute: day,
        events: day,
        ledger: day,
        outbox: OutboxLimits {
            max_age: outbox_max_age,
            max_rows: outbox_max_rows,
        },
    }
}

fn example_signal() -> headroom_common::signal::Signal {
    headroom_common::signal::Signal {
        version: headroom_common::signal::SIGNAL_VERSION,
        host: "h1".into(),
        group: "g".into(),
        epoch: String::new(),
        seq: 0,
        decided_at: 1000.0,
        sent_at: 0.0,
        metric: "cpu.busy_cores".into(),
        demand_now: 1.0,
        capacity: 2.0,
        lead_s: 310.0,
        p50_at_lead: Some(1.0),
        p90_at_lead: Some(1.5),
        saturated: false,
        action: "hold".into(),
        desired_change: 0,
        reason: "test".into(),
        health: "healthy".into(),
        instance_id: None,
        busy: None,
        health_reasons: vec![],
    }
}

#[test]
fn batches_commit_and_read_back() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("h.db");
    let mut s = Writer::open(&path, 256).unwrap();
    let epoch = s.epoch().to_string();
    let b = Batch {
        rollups_10s: vec![
            rollup("cpu.busy_cores", 100, 1.0),
            rollup("cpu.busy_cores", 110, 2.0),
        ],
        decision: Some(decision(110.0)),
        ..Batch::default()
    };
    let c = s.apply(&b).unwrap();
    assert_eq!(
        c,
        Committed {
            rollup_ts: Some(110),
            seq: Some(1)
        }
    );
    let c = s
        .apply(&Batch {
            decision: Some(decision(120.0)),
            ..Batch::default()
        })
        .unwrap();
    assert_eq!(c.seq, Some(2));
    drop(s);
    let s = Writer::open(&path, 256).unwrap();
    assert_eq!(s.epoch(), epoch, "epoch survives reopening");
    let r = Reader::open(&path).unwrap();
    let h = r
        .history("cpu.busy_cores", 0, Resolution::TenSeconds)
        .unwrap();
    assert_eq!(h.iter().map(|p| p.mean).collect::<Vec<_>>(), vec![1.0, 2.0]);
    assert_eq!(r.metrics().unwrap(), vec!["cpu.busy_cores".to_string()]);
    assert_eq!(r.decisions(0.0).unwrap().len(), 2);
    assert_eq!(r.committed().unwrap().seq, Some(2));
}

#[test]
fn a_bucket_written_twice_keeps_every_sample() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("h.db");
    let mut s = Writer::open(&path, 256).unwrap();
    let part = |mean: f64, max: f64, last: f64, n: u32| Rollup {
        metric: "cpu.busy_cores".into(),
        ts: 60,
        mean,
        max,
        last,
        n,
    };
    // 30 samples before a restart, 30 after it, in the same minute.
    for r in [part(1.0, 2.0, 1.5, 30), part(3.0, 4.0, 2.5, 30)] {
        s.apply(&Batch {
            rollups_1m: vec![r],
            ..Batch::default()
        })
        .unwrap();
    }
    let h = Reader::open(&path)
        .unwrap()
        .history("cpu.busy_cores", 0, Resolution::OneMinute)
        .unwrap();
    assert_eq!(
        h.iter()
            .map(|p| (p.ts, p.mean, p.max, p.last))
            .collect::<Vec<_>>(),
        [(60, 2.0, 4.0, 2.5)]
    );
    let n: u32 = s
        .connection()
        .query_row("SELECT n FROM rollup_1m", [], |r| r.get(0))
        .unwrap();
    assert_eq!(n, 60);
}

#[test]
fn the_minute_a_kill_left_open_is_folded_from_its_ten_second_rows() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("h.db");
    let mut s = Writer::open(&path, 256).unwrap();
    let reader = || Reader::open(&path).unwrap();
    assert!(
        reader().unrolled_minute(1e9).unwrap().is_empty(),
        "a new file"
    );
    // Minute 600 closed (its 1-minute row written), then three 10-second rows of minute 660
    // (one of another metric) and no 1-minute row: the process died in that minute.
    s.apply(&Batch {
        rollups_10s: vec![rollup("cpu.busy_cores", 650, 9.0)],
        rollups_1m: vec![rollup("cpu.busy_cores", 600, 9.0)],
        ..Batch::default()
    })
    .unwrap();
    s.apply(&Batch {
        rollups_10s: vec![
            rollup("cpu.busy_cores", 660, 1.0),
            Rollup {
                n: 30,
                max: 5.0,
                ..rollup("cpu.busy_cores", 670, 3.0)
            },
            rollup("mem.used_bytes", 660, 8.0),
        ],
        ..Batch::default()
    })
    .unwrap();
    let mut open = reader().unrolled_minute(1e9).unwrap();
    open.sort_by(|a, b| a.metric.cmp(&b.metric));
    assert_eq!(open.len(), 2, "{open:?}");
    let cpu = &open[0];
    assert_eq!((cpu.ts, cpu.max, cpu.last, cpu.n), (660, 5.0, 3.0, 40));
    assert!((cpu.mean - 2.5).abs() < 1e-12, "{}", cpu.mean);
    assert_eq!((open[1].metric.as_str(), open[1].n), ("mem.used_bytes", 10));
    // A stop wrote the minute part-full (its first 10 samples), then a second run committed
    // the rest and was killed: what is folded is only what the 1-minute row lacks, and written
    // back it merges into the 10-second rows' totals.
    s.apply(&Batch {
        rollups_1m: vec![rollup("cpu.busy_cores", 660, 1.0)],
        ..Batch::default()
    })
    .unwrap();
    let mut open = reader().unrolled_minute(1e9).unwrap();
    open.sort_by(|a, b| a.metric.cmp(&b.metric));
    assert_eq!(open.len(), 2, "{open:?}");
    let cpu = open[0].clone();
    assert_eq!((cpu.ts, cpu.max, cpu.last, cpu.n), (660, 5.0, 3.0, 30));
    assert!((cpu.mean - 3.0).abs() < 1e-12, "{}", cpu.mean);
    s.apply(&Batch {
        rollups_1m: vec![cpu],
        ..Batch::default()
    })
    .unwrap();
    let row = reader()
        .history("cpu.busy_cores", 660, Resolution::OneMinute)
        .unwrap();
    assert_eq!(row.len(), 1);
    assert!((row[0].mean - 2.5).abs() < 1e-12, "{row:?}");
    let open = reader().unrolled_minute(1e9).unwrap();
    assert_eq!(open.len(), 1, "{open:?}");
    assert_eq!(open[0].metric, "mem.used_bytes");
    // Rows stamped after now (the clock stepped back since) do not pick the minute.
    s.apply(&Batch {
        rollups_10s: vec![rollup("cpu.busy_cores", 900, 1.0)],
        rollups_1m: vec![rollup("cpu.busy_cores", 900, 1.0)],
        ..Batch::default()
    })
    .unwrap();
    assert_eq!(reader().unrolled_minute(700.0).unwrap().len(), 1);
    assert!(reader().unrolled_minute(1e9).unwrap().is_empty());
}

#[test]
fn newer_schema_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("h.db");
    drop(Writer::open(&path, 256).unwrap());
    let c = Connection::open(&path).unwrap();
    c.pragma_update(None, "journal_mode", "DELETE").unwrap();
    c.pragma_update(None, "user_version", 99).unwrap();
    drop(c);
    let header = || std::fs::read(&path).unwrap()[..100].to_vec();
    let before = header();
    assert!(matches!(
        Writer::open(&path, 256),
        Err(StoreError::TooNew { found: 99, .. })
    ));
    assert_eq!(header(), before, "the refused file was rewritten");
    let c = Connection::open(&path).unwrap();
    c.pragma_update(None, "user_version", -1).unwrap();
    drop(c);
    assert!(matches!(
        Writer::open(&path, 256),
        Err(StoreError::BadVersion(-1))
    ));
}

#[test]
fn a_file_this_user_cannot_write_is_refused() {
    use std::os::unix::fs::PermissionsExt;
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("h.db");
    drop(Writer::open(&path, 256).unwrap());
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o444)).unwrap();
    // Root writes whatever the mode says: nothing to refuse then.
    if std::fs::OpenOptions::new().append(true).open(&path).is_ok() {
        eprintln!("SKIPPED: this user writes a file of mode 0444");
        return;
    }
    assert!(matches!(
        Writer::open(&path, 256),
        Err(StoreError::ReadOnly)
    ));
}

#[test]
fn prune_bounds_the_outbox_and_counts_drops() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("h.db");
    let mut s = Writer::open(&path, 256).unwrap();
    let signal = example_signal();
    for i in 0..10 {
        let b = Batch {
            decision: Some(decision(1000.0 + i as f64)),
            signal: Some(signal.clone()),
            ..Batch::default()
        };
        s.apply(&b).unwrap();
    }
    let dropped = s
        .prune(1010.0, &retention(Duration::from_secs(3600), 4))
        .unwrap();
    assert_eq!(dropped, 6);
    let r = Reader::open(&path).unwrap();
    let outbox = Outbox::open(&path).unwrap();
    let pending: Vec<u64> = outbox
        .pending(0, 100)
        .unwrap()
        .into_iter()
        .map(|(s, _)| s)
        .collect();
    assert_eq!(pending, vec![7, 8, 9, 10], "the newest are kept");
    assert_eq!(r.outbox_stats().unwrap().dropped, 6);
    let payload = &outbox.pending(0, 1).unwrap()[0].1;
    let back: headroom_common::signal::Signal = serde_json::from_str(payload).unwrap();
    assert_eq!(back.seq, 7);
    assert_eq!(back.epoch, s.epoch());
}

#[test]
fn prune_forgets_names_without_history() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("h.db");
    let mut s = Writer::open(&path, 256).unwrap();
    let b = Batch {
        rollups_10s: vec![
            rollup("net.veth1a2b.rx_bytes", 1_000, 1.0),
            rollup("cpu.busy_cores", 100_000, 1.0),
        ],
        ..Batch::default()
    };
    s.apply(&b).unwrap();
    s.prune(100_000.0, &retention(Duration::from_secs(86_400), 1000))
        .unwrap();
    let r = Reader::open(&path).unwrap();
    assert_eq!(r.metrics().unwrap(), ["cpu.busy_cores"]);
    // A name seen again gets a new row.
    s.apply(&Batch {
        rollups_10s: vec![rollup("net.veth1a2b.rx_bytes", 100_010, 2.0)],
        ..Batch::default()
    })
    .unwrap();
    let h = r
        .history("net.veth1a2b.rx_bytes", 0, Resolution::TenSeconds)
        .unwrap();
    assert_eq!(h.len(), 1);
}

/// The sender's outcomes reach the database through the writer, and the outbox reads after
/// its cursor; the read-only connections cannot write.
#[test]
fn deliveries_are_written_by_the_writer_and_readers_cannot_write() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("h.db");
    let mut s = Writer::open(&path, 256).unwrap();
    for i in 0..3 {
        s.apply(&Batch {
            decision: Some(decision(1000.0 + f64::from(i))),
            signal: Some(example_signal()),
            ..Batch::default()
        })
        .unwrap();
    }
    let outbox = Outbox::open(&path).unwrap();
    let seqs = |after| -> Vec<u64> {
        outbox
            .pending(after, 10)
            .unwrap()
            .into_iter()
            .map(|(s, _)| s)
            .collect()
    };
    assert_eq!(seqs(0), [1, 2, 3]);
    assert_eq!(seqs(1), [2, 3], "after the cursor");
    let (a, b): (Arc<str>, Arc<str>) = ("http://a:1".into(), "http://b:1".into());
    s.apply(&Batch {
        destinations: Some(vec![a.to_string(), b.to_string()]),
        ..Batch::default()
    })
    .unwrap();
    let delivered = |d: &Arc<str>, seq| Delivery::Delivered {
        destination: d.clone(),
        seq,
        at: 2000.0,
    };
    s.apply(&Batch {
        deliveries: vec![
            delivered(&a, 1),
            delivered(&a, 2),
            Delivery::Failed { seq: 1 },
        ],
        ..Batch::default()
    })
    .unwrap();
    assert_eq!(
        (outbox.acked(&a).unwrap(), outbox.acked(&b).unwrap()),
        (2, 0)
    );
    let stats = Reader::open(&path).unwrap().outbox_stats().unwrap();
    assert_eq!(
        (stats.pending, stats.delivered),
        (3, 0),
        "pending until every destination has it"
    );
    s.apply(&Batch {
        deliveries: vec![delivered(&b, 1)],
        ..Batch::default()
    })
    .unwrap();
    let stats = Reader::open(&path).unwrap().outbox_stats().unwrap();
    assert_eq!((stats.pending, stats.delivered), (2, 1));
    let per: Vec<(&str, u64, u64)> = stats
        .destinations
        .iter()
        .map(|d| (d.url.as_str(), d.acked, d.pending))
        .collect();
    assert_eq!(per, [("http://a:1", 2, 1), ("http://b:1", 1, 2)]);
    let attempts: Vec<(u64, u32)> = s
        .connection()
        .prepare("SELECT seq, attempts FROM outbox ORDER BY seq")
        .unwrap()
        .query_map([], |r| Ok((r.get(0)?, r.get(1)?)))
        .unwrap()
        .collect::<std::result::Result<_, _>>()
        .unwrap();
    assert_eq!(attempts, [(1, 3), (2, 1), (3, 0)]);
    // A destination added starts from the oldest signal retained; one removed no longer holds
    // signals back.
    s.apply(&Batch {
        destinations: Some(vec![a.to_string(), "http://c:1".into()]),
        ..Batch::default()
    })
    .unwrap();
    assert_eq!(outbox.acked("http://c:1").unwrap(), 0);
    assert_eq!(outbox.acked(&b).unwrap(), 0, "forgotten");
    // The bound drops the oldest undelivered rows, counted against whoever lacked them.
    let dropped = s
        .prune(1010.0, &retention(Duration::from_secs(3600), 1))
        .unwrap();
    assert_eq!(dropped, 1, "the delivered row went first, then seq 2");
    let stats = Reader::open(&path).unwrap().outbox_stats().unwrap();
    let per: Vec<(&str, u64, u64)> = stats
        .destinations
        .iter()
        .map(|d| (d.url.as_str(), d.pending, d.dropped))
        .collect();
    // Seq 1 went as an audit row (every destination of its day had it), not as a drop.
    assert_eq!(per, [("http://a:1", 1, 0), ("http://c:1", 1, 1)]);
    assert_eq!(
        s.dropped_per_destination().unwrap(),
        [("http://a:1".to_string(), 0), ("http://c:1".to_string(), 1)],
        "what /metrics exports"
    );
    // The connection the Reader and the Outbox run on.
    let read_only = schema::open_read_only(&path, 64, Duration::from_secs(1)).unwrap();
    assert!(read_only.execute("DELETE FROM outbox", []).is_err());
}

/// A ledger hour written in parts (a restart in the middle of it) sums; prune honours its
/// retention.
#[test]
fn ledger_hours_written_in_parts_add_up() {
    use headroom_model::ledger::Hour;
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("h.db");
    let mut s = Writer::open(&path, 256).unwrap();
    let part = |observed_s: f64, scored: u64| Hour {
        start: 7200,
        observed_s,
        plan_instance_s: 2.0 * observed_s,
        scored,
        ..Hour::default()
    };
    for h in [part(600.0, 3), part(1200.0, 4)] {
        s.apply(&Batch {
            ledger: vec![h],
            ..Batch::default()
        })
        .unwrap();
    }
    let r = Reader::open(&path).unwrap();
    let hours = r.ledger(0).unwrap();
    assert_eq!(hours.len(), 1);
    assert_eq!(
        (
            hours[0].start,
            hours[0].observed_s,
            hours[0].plan_instance_s,
            hours[0].scored
        ),
        (7200, 1800.0, 3600.0, 7)
    );
    assert!(r.ledger(7201).unwrap().is_empty());
    s.prune(
        7200.0 + 86_400.0 + 3600.0,
        &retention(Duration::from_secs(86_400), 1000),
    )
    .unwrap();
    assert!(r.ledger(0).unwrap().is_empty(), "past the retention");
}

#[test]
fn the_last_policy_memory_of_each_metric_is_kept_and_an_unreadable_one_is_left() {
    use headroom_model::{Policy, PolicyConfig};
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("p.db");
    let mut s = Writer::open(&path, 256).unwrap();
    let r = Reader::open(&path).unwrap();
    assert_eq!(r.policy_memory("cpu.busy_cores").unwrap(), None);
    // Two memories of one policy, taken at different times.
    let policy = Policy::new(PolicyConfig::default());
    let memories = [policy.memory(10.0), policy.memory(20.0)];
    assert_ne!(memories[0], memories[1]);
    let record = |metric: &str, i: usize| {
        Some(MemoryRecord {
            metric: metric.into(),
            memory: memories[i].clone(),
        })
    };
    // Two batches merged after a failed write keep the later memory.
    let mut first = Batch {
        decision: Some(decision(10.0)),
        policy_memory: record("cpu.busy_cores", 0),
        ..Batch::default()
    };
    let second = Batch {
        policy_memory: record("cpu.busy_cores", 1),
        ..Batch::default()
    };
    assert!(!second.is_empty());
    assert!(first.merge(second).is_none());
    s.apply(&first).unwrap();
    assert_eq!(
        r.policy_memory("cpu.busy_cores").unwrap().as_ref(),
        Some(&memories[1])
    );
    // Another metric's memory is its own.
    s.apply(&Batch {
        policy_memory: record("queue.accept", 0),
        ..Batch::default()
    })
    .unwrap();
    assert_eq!(
        r.policy_memory("queue.accept").unwrap().as_ref(),
        Some(&memories[0])
    );
    assert_eq!(
        r.policy_memory("cpu.busy_cores").unwrap().as_ref(),
        Some(&memories[1])
    );
    Connection::open(&path)
        .unwrap()
        .execute(
            "UPDATE meta SET value = 'not json' WHERE key LIKE 'policy_memory/cpu%'",
            [],
        )
        .unwrap();
    assert_eq!(r.policy_memory("cpu.busy_cores").unwrap(), None);
}

#[test]
fn batches_merged_after_a_failed_write_keep_every_health_transition() {
    let health = |ts: f64, state: &str| {
        Some(HealthRecord {
            ts,
            state: state.into(),
            reasons: Vec::new(),
        })
    };
    let mut first = Batch {
        health: health(1.0, "degraded"),
        ..Batch::default()
    };
    let second = Batch {
        rollups_10s: vec![rollup("cpu.busy_cores", 10, 1.0)],
        health: health(2.0, "healthy"),
        ..Batch::default()
    };
    let rest = first.merge(second).expect("a second transition waits");
    assert_eq!(first.health.map(|h| h.state), Some("degraded".into()));
    assert_eq!(rest.health.map(|h| h.state), Some("healthy".into()));
    assert_eq!(rest.rollups_10s.len(), 1);
}

#[test]
fn a_damaged_file_is_told_apart_from_a_full_disk() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("h.db");
    let mut s = Writer::open(&path, 256).unwrap();
    let rows: Vec<Rollup> = (0..2000)
        .map(|i| rollup("cpu.busy_cores", i * 10, 1.0))
        .collect();
    s.apply(&Batch {
        rollups_10s: rows,
        ..Batch::default()
    })
    .unwrap();
    drop(s);
    // Pages past the schema's overwritten with garbage.
    super::damage_pages(&path);
    let err = Writer::open(&path, 256).and_then(|mut s| {
        s.apply(&Batch {
            rollups_10s: (0..2000)
                .map(|i| rollup("cpu.busy_cores", i * 10 + 5, 2.0))
                .collect(),
            ..Batch::default()
        })
    });
    let err = err.expect_err("a damaged file took the write");
    assert!(err.is_damaged(), "{err}");
    assert!(!err.is_locked() && !err.is_in_the_data(), "{err}");
}
