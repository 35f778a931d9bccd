//! The sampler thread on the real host: cadence under a stalled consumer, drop accounting,
//! prompt stop, interval bounds.

use std::time::{Duration, Instant};

use headroom_collector::{Sampler, SamplerConfig, SourceKind};

#[test]
fn stalled_consumer_keeps_cadence_and_counts_drops() {
    let interval = Duration::from_millis(100);
    let capacity = 4;
    let config = SamplerConfig {
        interval,
        ring_capacity: capacity,
        ..SamplerConfig::default()
    };
    let started = Instant::now();
    let (handle, mut rx) = Sampler::spawn(config).unwrap();
    // The consumer reads nothing for 2 s.
    std::thread::sleep(Duration::from_millis(2000));
    let stats = handle.stats().clone();
    handle.stop();
    let elapsed = started.elapsed();
    let ticks = stats.ticks();
    let dropped = stats.dropped();
    let expected = (elapsed.as_nanos() / interval.as_nanos()) as u64;
    // Cadence held: on a loaded machine a tick may be skipped, never a burst.
    assert!(
        ticks <= expected + 1,
        "{ticks} ticks in {elapsed:?}: a burst"
    );
    assert!(
        ticks * 10 >= expected * 8,
        "{ticks} ticks in {elapsed:?}: cadence lost"
    );
    // Every sample beyond the ring's capacity was dropped and counted.
    assert_eq!(dropped, ticks - capacity as u64);
    let mut got = Vec::new();
    while let Some(s) = rx.try_recv() {
        got.push(s);
    }
    assert!(rx.is_abandoned());
    assert_eq!(got.len(), capacity);
    // The newest samples were dropped: the consumer sees the first ticks, in order, each taken
    // at its slot plus its recorded lateness on the monotonic clock.
    assert_eq!(got[0].tick, 0);
    for w in got.windows(2) {
        assert!(w[1].tick > w[0].tick);
    }
    for s in &got {
        let slot = interval * (s.tick as u32 + 1);
        assert_eq!(s.mono - slot, s.late, "tick {}", s.tick);
        assert!(s.wall_unix > 1.6e9);
        assert!(s.has(SourceKind::Cpu) && s.has(SourceKind::Memory));
    }
}

#[test]
fn stop_returns_promptly() {
    let config = SamplerConfig {
        interval: Duration::from_secs(60),
        ..SamplerConfig::default()
    };
    let (handle, _rx) = Sampler::spawn(config).unwrap();
    std::thread::sleep(Duration::from_millis(50));
    let t = Instant::now();
    handle.stop();
    assert!(
        t.elapsed() < Duration::from_millis(500),
        "stop took {:?}",
        t.elapsed()
    );
}

#[test]
fn dropping_the_handle_stops_the_thread() {
    let config = SamplerConfig {
        interval: Duration::from_millis(100),
        ..SamplerConfig::default()
    };
    let (handle, rx) = Sampler::spawn(config).unwrap();
    let t = Instant::now();
    drop(handle);
    assert!(t.elapsed() < Duration::from_millis(500));
    assert!(rx.is_abandoned());
}

#[test]
fn interval_bounds() {
    for bad in [Duration::from_millis(99), Duration::from_secs(61)] {
        let config = SamplerConfig {
            interval: bad,
            ..SamplerConfig::default()
        };
        let err = Sampler::spawn(config).unwrap_err();
        assert_eq!(err.kind(), std::io::ErrorKind::InvalidInput);
    }
}
