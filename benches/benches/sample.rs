//! Cost of one full sample (every source, real /proc, sock_diag) next to its floor: `pread` of
//! the same files into reused buffers on kept-open descriptors plus the same sock_diag
//! exchange, with no parsing. Goal: full sample <= 1.5x the floor.
//!
//! And next to `sysinfo`, the crate the project's card named for host metrics, refreshing the
//! signals it has of ours (CPU usage, memory, disks, network interfaces; it has no PSI, accept
//! queues or listen overflows): time per refresh, and heap allocations per refresh counted by
//! this binary's allocator, printed before the timings.

use std::alloc::System;
use std::fs::File;
use std::hint::black_box;
use std::os::unix::fs::FileExt;

use criterion::{Criterion, criterion_group, criterion_main};
use headroom_collector::{Collector, Sample, SamplerConfig, SockDiagSocket};
use stats_alloc::{INSTRUMENTED_SYSTEM, Region, StatsAlloc};

#[global_allocator]
static GLOBAL: &StatsAlloc<System> = &INSTRUMENTED_SYSTEM;

/// sysinfo's objects for the signals it shares with the collector.
struct Sysinfo {
    system: sysinfo::System,
    disks: sysinfo::Disks,
    networks: sysinfo::Networks,
}

impl Sysinfo {
    fn new() -> Self {
        Sysinfo {
            system: sysinfo::System::new().expect("sysinfo system"),
            disks: sysinfo::Disks::new_with_refreshed_list().expect("sysinfo disks"),
            networks: sysinfo::Networks::new_with_refreshed_list().expect("sysinfo networks"),
        }
    }

    /// One refresh of CPU usage, memory, disks and interfaces, as a sampler would each tick.
    fn refresh(&mut self) {
        self.system.refresh_cpu_usage();
        self.system.refresh_memory();
        self.disks.refresh(true);
        self.networks.refresh(true);
    }
}

/// Heap allocations (and bytes) per call of `f`, over `n` calls after a warm-up call.
fn allocations(n: u32, mut f: impl FnMut()) -> (f64, f64) {
    f();
    let region = Region::new(GLOBAL);
    for _ in 0..n {
        f();
    }
    let stats = region.change();
    (
        stats.allocations as f64 / f64::from(n),
        stats.bytes_allocated as f64 / f64::from(n),
    )
}

const FILES: [&str; 9] = [
    "/proc/stat",
    "/proc/loadavg",
    "/proc/meminfo",
    "/proc/diskstats",
    "/proc/net/dev",
    "/proc/pressure/cpu",
    "/proc/pressure/io",
    "/proc/pressure/memory",
    "/proc/net/netstat",
];

/// Kept-open files and their buffers: the least any sampler must do.
struct Floor {
    files: Vec<(File, Vec<u8>)>,
    diag: SockDiagSocket,
}

impl Floor {
    fn open() -> Self {
        let files = FILES
            .iter()
            .map(|p| (File::open(p).expect(p), vec![0u8; 64 * 1024]))
            .collect();
        Floor {
            files,
            diag: SockDiagSocket::open().expect("sock_diag"),
        }
    }

    fn read(&mut self) -> usize {
        let mut total = 0;
        for (f, buf) in &mut self.files {
            let mut filled = 0;
            loop {
                let n = f.read_at(&mut buf[filled..], filled as u64).expect("pread");
                if n == 0 {
                    break;
                }
                filled += n;
            }
            total += filled;
        }
        total + self.diag.raw_dump().expect("sock_diag dump")
    }
}

fn bench(c: &mut Criterion) {
    // A few listeners so the sock_diag reply is not empty.
    let _listeners: Vec<_> = (0..4)
        .map(|_| std::net::TcpListener::bind("127.0.0.1:0").unwrap())
        .collect();
    let mut collector = Collector::new(&SamplerConfig::default()).expect("collector");
    let mut sample = Sample::default();
    let mut floor = Floor::open();
    let mut peer = Sysinfo::new();
    let ours = allocations(100, || collector.sample_into(&mut sample));
    let theirs = allocations(100, || peer.refresh());
    println!(
        "allocations per refresh: collector (7 sources) {:.1} ({:.0} bytes), sysinfo (cpu, memory, disks, networks) {:.1} ({:.0} bytes)",
        ours.0, ours.1, theirs.0, theirs.1
    );
    // The floor is measured before and after the full sample, so drift in a shared machine's
    // load shows up as a gap between the two floors rather than as a skewed ratio.
    let mut g = c.benchmark_group("sample");
    g.bench_function("raw_floor", |b| b.iter(|| black_box(floor.read())));
    g.bench_function("full_sample", |b| {
        b.iter(|| {
            collector.sample_into(&mut sample);
            black_box(&sample);
        })
    });
    g.bench_function("sysinfo_refresh", |b| {
        b.iter(|| {
            peer.refresh();
            black_box(&peer.system);
        })
    });
    g.bench_function("raw_floor_after", |b| b.iter(|| black_box(floor.read())));
    g.finish();
    assert_eq!(
        sample.valid.count_ones(),
        7,
        "every source but app metrics must be read"
    );
}

criterion_group!(benches, bench);
criterion_main!(benches);
