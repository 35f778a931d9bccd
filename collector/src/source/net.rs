//! Network: per interface, bytes/s, packets/s, errors/s and drops/s from `/proc/net/dev`.

use std::path::Path;
use std::time::Instant;

use super::devices::DeviceRates;
use super::{ProcFile, SourceError};
use crate::parse::{counter_delta, fields, lines, parse_u64};
use crate::sample::{MAX_DEVICES, NetStats, ShortName};

/// Cumulative counters of one interface.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub(crate) struct NetCounters {
    pub(crate) rx_bytes: u64,
    pub(crate) rx_packets: u64,
    pub(crate) tx_bytes: u64,
    pub(crate) tx_packets: u64,
    /// rx + tx errors.
    pub(crate) errors: u64,
    /// rx + tx drops.
    pub(crate) drops: u64,
}

/// Parses one interface line (`  eth0: 1 2 ...`; the name may touch the first number).
pub(crate) fn parse_line(line: &[u8]) -> Result<(&str, NetCounters), &'static str> {
    let colon = line.iter().position(|&b| b == b':').ok_or("no colon")?;
    let (name, rest) = line.split_at(colon);
    let name = std::str::from_utf8(name)
        .map_err(|_| "interface name is not UTF-8")?
        .trim();
    if name.is_empty() {
        return Err("empty interface name");
    }
    let mut v = [0u64; 16];
    let mut f = fields(&rest[1..]);
    for slot in &mut v {
        *slot = f
            .next()
            .and_then(parse_u64)
            .ok_or("bad or missing counter")?;
    }
    Ok((
        name,
        NetCounters {
            rx_bytes: v[0],
            rx_packets: v[1],
            errors: v[2].saturating_add(v[10]),
            drops: v[3].saturating_add(v[11]),
            tx_bytes: v[8],
            tx_packets: v[9],
        },
    ))
}

/// Calls `f` for every interface; the two header lines are required, any malformed interface
/// line fails the whole file.
pub(crate) fn parse_net_dev(
    buf: &[u8],
    mut f: impl FnMut(&str, NetCounters),
) -> Result<(), &'static str> {
    let mut it = lines(buf);
    let header_ok = it.next().is_some_and(|l| l.starts_with(b"Inter-"))
        && it
            .next()
            .is_some_and(|l| l.windows(4).any(|w| w == b"face"));
    if !header_ok {
        return Err("missing header");
    }
    for line in it {
        if line.iter().all(u8::is_ascii_whitespace) {
            continue;
        }
        let (name, c) = parse_line(line)?;
        f(name, c);
    }
    Ok(())
}

/// Rates of one interface between two reads `dt` seconds apart; `None` on a counter reset.
pub(crate) fn rates(name: &str, p: &NetCounters, c: &NetCounters, dt: f64) -> Option<NetStats> {
    Some(NetStats {
        name: ShortName::new(name),
        rx_bytes_per_s: counter_delta(p.rx_bytes, c.rx_bytes)? as f64 / dt,
        tx_bytes_per_s: counter_delta(p.tx_bytes, c.tx_bytes)? as f64 / dt,
        rx_packets_per_s: counter_delta(p.rx_packets, c.rx_packets)? as f64 / dt,
        tx_packets_per_s: counter_delta(p.tx_packets, c.tx_packets)? as f64 / dt,
        errors_per_s: counter_delta(p.errors, c.errors)? as f64 / dt,
        drops_per_s: counter_delta(p.drops, c.drops)? as f64 / dt,
    })
}

/// Reads `/proc/net/dev`.
#[derive(Debug)]
pub(crate) struct NetSource {
    dev: ProcFile,
    include_loopback: bool,
    rates: DeviceRates<NetCounters>,
}

impl NetSource {
    pub(crate) fn new(proc_root: &Path, include_loopback: bool) -> Self {
        NetSource {
            dev: ProcFile::new(proc_root, "net/dev"),
            include_loopback,
            rates: DeviceRates::new(),
        }
    }

    pub(crate) fn reopen(&mut self) {
        self.dev.close();
        self.rates.reset();
    }

    /// Fills `out` with up to [`MAX_DEVICES`] interfaces; `Ok(true)` once rates exist.
    pub(crate) fn read(
        &mut self,
        now: Instant,
        out: &mut [NetStats; MAX_DEVICES],
        count: &mut u8,
    ) -> Result<bool, SourceError> {
        let (dev, include_lo) = (&mut self.dev, self.include_loopback);
        self.rates.read(
            now,
            out,
            count,
            |each| dev.parse(|buf| parse_net_dev(buf, each)),
            |name| include_lo || name != "lo",
            rates,
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    const DEV: &[u8] = include_bytes!("../../tests/fixtures/proc/net/dev");

    #[test]
    fn real_net_dev() {
        let mut seen = Vec::new();
        parse_net_dev(DEV, |n, c| seen.push((n.to_string(), c))).unwrap();
        let names: Vec<_> = seen.iter().map(|(n, _)| n.as_str()).collect();
        assert_eq!(names, ["lo", "ifb0", "ifb1", "eth0"]);
        let eth0 = seen[3].1;
        assert!(eth0.rx_bytes > 0 && eth0.rx_packets > 0 && eth0.tx_packets > 0);
    }

    #[test]
    fn name_touching_numbers() {
        let (n, c) = parse_line(b"eth1:123 4 1 2 0 0 0 0 99 5 3 4 0 0 0 0").unwrap();
        assert_eq!(n, "eth1");
        assert_eq!((c.rx_bytes, c.tx_bytes, c.errors, c.drops), (123, 99, 4, 6));
    }

    #[test]
    fn broken_inputs() {
        assert!(parse_net_dev(b"", |_, _| ()).is_err());
        assert!(parse_net_dev(b"garbage\n", |_, _| ()).is_err());
        assert!(parse_net_dev(&DEV[..DEV.len() - 30], |_, _| ()).is_err());
        let p = NetCounters {
            rx_bytes: 10,
            ..Default::default()
        };
        assert!(rates("x", &p, &NetCounters::default(), 1.0).is_none());
    }

    proptest! {
        #[test]
        fn never_panics(data in proptest::collection::vec(any::<u8>(), 0..512)) {
            let _ = parse_net_dev(&data, |_, _| ());
            let _ = parse_line(&data);
        }
    }
}
