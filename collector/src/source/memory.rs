//! Memory: `MemTotal` and `MemAvailable` from `/proc/meminfo`.

use std::path::Path;

use super::{ProcFile, SourceError};
use crate::parse::{fields, lines, parse_u64};
use crate::sample::MemoryStats;

/// Parses `/proc/meminfo`, stopping as soon as both lines are found.
pub(crate) fn parse_meminfo(buf: &[u8]) -> Result<MemoryStats, &'static str> {
    let (mut total, mut avail) = (None, None);
    for line in lines(buf) {
        let mut f = fields(line);
        let key = f.next();
        let slot = match key {
            Some(b"MemTotal:") => &mut total,
            Some(b"MemAvailable:") => &mut avail,
            _ => continue,
        };
        let kib = f.next().and_then(parse_u64).ok_or("bad number")?;
        let unit = f.next();
        if unit.is_some_and(|u| u != b"kB") {
            return Err("unexpected unit");
        }
        *slot = Some(kib.checked_mul(1024).ok_or("value too large")?);
        if total.is_some() && avail.is_some() {
            break;
        }
    }
    let total_bytes = total.ok_or("no MemTotal")?;
    let available_bytes = avail.ok_or("no MemAvailable")?;
    Ok(MemoryStats {
        total_bytes,
        available_bytes,
    })
}

/// Reads `/proc/meminfo`.
#[derive(Debug)]
pub(crate) struct MemorySource {
    meminfo: ProcFile,
}

impl MemorySource {
    pub(crate) fn new(proc_root: &Path) -> Self {
        MemorySource {
            meminfo: ProcFile::new(proc_root, "meminfo"),
        }
    }

    pub(crate) fn reopen(&mut self) {
        self.meminfo.close();
    }

    pub(crate) fn read(&mut self, out: &mut MemoryStats) -> Result<bool, SourceError> {
        *out = self.meminfo.parse(parse_meminfo)?;
        Ok(true)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    const MEMINFO: &[u8] = include_bytes!("../../tests/fixtures/proc/meminfo");

    #[test]
    fn real_meminfo() {
        let m = parse_meminfo(MEMINFO).unwrap();
        assert_eq!(m.total_bytes, 24_684_092 * 1024);
        assert!(m.available_bytes > 0 && m.available_bytes <= m.total_bytes);
    }

    #[test]
    fn broken_inputs() {
        assert!(parse_meminfo(b"").is_err());
        assert!(parse_meminfo(b"MemTotal: 10 kB\n").is_err());
        assert!(parse_meminfo(b"MemTotal: x kB\nMemAvailable: 1 kB\n").is_err());
        assert!(parse_meminfo(b"MemTotal: 99999999999999999 kB\nMemAvailable: 1 kB\n").is_err());
        assert!(parse_meminfo(&MEMINFO[..40]).is_err());
    }

    proptest! {
        #[test]
        fn never_panics(data in proptest::collection::vec(any::<u8>(), 0..512)) {
            let _ = parse_meminfo(&data);
        }
    }
}
