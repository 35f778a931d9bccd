//! The forecaster's heap over a long run: what it holds must stop growing once its history
//! is full, because the agent runs for months on every VM.

use std::alloc::System;

use headroom_model::{ForecastConfig, Forecaster};
use std::sync::Mutex;

use stats_alloc::{INSTRUMENTED_SYSTEM, StatsAlloc};

#[global_allocator]
static GLOBAL: &StatsAlloc<System> = &INSTRUMENTED_SYSTEM;

/// The counters are process-wide: one measurement at a time.
static MEASURING: Mutex<()> = Mutex::new(());

/// Bytes live on the heap now (allocated minus freed since start-up).
fn live_bytes() -> i64 {
    let s = GLOBAL.stats();
    s.bytes_allocated as i64 - s.bytes_deallocated as i64
}

/// A daily cycle plus noise, as the agent feeds it: one 10-second mean per observation.
fn load(t: f64, noise: &mut u64) -> f64 {
    *noise ^= *noise << 13;
    *noise ^= *noise >> 7;
    *noise ^= *noise << 17;
    let e = (*noise >> 11) as f64 / (1u64 << 53) as f64 - 0.5;
    2.0 + (2.0 * std::f64::consts::PI * t / 86_400.0).sin() + 0.3 * e
}

/// Feeds `periods` × `hours` of 10-second points and returns the live heap after each period.
fn heap_by_period(config: ForecastConfig, hours: usize, periods: usize) -> Vec<i64> {
    let per = hours * 360;
    let _one_at_a_time = MEASURING.lock().unwrap_or_else(|e| e.into_inner());
    let base = live_bytes();
    let mut f = Forecaster::new(config);
    let mut noise = 0x9e37_79b9_7f4a_7c15;
    let mut out = Vec::new();
    for period in 0..periods {
        for i in 0..per {
            let t = 1_700_000_000.0 + (period * per + i) as f64 * 10.0;
            f.observe(t, load(t, &mut noise));
            if i % 60 == 0 {
                assert!(f.forecast(&[60.0, 300.0, 900.0]).is_some());
            }
        }
        out.push(live_bytes() - base);
    }
    drop(f);
    out
}

fn report(label: &str, heap: &[i64]) {
    let kib: Vec<String> = heap.iter().map(|b| format!("{}", b / 1024)).collect();
    eprintln!("{label}: live heap (KiB): {}", kib.join(" "));
}

/// The mechanism at a smaller scale, quick enough for every test run: a 2-day history at
/// 10-second cadence, full resolution for the last 3 hours, measured every 6 hours. Kept
/// whole, that history would grow by 15,000 rows after 6 hours, about 450 KiB with the
/// vectors' spare capacity; merged, it may grow by one doubling of the rows held (64 KiB).
#[test]
fn heap_stops_growing_past_the_fine_window() {
    let heap = heap_by_period(
        ForecastConfig {
            max_history_s: 2.0 * 86_400.0,
            fine_history_s: 3.0 * 3_600.0,
            horizon_s: 300.0,
            ..ForecastConfig::default()
        },
        6,
        12,
    );
    report("2-day history, every 6 hours", &heap);
    let fine_full = heap[0];
    for (i, &b) in heap.iter().enumerate().skip(1) {
        assert!(
            b <= fine_full + 128 * 1024,
            "after {} hours: {b} bytes live, {fine_full} after 6 hours",
            (i + 1) * 6
        );
    }
}

/// The agent's own configuration over 15 days (release build: `cargo test --release -p
/// headroom-model --test memory -- --ignored --nocapture`): every step up to a 310-second
/// lead scored, and the 10- and 15-minute horizons it reports.
#[test]
#[ignore = "long: run in release"]
fn agent_forecaster_heap_over_fifteen_days() {
    let agent = ForecastConfig {
        horizon_s: 310.0,
        extra_horizons_s: vec![600.0, 900.0],
        ..ForecastConfig::default()
    };
    let heap = heap_by_period(agent, 24, 15);
    report("agent config, daily", &heap);
    let first = heap[0];
    let last = heap[heap.len() - 1];
    assert!(
        last <= first + 1024 * 1024,
        "{last} bytes live after 15 days, {first} after one"
    );
}
