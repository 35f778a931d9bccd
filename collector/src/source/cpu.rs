//! CPU: per-mode time from `/proc/stat` (as deltas), run queue, and `/proc/loadavg`.

use std::path::Path;
use std::time::Instant;

use super::{ProcFile, SourceError};
use crate::parse::{counter_delta, fields, lines, parse_f64, parse_u32, parse_u64};
use crate::sample::CpuStats;

/// Cumulative jiffies of the aggregate `cpu` line, per mode.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub(crate) struct CpuTimes {
    pub(crate) user: u64,
    pub(crate) nice: u64,
    pub(crate) system: u64,
    pub(crate) idle: u64,
    pub(crate) iowait: u64,
    pub(crate) irq: u64,
    pub(crate) softirq: u64,
    pub(crate) steal: u64,
}

impl CpuTimes {
    fn as_array(&self) -> [u64; 8] {
        [
            self.user,
            self.nice,
            self.system,
            self.idle,
            self.iowait,
            self.irq,
            self.softirq,
            self.steal,
        ]
    }
}

/// What one read of `/proc/stat` yields.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub(crate) struct StatSnapshot {
    pub(crate) times: CpuTimes,
    /// Number of `cpuN` lines: the online CPUs.
    pub(crate) cores: u32,
    pub(crate) procs_running: u32,
    pub(crate) procs_blocked: u32,
}

/// Parses `/proc/stat`: the aggregate `cpu` line (guest time is already inside user/nice),
/// the per-CPU line count, `procs_running` and `procs_blocked`.
pub(crate) fn parse_stat(buf: &[u8]) -> Result<StatSnapshot, &'static str> {
    let mut snap = StatSnapshot::default();
    let mut have_cpu = false;
    let mut have_running = false;
    for line in lines(buf) {
        let mut f = fields(line);
        let Some(key) = f.next() else { continue };
        if key == b"cpu" {
            let mut v = [0u64; 8];
            let mut n = 0;
            for (slot, field) in v.iter_mut().zip(&mut f) {
                *slot = parse_u64(field).ok_or("bad number on the cpu line")?;
                n += 1;
            }
            if n < 4 {
                return Err("cpu line too short");
            }
            snap.times = CpuTimes {
                user: v[0],
                nice: v[1],
                system: v[2],
                idle: v[3],
                iowait: v[4],
                irq: v[5],
                softirq: v[6],
                steal: v[7],
            };
            have_cpu = true;
        } else if key.len() > 3
            && key.starts_with(b"cpu")
            && key[3..].iter().all(u8::is_ascii_digit)
        {
            snap.cores = snap.cores.saturating_add(1);
        } else if key == b"procs_running" {
            snap.procs_running = f.next().and_then(parse_u32).ok_or("bad procs_running")?;
            have_running = true;
        } else if key == b"procs_blocked" {
            snap.procs_blocked = f.next().and_then(parse_u32).ok_or("bad procs_blocked")?;
        }
    }
    if !have_cpu {
        return Err("no cpu line");
    }
    if !have_running {
        return Err("no procs_running line");
    }
    Ok(snap)
}

/// The online CPUs `/proc/stat` under `proc_root` lists: the scale `busy_cores` is measured on,
/// the whole host's whatever this process's CPU affinity or cgroup quota (which
/// `std::thread::available_parallelism` counts instead). None when the file is unreadable or
/// lists none.
pub fn online_cpus(proc_root: &Path) -> Option<u32> {
    let buf = std::fs::read(proc_root.join("stat")).ok()?;
    parse_stat(&buf).ok().map(|s| s.cores).filter(|&n| n > 0)
}

/// Parses `/proc/loadavg`: the 1, 5 and 15 minute load averages.
pub(crate) fn parse_loadavg(buf: &[u8]) -> Result<[f64; 3], &'static str> {
    let mut f = fields(buf);
    let mut out = [0.0; 3];
    for slot in &mut out {
        let v = f.next().and_then(parse_f64).ok_or("bad load average")?;
        if !v.is_finite() || v < 0.0 {
            return Err("bad load average");
        }
        *slot = v;
    }
    Ok(out)
}

/// What two snapshots of the `cpu` line say.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Delta {
    /// The fractions were filled.
    Fractions,
    /// No clock tick passed between them: nothing new to say.
    NoTime,
    /// They do not follow one another: a counter went back (a reset), idle and iowait together
    /// went back, or the deltas overflow (garbage). Start over from the newer one.
    Reset,
}

