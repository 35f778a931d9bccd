//! A damaged history: the agent sets the file aside, keeps it whole, starts a new history and
//! says so, instead of failing to start under systemd for ever.

use crate::common::*;

/// The files named `headroom.db.damaged-*` in `dir`, with their bytes.
fn kept(dir: &std::path::Path) -> Vec<(String, Vec<u8>)> {
    let mut out: Vec<(String, Vec<u8>)> = std::fs::read_dir(dir)
        .unwrap()
        .filter_map(Result::ok)
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| {
            n.starts_with("headroom.db.damaged-") && !n.ends_with("-wal") && !n.ends_with("-shm")
        })
        .map(|n| {
            let bytes = std::fs::read(dir.join(&n)).unwrap();
            (n, bytes)
        })
        .collect();
    out.sort();
    out
}

/// The health note of a start that set the history aside, if status has one.
fn set_aside_note(v: &serde_json::Value) -> Option<String> {
    v["health"]["notes"]
        .as_array()?
        .iter()
        .filter_map(|n| n.as_str())
        .find(|n| n.contains("history started anew"))
        .map(str::to_string)
}

#[test]
fn a_damaged_history_is_set_aside_and_a_new_one_starts() {
    let mut a = Agent::options().identity("fault-host", "web").create("");
    std::fs::create_dir_all(&a.state).unwrap();
    // Not a database at all: what a torn copy or a stray write leaves.
    let garbage: Vec<u8> = (0..64 * 1024).map(|i| (i * 7 % 251) as u8).collect();
    std::fs::write(a.db(), &garbage).unwrap();

    a.start();
    let v = a.wait_status("a committed rollup", 40, |v| committed(v).0.is_some());
    let note = set_aside_note(&v).unwrap_or_else(|| panic!("no note: {v:#}"));
    let first = kept(&a.state);
    assert_eq!(first.len(), 1, "{first:?}");
    assert_eq!(first[0].1, garbage, "the damaged file was not kept whole");
    assert!(note.contains(&first[0].0), "{note}");
    // A note, no fault: nothing about the history among the reasons (the test host's own
    // state may add others).
    let reasons = v["health"]["reasons"].to_string();
    assert!(!reasons.contains("history"), "{v:#}");
    assert!(a.log().contains("the history is damaged"), "{}", a.log());
    // The new history is a database the agent writes.
    let conn = rusqlite::Connection::open(a.db()).unwrap();
    let rows: i64 = conn
        .query_row("SELECT count(*) FROM rollup_10s", [], |r| r.get(0))
        .unwrap();
    assert!(rows > 0);
    drop(conn);
    assert!(a.term().success());

    // A start with nothing wrong keeps the history, and says nothing of it.
    a.start();
    let v = a.json(&["status"]);
    assert!(set_aside_note(&v).is_none(), "{v:#}");
    assert!(a.term().success());
    assert_eq!(kept(&a.state).len(), 1);

    // Marked damaged while running (by the writer, the prune or the sender), but sound, as
    // after a repair: the start checks it, keeps it and removes the mark.
    let mark = a.state.join("headroom.db.damaged");
    std::fs::write(&mark, b"").unwrap();
    a.start();
    let v = a.json(&["status"]);
    assert!(set_aside_note(&v).is_none(), "{v:#}");
    assert!(!mark.exists());
    assert_eq!(kept(&a.state).len(), 1);
    assert!(
        a.log().contains("passes SQLite's quick_check"),
        "{}",
        a.log()
    );
    assert!(a.term().success());

    // Marked, and damaged past the pages a start reads: quick_check finds it, the file is set
    // aside whole, and the first copy stays.
    let mut bytes = std::fs::read(a.db()).unwrap();
    assert!(bytes.len() > 6 * 4096, "{} bytes", bytes.len());
    for b in &mut bytes[2 * 4096..6 * 4096] {
        *b = 0xA5;
    }
    std::fs::write(a.db(), &bytes).unwrap();
    std::fs::write(&mark, b"").unwrap();
    a.start();
    let v = a.wait_status("the note", 10, |v| set_aside_note(v).is_some());
    let both = kept(&a.state);
    assert_eq!(both.len(), 2, "{both:?}");
    assert!(both.iter().any(|(_, b)| *b == garbage));
    assert!(
        both.iter().any(|(_, b)| *b == bytes),
        "the damaged file was not kept whole"
    );
    assert!(!mark.exists());
    assert!(set_aside_note(&v).is_some());
    a.wait_status("a committed rollup", 40, |v| committed(v).0.is_some());
}
