//! kill -9 at random moments, start-up included: nothing committed is lost, and every signal
//! the agent produced reaches the coordinator once, in order.

use std::collections::BTreeSet;
use std::path::Path;
use std::time::Duration;

use crate::common::*;

/// A small xorshift generator; the seed is printed so a failing run can be replayed with
/// `HEADROOM_FAULT_SEED=N`.
struct Rng(u64);

impl Rng {
    fn seeded() -> Rng {
        let seed = std::env::var("HEADROOM_FAULT_SEED")
            .ok()
            .and_then(|s| s.parse().ok())
            .unwrap_or_else(|| (now() * 1e6) as u64 | 1);
        eprintln!("seed {seed}");
        Rng(seed)
    }
    fn below(&mut self, n: u64) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0 % n
    }
}

/// `(count, min, max)` of an integer column.
fn seq_range(conn: &rusqlite::Connection, table: &str) -> (i64, Option<i64>, Option<i64>) {
    conn.query_row(
        &format!("SELECT COUNT(*), MIN(seq), MAX(seq) FROM {table}"),
        [],
        |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
    )
    .unwrap()
}

/// Checks the agent's database after a kill: integrity, every committed rollup seen so far
/// present, every minute before the newest rolled up from all of its committed 10-second
/// samples, decision and outbox seqs contiguous from 1, nothing committed lost.
fn check_db(db: &Path, rollups: &BTreeSet<i64>, committed_seq: u64) -> u64 {
    let conn = rusqlite::Connection::open(db).unwrap();
    let ok: String = conn
        .query_row("PRAGMA integrity_check", [], |r| r.get(0))
        .unwrap();
    assert_eq!(ok, "ok");
    for ts in rollups {
        let n: i64 = conn
            .query_row("SELECT COUNT(*) FROM rollup_10s WHERE ts = ?1", [ts], |r| {
                r.get(0)
            })
            .unwrap();
        assert!(n > 0, "committed rollup {ts} missing after kill -9");
    }
    let thin = thin_minutes(&conn);
    assert!(
        thin.is_empty(),
        "minutes whose 1-minute row lacks committed samples (metric, minute, 10 s, 1 min): {thin:?}"
    );
    for table in ["decision", "outbox"] {
        let (n, min, max) = seq_range(&conn, table);
        if n > 0 {
            assert_eq!(min, Some(1), "{table} starts at 1");
            assert_eq!(max, Some(n), "{table} seqs contiguous 1..={n}");
        }
    }
    let (_, _, max) = seq_range(&conn, "decision");
    let max = max.unwrap_or(0) as u64;
    assert!(
        max >= committed_seq,
        "decision {committed_seq} reported committed but only {max} stored"
    );
    max
}

/// Minutes before the newest whose 1-minute row does not hold every committed 10-second
/// sample of the minute, as (metric, minute, samples in 10-second rows, in the 1-minute row).
/// A kill loses the open 1-minute bucket; the next start goes on from the minute's committed
/// 10-second rows, so no minute is thin or missing (the newest may still be open).
fn thin_minutes(conn: &rusqlite::Connection) -> Vec<(i64, i64, i64, Option<i64>)> {
    let mut q = conn
        .prepare(
            "WITH fine AS (SELECT metric, ts / 60 * 60 AS minute, SUM(n) AS n FROM rollup_10s
                           GROUP BY metric, minute)
             SELECT fine.metric, fine.minute, fine.n, coarse.n FROM fine
             LEFT JOIN rollup_1m coarse ON coarse.metric = fine.metric AND coarse.ts = fine.minute
             WHERE fine.minute < (SELECT MAX(ts) / 60 * 60 FROM rollup_10s)
               AND coarse.n IS NOT fine.n",
        )
        .unwrap();
    q.query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?)))
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap()
}