/// Fills the per-mode fractions of `out` from two snapshots, when they give any.
///
/// Idle and iowait are the exception to "a counter that went back is a reset": the kernel
/// documents that iowait can decrease, and both are estimated on tickless CPUs, so one of them
/// stepping back counts as no time in that mode, rather than as a reset (which would leave the
/// CPU sample, the default demand, with a gap). Their sum going back is a reset all the same:
/// counted as no idle time it would read as a fully busy host, saturated, and scale the group
/// out (taking a CPU offline can do it, as its idle time switches accounting).
pub(crate) fn fill_fractions(prev: &CpuTimes, cur: &CpuTimes, out: &mut CpuStats) -> Delta {
    const IDLE: usize = 3;
    const IOWAIT: usize = 4;
    let (p, c) = (prev.as_array(), cur.as_array());
    if u128::from(c[IDLE]) + u128::from(c[IOWAIT]) < u128::from(p[IDLE]) + u128::from(p[IOWAIT]) {
        return Delta::Reset;
    }
    let mut d = [0u64; 8];
    for i in 0..8 {
        d[i] = match i {
            IDLE | IOWAIT => c[i].saturating_sub(p[i]),
            _ => match counter_delta(p[i], c[i]) {
                Some(x) => x,
                None => return Delta::Reset,
            },
        };
    }
    let Some(total) = d.iter().try_fold(0u64, |a, &x| a.checked_add(x)) else {
        return Delta::Reset;
    };
    if total == 0 {
        return Delta::NoTime;
    }
    let t = total as f64;
    let frac = |x: u64| x as f64 / t;
    out.user = frac(d[0]);
    out.nice = frac(d[1]);
    out.system = frac(d[2]);
    out.iowait = frac(d[4]);
    out.irq = frac(d[5]);
    out.softirq = frac(d[6]);
    out.steal = frac(d[7]);
    out.busy = 1.0 - frac(d[3].saturating_add(d[4]).min(total));
    out.busy_cores = out.busy * f64::from(out.cores);
    Delta::Fractions
}

/// Reads `stat` and `loadavg`, keeping the last snapshot for deltas.
#[derive(Debug)]
pub(crate) struct CpuSource {
    stat: ProcFile,
    loadavg: ProcFile,
    prev: Option<CpuTimes>,
    /// Whether `last` holds fractions from a delta (before one, there is nothing to repeat).
    measured: bool,
    last: CpuStats,
}

impl CpuSource {
    pub(crate) fn new(proc_root: &Path) -> Self {
        CpuSource {
            stat: ProcFile::new(proc_root, "stat"),
            loadavg: ProcFile::new(proc_root, "loadavg"),
            prev: None,
            measured: false,
            last: CpuStats::default(),
        }
    }

    pub(crate) fn reopen(&mut self) {
        self.stat.close();
        self.loadavg.close();
        self.prev = None;
        self.measured = false;
    }

