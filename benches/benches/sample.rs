//! Cost of one full sample (every source, real /proc, sock_diag) next to its floor: `pread` of
//! the same files into reused buffers on kept-open descriptors plus the same sock_diag
//! exchange, with no parsing. Goal: full sample <= 1.5x the floor.

use std::fs::File;
use std::hint::black_box;
use std::os::unix::fs::FileExt;

use criterion::{Criterion, criterion_group, criterion_main};
use headroom_collector::{Collector, Sample, SamplerConfig, SockDiagSocket};

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
