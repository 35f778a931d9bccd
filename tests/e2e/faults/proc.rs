//! Broken /proc files in a fake proc root: the sources they feed are disabled with a reason,
//! the agent never crashes, and they come back by themselves.

use std::path::Path;
use std::time::Instant;

use crate::common::*;

/// Copies the proc files the sources read into `root`.
fn fake_proc(root: &Path) {
    for f in [
        "stat",
        "meminfo",
        "loadavg",
        "diskstats",
        "net/dev",
        "net/netstat",
        "net/tcp",
        "net/tcp6",
        "pressure/cpu",
        "pressure/io",
        "pressure/memory",
    ] {
        let to = root.join(f);
        std::fs::create_dir_all(to.parent().unwrap()).unwrap();
        match std::fs::read(Path::new("/proc").join(f)) {
            Ok(b) => std::fs::write(&to, b).unwrap(),
            Err(e) => eprintln!("/proc/{f} unreadable here ({e}); skipped"),
        }
    }
}

fn source_state(v: &serde_json::Value, name: &str) -> (String, String) {
    let Some(s) = v["sources"]
        .as_array()
        .and_then(|a| a.iter().find(|s| s["name"] == name))
    else {
        return (String::new(), String::new());
    };
    (
        s["state"].as_str().unwrap_or_default().to_string(),
        s["reason"].as_str().unwrap_or_default().to_string(),
    )
}

/// Missing, empty, truncated, garbage and huge files in a fake proc root: the agent never
/// crashes, reports those sources disabled with a reason and health degraded, and re-enables
/// them by itself when the files are restored (the collector retries every 30 s).
#[test]
fn broken_proc_files_disable_sources_then_recover() {
    let dir = tempfile::tempdir().unwrap();
    let proc = dir.path().join("proc");
    fake_proc(&proc);
    let good: Vec<(std::path::PathBuf, Vec<u8>)> = [
        "stat",
        "meminfo",
        "diskstats",
        "net/dev",
        "net/netstat",
        "pressure/io",
        "net/tcp",
    ]
    .iter()
    .map(|f| (proc.join(f), std::fs::read(proc.join(f)).unwrap()))
    .collect();
    // netstat missing from the start.
    std::fs::remove_file(proc.join("net/netstat")).unwrap();
    let mut a = Agent::options()
        .identity("fault-host", "web")
        .create(&format!(
            "[sources]\nproc_root = \"{}\"\nsock_diag = false\n",
            proc.display()
        ));
    a.start();
    let v = a.wait_status("netstat disabled", 20, |v| {
        source_state(v, "netstat").0 == "disabled"
    });
    let (_, why) = source_state(&v, "netstat");
    assert!(!why.is_empty(), "a reason is given");
    assert_eq!(source_state(&v, "cpu").0, "ok", "{v:#}");
    // Break files in place (the sources keep them open).
    std::fs::write(proc.join("stat"), b"").unwrap(); // empty
    let m = &good[1].1;
    std::fs::write(proc.join("meminfo"), &m[..m.len().min(20)]).unwrap(); // truncated mid-line
    std::fs::write(
        proc.join("diskstats"),
        b"\x00\xff garbage \n\n 8 0 sda x y z\n",
    )
    .unwrap();
    std::fs::write(proc.join("pressure/io"), b"some avg10=banana\n").unwrap();
    std::fs::write(
        proc.join("net/tcp"),
        b"  sl  local_address\n 0: ZZZZ:0050 0A\n",
    )
    .unwrap();
    let huge: Vec<u8> = b"eth0: zz 1 2 3 4 5 6 7 8 9 10 11 12 13 14 15\n"
        .iter()
        .copied()
        .cycle()
        .take(50 << 20)
        .collect();
    std::fs::write(proc.join("net/dev"), &huge).unwrap();
    let broken = [
        "cpu",
        "memory",
        "disk",
        "pressure",
        "network",
        "accept_queue",
    ];
    let v = a.wait_status("broken sources disabled", 20, |v| {
        broken.iter().all(|s| source_state(v, s).0 == "disabled")
    });
    for s in broken {
        let (_, why) = source_state(&v, s);
        assert!(!why.is_empty(), "{s} has a reason");
        eprintln!("{s}: {why}");
    }
    assert_ne!(v["health"]["state"], "healthy", "{v:#}");
    let rss = rss_kib(a.pid().unwrap()).unwrap();
    eprintln!("agent RSS with a 50 MB proc file: {rss} KiB");
    assert!(rss < 200 * 1024, "RSS bounded: {rss} KiB");
    // Still alive and answering.
    assert!(a.child.as_mut().unwrap().try_wait().unwrap().is_none());
    for (path, bytes) in &good {
        std::fs::write(path, bytes).unwrap();
    }
    let restored = Instant::now();
    let all = [
        "cpu",
        "memory",
        "disk",
        "pressure",
        "network",
        "netstat",
        "accept_queue",
    ];
    let v = a.wait_status("every source back", 70, |v| {
        all.iter().all(|s| source_state(v, s).0 == "ok")
    });
    eprintln!(
        "sources back {:?} after the files were restored",
        restored.elapsed()
    );
    let _ = v;
    let rss = rss_kib(a.pid().unwrap()).unwrap();
    eprintln!("agent RSS after the files were restored: {rss} KiB");
    assert!(
        rss < 80 * 1024,
        "the 50 MB file's read buffer is given back: {rss} KiB"
    );
    assert!(a.term().success(), "{}", tail(&a.log(), 20));
}
