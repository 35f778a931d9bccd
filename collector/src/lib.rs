//! Host signals for headroom: Linux sources read into a fixed-size [`Sample`] every tick by a
//! sampler thread, and carried to the consumer through a lock-free ring.
//!
//! # Sources
//! | source | read from | how |
//! |---|---|---|
//! | CPU, run queue, load | `/proc/stat`, `/proc/loadavg` | hand-parsed |
//! | memory | `/proc/meminfo` | hand-parsed |
//! | disks | `/proc/diskstats` (+ `/sys/block` once per new device) | hand-parsed |
//! | network | `/proc/net/dev` | hand-parsed |
//! | PSI | `/proc/pressure/{cpu,io,memory}` | hand-parsed |
//! | accept queues | NETLINK_SOCK_DIAG (fallback `/proc/net/tcp{,6}`) | request built, reply walked by hand |
//! | listen overflows/drops | `/proc/net/netstat` | hand-parsed |
//! | application gauges | one loopback Prometheus endpoint, own thread ([`ureq`]) | hand-parsed text |
//!
//! Every file is opened once, kept open, and re-read from offset 0 with `pread`
//! (`FileExt::read_at`) into a buffer reused across ticks; parsers scan the bytes in place
//! (no `String`, no per-line allocation), so a tick in steady state allocates nothing (a test
//! with a counting allocator checks it). Why by hand: `sysinfo` and `procfs` return owned
//! collections and re-open or re-allocate on each refresh, which is a heap allocation storm at
//! one sample per second for the life of the host; and neither exposes accept queues or PSI
//! stall deltas. `benches/benches/sample.rs` measures a sample against `sysinfo`'s refresh of
//! the same signals. [`Collector`] counts CPUs from `/proc/stat` each tick, which also follows
//! CPU hotplug.
//!
//! Every parser returns an error instead of panicking on any input (property tests feed each
//! arbitrary bytes). A missing or unparsable file disables its source with one warning; the
//! state is visible through [`SamplerStats::source_states`], the source is retried every
//! [`SamplerConfig::retry_interval`] and comes back by itself. Counters that go backwards
//! (reset, wrap, device replaced) yield no rate for that interval rather than a huge one.
//!
//! # Ring
//! See [`mod@ring`]: rtrb SPSC; when full the newest sample is dropped and counted.

#![warn(missing_docs)]

pub mod collector;
pub mod config;
pub mod ring;
pub mod sample;
pub mod sampler;
pub mod source;

mod parse;

#[cfg(feature = "fuzzing")]
#[doc(hidden)]
pub mod fuzz;

pub use collector::Collector;
pub use config::SamplerConfig;
pub use ring::{SampleSender, ring};
pub use sample::{
    AcceptQueue, AcceptTotals, AppGauge, CpuStats, DiskStats, MemoryStats, MetricName, NetStats,
    PressureStats, Sample, ShortName, SourceKind, SourceState,
};
pub use sampler::{SampleReceiver, Sampler, SamplerHandle, SamplerStats};
pub use source::SourceError;
pub use source::accept_queue::SockDiagSocket;
pub use source::app_metrics::is_loopback_http;
pub use source::cpu::online_cpus;
