//! The fixed-size [`Sample`] that every tick produces.

use std::time::Duration;

/// Maximum number of disks, interfaces, listening ports and app gauges a sample carries.
pub const MAX_DEVICES: usize = 16;
/// Maximum number of listening sockets tracked per sample.
pub const MAX_LISTENERS: usize = 64;
/// Maximum number of application gauges.
pub const MAX_APP_GAUGES: usize = 8;

/// The sources the collector reads, each of which can be disabled on its own.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum SourceKind {
    /// `/proc/stat` and `/proc/loadavg`.
    Cpu,
    /// `/proc/meminfo`.
    Memory,
    /// `/proc/diskstats`.
    Disk,
    /// `/proc/net/dev`.
    Network,
    /// `/proc/pressure/{cpu,io,memory}`.
    Pressure,
    /// Accept queues of listening TCP sockets via NETLINK_SOCK_DIAG.
    AcceptQueue,
    /// `/proc/net/netstat` listen overflows and drops.
    Netstat,
    /// The local application's Prometheus endpoint.
    AppMetrics,
}

impl SourceKind {
    /// Every source, in display order.
    pub const ALL: [SourceKind; 8] = [
        SourceKind::Cpu,
        SourceKind::Memory,
        SourceKind::Disk,
        SourceKind::Network,
        SourceKind::Pressure,
        SourceKind::AcceptQueue,
        SourceKind::Netstat,
        SourceKind::AppMetrics,
    ];

    /// Stable lower-case name used in config, logs and the CLI.
    pub fn name(self) -> &'static str {
        match self {
            SourceKind::Cpu => "cpu",
            SourceKind::Memory => "memory",
            SourceKind::Disk => "disk",
            SourceKind::Network => "network",
            SourceKind::Pressure => "pressure",
            SourceKind::AcceptQueue => "accept_queue",
            SourceKind::Netstat => "netstat",
            SourceKind::AppMetrics => "app_metrics",
        }
    }
}

/// Whether a source is delivering values, for health reporting.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SourceState {
    /// Reading normally.
    Ok,
    /// Not configured (e.g. no app endpoint set).
    Off,
    /// Disabled after a failure; the reason names the file and the problem.
    Disabled { reason: String },
}

/// A metric's name as the visitor hands it out: a static family and an optional instance
/// (device, interface, port or gauge name), so visiting allocates nothing.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MetricName<'a> {
    /// e.g. `cpu.busy_cores`, `disk.busy`, `accept_queue.depth`.
    pub family: &'static str,
    /// e.g. `sda`, `eth0`, `8080`; empty for host-wide metrics.
    pub instance: &'a str,
}

/// CPU and run-queue figures over the last interval.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct CpuStats {
    /// Number of online CPUs.
    pub cores: u32,
    /// Busy fraction of all CPUs, 0..=1.
    pub busy: f64,
    /// Busy time expressed in cores (busy * cores).
    pub busy_cores: f64,
    /// Per-mode fractions of all CPU time.
    pub user: f64,
    pub nice: f64,
    pub system: f64,
    pub iowait: f64,
    pub irq: f64,
    pub softirq: f64,
    pub steal: f64,
    /// `procs_running` and `procs_blocked` from /proc/stat.
    pub procs_running: u32,
    pub procs_blocked: u32,
    /// Load averages from /proc/loadavg.
    pub load1: f64,
    pub load5: f64,
    pub load15: f64,
}

/// Memory figures.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct MemoryStats {
    pub total_bytes: u64,
    pub available_bytes: u64,
}

/// A short, fixed-capacity device or metric name (no heap).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ShortName {
    len: u8,
    bytes: [u8; 31],
}

impl ShortName {
    /// Builds a name, truncating at 31 bytes on a char boundary.
    pub fn new(s: &str) -> Self {
        let mut end = s.len().min(31);
        while !s.is_char_boundary(end) {
            end -= 1;
        }
        let mut bytes = [0u8; 31];
        bytes[..end].copy_from_slice(&s.as_bytes()[..end]);
        ShortName {
            len: end as u8,
            bytes,
        }
    }

    /// The name as text.
    pub fn as_str(&self) -> &str {
        std::str::from_utf8(&self.bytes[..self.len as usize]).unwrap_or("")
    }
}

