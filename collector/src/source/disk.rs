//! Disks: per whole disk, ops/s, bytes/s, busy fraction and average queue depth from
//! `/proc/diskstats`.
//!
//! Whether a name is a whole disk is decided once per device: it is a whole disk when
//! `<sys>/block/<name>` exists (partitions live below their disk there). Without a readable
//! `<sys>/block`, name rules apply (`sda1`, `nvme0n1p2`, `mmcblk0p1` are partitions). Names with a
//! skipped prefix (`loop`, `ram`, `zram` by default) are never reported.

use std::path::{Path, PathBuf};
use std::time::Instant;

use super::devices::DeviceRates;
use super::{ProcFile, SourceError};
use crate::parse::{counter_delta, fields, lines, parse_u64};
use crate::sample::{DiskStats, MAX_DEVICES, ShortName};

/// Bytes per diskstats sector (always 512, whatever the device's block size).
const SECTOR: f64 = 512.0;

/// Cumulative counters of one device.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub(crate) struct DiskCounters {
    pub(crate) reads: u64,
    pub(crate) read_sectors: u64,
    pub(crate) writes: u64,
    pub(crate) write_sectors: u64,
    /// Milliseconds with at least one request in flight.
    pub(crate) io_ticks: u64,
    /// Milliseconds spent by all requests (sum of in-flight time).
    pub(crate) weighted_ticks: u64,
}

/// Parses one diskstats line into its device name and counters.
pub(crate) fn parse_line(line: &[u8]) -> Result<(&str, DiskCounters), &'static str> {
    let mut f = fields(line);
    let (Some(_major), Some(_minor), Some(name)) = (f.next(), f.next(), f.next()) else {
        return Err("short line");
    };
    let name = std::str::from_utf8(name).map_err(|_| "device name is not UTF-8")?;
    let mut v = [0u64; 11];
    for slot in &mut v {
        *slot = f
            .next()
            .and_then(parse_u64)
            .ok_or("bad or missing counter")?;
    }
    Ok((
        name,
        DiskCounters {
            reads: v[0],
            read_sectors: v[2],
            writes: v[4],
            write_sectors: v[6],
            io_ticks: v[9],
            weighted_ticks: v[10],
        },
    ))
}

/// Calls `f` for every device line; any malformed line fails the whole file.
pub(crate) fn parse_diskstats(
    buf: &[u8],
    mut f: impl FnMut(&str, DiskCounters),
) -> Result<(), &'static str> {
    if buf.iter().all(u8::is_ascii_whitespace) {
        return Err("empty file");
    }
    for line in lines(buf) {
        if line.iter().all(u8::is_ascii_whitespace) {
            continue;
        }
        let (name, c) = parse_line(line)?;
        f(name, c);
    }
    Ok(())
}

/// Rates of one device between two reads `dt` seconds apart; `None` on a counter reset.
pub(crate) fn rates(name: &str, p: &DiskCounters, c: &DiskCounters, dt: f64) -> Option<DiskStats> {
    let ms = dt * 1000.0;
    Some(DiskStats {
        name: ShortName::new(name),
        reads_per_s: counter_delta(p.reads, c.reads)? as f64 / dt,
        writes_per_s: counter_delta(p.writes, c.writes)? as f64 / dt,
        read_bytes_per_s: counter_delta(p.read_sectors, c.read_sectors)? as f64 * SECTOR / dt,
        write_bytes_per_s: counter_delta(p.write_sectors, c.write_sectors)? as f64 * SECTOR / dt,
        busy: (counter_delta(p.io_ticks, c.io_ticks)? as f64 / ms).clamp(0.0, 1.0),
        queue_depth: counter_delta(p.weighted_ticks, c.weighted_ticks)? as f64 / ms,
    })
}

/// Whether `name` is a partition by the common naming schemes.
pub(crate) fn looks_like_partition(name: &str) -> bool {
    let b = name.as_bytes();
    let Some(last) = b.last() else { return false };
    if !last.is_ascii_digit() {
        return false;
    }
    let classic = ["sd", "vd", "hd", "xvd"];
    if classic.iter().any(|p| name.starts_with(p)) {
        return true;
    }
    // nvme0n1p2, mmcblk0p1: a `p` between digits.
    let stem = name.trim_end_matches(|c: char| c.is_ascii_digit());
    stem.ends_with('p')
        && stem.len() > 1
        && stem.as_bytes()[stem.len() - 2].is_ascii_digit()
        && (name.starts_with("nvme") || name.starts_with("mmcblk") || name.starts_with("nbd"))
}

/// Reads `/proc/diskstats`.
#[derive(Debug)]
pub(crate) struct DiskSource {
    diskstats: ProcFile,
    sys_block: PathBuf,
    skip_prefixes: Vec<String>,
    rates: DeviceRates<DiskCounters>,
}

