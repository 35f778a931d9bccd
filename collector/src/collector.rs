//! [`Collector`]: every source, read into one [`Sample`] on demand.

use std::path::Path;
use std::time::Instant;

use crate::config::SamplerConfig;
use crate::sample::{AcceptTotals, Sample, SourceKind, SourceState};
use crate::source::accept_queue::AcceptQueueSource;
use crate::source::app_metrics::AppSource;
use crate::source::cpu::CpuSource;
use crate::source::disk::DiskSource;
use crate::source::memory::MemorySource;
use crate::source::net::NetSource;
use crate::source::netstat::NetstatSource;
use crate::source::pressure::PressureSource;
use crate::source::{Health, SourceError};

/// A source the collector can reopen when it retries after a failure.
trait Reopen {
    fn reopen(&mut self);
}

macro_rules! reopen_impl {
    ($($t:ty),*) => {$(
        impl Reopen for $t {
            fn reopen(&mut self) {
                <$t>::reopen(self)
            }
        }
    )*};
}
reopen_impl!(
    CpuSource,
    MemorySource,
    DiskSource,
    NetSource,
    PressureSource,
    AcceptQueueSource,
    NetstatSource
);

/// Reads `src` if its health says so, recording the outcome; true when it delivered values.
fn step<S: Reopen>(
    kind: SourceKind,
    health: &mut Health,
    now: Instant,
    src: &mut S,
    read: impl FnOnce(&mut S) -> Result<bool, SourceError>,
) -> bool {
    if !health.due(now) {
        return false;
    }
    if health.retrying() {
        src.reopen();
    }
    match read(src) {
        Ok(valid) => {
            health.ok(kind.name());
            valid
        }
        Err(e) => {
            health.failed(kind.name(), &e, now);
            false
        }
    }
}

/// Every source of the host, read into a [`Sample`] on demand, without a thread.
///
/// The [`Sampler`](crate::Sampler) drives one of these on its own thread; benches and tools can
/// drive one directly. Construction opens what can be opened and primes the delta-based sources
/// with a first read, so the next sample already carries rates.
#[derive(Debug)]
pub struct Collector {
    cpu: CpuSource,
    memory: MemorySource,
    disk: DiskSource,
    net: NetSource,
    pressure: PressureSource,
    accept: AcceptQueueSource,
    netstat: NetstatSource,
    app: Option<AppSource>,
    /// Health per source, indexed by [`SourceKind::index`].
    health: [Health; 8],
}

impl Collector {
    /// Builds every source from `config` (and starts the app-metrics reader thread when an
    /// endpoint is configured). Only failing to start that thread is an error: unreadable files
    /// disable their source instead.
    pub fn new(config: &SamplerConfig) -> std::io::Result<Self> {
        let proc_root: &Path = &config.proc_root;
        let retry = config.retry_interval;
        let app = match &config.app_endpoint {
            Some(url) => Some(AppSource::spawn(
                url,
                &config.app_gauges,
                config.interval,
                config.app_timeout,
            )?),
            None => None,
        };
        let mut health = std::array::from_fn(|_| Health::new(retry));
        if app.is_none() {
            health[SourceKind::AppMetrics.index()] = Health::off();
        }
        let mut c = Collector {
            cpu: CpuSource::new(proc_root),
            memory: MemorySource::new(proc_root),
            disk: DiskSource::new(proc_root, &config.sys_root, &config.disk_skip_prefixes),
            net: NetSource::new(proc_root, config.include_loopback),
            pressure: PressureSource::new(proc_root),
            accept: AcceptQueueSource::new(proc_root, config.sock_diag),
            netstat: NetstatSource::new(proc_root),
            app,
            health,
        };
        let mut scratch = Sample::default();
        c.sample_into(&mut scratch);
        Ok(c)
    }

    /// Reads every source now into `out` (all fields but the timing ones: `tick`, `mono`,
    /// `wall_unix`, `late`, `read_cost`). Allocates nothing in steady state.
    pub fn sample_into(&mut self, out: &mut Sample) {
        self.sample_at(Instant::now(), out);
    }

    /// As [`sample_into`](Self::sample_into), with rates computed against `now`.
    pub fn sample_at(&mut self, now: Instant, out: &mut Sample) {
        let h = &mut self.health;
        let mut valid = 0u8;
        let mut set = |k: SourceKind, ok: bool| {
            if ok {
                valid |= 1 << k.index();
            }
        };
        use SourceKind as K;
        set(
            K::Cpu,
            step(K::Cpu, &mut h[K::Cpu.index()], now, &mut self.cpu, |s| {
                s.read(now, &mut out.cpu)
            }),
        );
        set(
            K::Memory,
            step(
                K::Memory,
                &mut h[K::Memory.index()],
                now,
                &mut self.memory,
                |s| s.read(&mut out.memory),
            ),
        );
        let disk_ok = step(K::Disk, &mut h[K::Disk.index()], now, &mut self.disk, |s| {
            s.read(now, &mut out.disks, &mut out.disk_count)
        });
        if !disk_ok {
            out.disk_count = 0;
        }
        set(K::Disk, disk_ok);
        let net_ok = step(
            K::Network,
            &mut h[K::Network.index()],
            now,
            &mut self.net,
            |s| s.read(now, &mut out.nets, &mut out.net_count),
        );
        if !net_ok {
            out.net_count = 0;
        }
        set(K::Network, net_ok);
        set(
            K::Pressure,
            step(
                K::Pressure,
                &mut h[K::Pressure.index()],
                now,
                &mut self.pressure,
                |s| s.read(now, &mut out.pressure),
            ),
        );
        let aq_ok = step(
            K::AcceptQueue,
            &mut h[K::AcceptQueue.index()],
            now,
            &mut self.accept,
            |s| {
                s.read(
                    &mut out.listeners,
                    &mut out.listener_count,
                    &mut out.accept_totals,
                )
            },
        );
        if !aq_ok {
            out.listener_count = 0;
            out.accept_totals = AcceptTotals::default();
        }
        set(K::AcceptQueue, aq_ok);
        set(
            K::Netstat,
            step(
                K::Netstat,
                &mut h[K::Netstat.index()],
                now,
                &mut self.netstat,
                |s| s.read(&mut out.listen_overflows, &mut out.listen_drops),
            ),
        );
        let app_ok = match &mut self.app {
            Some(app) => {
                let ah = &mut h[K::AppMetrics.index()];
                if let Some(state) = app.state_change() {
                    ah.state = state;
                    ah.changed = true;
                }
                let ok = ah.state == SourceState::Ok;
                app.read(now, ok, &mut out.app, &mut out.app_count, &mut out.app_age)
            }
            None => {
                out.app_count = 0;
                out.app_age = None;
                false
            }
        };
        set(K::AppMetrics, app_ok);
        out.valid = valid;
    }

    /// The state of every source, in [`SourceKind::ALL`] order.
    pub fn source_states(&self) -> Vec<(SourceKind, SourceState)> {
        SourceKind::ALL
            .iter()
            .map(|&k| (k, self.health[k.index()].state.clone()))
            .collect()
    }

    /// Whether any source changed state since the last call.
    pub fn take_state_changes(&mut self) -> bool {
        let mut any = false;
        for h in &mut self.health {
            any |= std::mem::take(&mut h.changed);
        }
        any
    }

    /// Whether accept queues come from sock_diag (false: the `/proc/net/tcp` fallback).
    pub fn uses_sock_diag(&self) -> bool {
        self.accept.uses_sock_diag()
    }
}
