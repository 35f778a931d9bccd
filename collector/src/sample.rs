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

    /// Position in [`SourceKind::ALL`], which is also the bit in [`Sample::valid`].
    pub fn index(self) -> usize {
        self as usize
    }

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
    Disabled {
        /// The file or endpoint and what went wrong.
        reason: String,
    },
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
    /// Fraction of CPU time at low priority (nice).
    pub nice: f64,
    /// Fraction of CPU time in the kernel.
    pub system: f64,
    /// Fraction of CPU time idle with I/O outstanding (not counted as busy).
    pub iowait: f64,
    /// Fraction of CPU time serving hardware interrupts.
    pub irq: f64,
    /// Fraction of CPU time serving soft interrupts.
    pub softirq: f64,
    /// Fraction of CPU time stolen by the hypervisor.
    pub steal: f64,
    /// `procs_running` and `procs_blocked` from /proc/stat.
    pub procs_running: u32,
    /// Tasks blocked on I/O (`procs_blocked`).
    pub procs_blocked: u32,
    /// Load averages from /proc/loadavg.
    pub load1: f64,
    /// 5-minute load average.
    pub load5: f64,
    /// 15-minute load average.
    pub load15: f64,
}

/// Memory figures.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct MemoryStats {
    /// `MemTotal`, bytes.
    pub total_bytes: u64,
    /// `MemAvailable`, bytes: what can be allocated without swapping.
    pub available_bytes: u64,
}

/// Longest [`ShortName`], bytes; a longer one is cut.
pub const SHORT_NAME_MAX: usize = 31;

/// A short, fixed-capacity device or metric name (no heap).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ShortName {
    len: u8,
    bytes: [u8; SHORT_NAME_MAX],
}

impl ShortName {
    /// Builds a name, truncating at [`SHORT_NAME_MAX`] bytes on a char boundary.
    pub fn new(s: &str) -> Self {
        let mut end = s.len().min(SHORT_NAME_MAX);
        while !s.is_char_boundary(end) {
            end -= 1;
        }
        let mut bytes = [0u8; SHORT_NAME_MAX];
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
    /// Device, interface or gauge name.
    pub name: ShortName,
    /// Completed reads per second.
    pub reads_per_s: f64,
    /// Completed writes per second.
    pub writes_per_s: f64,
    /// Bytes read per second.
    pub read_bytes_per_s: f64,
    /// Bytes written per second.
    pub write_bytes_per_s: f64,
    /// Fraction of the interval the device was busy, 0..=1.
    pub busy: f64,
    /// Average number of requests in flight.
    pub queue_depth: f64,
}

/// One network interface over the last interval.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct NetStats {
    /// Device, interface or gauge name.
    pub name: ShortName,
    /// Bytes received per second.
    pub rx_bytes_per_s: f64,
    /// Bytes sent per second.
    pub tx_bytes_per_s: f64,
    /// Packets received per second.
    pub rx_packets_per_s: f64,
    /// Packets sent per second.
    pub tx_packets_per_s: f64,
    /// Receive plus transmit errors per second.
    pub errors_per_s: f64,
    /// Receive plus transmit drops per second.
    pub drops_per_s: f64,
}

/// Pressure stall information for cpu, io and memory.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct PressureStats {
    /// `some avg10` and `full avg10` in percent, per resource (cpu, io, memory).
    pub cpu_some_avg10: f64,
    /// cpu `full avg10` (0 on kernels without it).
    pub cpu_full_avg10: f64,
    /// io `some avg10`.
    pub io_some_avg10: f64,
    /// io `full avg10`.
    pub io_full_avg10: f64,
    /// memory `some avg10`.
    pub memory_some_avg10: f64,
    /// memory `full avg10`.
    pub memory_full_avg10: f64,
    /// cpu `some` stall since the last read, microseconds per second (delta of `total` over
    /// the seconds between the reads: 1e6 is stalled all the time).
    pub cpu_some_stall_us_per_s: f64,
    /// io `some` stall, microseconds per second.
    pub io_some_stall_us_per_s: f64,
    /// io `full` stall, microseconds per second.
    pub io_full_stall_us_per_s: f64,
    /// memory `some` stall, microseconds per second.
    pub memory_some_stall_us_per_s: f64,
    /// memory `full` stall, microseconds per second.
    pub memory_full_stall_us_per_s: f64,
}

/// One listening TCP socket's accept queue.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct AcceptQueue {
    /// Local port.
    pub port: u16,
    /// true for AF_INET6.
    pub ipv6: bool,
    /// Connections completed but not yet accepted.
    pub depth: u32,
    /// The backlog limit the socket was listened with.
    pub backlog: u32,
}

/// Every listening TCP socket of the host, including those beyond the per-port table: what
/// the host-wide accept-queue metrics are computed from.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct AcceptTotals {
    /// Listeners seen: the table's (port, family) groups, plus each socket that did not fit
    /// (so more than `listener_count` once the table is full).
    pub listeners: u32,
    /// Connections completed but not yet accepted, summed over every listener.
    pub depth: u64,
    /// The fullest accept queue's depth over its backlog (0 where backlogs are unknown).
    pub max_fill: f64,
}

