//! Accept queues of listening TCP sockets (v4 and v6), per port.
//!
//! The primary path is one NETLINK_SOCK_DIAG dump per tick on a socket kept open: the request
//! asks the kernel for TCP sockets in state LISTEN only, so the reply is a few dozen bytes per
//! listener however many connections the host carries. For a listener the kernel reports the
//! current accept-queue length in `idiag_rqueue` and the backlog limit in `idiag_wqueue`.
//! The request is built and the reply walked by hand from a reused buffer (bounds-checked, no
//! allocation), because the generic netlink packet crates allocate a `Vec` per message.
//!
//! The fallback, when sock_diag is unavailable or turned off, parses `/proc/net/tcp{,6}`,
//! which lists every socket (so it costs far more on a busy host) and carries no backlog
//! (reported as 0).

use std::io;
use std::path::Path;
use std::time::Duration;

use netlink_sys::{Socket, SocketAddr, protocols::NETLINK_SOCK_DIAG};

use super::{ProcFile, SourceError};
use crate::parse::{fields, lines, parse_hex_u32};
use crate::sample::{AcceptQueue, AcceptTotals, MAX_LISTENERS};

const NLMSG_HDR: usize = 16;
const NLMSG_ERROR: u16 = 2;
const NLMSG_DONE: u16 = 3;
const NLM_F_REQUEST: u16 = 0x1;
const NLM_F_DUMP: u16 = 0x300;
const SOCK_DIAG_BY_FAMILY: u16 = 20;
const IPPROTO_TCP: u8 = 6;
const TCP_ESTABLISHED: u32 = 1;
const TCP_LISTEN: u32 = 10;
const AF_INET: u8 = 2;
const AF_INET6: u8 = 10;
/// nlmsghdr (16) + inet_diag_req_v2 (56).
const REQUEST_LEN: usize = 72;
/// Size of `struct inet_diag_msg`.
const DIAG_MSG_LEN: usize = 72;
/// Receive buffer: the kernel sizes dump datagrams to at most 32 KiB.
const RECV_BUF: usize = 64 * 1024;
/// How long one reply may take before the tick gives up on it.
const RECV_TIMEOUT: Duration = Duration::from_millis(200);

/// Builds an `inet_diag_req_v2` dump request for TCP sockets of `family` in `state`.
pub(crate) fn build_request(family: u8, state: u32, seq: u32) -> [u8; REQUEST_LEN] {
    let mut r = [0u8; REQUEST_LEN];
    r[0..4].copy_from_slice(&(REQUEST_LEN as u32).to_ne_bytes());
    r[4..6].copy_from_slice(&SOCK_DIAG_BY_FAMILY.to_ne_bytes());
    r[6..8].copy_from_slice(&(NLM_F_REQUEST | NLM_F_DUMP).to_ne_bytes());
    r[8..12].copy_from_slice(&seq.to_ne_bytes());
    // pid 0 (the kernel), then inet_diag_req_v2: family, protocol, ext, pad, states, sockid.
    r[16] = family;
    r[17] = IPPROTO_TCP;
    r[20..24].copy_from_slice(&(1u32 << state).to_ne_bytes());
    r
}

/// Why walking a netlink reply stopped early.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum WalkError {
    /// The kernel answered with an error (positive errno).
    Errno(i32),
    /// The bytes did not form netlink messages.
    Malformed(&'static str),
}

fn u32_at(b: &[u8], at: usize) -> Option<u32> {
    let s = b.get(at..at.checked_add(4)?)?;
    Some(u32::from_ne_bytes([s[0], s[1], s[2], s[3]]))
}

fn u16_at(b: &[u8], at: usize) -> Option<u16> {
    let s = b.get(at..at.checked_add(2)?)?;
    Some(u16::from_ne_bytes([s[0], s[1]]))
}

