//! Pressure stall information from `/proc/pressure/{cpu,io,memory}`: `avg10` and the stall time
//! between two reads per second of that time (the delta of `total`, in microseconds, over the
//! seconds between the reads): a read late by a tick, or a longer sampling interval, does not
//! scale the figure.

use std::path::Path;
use std::time::Instant;

use super::{ProcFile, SourceError, seconds};
use crate::parse::{counter_delta, key_value, lines, parse_f64, parse_u64};
use crate::sample::PressureStats;

/// One resource's `some` and `full` lines.
#[derive(Debug, Default, Clone, Copy, PartialEq)]
pub(crate) struct PsiLines {
    pub(crate) some_avg10: f64,
    pub(crate) some_total: u64,
    pub(crate) full_avg10: f64,
    pub(crate) full_total: u64,
}

/// Parses one pressure file. `some` is required; `full` is absent for cpu on older kernels and
/// then reads as zero.
pub(crate) fn parse_psi(buf: &[u8]) -> Result<PsiLines, &'static str> {
    let mut out = PsiLines::default();
    let mut have_some = false;
    for line in lines(buf) {
        let (avg, total) = if line.starts_with(b"some ") {
            have_some = true;
            (&mut out.some_avg10, &mut out.some_total)
        } else if line.starts_with(b"full ") {
            (&mut out.full_avg10, &mut out.full_total)
        } else {
            continue;
        };
        let a = key_value(line, b"avg10")
            .and_then(parse_f64)
            .ok_or("bad avg10")?;
        if !(0.0..=100.0).contains(&a) {
            return Err("avg10 out of range");
        }
        *avg = a;
        *total = key_value(line, b"total")
            .and_then(parse_u64)
            .ok_or("bad total")?;
    }
    if !have_some {
        return Err("no some line");
    }
    Ok(out)
}

/// Reads the three pressure files, keeping the last totals.
#[derive(Debug)]
pub(crate) struct PressureSource {
    files: [ProcFile; 3],
    /// The last read's lines and when it was.
    prev: Option<([PsiLines; 3], Instant)>,
}

impl PressureSource {
    pub(crate) fn new(proc_root: &Path) -> Self {
        PressureSource {
            files: [
                ProcFile::new(proc_root, "pressure/cpu"),
                ProcFile::new(proc_root, "pressure/io"),
                ProcFile::new(proc_root, "pressure/memory"),
            ],
            prev: None,
        }
    }

    pub(crate) fn reopen(&mut self) {
        for f in &mut self.files {
            f.close();
        }
        self.prev = None;
    }

    /// `Ok(true)` once two reads give stall rates; a total that went back reads as no stall.
    pub(crate) fn read(
        &mut self,
        now: Instant,
        out: &mut PressureStats,
    ) -> Result<bool, SourceError> {
        let mut cur = [PsiLines::default(); 3];
        for (slot, file) in cur.iter_mut().zip(&mut self.files) {
            *slot = file.parse(parse_psi)?;
        }
        let [c, i, m] = cur;
        out.cpu_some_avg10 = c.some_avg10;
        out.cpu_full_avg10 = c.full_avg10;
        out.io_some_avg10 = i.some_avg10;
        out.io_full_avg10 = i.full_avg10;
        out.memory_some_avg10 = m.some_avg10;
        out.memory_full_avg10 = m.full_avg10;
        let prev = self.prev.replace((cur, now));
        let Some(([pc, pi, pm], then)) = prev else {
            return Ok(false);
        };
        let dt = seconds(then, now);
        let per_s = |p: u64, c: u64| counter_delta(p, c).unwrap_or(0) as f64 / dt;
        out.cpu_some_stall_us_per_s = per_s(pc.some_total, c.some_total);
        out.io_some_stall_us_per_s = per_s(pi.some_total, i.some_total);
        out.io_full_stall_us_per_s = per_s(pi.full_total, i.full_total);
        out.memory_some_stall_us_per_s = per_s(pm.some_total, m.some_total);
        out.memory_full_stall_us_per_s = per_s(pm.full_total, m.full_total);
        Ok(true)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn real_pressure_files() {
        let io = parse_psi(include_bytes!("../../tests/fixtures/proc/pressure/io")).unwrap();
        assert!(io.some_total >= io.full_total);
        let cpu = parse_psi(include_bytes!("../../tests/fixtures/proc/pressure/cpu")).unwrap();
        assert!(cpu.some_total > 0);
        let later = parse_psi(include_bytes!(
            "../../tests/fixtures/proc-later/pressure/cpu"
        ))
        .unwrap();
        assert!(later.some_total >= cpu.some_total);
    }

    /// The stall is per second of the time between the reads: a read two seconds after the
    /// last (a late tick, a longer interval) reads the same for the same pressure.
    #[test]
    fn stall_is_per_second_between_reads() {
        let root = tempfile::tempdir().unwrap();
        std::fs::create_dir(root.path().join("pressure")).unwrap();
        let write = |total: u64| {
            for f in ["cpu", "io", "memory"] {
                std::fs::write(
                    root.path().join("pressure").join(f),
                    format!(
                        "some avg10=1.00 avg60=0.00 avg300=0.00 total={total}\n\
                         full avg10=0.00 avg60=0.00 avg300=0.00 total={}\n",
                        total / 2
                    ),
                )
                .unwrap();
            }
        };
        let mut source = PressureSource::new(root.path());
        let mut out = PressureStats::default();
        let t0 = Instant::now();
        write(1_000);
        assert!(!source.read(t0, &mut out).unwrap());
        write(1_001_000);
        let t1 = t0 + std::time::Duration::from_secs(2);
        assert!(source.read(t1, &mut out).unwrap());
        assert_eq!(out.cpu_some_stall_us_per_s, 500_000.0);
        assert_eq!(out.io_full_stall_us_per_s, 250_000.0);
        assert_eq!(out.memory_some_stall_us_per_s, 500_000.0);
    }

    #[test]
    fn cpu_without_full_line() {
        let p = parse_psi(b"some avg10=1.50 avg60=0.00 avg300=0.00 total=42\n").unwrap();
        assert_eq!(p.some_total, 42);
        assert_eq!(p.some_avg10, 1.5);
        assert_eq!(p.full_total, 0);
    }

    #[test]
    fn broken_inputs() {
        assert!(parse_psi(b"").is_err());
        assert!(parse_psi(b"some avg10=x total=1\n").is_err());
        assert!(parse_psi(b"some avg10=1.0 avg60=0.0\n").is_err());
        assert!(parse_psi(b"some avg10=1e9 total=1\n").is_err());
        assert!(parse_psi(b"full avg10=1.0 total=1\n").is_err());
    }

    proptest! {
        #[test]
        fn never_panics(data in proptest::collection::vec(any::<u8>(), 0..256)) {
            let _ = parse_psi(&data);
        }
    }
}