/// One configured application gauge.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct AppGauge {
    /// Device, interface or gauge name.
    pub name: ShortName,
    /// Latest value (summed over series when the name has no labels).
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
    /// CPU, run queue and load.
    pub cpu: CpuStats,
    /// Memory.
    pub memory: MemoryStats,
    /// Pressure stall information.
    pub pressure: PressureStats,
    /// Whole disks; the first `disk_count` are set.
    pub disks: [DiskStats; MAX_DEVICES],
    /// Number of valid entries in `disks`.
    pub disk_count: u8,
    /// Network interfaces; the first `net_count` are set.
    pub nets: [NetStats; MAX_DEVICES],
    /// Number of valid entries in `nets`.
    pub net_count: u8,
    /// Listening TCP sockets per (port, family); the first `listener_count` are set.
    pub listeners: [AcceptQueue; MAX_LISTENERS],
    /// Number of valid entries in `listeners`.
    pub listener_count: u8,
    /// Every listener's queue, the ones past [`MAX_LISTENERS`] included.
    pub accept_totals: AcceptTotals,
    /// ListenOverflows and ListenDrops in the last interval.
    pub listen_overflows: u64,
    /// ListenDrops in the last interval.
    pub listen_drops: u64,
    /// Application gauges found in the last read; the first `app_count` are set.
    pub app: [AppGauge; MAX_APP_GAUGES],
    /// Number of valid entries in `app`.
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
            accept_totals: AcceptTotals::default(),
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
        self.valid & (1 << kind.index()) != 0
    }

    /// Whether `name` is a metric a sample can hold: a host's by its name (`cpu.busy_cores`),
    /// a device's, an interface's or an application gauge's by its family and instance
    /// (`disk.busy.sda`, `app.requests`; which instances exist is known only when sampled).
    /// Read from [`Sample::visit`] itself, so it cannot drift from what is sampled.
    pub fn names_a_metric(name: &str) -> bool {
        let instance = ShortName::new("probe");
        let mut probe = Sample {
            valid: u8::MAX,
            disk_count: 1,
            net_count: 1,
            app_count: 1,
            ..Sample::default()
        };
        probe.memory.total_bytes = 1;
        probe.disks[0].name = instance;
        probe.nets[0].name = instance;
        probe.app[0].name = instance;
        let mut known = false;
        probe.visit(|m, _| {
            known |= match name.strip_prefix(m.family) {
                Some("") => m.instance.is_empty(),
                Some(rest) => !m.instance.is_empty() && rest.len() > 1 && rest.starts_with('.'),
                None => false,
            };
        });
        known
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
                ("psi.cpu.some_stall_us_per_s", p.cpu_some_stall_us_per_s),
                ("psi.io.some_stall_us_per_s", p.io_some_stall_us_per_s),
                ("psi.io.full_stall_us_per_s", p.io_full_stall_us_per_s),
                (
                    "psi.memory.some_stall_us_per_s",
                    p.memory_some_stall_us_per_s,
                ),
                (
                    "psi.memory.full_stall_us_per_s",
                    p.memory_full_stall_us_per_s,
                ),
            ] {
                f(host(n), v);
            }
        }
        if self.has(SourceKind::Disk) {
            for d in &self.disks[..(self.disk_count as usize).min(MAX_DEVICES)] {
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
            for n in &self.nets[..(self.net_count as usize).min(MAX_DEVICES)] {
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
            f(host("accept_queue.depth"), self.accept_totals.depth as f64);
            f(host("accept_queue.max_fill"), self.accept_totals.max_fill);
        }
        if self.has(SourceKind::Netstat) {
            f(host("tcp.listen_overflows"), self.listen_overflows as f64);
            f(host("tcp.listen_drops"), self.listen_drops as f64);
        }
        if self.has(SourceKind::AppMetrics) {
            for g in &self.app[..(self.app_count as usize).min(MAX_APP_GAUGES)] {
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_metrics_a_sample_can_hold_are_named_as_visit_names_them() {
        for known in [
            "cpu.busy_cores",
            "cpu.busy",
            "memory.used",
            "psi.io.full_avg10",
            "accept_queue.depth",
            "tcp.listen_overflows",
            "disk.busy.sda",
            "net.rx_bytes_per_s.eth0",
            "app.http_requests_in_flight",
        ] {
            assert!(Sample::names_a_metric(known), "{known}");
        }
        for unknown in [
            "cpu.bussy_cores",
            "cpu.busy_cores.x",
            "cpu",
            "disk.busy",
            "disk.busy.",
            "app",
            "app.",
            "",
        ] {
            assert!(!Sample::names_a_metric(unknown), "{unknown}");
        }
    }

    #[test]
    fn visit_tolerates_any_counts_and_names() {
        let mut s = Sample {
            valid: u8::MAX,
            disk_count: u8::MAX,
            net_count: u8::MAX,
            listener_count: u8::MAX,
            app_count: u8::MAX,
            ..Sample::default()
        };
        s.listeners[0] = AcceptQueue {
            port: 80,
            ipv6: false,
            depth: 3,
            backlog: 4,
        };
        // The host-wide metrics come from the totals, which cover listeners past the table.
        s.accept_totals = AcceptTotals {
            listeners: 300,
            depth: 3,
            max_fill: 0.75,
        };
        let mut n = 0;
        let mut fill = None;
        s.visit(|m, v| {
            n += 1;
            if m.family == "accept_queue.max_fill" {
                fill = Some(v);
            }
        });
        assert!(n > 0);
        assert_eq!(fill, Some(0.75));
        assert_eq!(ShortName::new("é".repeat(20).as_str()).as_str().len(), 30);
    }

    #[test]
    fn sample_stays_small_enough_to_copy_each_tick() {
        let size = std::mem::size_of::<Sample>();
        eprintln!("Sample is {size} bytes");
        // The ring holds `capacity` of these (64 by default: about 250 KiB).
        assert!(size <= 8192, "{size}");
    }
}