/// Walks the netlink messages in one datagram, handing every sock_diag record of sequence
/// `seq` to `on_record`. `Ok(true)` when the dump's `NLMSG_DONE` was seen.
pub(crate) fn walk(
    buf: &[u8],
    seq: u32,
    mut on_record: impl FnMut(&[u8]),
) -> Result<bool, WalkError> {
    let mut off = 0usize;
    while off < buf.len() {
        let bad = WalkError::Malformed("bad netlink header");
        let len = u32_at(buf, off).ok_or(bad)? as usize;
        let typ = u16_at(buf, off + 4).ok_or(bad)?;
        let mseq = u32_at(buf, off + 8).ok_or(bad)?;
        let end = off.checked_add(len).ok_or(bad)?;
        if len < NLMSG_HDR || end > buf.len() {
            return Err(WalkError::Malformed("bad netlink message length"));
        }
        let payload = &buf[off + NLMSG_HDR..end];
        if mseq == seq {
            match typ {
                NLMSG_DONE => {
                    // A dump cut short (ENOMEM, say) ends with its negative errno here: what
                    // came before it is not every listener.
                    let code = u32_at(payload, 0).map_or(0, |c| c as i32);
                    if code < 0 {
                        return Err(WalkError::Errno(code.saturating_neg()));
                    }
                    return Ok(true);
                }
                NLMSG_ERROR => {
                    let code = u32_at(payload, 0).ok_or(bad)? as i32;
                    if code != 0 {
                        return Err(WalkError::Errno(code.saturating_neg()));
                    }
                }
                SOCK_DIAG_BY_FAMILY => on_record(payload),
                _ => {}
            }
        }
        off = end
            .checked_add(3)
            .map(|e| e & !3)
            .ok_or(bad)?
            .min(buf.len());
    }
    Ok(false)
}

/// Reads one `inet_diag_msg`: family, local port, queue length and backlog of a listener.
pub(crate) fn parse_record(p: &[u8]) -> Option<AcceptQueue> {
    if p.len() < DIAG_MSG_LEN || u32::from(p[1]) != TCP_LISTEN {
        return None;
    }
    let ipv6 = match p[0] {
        AF_INET => false,
        AF_INET6 => true,
        _ => return None,
    };
    Some(AcceptQueue {
        port: u16::from_be_bytes([p[4], p[5]]),
        ipv6,
        depth: u32_at(p, 56)?,
        backlog: u32_at(p, 60)?,
    })
}

/// A NETLINK_SOCK_DIAG socket kept open, with its reused receive buffer.
///
/// Public so that benches can time the bare request/reply exchange next to the full sample.
#[derive(Debug)]
pub struct SockDiagSocket {
    sock: Socket,
    buf: Vec<u8>,
    seq: u32,
}

impl SockDiagSocket {
    /// Opens and connects the socket to the kernel, with a receive timeout so a tick can never
    /// hang on it.
    pub fn open() -> io::Result<Self> {
        let mut sock = Socket::new(NETLINK_SOCK_DIAG)?;
        sock.bind_auto()?;
        sock.connect(&SocketAddr::new(0, 0))?;
        socket2::SockRef::from(&sock).set_read_timeout(Some(RECV_TIMEOUT))?;
        Ok(SockDiagSocket {
            sock,
            buf: vec![0; RECV_BUF],
            seq: 0,
        })
    }

    /// Sends one dump request for the TCP sockets of `family` in `state` and hands each
    /// record to `on_record`.
    fn exchange(
        &mut self,
        family: u8,
        state: u32,
        mut on_record: impl FnMut(&[u8]),
    ) -> Result<(), SourceError> {
        self.seq = self.seq.wrapping_add(1);
        let req = build_request(family, state, self.seq);
        // A signal interrupts a call on a socket with a receive timeout even under SA_RESTART:
        // asked again, not reported as a broken source.
        loop {
            match self.sock.send(&req, 0) {
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                sent => {
                    sent.map_err(SourceError::Netlink)?;
                    break;
                }
            }
        }
        loop {
            let n = loop {
                let mut space = &mut self.buf[..];
                match self.sock.recv(&mut space, 0) {
                    Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                    got => break got.map_err(SourceError::Netlink)?,
                }
            };
            let got = self
                .buf
                .get(..n)
                .ok_or(SourceError::NetlinkParse("datagram truncated"))?;
            match walk(got, self.seq, &mut on_record) {
                Ok(true) => return Ok(()),
                Ok(false) if n == 0 => return Err(SourceError::NetlinkParse("empty reply")),
                Ok(false) => {}
                Err(WalkError::Errno(e)) => {
                    return Err(SourceError::Netlink(io::Error::from_raw_os_error(e)));
                }
                Err(WalkError::Malformed(what)) => return Err(SourceError::NetlinkParse(what)),
            }
        }
    }