impl DiskSource {
    pub(crate) fn new(proc_root: &Path, sys_root: &Path, skip_prefixes: &[String]) -> Self {
        DiskSource {
            diskstats: ProcFile::new(proc_root, "diskstats"),
            sys_block: sys_root.join("block"),
            skip_prefixes: skip_prefixes.to_vec(),
            rates: DeviceRates::new(),
        }
    }

    pub(crate) fn reopen(&mut self) {
        self.diskstats.close();
        self.rates.reset();
    }

    fn whole_disk(sys_block: &Path, skip: &[String], name: &str) -> bool {
        if name.is_empty() || skip.iter().any(|p| name.starts_with(p.as_str())) {
            return false;
        }
        if sys_block.is_dir() {
            sys_block.join(name).exists()
        } else {
            !looks_like_partition(name)
        }
    }

    /// Fills `out` with up to [`MAX_DEVICES`] whole disks; `Ok(true)` once rates exist.
    pub(crate) fn read(
        &mut self,
        now: Instant,
        out: &mut [DiskStats; MAX_DEVICES],
        count: &mut u8,
    ) -> Result<bool, SourceError> {
        let (diskstats, sys_block, skip) =
            (&mut self.diskstats, &self.sys_block, &self.skip_prefixes);
        self.rates.read(
            now,
            out,
            count,
            |each| diskstats.parse(|buf| parse_diskstats(buf, each)),
            |name| Self::whole_disk(sys_block, skip, name),
            rates,
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    const DISKSTATS: &[u8] = include_bytes!("../../tests/fixtures/proc/diskstats");
    const LATER: &[u8] = include_bytes!("../../tests/fixtures/proc-later/diskstats");

    fn find(buf: &[u8], dev: &str) -> DiskCounters {
        let mut found = None;
        parse_diskstats(buf, |n, c| {
            if n == dev {
                found = Some(c);
            }
        })
        .unwrap();
        found.unwrap()
    }

    #[test]
    fn real_diskstats() {
        let mut names = Vec::new();
        parse_diskstats(DISKSTATS, |n, _| names.push(n.to_string())).unwrap();
        assert!(names.contains(&"vda".to_string()) && names.contains(&"loop0".to_string()));
        let (a, b) = (find(DISKSTATS, "vda"), find(LATER, "vda"));
        assert_eq!(a.reads, 13892);
        assert_eq!(a.read_sectors, 3735186);
        let r = rates("vda", &a, &b, 2.0).unwrap();
        assert_eq!(r.reads_per_s, (14631 - 13892) as f64 / 2.0);
        assert_eq!(r.write_bytes_per_s, (5130128.0 - 4189544.0) * 512.0 / 2.0);
        assert_eq!(r.busy, 0.302);
        assert!((r.queue_depth - (57525.0 - 33311.0) / 2000.0).abs() < 1e-9);
    }

    #[test]
    fn reset_and_busy_clamp() {
        let p = DiskCounters {
            reads: 10,
            io_ticks: 0,
            ..Default::default()
        };
        let c = DiskCounters {
            reads: 5,
            ..Default::default()
        };
        assert!(rates("x", &p, &c, 1.0).is_none());
        let c = DiskCounters {
            reads: 10,
            io_ticks: 5000,
            ..Default::default()
        };
        assert_eq!(rates("x", &p, &c, 1.0).unwrap().busy, 1.0);
    }

    #[test]
    fn partition_names() {
        for p in ["sda1", "vda2", "xvda1", "nvme0n1p1", "mmcblk0p2"] {
            assert!(looks_like_partition(p), "{p}");
        }
        for d in ["sda", "vda", "nvme0n1", "mmcblk0", "dm-0", "md0"] {
            assert!(!looks_like_partition(d), "{d}");
        }
    }

    #[test]
    fn broken_inputs() {
        assert!(parse_diskstats(b"", |_, _| ()).is_err());
        assert!(parse_diskstats(b"garbage\n", |_, _| ()).is_err());
        assert!(parse_diskstats(&DISKSTATS[..DISKSTATS.len() - 20], |_, _| ()).is_err());
        assert!(parse_diskstats(b" 8 0 sda 1 2 3 4 5 6 7 8 9 10 x\n", |_, _| ()).is_err());
    }

    proptest! {
        #[test]
        fn never_panics(data in proptest::collection::vec(any::<u8>(), 0..512)) {
            let _ = parse_diskstats(&data, |_, _| ());
        }

        #[test]
        fn names_never_panic(name in "\\PC{0,12}") {
            let _ = looks_like_partition(&name);
        }
    }
}
