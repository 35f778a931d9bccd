//! A full state filesystem: the agent degrades, keeps deciding and recovers by itself.

use std::path::Path;
use std::time::{Duration, Instant};

use crate::common::*;

/// Fills `dir` until the filesystem refuses; returns the filler path.
fn fill(dir: &Path) -> std::path::PathBuf {
    use std::io::Write;
    let path = dir.join("filler");
    let mut f = std::fs::File::create(&path).unwrap();
    let chunk = vec![0x5a_u8; 64 * 1024];
    while f.write_all(&chunk).is_ok() {}
    let small = vec![0x5a_u8; 512];
    while f.write_all(&small).is_ok() {}
    let _ = f.sync_all();
    path
}

/// A tiny tmpfs holds the state directory; once full the agent keeps sampling, deciding and
/// answering, says degraded with the reason, and recovers by itself when space returns.
#[test]
fn full_state_filesystem_degrades_then_recovers() {
    let dir = tempfile::tempdir().unwrap();
    let mnt = dir.path().join("mnt");
    std::fs::create_dir(&mnt).unwrap();
    let ok = std::process::Command::new("mount")
        .args(["-t", "tmpfs", "-o", "size=8m,mode=0750", "tmpfs"])
        .arg(&mnt)
        .status()
        .map(|s| s.success())
        .unwrap_or(false);
    if !ok {
        eprintln!("SKIPPED: cannot mount a tmpfs here (needs root)");
        return;
    }
    struct Unmount(std::path::PathBuf);
    impl Drop for Unmount {
        fn drop(&mut self) {
            let _ = std::process::Command::new("umount")
                .arg("-l")
                .arg(&self.0)
                .status();
        }
    }
    let _unmount = Unmount(mnt.clone());
    let state = mnt.join("state");
    let a_dir = tempfile::tempdir().unwrap();
    let mut a = Agent::options()
        .identity("fault-host", "web")
        .state(a_dir, state)
        .create("");
    a.start();
    a.wait_status("a committed rollup", 40, |v| committed(v).0.is_some());
    let filler = fill(&mnt);
    let full = Instant::now();
    let v = a.wait_status("the store error", 90, |v| !v["store_error"].is_null());
    eprintln!(
        "store error after {:?}: {}",
        full.elapsed(),
        v["store_error"]
    );
    let says_why = |h: &serde_json::Value| {
        h["state"] == "degraded"
            && h["reasons"]
                .as_array()
                .unwrap()
                .iter()
                .any(|r| r.as_str().unwrap().contains("history not being written"))
    };
    wait_for(Duration::from_secs(15), || {
        says_why(&a.json(&["health"])).then_some(())
    })
    .unwrap_or_else(|| panic!("health does not say why: {:#}", a.json(&["health"])));
    // Still sampling and deciding, the CLI answering.
    let d0 = v["decision"].clone();
    let t0 = v["sampler"]["ticks"].as_u64().unwrap();
    std::thread::sleep(Duration::from_secs(3));
    let v = a.json(&["status"]);
    assert!(v["sampler"]["ticks"].as_u64().unwrap() > t0);
    assert_ne!(
        v["decision"], d0,
        "decisions continue while the disk is full"
    );
    assert!(!v["store_error"].is_null(), "still full");
    let frozen = committed(&v);
    std::fs::remove_file(&filler).unwrap();
    let freed = Instant::now();
    let v = a.wait_status("recovery", 60, |v| {
        v["store_error"].is_null() && committed(v) != frozen && committed(v).0 > frozen.0
    });
    eprintln!("recovered {:?} after space returned", freed.elapsed());
    assert!(
        !a.json(&["health"])["reasons"]
            .to_string()
            .contains("history not being written")
    );
    let conn = rusqlite::Connection::open(a.db()).unwrap();
    let ok: String = conn
        .query_row("PRAGMA integrity_check", [], |r| r.get(0))
        .unwrap();
    assert_eq!(ok, "ok");
    let _ = v;
    assert!(a.term().success(), "{}", tail(&a.log(), 20));
}