    /// Dumps the TCP listeners of both families, handing each to `f`.
    pub fn listeners(&mut self, mut f: impl FnMut(AcceptQueue)) -> Result<(), SourceError> {
        for family in [AF_INET, AF_INET6] {
            self.exchange(family, TCP_LISTEN, |rec| {
                if let Some(q) = parse_record(rec) {
                    f(q);
                }
            })?;
        }
        Ok(())
    }

    /// Established TCP connections (both families) whose local port is one of `ports`: the
    /// work a host has in progress on the ports it listens on. One dump per family of the
    /// established sockets only; its cost grows with the host's connections, so it is asked
    /// once per decision, not per sample.
    pub fn established_on(&mut self, ports: &[u16]) -> Result<u64, SourceError> {
        let mut n = 0u64;
        if ports.is_empty() {
            return Ok(0);
        }
        for family in [AF_INET, AF_INET6] {
            self.exchange(family, TCP_ESTABLISHED, |p| {
                if p.len() >= DIAG_MSG_LEN
                    && u32::from(p[1]) == TCP_ESTABLISHED
                    && ports.contains(&u16::from_be_bytes([p[4], p[5]]))
                {
                    n += 1;
                }
            })?;
        }
        Ok(n)
    }

    /// The same request/reply exchange as [`listeners`](Self::listeners) without interpreting
    /// the records: the floor a full read is measured against. Returns the record count.
    pub fn raw_dump(&mut self) -> Result<usize, SourceError> {
        let mut records = 0;
        for family in [AF_INET, AF_INET6] {
            self.exchange(family, TCP_LISTEN, |_| records += 1)?;
        }
        Ok(records)
    }
}

/// Parses `/proc/net/tcp` or `/proc/net/tcp6`, handing every LISTEN socket to `f`
/// (depth from `rx_queue`, backlog unknown: 0).
pub(crate) fn parse_proc_tcp(
    buf: &[u8],
    ipv6: bool,
    mut f: impl FnMut(AcceptQueue),
) -> Result<(), &'static str> {
    let mut it = lines(buf);
    if it.next().is_none_or(|h| fields(h).next() != Some(b"sl")) {
        return Err("missing header");
    }
    for line in it {
        let mut fl = fields(line);
        let Some(_sl) = fl.next() else { continue };
        let (Some(local), Some(_remote), Some(st), Some(queues)) =
            (fl.next(), fl.next(), fl.next(), fl.next())
        else {
            return Err("short line");
        };
        let state = parse_hex_u32(st).ok_or("bad state")?;
        if state != TCP_LISTEN {
            continue;
        }
        let port = local
            .rsplit(|&b| b == b':')
            .next()
            .and_then(parse_hex_u32)
            .ok_or("bad port")?;
        let port = u16::try_from(port).map_err(|_| "bad port")?;
        let rx = queues
            .rsplit(|&b| b == b':')
            .next()
            .and_then(parse_hex_u32)
            .ok_or("bad queue")?;
        f(AcceptQueue {
            port,
            ipv6,
            depth: rx,
            backlog: 0,
        });
    }
    Ok(())
}

/// Adds a listener to the per-port table, merging sockets that share port and family
/// (`SO_REUSEPORT` groups): depths and backlogs add up. Returns false when the table is full.
pub(crate) fn merge(
    out: &mut [AcceptQueue; MAX_LISTENERS],
    count: &mut usize,
    q: AcceptQueue,
) -> bool {
    let n = (*count).min(MAX_LISTENERS);
    if let Some(e) = out[..n]
        .iter_mut()
        .find(|e| e.port == q.port && e.ipv6 == q.ipv6)
    {
        e.depth = e.depth.saturating_add(q.depth);
        e.backlog = e.backlog.saturating_add(q.backlog);
        return true;
    }
    if n < MAX_LISTENERS {
        out[n] = q;
        *count = n + 1;
        true
    } else {
        false
    }
}

#[derive(Debug)]
enum Backend {
    Diag(SockDiagSocket),
    /// `tcp6` is `None` once found missing (no IPv6 on this host): not looked for again until
    /// the source is reopened, so a tick neither opens nor allocates for it.
    Proc {
        tcp: ProcFile,
        tcp6: Option<ProcFile>,
    },
}