/// One whole disk over the last interval.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct DiskStats {
    pub name: ShortName,
    pub reads_per_s: f64,
    pub writes_per_s: f64,
    pub read_bytes_per_s: f64,
    pub write_bytes_per_s: f64,
    /// Fraction of the interval the device was busy, 0..=1.
    pub busy: f64,
    /// Average number of requests in flight.
    pub queue_depth: f64,
}

/// One network interface over the last interval.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct NetStats {
    pub name: ShortName,
    pub rx_bytes_per_s: f64,
    pub tx_bytes_per_s: f64,
    pub rx_packets_per_s: f64,
    pub tx_packets_per_s: f64,
    pub errors_per_s: f64,
    pub drops_per_s: f64,
}

/// Pressure stall information for cpu, io and memory.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct PressureStats {
    /// `some avg10` and `full avg10` in percent, per resource (cpu, io, memory).
    pub cpu_some_avg10: f64,
    pub cpu_full_avg10: f64,
    pub io_some_avg10: f64,
    pub io_full_avg10: f64,
    pub memory_some_avg10: f64,
    pub memory_full_avg10: f64,
    /// Stall time in the last interval, microseconds (delta of `total`).
    pub cpu_some_stall_us: u64,
    pub io_some_stall_us: u64,
    pub io_full_stall_us: u64,
    pub memory_some_stall_us: u64,
    pub memory_full_stall_us: u64,
}

/// One listening TCP socket's accept queue.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct AcceptQueue {
    pub port: u16,
    /// true for AF_INET6.
    pub ipv6: bool,
    /// Connections completed but not yet accepted.
    pub depth: u32,
    /// The backlog limit the socket was listened with.
    pub backlog: u32,
}

/// One configured application gauge.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct AppGauge {
    pub name: ShortName,
    pub value: f64,
}

/// Everything one tick read. Fixed size: the sampler fills it without allocating.
#[derive(Debug, Clone, Copy)]
pub struct Sample {
    /// Tick number since the sampler started (0-based); gaps are never filled.
    pub tick: u64,
    /// Monotonic time since the sampler started.
    pub mono: Duration,
    /// Wall-clock time, unix seconds.
    pub wall_unix: f64,
    /// How late this tick started against its schedule.
    pub late: Duration,
    /// How long the reads took.
    pub read_cost: Duration,
    /// Bitmask of [`SourceKind`] (by index in `SourceKind::ALL`) that delivered values this tick.
    pub valid: u8,
    pub cpu: CpuStats,
    pub memory: MemoryStats,
    pub pressure: PressureStats,
    pub disks: [DiskStats; MAX_DEVICES],
    pub disk_count: u8,
    pub nets: [NetStats; MAX_DEVICES],
    pub net_count: u8,
    pub listeners: [AcceptQueue; MAX_LISTENERS],
    pub listener_count: u8,
    /// ListenOverflows and ListenDrops in the last interval.
    pub listen_overflows: u64,
    pub listen_drops: u64,
    pub app: [AppGauge; MAX_APP_GAUGES],
    pub app_count: u8,
    /// Age of the application values, when app metrics are on and have ever been read.
    pub app_age: Option<Duration>,
}

impl Default for Sample {
    fn default() -> Self {
        Sample {
            tick: 0,
            mono: Duration::ZERO,
            wall_unix: 0.0,
            late: Duration::ZERO,
            read_cost: Duration::ZERO,
            valid: 0,
            cpu: CpuStats::default(),
            memory: MemoryStats::default(),
            pressure: PressureStats::default(),
            disks: [DiskStats::default(); MAX_DEVICES],
            disk_count: 0,
            nets: [NetStats::default(); MAX_DEVICES],
            net_count: 0,
            listeners: [AcceptQueue::default(); MAX_LISTENERS],
            listener_count: 0,
            listen_overflows: 0,
            listen_drops: 0,
            app: [AppGauge::default(); MAX_APP_GAUGES],
            app_count: 0,
            app_age: None,
        }
    }
}

