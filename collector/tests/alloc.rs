//! Steady-state sampling allocates nothing: counted with a global counting allocator over many
//! ticks, both driving a [`Collector`] directly and through the sampler thread.
//!
//! This file holds a single test so that no other test thread allocates during the count.

use std::alloc::System;
use std::time::{Duration, Instant};

use headroom_collector::{Collector, Sample, Sampler, SamplerConfig, SourceKind};
use stats_alloc::{INSTRUMENTED_SYSTEM, Region, StatsAlloc};

#[global_allocator]
static GLOBAL: &StatsAlloc<System> = &INSTRUMENTED_SYSTEM;

#[test]
fn steady_state_allocates_nothing() {
    // A listener so the accept-queue source has something to report.
    let _listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let mut collector = Collector::new(&SamplerConfig::default()).unwrap();
    let mut s = Sample::default();
    // Apart by more than a clock tick (10 ms), so the last one has CPU time to measure: two
    // reads within one tick see no CPU time pass and say nothing of the CPU.
    for _ in 0..20 {
        std::thread::sleep(Duration::from_millis(15));
        collector.sample_into(&mut s);
    }
    for k in SourceKind::ALL {
        if k != SourceKind::AppMetrics {
            assert!(
                s.has(k),
                "{k:?} must be read on this host for the count to mean anything"
            );
        }
    }
    let region = Region::new(GLOBAL);
    for _ in 0..2000 {
        collector.sample_into(&mut s);
        s.visit(|_, v| assert!(!v.is_nan()));
    }
    let change = region.change();
    assert_eq!(
        (change.allocations, change.reallocations),
        (0, 0),
        "2000 direct samples allocated: {change:?}"
    );

    // The same through the sampler thread at its fastest cadence.
    let config = SamplerConfig {
        interval: Duration::from_millis(100),
        ..SamplerConfig::default()
    };
    let (handle, mut rx) = Sampler::spawn(config).unwrap();
    let stats = handle.stats().clone();
    let wait_ticks = |n: u64| {
        let end = Instant::now() + Duration::from_secs(10);
        while stats.ticks() < n && Instant::now() < end {
            std::thread::sleep(Duration::from_millis(10));
        }
    };
    wait_ticks(3);
    let region = Region::new(GLOBAL);
    let before = stats.ticks();
    wait_ticks(before + 15);
    let mut received = 0;
    while rx.try_recv().is_some() {
        received += 1;
    }
    let change = region.change();
    let ticks = stats.ticks() - before;
    handle.stop();
    assert!(
        ticks >= 15 && received >= 15,
        "{ticks} ticks, {received} received"
    );
    assert_eq!(
        (change.allocations, change.reallocations),
        (0, 0),
        "{ticks} sampler ticks allocated: {change:?}"
    );
}
