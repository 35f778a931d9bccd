//! Ring throughput for `Sample`s: our sender/receiver (rtrb plus drop counting) next to bare
//! rtrb and std's bounded `sync_channel`, same batch, same run.

use std::hint::black_box;
use std::sync::mpsc::sync_channel;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use headroom_collector::{Sample, ring};

const BATCH: usize = 1024;

fn bench(c: &mut Criterion) {
    let sample = Sample::default();
    let mut g = c.benchmark_group("ring");
    g.throughput(Throughput::Elements(BATCH as u64));

    let (mut tx, mut rx) = ring(BATCH);
    g.bench_function("headroom_ring", |b| {
        b.iter(|| {
            for i in 0..BATCH {
                let mut s = sample;
                s.tick = i as u64;
                black_box(tx.push(s));
            }
            while let Some(s) = rx.try_recv() {
                black_box(s.tick);
            }
        })
    });

    let (mut p, mut q) = rtrb::RingBuffer::<Sample>::new(BATCH);
    g.bench_function("rtrb_raw", |b| {
        b.iter(|| {
            for i in 0..BATCH {
                let mut s = sample;
                s.tick = i as u64;
                black_box(p.push(s).is_ok());
            }
            while let Ok(s) = q.pop() {
                black_box(s.tick);
            }
        })
    });

    let (stx, srx) = sync_channel::<Sample>(BATCH);
    g.bench_function("std_sync_channel", |b| {
        b.iter(|| {
            for i in 0..BATCH {
                let mut s = sample;
                s.tick = i as u64;
                black_box(stx.try_send(s).is_ok());
            }
            while let Ok(s) = srx.try_recv() {
                black_box(s.tick);
            }
        })
    });
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