/// Stopped early in a minute (its 1-minute row written part-full), started again, killed
/// before the minute closes after committing more of its 10-second rows, and started again:
/// once the next minute commits, the cut minute's 1-minute row holds every sample its
/// 10-second rows do. Without the fold it held only the first run's samples (or, with no stop
/// before the kill, none or only those taken after the restart).
#[test]
fn a_minute_a_kill_cut_keeps_all_its_committed_samples() {
    let mut a = Agent::options().identity("fault-host", "web").create("");
    a.start();
    // Up to a minute: a committed 10-second row early in its minute.
    let v = a.wait_status("a row early in a minute", 75, |v| {
        committed(v).0.is_some_and(|ts| ts.rem_euclid(60) <= 10)
    });
    let first = committed(&v).0.unwrap();
    let minute = first.div_euclid(60) * 60;
    assert!(a.term().success());
    a.start();
    // The stop wrote its part-full bucket too: a row of this run is newer than that.
    let stored = committed(&a.json(&["status"])).0.unwrap_or(first);
    let v = a.wait_status("a row of this run", 30, |v| {
        committed(v).0.is_some_and(|ts| ts > stored)
    });
    a.kill9();
    let cut = committed(&v).0.unwrap() < minute + 60;
    a.start();
    a.wait_status("a row of a later minute", 90, |v| {
        committed(v).0.is_some_and(|ts| ts >= minute + 60)
    });
    a.kill9();
    let conn = rusqlite::Connection::open(a.db()).unwrap();
    let thin = thin_minutes(&conn);
    assert!(
        thin.is_empty(),
        "thin minutes (metric, minute, 10 s, 1 min): {thin:?}"
    );
    let rolled: i64 = conn
        .query_row(
            "SELECT COUNT(*) FROM rollup_1m WHERE ts = ?1",
            [minute],
            |r| r.get(0),
        )
        .unwrap();
    assert!(rolled > 0, "the cut minute has no 1-minute row");
    // The second run's rows landed in the minute on any machine not stalled for 20 s.
    assert!(cut, "the second run committed only after the minute closed");
}

/// Kills the agent `kills` times at random moments (0 to 3 s after spawn; one in five within
/// 60 ms, during start-up) with a coordinator configured, checking the database after each kill,
/// then drains and compares what the coordinator applied with what the agent produced.
fn crash_loop(kills: u32) {
    let dir = tempfile::tempdir().unwrap();
    let (c, cstate) = dry_run_coordinator(dir.path(), "127.0.0.1:0");
    let mut a = Agent::options()
        .interval("100ms")
        .identity("fault-host", "web")
        .create(&agent_coordinator_toml(&c.url, dir.path()));
    let mut rng = Rng::seeded();
    let mut rollups = BTreeSet::new();
    let mut committed_seq = 0;
    let mut killed_ready = 0;
    // Warm up once so there is history to lose.
    a.start();
    a.wait_status("a committed rollup", 40, |v| committed(v).0.is_some());
    a.kill9();
    for i in 0..kills {
        a.spawn();
        // One kill in five lands within 60 ms of the spawn: during start-up and migration.
        let wait = if rng.below(5) == 0 {
            rng.below(60)
        } else {
            rng.below(3000)
        };
        std::thread::sleep(Duration::from_millis(wait));
        let out = a.cli(&["status", "--json"]);
        if out.status.success() {
            let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
            let (r, s) = committed(&v);
            rollups.extend(r);
            committed_seq = committed_seq.max(s.unwrap_or(0));
            killed_ready += 1;
        }
        a.kill9();
        let max = check_db(&a.db(), &rollups, committed_seq);
        eprintln!(
            "kill {}: {} rollups checked, decisions 1..={max}",
            i + 1,
            rollups.len()
        );
    }
    // Final run: wait for new decisions and an empty outbox, then stop cleanly.
    a.start();
    a.wait_status("new decisions after the last kill", 30, |v| {
        committed(v).1.is_some_and(|s| s > committed_seq + 2)
    });
    a.wait_status("the outbox drained", 60, |v| v["outbox"]["pending"] == 0);
    assert!(a.term().success());
    let produced = outbox_produced(&a.db());
    assert_eq!(
        a.json_offline_dropped(),
        0,
        "no signal dropped from the outbox"
    );
    let (recorded, applied) = check_delivery(&a.db(), &cstate, &produced, 3);
    assert_eq!(applied, recorded, "all fresh: every signal applied");
    eprintln!(
        "survived {kills} kill -9 ({killed_ready} after answering status); produced {} signals, coordinator applied {applied}",
        produced.len(),
    );
    drop(c);
}

trait OfflineDropped {
    fn json_offline_dropped(&self) -> u64;
}

impl OfflineDropped for Agent {
    /// The outbox drop counter, read from the stopped agent's database.
    fn json_offline_dropped(&self) -> u64 {
        let conn = rusqlite::Connection::open(self.db()).unwrap();
        conn.query_row(
            "SELECT value FROM meta WHERE key = 'outbox_dropped'",
            [],
            |r| r.get::<_, String>(0),
        )
        .map(|v| v.parse().unwrap_or(0))
        .unwrap_or(0)
    }
}

#[test]
fn kill_9_ten_times_loses_nothing() {
    crash_loop(10);
}

/// Long variant: 50 kills.
/// `cargo test --test e2e -- --ignored kill_9_fifty_times --nocapture`
#[test]
#[ignore]
fn kill_9_fifty_times_loses_nothing() {
    crash_loop(50);
}