/// Reads accept queues through sock_diag or, failing that, `/proc/net/tcp{,6}`.
#[derive(Debug)]
pub(crate) struct AcceptQueueSource {
    backend: Backend,
    use_diag: bool,
    proc_root: std::path::PathBuf,
}

impl AcceptQueueSource {
    pub(crate) fn new(proc_root: &Path, sock_diag: bool) -> Self {
        let backend = Self::backend(proc_root, sock_diag);
        AcceptQueueSource {
            backend,
            use_diag: sock_diag,
            proc_root: proc_root.to_path_buf(),
        }
    }

    /// Opens sock_diag and checks it answers a dump (the socket opens even where the
    /// inet_diag module is missing); otherwise falls back to `/proc/net/tcp{,6}`.
    fn backend(proc_root: &Path, sock_diag: bool) -> Backend {
        if sock_diag {
            match SockDiagSocket::open()
                .map_err(SourceError::Netlink)
                .and_then(|mut s| {
                    s.raw_dump()?;
                    Ok(s)
                }) {
                Ok(s) => return Backend::Diag(s),
                Err(e) => {
                    tracing::warn!(error = %e, "sock_diag unavailable, reading /proc/net/tcp")
                }
            }
        }
        Backend::Proc {
            tcp: ProcFile::new(proc_root, "net/tcp"),
            tcp6: Some(ProcFile::new(proc_root, "net/tcp6")),
        }
    }

    /// Whether the kept-open sock_diag socket is in use (false: the /proc fallback).
    pub(crate) fn uses_sock_diag(&self) -> bool {
        matches!(self.backend, Backend::Diag(_))
    }

    pub(crate) fn reopen(&mut self) {
        self.backend = Self::backend(&self.proc_root, self.use_diag);
    }

    /// Fills `out` with up to [`MAX_LISTENERS`] (port, family) groups and `totals` with every
    /// listener, those that did not fit included.
    pub(crate) fn read(
        &mut self,
        out: &mut [AcceptQueue; MAX_LISTENERS],
        count: &mut u8,
        totals: &mut AcceptTotals,
    ) -> Result<bool, SourceError> {
        let mut tally = Tally::default();
        let mut add = |q: AcceptQueue| tally.add(out, q);
        match &mut self.backend {
            Backend::Diag(s) => s.listeners(&mut add)?,
            Backend::Proc { tcp, tcp6 } => {
                tcp.parse(|b| parse_proc_tcp(b, false, &mut add))?;
                if let Some(file) = tcp6 {
                    match file.parse(|b| parse_proc_tcp(b, true, &mut add)) {
                        // No IPv6 on this host (`ipv6.disable=1`): no IPv6 listeners.
                        Err(SourceError::Io { error, .. })
                            if error.kind() == io::ErrorKind::NotFound =>
                        {
                            *tcp6 = None;
                        }
                        other => other?,
                    }
                }
            }
        }
        *count = tally.n as u8;
        *totals = tally.totals(out);
        Ok(true)
    }
}

/// One read's listeners as they come: merged into the per-port table while it has room,
/// counted apart when it has none.
#[derive(Debug, Default)]
struct Tally {
    /// Entries of the table in use.
    n: usize,
    /// The listeners that did not fit: how many and their depth.
    omitted: AcceptTotals,
    /// The fullest single socket, taken before sockets of one port are merged: a full one in
    /// a `SO_REUSEPORT` group with roomy ones still overflows.
    max_fill: f64,
}

impl Tally {
    fn add(&mut self, out: &mut [AcceptQueue; MAX_LISTENERS], q: AcceptQueue) {
        self.max_fill = self.max_fill.max(fill(&q));
        if !merge(out, &mut self.n, q) {
            self.omitted.listeners = self.omitted.listeners.saturating_add(1);
            self.omitted.depth += u64::from(q.depth);
        }
    }

    /// Every listener's totals, those that did not fit included.
    fn totals(&self, out: &[AcceptQueue; MAX_LISTENERS]) -> AcceptTotals {
        let listed = &out[..self.n];
        AcceptTotals {
            listeners: self.n as u32 + self.omitted.listeners,
            depth: listed.iter().map(|q| u64::from(q.depth)).sum::<u64>() + self.omitted.depth,
            max_fill: self.max_fill,
        }
    }
}

