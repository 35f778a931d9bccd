//! The sampler thread: a [`Collector`] read at a fixed cadence on the monotonic clock, each
//! sample pushed into the ring.
//!
//! Tick `k` is due at `start + (k + 1) * interval`. A tick that starts after its due time
//! records how late it was (`Sample::late`, and [`SamplerStats::late_ticks`] when later than a
//! tenth of the interval). After a read that overran its slot, the latest slot already begun
//! runs at once (late); slots that passed entirely are skipped, never caught up in a burst:
//! their tick numbers simply do not appear. Stop requests arrive on a
//! channel the thread waits on between ticks, so stopping never waits out an interval.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc::{self, RecvTimeoutError, Sender, TryRecvError};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use crate::collector::Collector;
use crate::config::{MAX_INTERVAL, MIN_INTERVAL, SamplerConfig};
use crate::ring::{SampleSender, ring};
use crate::sample::{Sample, SourceKind, SourceState};

pub use crate::ring::SampleReceiver;

/// Counters and source states shared between the sampler thread and its callers.
#[derive(Debug, Default)]
pub struct SamplerStats {
    /// Samples taken.
    pub ticks: AtomicU64,
    /// Samples dropped because the ring was full.
    pub dropped: AtomicU64,
    /// Ticks that started more than a tenth of the interval after their due time.
    pub late_ticks: AtomicU64,
    states: Mutex<Vec<(SourceKind, SourceState)>>,
}

impl SamplerStats {
    /// Samples dropped because the ring was full.
    pub fn dropped(&self) -> u64 {
        self.dropped.load(Ordering::Relaxed)
    }
    /// Samples taken so far.
    pub fn ticks(&self) -> u64 {
        self.ticks.load(Ordering::Relaxed)
    }
    /// Late ticks so far.
    pub fn late_ticks(&self) -> u64 {
        self.late_ticks.load(Ordering::Relaxed)
    }
    /// Current state of every source.
    pub fn source_states(&self) -> Vec<(SourceKind, SourceState)> {
        self.states.lock().map(|s| s.clone()).unwrap_or_default()
    }

    fn publish(&self, states: Vec<(SourceKind, SourceState)>) {
        if let Ok(mut s) = self.states.lock() {
            *s = states;
        }
    }
}

/// A running sampler thread; dropping it stops the thread.
#[derive(Debug)]
pub struct SamplerHandle {
    stats: Arc<SamplerStats>,
    stop: Option<Sender<()>>,
    thread: Option<JoinHandle<()>>,
}

impl SamplerHandle {
    /// Shared counters and source states.
    pub fn stats(&self) -> &Arc<SamplerStats> {
        &self.stats
    }

    /// Asks the thread to stop and waits for it (at most the duration of one read).
    pub fn stop(mut self) {
        self.shutdown();
    }

