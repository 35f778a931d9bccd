//! Sources read from a fake proc root: captured files from a real machine, then missing, empty,
//! truncated and garbage files, and a source coming back once its file does.

use std::fs;
use std::path::Path;
use std::time::{Duration, Instant};

use headroom_collector::{Collector, Sample, Sampler, SamplerConfig, SourceKind, SourceState};

const FILES: [&str; 11] = [
    "stat",
    "loadavg",
    "meminfo",
    "diskstats",
    "net/dev",
    "net/netstat",
    "net/tcp",
    "net/tcp6",
    "pressure/cpu",
    "pressure/io",
    "pressure/memory",
];

fn fixtures(set: &str) -> std::path::PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures")
        .join(set)
}

/// Copies a fixture set into `root` (overwriting in place, so kept-open files see it).
fn install(set: &str, root: &Path) {
    for f in FILES {
        let dst = root.join(f);
        fs::create_dir_all(dst.parent().unwrap()).unwrap();
        fs::write(&dst, fs::read(fixtures(set).join(f)).unwrap()).unwrap();
    }
}

fn config(root: &Path) -> SamplerConfig {
    SamplerConfig {
        proc_root: root.to_path_buf(),
        sys_root: root.join("no-sys"),
        sock_diag: false,
        retry_interval: Duration::from_millis(50),
        ..SamplerConfig::default()
    }
}

fn state(c: &Collector, kind: SourceKind) -> SourceState {
    c.source_states()
        .into_iter()
        .find(|(k, _)| *k == kind)
        .unwrap()
        .1
}

#[test]
fn captured_files_give_rates() {
    let dir = tempfile::tempdir().unwrap();
    install("proc", dir.path());
    let mut c = Collector::new(&config(dir.path())).unwrap();
    install("proc-later", dir.path());
    let mut s = Sample::default();
    c.sample_into(&mut s);
    for k in SourceKind::ALL {
        let want = k != SourceKind::AppMetrics;
        assert_eq!(s.has(k), want, "{k:?}: {:?}", state(&c, k));
    }
    assert_eq!(state(&c, SourceKind::AppMetrics), SourceState::Off);
    assert_eq!(s.cpu.cores, 2);
    assert!(s.cpu.busy > 0.0 && s.cpu.busy <= 1.0);
    assert_eq!(s.memory.total_bytes, 24_684_092 * 1024);
    // Only the whole disk: loop and zram are skipped.
    let disks: Vec<_> = s.disks[..s.disk_count as usize]
        .iter()
        .map(|d| d.name.as_str())
        .collect();
    assert_eq!(disks, ["vda"]);
    assert!(s.disks[0].reads_per_s > 0.0 && s.disks[0].write_bytes_per_s > 0.0);
    let nets: Vec<_> = s.nets[..s.net_count as usize]
        .iter()
        .map(|n| n.name.as_str())
        .collect();
    assert_eq!(nets, ["ifb0", "ifb1", "eth0"]);
    assert!(
        s.listeners[..s.listener_count as usize]
            .iter()
            .any(|q| q.port == 2024)
    );
    let mut names = Vec::new();
    s.visit(|m, v| {
        assert!(v.is_finite(), "{m:?}");
        names.push(m.family);
    });
    for family in [
        "cpu.busy_cores",
        "memory.available_bytes",
        "disk.busy",
        "accept_queue.depth",
    ] {
        assert!(names.contains(&family), "{family}");
    }
}

#[test]
fn missing_files_disable_each_source_with_a_reason() {
    let dir = tempfile::tempdir().unwrap();
    let c = Collector::new(&config(dir.path())).unwrap();
    for (k, st) in c.source_states() {
        match k {
            SourceKind::AppMetrics => assert_eq!(st, SourceState::Off),
            _ => match st {
                SourceState::Disabled { reason } => {
                    assert!(
                        reason.contains(dir.path().to_str().unwrap()),
                        "{k:?}: {reason}"
                    )
                }
                other => panic!("{k:?} should be disabled, is {other:?}"),
            },
        }
    }
}

/// Replaces one file with `bytes` and checks that exactly the sources reading it get disabled.
fn broken(file: &str, kind: SourceKind, bytes: &[u8]) {
    let dir = tempfile::tempdir().unwrap();
    install("proc", dir.path());
    fs::write(dir.path().join(file), bytes).unwrap();
    let mut c = Collector::new(&config(dir.path())).unwrap();
    let mut s = Sample::default();
    c.sample_into(&mut s);
    for (k, st) in c.source_states() {
        let disabled = matches!(st, SourceState::Disabled { .. });
        assert_eq!(
            disabled,
            k == kind,
            "{file} {:?}: {k:?} is {st:?}",
            String::from_utf8_lossy(bytes)
        );
    }
    assert!(!s.has(kind));
}