/// Depth over backlog; 0 where the backlog is unknown (the /proc fallback).
fn fill(q: &AcceptQueue) -> f64 {
    if q.backlog > 0 {
        f64::from(q.depth) / f64::from(q.backlog)
    } else {
        0.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn request_layout() {
        let r = build_request(AF_INET6, TCP_LISTEN, 7);
        assert_eq!(u32_at(&r, 0), Some(72));
        assert_eq!(u16_at(&r, 4), Some(20));
        assert_eq!(u16_at(&r, 6), Some(0x301));
        assert_eq!(u32_at(&r, 8), Some(7));
        assert_eq!((r[16], r[17]), (AF_INET6, IPPROTO_TCP));
        assert_eq!(u32_at(&r, 20), Some(1 << 10));
    }

    fn message(typ: u16, seq: u32, payload: &[u8]) -> Vec<u8> {
        let len = NLMSG_HDR + payload.len();
        let mut m = Vec::new();
        m.extend_from_slice(&(len as u32).to_ne_bytes());
        m.extend_from_slice(&typ.to_ne_bytes());
        m.extend_from_slice(&0u16.to_ne_bytes());
        m.extend_from_slice(&seq.to_ne_bytes());
        m.extend_from_slice(&0u32.to_ne_bytes());
        m.extend_from_slice(payload);
        while m.len() % 4 != 0 {
            m.push(0);
        }
        m
    }

    fn record(family: u8, port: u16, rq: u32, wq: u32) -> Vec<u8> {
        let mut p = vec![0u8; DIAG_MSG_LEN];
        p[0] = family;
        p[1] = TCP_LISTEN as u8;
        p[4..6].copy_from_slice(&port.to_be_bytes());
        p[56..60].copy_from_slice(&rq.to_ne_bytes());
        p[60..64].copy_from_slice(&wq.to_ne_bytes());
        p
    }

    #[test]
    fn walks_records_and_done() {
        let mut buf = message(SOCK_DIAG_BY_FAMILY, 5, &record(AF_INET, 8080, 3, 128));
        buf.extend(message(SOCK_DIAG_BY_FAMILY, 4, &record(AF_INET, 1, 1, 1)));
        buf.extend(message(NLMSG_DONE, 5, &[0, 0, 0, 0]));
        let mut got = Vec::new();
        assert_eq!(
            walk(&buf, 5, |r| got.push(parse_record(r).unwrap())),
            Ok(true)
        );
        assert_eq!(
            got,
            [AcceptQueue {
                port: 8080,
                ipv6: false,
                depth: 3,
                backlog: 128
            }]
        );
    }

    /// A dump the kernel cut short ends with its errno in NLMSG_DONE: not a whole listing.
    #[test]
    fn a_dump_done_with_an_error_is_an_error() {
        let mut buf = message(SOCK_DIAG_BY_FAMILY, 5, &record(AF_INET, 8080, 3, 128));
        buf.extend(message(NLMSG_DONE, 5, &(-12i32).to_ne_bytes()));
        assert_eq!(walk(&buf, 5, |_| ()), Err(WalkError::Errno(12)));
    }

    /// Four `SO_REUSEPORT` sockets on one port, one of them full: the group is listed merged,
    /// and the fullest fill is that socket's, not the group's.
    #[test]
    fn the_fullest_fill_is_a_single_sockets() {
        let mut out = [AcceptQueue::default(); MAX_LISTENERS];
        let mut tally = Tally::default();
        for (depth, backlog) in [(2, 1), (0, 1000), (0, 1000), (0, 1000)] {
            let q = AcceptQueue {
                port: 80,
                ipv6: false,
                depth,
                backlog,
            };
            tally.add(&mut out, q);
        }
        let totals = tally.totals(&out);
        assert_eq!((tally.n, out[0].depth, out[0].backlog), (1, 2, 3001));
        assert_eq!((totals.listeners, totals.depth), (1, 2));
        assert_eq!(totals.max_fill, 2.0);
    }

    /// The /proc fallback on a host without IPv6 (no `net/tcp6`): IPv4 listeners, no error.
    #[test]
    fn no_tcp6_file_is_no_ipv6_listeners() {
        let root = tempfile::tempdir().unwrap();
        std::fs::create_dir(root.path().join("net")).unwrap();
        std::fs::write(
            root.path().join("net/tcp"),
            include_bytes!("../../tests/fixtures/proc/net/tcp"),
        )
        .unwrap();
        let mut source = AcceptQueueSource::new(root.path(), false);
        let mut out = [AcceptQueue::default(); MAX_LISTENERS];
        let (mut count, mut totals) = (0, AcceptTotals::default());
        assert!(source.read(&mut out, &mut count, &mut totals).unwrap());
        assert_eq!((count, out[0].port), (1, 2024));
        // Not looked for again on later reads.
        assert!(matches!(source.backend, Backend::Proc { tcp6: None, .. }));
        assert!(source.read(&mut out, &mut count, &mut totals).unwrap());
    }

    #[test]
    fn errors_and_malformed() {
        let err = message(NLMSG_ERROR, 1, &(-13i32).to_ne_bytes());
        assert_eq!(walk(&err, 1, |_| ()), Err(WalkError::Errno(13)));
        let mut short = message(SOCK_DIAG_BY_FAMILY, 1, &[0; 8]);
        short[0] = 200;
        assert!(matches!(
            walk(&short, 1, |_| ()),
            Err(WalkError::Malformed(_))
        ));
        assert!(parse_record(&[0; 10]).is_none());
    }

    #[test]
    fn real_proc_tcp() {
        let mut got = Vec::new();
        parse_proc_tcp(
            include_bytes!("../../tests/fixtures/proc/net/tcp"),
            false,
            |q| got.push(q),
        )
        .unwrap();
        assert_eq!(
            got,
            [AcceptQueue {
                port: 2024,
                ipv6: false,
                depth: 0,
                backlog: 0
            }]
        );
        parse_proc_tcp(
            include_bytes!("../../tests/fixtures/proc/net/tcp6"),
            true,
            |_| (),
        )
        .unwrap();
        assert!(parse_proc_tcp(b"", false, |_| ()).is_err());
        assert!(
            parse_proc_tcp(
                b"  sl local\n 0: 0100007F:1F90 00000000:0000 0A\n",
                false,
                |_| ()
            )
            .is_err()
        );
    }

    #[test]
    fn merge_by_port() {
        let mut out = [AcceptQueue::default(); MAX_LISTENERS];
        let mut n = 0;
        let q = AcceptQueue {
            port: 80,
            ipv6: false,
            depth: 2,
            backlog: 10,
        };
        merge(&mut out, &mut n, q);
        merge(&mut out, &mut n, q);
        merge(&mut out, &mut n, AcceptQueue { ipv6: true, ..q });
        assert_eq!(n, 2);
        assert_eq!((out[0].depth, out[0].backlog), (4, 20));
        for p in 0..100 {
            merge(
                &mut out,
                &mut n,
                AcceptQueue {
                    port: 1000 + p,
                    ..q
                },
            );
        }
        assert_eq!(n, MAX_LISTENERS);
    }

    /// Real sockets on loopback: the connections a listener accepted count, the clients' own
    /// ends (on ephemeral ports) and other ports do not.
    #[test]
    fn counts_the_established_connections_of_listening_ports() {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let other = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let mut diag = SockDiagSocket::open().expect("sock_diag");
        assert_eq!(diag.established_on(&[port]).unwrap(), 0);
        let clients: Vec<_> = (0..3)
            .map(|_| std::net::TcpStream::connect(listener.local_addr().unwrap()).unwrap())
            .collect();
        let accepted: Vec<_> = (0..3).map(|_| listener.accept().unwrap()).collect();
        let _elsewhere = std::net::TcpStream::connect(other.local_addr().unwrap()).unwrap();
        assert_eq!(diag.established_on(&[port]).unwrap(), 3);
        assert_eq!(diag.established_on(&[]).unwrap(), 0);
        drop((clients, accepted));
    }

    proptest! {
        #[test]
        fn never_panics(data in proptest::collection::vec(any::<u8>(), 0..512), seq in 0u32..4) {
            let _ = walk(&data, seq, |r| { let _ = parse_record(r); });
            let _ = parse_record(&data);
            let _ = parse_proc_tcp(&data, false, |_| ());
        }
    }
}
