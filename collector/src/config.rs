//! How the sampler reads the host: roots, cadence, ring size, the application endpoint. Plain
//! values in std types (`Duration`, `PathBuf`): the collector depends on no crate of ours, and
//! the agent maps its own configuration onto this.

use std::path::PathBuf;
use std::time::Duration;

/// Shortest allowed tick interval.
pub const MIN_INTERVAL: Duration = Duration::from_millis(100);
/// Longest allowed tick interval.
pub const MAX_INTERVAL: Duration = Duration::from_secs(60);

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
    /// Gauge (or counter) names to read from the endpoint; a bare name sums all its series, a
    /// name with labels matches one series. At most [`MAX_APP_GAUGES`](crate::sample::MAX_APP_GAUGES).
    pub app_gauges: Vec<String>,
    /// Timeout of one app endpoint read.
    pub app_timeout: Duration,
    /// Use sock_diag netlink for accept queues (else read /proc/net/tcp{,6}).
    pub sock_diag: bool,
    /// How often a disabled source is tried again.
    pub retry_interval: Duration,
    /// Block devices whose name starts with one of these are never reported.
    pub disk_skip_prefixes: Vec<String>,
}

impl Default for SamplerConfig {
    fn default() -> Self {
        SamplerConfig {
            proc_root: PathBuf::from("/proc"),
            sys_root: PathBuf::from("/sys"),
            interval: Duration::from_secs(1),
            ring_capacity: 64,
            include_loopback: false,
            app_endpoint: None,
            app_gauges: Vec::new(),
            app_timeout: Duration::from_millis(200),
            sock_diag: true,
            retry_interval: Duration::from_secs(30),
            disk_skip_prefixes: vec!["loop".into(), "ram".into(), "zram".into()],
        }
    }
}