    fn shutdown(&mut self) {
        if let Some(tx) = self.stop.take() {
            let _ = tx.send(());
        }
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

impl Drop for SamplerHandle {
    fn drop(&mut self) {
        self.shutdown();
    }
}

/// Starts sampler threads.
#[derive(Debug)]
pub struct Sampler;

impl Sampler {
    /// Spawns the sampler thread (and the app-metrics reader thread when configured).
    ///
    /// Fails with `InvalidInput` when the interval is outside 100 ms ..= 60 s, or when a thread
    /// cannot be started. Unreadable sources are not errors: they show as disabled.
    pub fn spawn(config: SamplerConfig) -> std::io::Result<(SamplerHandle, SampleReceiver)> {
        if !(MIN_INTERVAL..=MAX_INTERVAL).contains(&config.interval) {
            return Err(std::io::Error::new(
                std::io::ErrorKind::InvalidInput,
                format!("sampler interval {:?} outside 100ms..=60s", config.interval),
            ));
        }
        let mut collector = Collector::new(&config)?;
        let stats = Arc::new(SamplerStats::default());
        collector.take_state_changes();
        stats.publish(collector.source_states());
        let (tx, rx) = ring(config.ring_capacity);
        let (stop_tx, stop_rx) = mpsc::channel();
        let thread_stats = Arc::clone(&stats);
        let interval = config.interval;
        let thread = std::thread::Builder::new()
            .name("headroom-sampler".into())
            .spawn(move || run(collector, tx, interval, &thread_stats, &stop_rx))?;
        Ok((
            SamplerHandle {
                stats,
                stop: Some(stop_tx),
                thread: Some(thread),
            },
            rx,
        ))
    }
}

/// Waits until `due` or a stop request; true when asked to stop.
fn wait_until(due: Instant, stop: &mpsc::Receiver<()>) -> bool {
    loop {
        let now = Instant::now();
        if now >= due {
            return !matches!(stop.try_recv(), Err(TryRecvError::Empty));
        }
        match stop.recv_timeout(due - now) {
            Err(RecvTimeoutError::Timeout) => {}
            Ok(()) | Err(RecvTimeoutError::Disconnected) => return true,
        }
    }
}

fn run(
    mut collector: Collector,
    mut tx: SampleSender,
    interval: Duration,
    stats: &SamplerStats,
    stop: &mpsc::Receiver<()>,
) {
    let start = Instant::now();
    let late_threshold = interval / 10;
    let mut sample = Sample::default();
    let mut tick = 0u64;
    let mut due = start + interval;
    let mut states_pending = false;
    loop {
        if wait_until(due, stop) {
            return;
        }
        let now = Instant::now();
        let late = now.saturating_duration_since(due);
        sample.tick = tick;
        sample.mono = now.saturating_duration_since(start);
        sample.wall_unix = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_secs_f64())
            .unwrap_or(0.0);
        sample.late = late;
        collector.sample_at(now, &mut sample);
        sample.read_cost = now.elapsed();
        stats.ticks.fetch_add(1, Ordering::Relaxed);
        if late > late_threshold {
            stats.late_ticks.fetch_add(1, Ordering::Relaxed);
        }
        if !tx.push(sample) {
            stats.dropped.fetch_add(1, Ordering::Relaxed);
        }
        // States are published with try_lock: a caller reading them never makes the sampler
        // wait; a change not published this tick is published on the next.
        states_pending |= collector.take_state_changes();
        if states_pending && let Ok(mut s) = stats.states.try_lock() {
            *s = collector.source_states();
            states_pending = false;
        }
        (tick, due) = next_slot(tick, due, interval, Instant::now());
    }
}

/// The tick after `tick` (due at `due`), given that the current tick finished at `now`.
///
/// Normally the next slot, still in the future. After a read that overran one or more slots,
/// the latest slot that has already begun runs at once and is marked late; the slots before
/// it are skipped (their tick numbers never appear), so there is never a burst of catch-up
/// ticks.
fn next_slot(tick: u64, due: Instant, interval: Duration, now: Instant) -> (u64, Instant) {
    let (mut tick, mut due) = (tick + 1, due + interval);
    if due < now {
        let behind = now.duration_since(due).as_nanos() / interval.as_nanos().max(1);
        let skip = u32::try_from(behind).unwrap_or(u32::MAX);
        tick += u64::from(skip);
        due += interval.saturating_mul(skip);
    }
    (tick, due)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slow_read_makes_one_late_tick_not_a_burst() {
        let t0 = Instant::now();
        let i = Duration::from_millis(100);
        // On time: the next slot follows.
        assert_eq!(
            next_slot(0, t0, i, t0 + Duration::from_millis(5)),
            (1, t0 + i)
        );
        // A read of 250 ms: slot 1 is skipped; slot 2 (begun at 200 ms) runs at once, 50 ms late.
        assert_eq!(
            next_slot(0, t0, i, t0 + Duration::from_millis(250)),
            (2, t0 + 2 * i)
        );
        // Exactly on a slot boundary: that slot runs, not late.
        assert_eq!(next_slot(0, t0, i, t0 + 2 * i), (2, t0 + 2 * i));
        // A read of 10 intervals and a bit: one tick, for the latest slot.
        let (tick, due) = next_slot(5, t0, i, t0 + Duration::from_millis(1030));
        assert_eq!((tick, due), (15, t0 + 10 * i));
    }

    #[test]
    fn source_kind_index_matches_all() {
        for (i, k) in SourceKind::ALL.iter().enumerate() {
            assert_eq!(k.index(), i);
        }
    }
}