impl Sample {
    /// Whether `kind` delivered values in this sample.
    pub fn has(&self, kind: SourceKind) -> bool {
        let idx = SourceKind::ALL.iter().position(|k| *k == kind).unwrap_or(0);
        self.valid & (1 << idx) != 0
    }

    /// Calls `f` with every metric this sample holds, by name, without allocating.
    /// Only sources valid in this sample are visited.
    pub fn visit(&self, mut f: impl FnMut(MetricName<'_>, f64)) {
        let host = |family| MetricName {
            family,
            instance: "",
        };
        if self.has(SourceKind::Cpu) {
            let c = &self.cpu;
            for (n, v) in [
                ("cpu.busy_cores", c.busy_cores),
                ("cpu.busy", c.busy),
                ("cpu.user", c.user),
                ("cpu.system", c.system),
                ("cpu.iowait", c.iowait),
                ("cpu.steal", c.steal),
                ("cpu.procs_running", c.procs_running as f64),
                ("cpu.procs_blocked", c.procs_blocked as f64),
                ("cpu.load1", c.load1),
            ] {
                f(host(n), v);
            }
        }
        if self.has(SourceKind::Memory) {
            f(
                host("memory.available_bytes"),
                self.memory.available_bytes as f64,
            );
            if self.memory.total_bytes > 0 {
                let used =
                    1.0 - self.memory.available_bytes as f64 / self.memory.total_bytes as f64;
                f(host("memory.used"), used);
            }
        }
        if self.has(SourceKind::Pressure) {
            let p = &self.pressure;
            for (n, v) in [
                ("psi.cpu.some_avg10", p.cpu_some_avg10),
                ("psi.io.some_avg10", p.io_some_avg10),
                ("psi.io.full_avg10", p.io_full_avg10),
                ("psi.memory.some_avg10", p.memory_some_avg10),
                ("psi.memory.full_avg10", p.memory_full_avg10),
            ] {
                f(host(n), v);
            }
        }
        if self.has(SourceKind::Disk) {
            for d in &self.disks[..self.disk_count as usize] {
                let i = d.name.as_str();
                f(
                    MetricName {
                        family: "disk.ops_per_s",
                        instance: i,
                    },
                    d.reads_per_s + d.writes_per_s,
                );
                f(
                    MetricName {
                        family: "disk.bytes_per_s",
                        instance: i,
                    },
                    d.read_bytes_per_s + d.write_bytes_per_s,
                );
                f(
                    MetricName {
                        family: "disk.busy",
                        instance: i,
                    },
                    d.busy,
                );
                f(
                    MetricName {
                        family: "disk.queue_depth",
                        instance: i,
                    },
                    d.queue_depth,
                );
            }
        }
        if self.has(SourceKind::Network) {
            for n in &self.nets[..self.net_count as usize] {
                let i = n.name.as_str();
                f(
                    MetricName {
                        family: "net.rx_bytes_per_s",
                        instance: i,
                    },
                    n.rx_bytes_per_s,
                );
                f(
                    MetricName {
                        family: "net.tx_bytes_per_s",
                        instance: i,
                    },
                    n.tx_bytes_per_s,
                );
                f(
                    MetricName {
                        family: "net.packets_per_s",
                        instance: i,
                    },
                    n.rx_packets_per_s + n.tx_packets_per_s,
                );
                f(
                    MetricName {
                        family: "net.errors_per_s",
                        instance: i,
                    },
                    n.errors_per_s,
                );
                f(
                    MetricName {
                        family: "net.drops_per_s",
                        instance: i,
                    },
                    n.drops_per_s,
                );
            }
        }
        if self.has(SourceKind::AcceptQueue) {
            let mut total = 0u64;
            for q in &self.listeners[..self.listener_count as usize] {
                total += q.depth as u64;
            }
            f(host("accept_queue.depth"), total as f64);
        }
        if self.has(SourceKind::Netstat) {
            f(host("tcp.listen_overflows"), self.listen_overflows as f64);
            f(host("tcp.listen_drops"), self.listen_drops as f64);
        }
        if self.has(SourceKind::AppMetrics) {
            for g in &self.app[..self.app_count as usize] {
                f(
                    MetricName {
                        family: "app",
                        instance: g.name.as_str(),
                    },
                    g.value,
                );
            }
        }
    }
}