    /// Reads both files; `Ok(true)` once two snapshots give deltas. When less than one clock
    /// tick passed, the previous fractions are repeated and the snapshot is kept for later.
    pub(crate) fn read(&mut self, _now: Instant, out: &mut CpuStats) -> Result<bool, SourceError> {
        let snap = self.stat.parse(parse_stat)?;
        let load = self.loadavg.parse(parse_loadavg)?;
        let mut stats = self.last;
        stats.cores = snap.cores.max(1);
        stats.procs_running = snap.procs_running;
        stats.procs_blocked = snap.procs_blocked;
        [stats.load1, stats.load5, stats.load15] = load;
        let valid = match self
            .prev
            .map(|prev| fill_fractions(&prev, &snap.times, &mut stats))
        {
            Some(Delta::Fractions) => {
                self.prev = Some(snap.times);
                self.measured = true;
                true
            }
            // The first snapshot, or one that does not follow the last: start from it.
            None | Some(Delta::Reset) => {
                self.prev = Some(snap.times);
                false
            }
            Some(Delta::NoTime) => self.measured,
        };
        stats.busy_cores = stats.busy * f64::from(stats.cores);
        self.last = stats;
        *out = stats;
        Ok(valid)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    const STAT: &[u8] = include_bytes!("../../tests/fixtures/proc/stat");
    const STAT_LATER: &[u8] = include_bytes!("../../tests/fixtures/proc-later/stat");

    #[test]
    fn real_stat() {
        let s = parse_stat(STAT).unwrap();
        assert_eq!(s.cores, 2);
        assert_eq!(s.times.user, 14449);
        assert_eq!(s.times.system, 4668);
        assert_eq!(s.times.steal, 12);
        assert!(s.procs_running >= 1);
        let later = parse_stat(STAT_LATER).unwrap();
        let mut out = CpuStats {
            cores: 2,
            ..Default::default()
        };
        assert_eq!(
            fill_fractions(&s.times, &later.times, &mut out),
            Delta::Fractions
        );
        // iowait is idle time: it is a mode fraction but not busy.
        let sum = out.user + out.nice + out.system + out.irq + out.softirq + out.steal;
        assert!(
            (out.busy - (sum)).abs() < 1e-9,
            "busy {} vs modes {}",
            out.busy,
            sum
        );
        assert!(out.busy > 0.5 && out.busy <= 1.0, "{}", out.busy);
        assert!((out.busy_cores - out.busy * 2.0).abs() < 1e-9);
    }

    #[test]
    fn real_loadavg() {
        let l = parse_loadavg(include_bytes!("../../tests/fixtures/proc/loadavg")).unwrap();
        assert!(l.iter().all(|v| *v >= 0.0));
    }

    #[test]
    fn reset_gives_no_fractions() {
        let prev = CpuTimes {
            user: 100,
            idle: 100,
            ..Default::default()
        };
        let cur = CpuTimes {
            user: 50,
            idle: 200,
            ..Default::default()
        };
        let mut out = CpuStats::default();
        assert_eq!(fill_fractions(&prev, &cur, &mut out), Delta::Reset);
        assert_eq!(out, CpuStats::default());
    }

    /// One of idle and iowait stepping back is no reset; both going back together (a CPU
    /// taken offline) is one, not a fully busy host; deltas that overflow are garbage, not a
    /// reason to stop updating.
    #[test]
    fn idle_or_iowait_stepping_back_alone_is_no_reset() {
        let times = |user, idle, iowait| CpuTimes {
            user,
            idle,
            iowait,
            ..Default::default()
        };
        let prev = times(100, 1000, 50);
        let mut out = CpuStats {
            cores: 2,
            ..CpuStats::default()
        };
        assert_eq!(
            fill_fractions(&prev, &times(150, 1050, 48), &mut out),
            Delta::Fractions
        );
        assert_eq!((out.user, out.iowait, out.busy), (0.5, 0.0, 0.5));
        assert_eq!(out.busy_cores, 1.0);
        let mut out = CpuStats::default();
        assert_eq!(
            fill_fractions(&prev, &times(150, 900, 60), &mut out),
            Delta::Reset
        );
        assert_eq!(out.busy, 0.0);
        let huge = CpuTimes {
            user: u64::MAX / 2 + 200,
            system: u64::MAX / 2 + 200,
            idle: 1000,
            ..Default::default()
        };
        assert_eq!(fill_fractions(&prev, &huge, &mut out), Delta::Reset);
    }

    /// A reset, or an overflow, starts over from the new snapshot, so the source recovers at
    /// the next read; standing still repeats the last measured figures, and nothing before
    /// there are any.
    #[test]
    fn a_reset_starts_over_and_standing_still_repeats_only_what_was_measured() {
        let dir = tempfile::tempdir().unwrap();
        let write = |user: u64, idle: u64| {
            std::fs::write(
                dir.path().join("stat"),
                format!("cpu {user} 0 0 {idle} 0 0 0 0\ncpu0 {user} 0 0 {idle} 0 0 0 0\nprocs_running 1\nprocs_blocked 0\n"),
            )
            .unwrap();
        };
        std::fs::write(dir.path().join("loadavg"), "0.5 0.4 0.3 1/100 42\n").unwrap();
        let mut src = CpuSource::new(dir.path());
        let mut out = CpuStats::default();
        let now = Instant::now();
        write(100, 100);
        assert!(!src.read(now, &mut out).unwrap());
        assert!(!src.read(now, &mut out).unwrap(), "nothing measured yet");
        write(150, 150);
        assert!(src.read(now, &mut out).unwrap());
        assert_eq!(out.busy, 0.5);
        // Idle goes back: a reset, not 100% busy.
        write(200, 120);
        assert!(!src.read(now, &mut out).unwrap());
        assert_eq!(out.busy, 0.5, "the last good figures, marked not valid");
        write(300, 140);
        assert!(src.read(now, &mut out).unwrap());
        assert!((out.busy - 100.0 / 120.0).abs() < 1e-12, "{}", out.busy);
        assert!(src.read(now, &mut out).unwrap(), "standing still repeats");
        // Garbage that overflows: a reset too, and the next read measures from it.
        write(u64::MAX - 10, u64::MAX - 10);
        assert!(!src.read(now, &mut out).unwrap());
        write(u64::MAX - 5, u64::MAX - 5);
        assert!(src.read(now, &mut out).unwrap());
        assert_eq!(out.busy, 0.5);
    }

    #[test]
    fn broken_inputs() {
        assert!(parse_stat(b"").is_err());
        assert!(parse_stat(b"cpu 1 2\nprocs_running 1\n").is_err());
        assert!(parse_stat(b"cpu 1 2 3 x\nprocs_running 1\n").is_err());
        assert!(parse_stat(b"cpu 1 2 3 4\n").is_err());
        assert!(parse_stat(&STAT[..STAT.len() / 3]).is_err());
        assert!(parse_loadavg(b"0.1 0.2").is_err());
        assert!(parse_loadavg(b"0.1 nan 0.3").is_err());
    }

    proptest! {
        #[test]
        fn never_panics(data in proptest::collection::vec(any::<u8>(), 0..512)) {
            let _ = parse_stat(&data);
            let _ = parse_loadavg(&data);
        }

        #[test]
        fn fractions_stay_in_range(a in proptest::array::uniform8(0u64..1 << 40),
                                   b in proptest::array::uniform8(0u64..1 << 40)) {
            let t = |v: [u64; 8]| CpuTimes { user: v[0], nice: v[1], system: v[2], idle: v[3],
                iowait: v[4], irq: v[5], softirq: v[6], steal: v[7] };
            let mut out = CpuStats { cores: 4, ..Default::default() };
            if fill_fractions(&t(a), &t(b), &mut out) == Delta::Fractions {
                prop_assert!((0.0..=1.0).contains(&out.busy));
                prop_assert!((0.0..=4.0).contains(&out.busy_cores));
            }
        }
    }
}
