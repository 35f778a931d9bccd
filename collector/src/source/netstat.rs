//! `ListenOverflows` and `ListenDrops` deltas from the `TcpExt` lines of `/proc/net/netstat`.

use std::path::Path;

use super::{ProcFile, SourceError};
use crate::parse::{counter_delta, fields, lines, parse_u64};

/// The two cumulative counters.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub(crate) struct ListenCounters {
    pub(crate) overflows: u64,
    pub(crate) drops: u64,
}

/// Finds the `TcpExt:` header line and the value line right after it, and reads the two
/// counters by column name.
pub(crate) fn parse_netstat(buf: &[u8]) -> Result<ListenCounters, &'static str> {
    let mut it = lines(buf);
    while let Some(header) = it.next() {
        if !header.starts_with(b"TcpExt:") {
            continue;
        }
        let values = it
            .next()
            .filter(|l| l.starts_with(b"TcpExt:"))
            .ok_or("no TcpExt values")?;
        let (mut overflows, mut drops) = (None, None);
        let mut vals = fields(values).skip(1);
        for name in fields(header).skip(1) {
            let v = vals.next().ok_or("fewer values than names")?;
            let slot = match name {
                b"ListenOverflows" => &mut overflows,
                b"ListenDrops" => &mut drops,
                _ => continue,
            };
            *slot = Some(parse_u64(v).ok_or("bad counter")?);
        }
        return Ok(ListenCounters {
            overflows: overflows.ok_or("no ListenOverflows")?,
            drops: drops.ok_or("no ListenDrops")?,
        });
    }
    Err("no TcpExt section")
}

/// Reads `/proc/net/netstat`, keeping the last counters.
#[derive(Debug)]
pub(crate) struct NetstatSource {
    netstat: ProcFile,
    prev: Option<ListenCounters>,
}

impl NetstatSource {
    pub(crate) fn new(proc_root: &Path) -> Self {
        NetstatSource {
            netstat: ProcFile::new(proc_root, "net/netstat"),
            prev: None,
        }
    }

    pub(crate) fn reopen(&mut self) {
        self.netstat.close();
        self.prev = None;
    }

    /// Overflow and drop deltas since the last read; `Ok(true)` once there is a previous read.
    /// A counter that went back (namespace change, reset) reads as zero for that interval.
    pub(crate) fn read(
        &mut self,
        overflows: &mut u64,
        drops: &mut u64,
    ) -> Result<bool, SourceError> {
        let cur = self.netstat.parse(parse_netstat)?;
        let Some(prev) = self.prev.replace(cur) else {
            return Ok(false);
        };
        *overflows = counter_delta(prev.overflows, cur.overflows).unwrap_or(0);
        *drops = counter_delta(prev.drops, cur.drops).unwrap_or(0);
        Ok(true)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn real_netstat() {
        let c = parse_netstat(include_bytes!("../../tests/fixtures/proc/net/netstat")).unwrap();
        assert!(c.drops >= c.overflows);
    }

    #[test]
    fn by_column_name() {
        let buf = b"TcpExt: A ListenDrops B ListenOverflows\nTcpExt: 1 7 2 5\nIpExt: X\nIpExt: 1\n";
        assert_eq!(
            parse_netstat(buf).unwrap(),
            ListenCounters {
                overflows: 5,
                drops: 7
            }
        );
    }

    #[test]
    fn broken_inputs() {
        assert!(parse_netstat(b"").is_err());
        assert!(parse_netstat(b"TcpExt: ListenOverflows ListenDrops\n").is_err());
        assert!(parse_netstat(b"TcpExt: ListenOverflows ListenDrops\nTcpExt: 1\n").is_err());
        assert!(parse_netstat(b"TcpExt: ListenOverflows ListenDrops\nTcpExt: 1 x\n").is_err());
        assert!(parse_netstat(b"IpExt: a\nIpExt: 1\n").is_err());
    }

    proptest! {
        #[test]
        fn never_panics(data in proptest::collection::vec(any::<u8>(), 0..512)) {
            let _ = parse_netstat(&data);
        }
    }
}