fn truncated(file: &str) -> Vec<u8> {
    let b = fs::read(fixtures("proc").join(file)).unwrap();
    // Cut where the loss is visible: inside meminfo's second line, before a PSI `total=`.
    let cut = match file {
        "meminfo" => 40,
        f if f.starts_with("pressure/") => 20,
        _ => b.len() / 2,
    };
    b[..cut].to_vec()
}

#[test]
fn empty_truncated_and_garbage_files() {
    let cases: [(&str, SourceKind); 10] = [
        ("stat", SourceKind::Cpu),
        ("loadavg", SourceKind::Cpu),
        ("meminfo", SourceKind::Memory),
        ("diskstats", SourceKind::Disk),
        ("net/dev", SourceKind::Network),
        ("pressure/cpu", SourceKind::Pressure),
        ("pressure/io", SourceKind::Pressure),
        ("pressure/memory", SourceKind::Pressure),
        ("net/netstat", SourceKind::Netstat),
        ("net/tcp", SourceKind::AcceptQueue),
    ];
    for (file, kind) in cases {
        broken(file, kind, b"");
        broken(file, kind, b"\x00\xff garbage {{{ \n 1 2 3\n");
        if !matches!(file, "loadavg" | "net/tcp") {
            broken(file, kind, &truncated(file));
        }
    }
}

#[test]
fn disabled_source_comes_back_when_its_file_returns() {
    let dir = tempfile::tempdir().unwrap();
    install("proc", dir.path());
    fs::remove_file(dir.path().join("meminfo")).unwrap();
    let cfg = SamplerConfig {
        interval: Duration::from_millis(100),
        ..config(dir.path())
    };
    let (handle, _rx) = Sampler::spawn(cfg).unwrap();
    let memory = |h: &headroom_collector::SamplerHandle| {
        h.stats()
            .source_states()
            .into_iter()
            .find(|(k, _)| *k == SourceKind::Memory)
            .unwrap()
            .1
    };
    assert!(matches!(memory(&handle), SourceState::Disabled { .. }));
    install("proc", dir.path());
    let end = Instant::now() + Duration::from_secs(5);
    while memory(&handle) != SourceState::Ok && Instant::now() < end {
        std::thread::sleep(Duration::from_millis(20));
    }
    assert_eq!(memory(&handle), SourceState::Ok);
    handle.stop();
}

#[test]
fn slow_reads_make_late_ticks_never_a_burst() {
    let dir = tempfile::tempdir().unwrap();
    install("proc", dir.path());
    let stat = fs::read(fixtures("proc").join("stat")).unwrap();
    // Pad /proc/stat until one sample takes longer than 2.5 intervals of 100 ms. Timed in the
    // steady state the sampler runs in (files open, buffers grown by a first sample): a first
    // sample's extra cost once made the padding too small, and a later read under one interval.
    let interval = Duration::from_millis(100);
    let mut pad = 1usize << 20;
    let slow = loop {
        let mut big = stat.clone();
        big.extend(b"x 0\n".repeat(pad / 4));
        fs::write(dir.path().join("stat"), &big).unwrap();
        let mut c = Collector::new(&config(dir.path())).unwrap();
        let mut sample = Sample::default();
        c.sample_into(&mut sample);
        let t = Instant::now();
        c.sample_into(&mut sample);
        let took = t.elapsed();
        if took > interval * 5 / 2 {
            break took;
        }
        if pad >= 48 << 20 {
            eprintln!("reads stay fast here ({took:?} for {pad} bytes); nothing to test");
            return;
        }
        pad *= 2;
    };
    let cfg = SamplerConfig {
        interval,
        ring_capacity: 256,
        ..config(dir.path())
    };
    let started = Instant::now();
    let (handle, mut rx) = Sampler::spawn(cfg).unwrap();
    std::thread::sleep(Duration::from_millis(2000));
    let stats = handle.stats().clone();
    handle.stop();
    let elapsed = started.elapsed();
    let mut got = Vec::new();
    while let Some(s) = rx.try_recv() {
        got.push(s);
    }
    assert!(got.len() >= 2, "{} samples with {slow:?} reads", got.len());
    assert!(stats.late_ticks() > 0, "late ticks recorded");
    // One tick per read at most, not one per slot: no catch-up burst.
    let per_read = elapsed.as_secs_f64() / (slow.as_secs_f64() * 0.5);
    assert!(
        (got.len() as f64) <= per_read + 1.0,
        "{} ticks in {elapsed:?}",
        got.len()
    );
    for w in got.windows(2) {
        // Each late tick is the latest slot already begun: less than one interval late, and the
        // skipped slots show as gaps in tick numbers.
        assert!(
            w[1].late < interval,
            "tick {} late by {:?}",
            w[1].tick,
            w[1].late
        );
        assert!(
            w[1].tick > w[0].tick + 1,
            "ticks {} then {}",
            w[0].tick,
            w[1].tick
        );
        assert_eq!(w[1].mono - interval * (w[1].tick as u32 + 1), w[1].late);
    }
}
