//! Accept queues of real listening sockets, read through sock_diag and through the
//! `/proc/net/tcp` fallback, and listen overflows once the queue is past its backlog.

use std::net::{SocketAddr, TcpStream};
use std::time::{Duration, Instant};

use headroom_collector::{
    AcceptQueue, Collector, Sample, SamplerConfig, SockDiagSocket, SourceKind,
};
use socket2::{Domain, Socket, Type};

const BACKLOG: i32 = 4;

fn listener(addr: &str) -> (Socket, SocketAddr) {
    let addr: SocketAddr = addr.parse().unwrap();
    let s = Socket::new(Domain::for_address(addr), Type::STREAM, None).unwrap();
    s.bind(&addr.into()).unwrap();
    s.listen(BACKLOG).unwrap();
    let local = s.local_addr().unwrap().as_socket().unwrap();
    (s, local)
}

fn find(diag: &mut SockDiagSocket, addr: SocketAddr) -> Option<AcceptQueue> {
    let mut found = None;
    diag.listeners(|q| {
        if q.port == addr.port() && q.ipv6 == addr.is_ipv6() {
            found = Some(q);
        }
    })
    .unwrap();
    found
}

/// Polls until `f` holds or two seconds pass; the kernel completes loopback handshakes
/// asynchronously.
fn eventually(mut f: impl FnMut() -> bool) -> bool {
    let end = Instant::now() + Duration::from_secs(2);
    while Instant::now() < end {
        if f() {
            return true;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    f()
}

fn exact_depth(addr: &str) {
    let (_l, addr) = listener(addr);
    let mut diag = SockDiagSocket::open().unwrap();
    let q = find(&mut diag, addr).expect("listener visible");
    assert_eq!((q.depth, q.backlog), (0, BACKLOG as u32));
    let clients: Vec<TcpStream> = (0..3).map(|_| TcpStream::connect(addr).unwrap()).collect();
    assert!(eventually(|| find(&mut diag, addr).unwrap().depth == 3));
    assert_eq!(find(&mut diag, addr).unwrap().depth, clients.len() as u32);
}

#[test]
fn exact_depth_v4() {
    exact_depth("127.0.0.1:0");
}

#[test]
fn exact_depth_v6() {
    if std::net::TcpListener::bind("[::1]:0").is_err() {
        eprintln!("no IPv6 loopback here; skipping");
        return;
    }
    exact_depth("[::1]:0");
}

fn listener_in(s: &Sample, addr: SocketAddr) -> Option<AcceptQueue> {
    s.listeners[..s.listener_count as usize]
        .iter()
        .copied()
        .find(|q| q.port == addr.port() && q.ipv6 == addr.is_ipv6())
}

#[test]
fn overflows_past_the_backlog() {
    let (_l, addr) = listener("127.0.0.1:0");
    let mut collector = Collector::new(&SamplerConfig::default()).unwrap();
    assert!(collector.uses_sock_diag());
    let mut s = Sample::default();
    collector.sample_into(&mut s);
    assert!(s.has(SourceKind::AcceptQueue) && s.has(SourceKind::Netstat));
    // The kernel queues backlog + 1 connections; every SYN beyond that is dropped and counted.
    let mut clients = Vec::new();
    for _ in 0..(BACKLOG + 4) {
        let c = Socket::new(Domain::IPV4, Type::STREAM, None).unwrap();
        c.set_nonblocking(true).unwrap();
        let _ = c.connect(&addr.into());
        clients.push(c);
    }
    let full = BACKLOG as u32 + 1;
    assert!(eventually(|| {
        collector.sample_into(&mut s);
        listener_in(&s, addr).is_some_and(|q| q.depth == full)
    }));
    let mut overflows = s.listen_overflows;
    assert!(eventually(|| {
        collector.sample_into(&mut s);
        overflows += s.listen_overflows;
        overflows > 0
    }));
    assert_eq!(listener_in(&s, addr).unwrap().backlog, BACKLOG as u32);
}

#[test]
fn proc_net_tcp_fallback() {
    let (_l, addr) = listener("127.0.0.1:0");
    let config = SamplerConfig {
        sock_diag: false,
        ..SamplerConfig::default()
    };
    let mut collector = Collector::new(&config).unwrap();
    assert!(!collector.uses_sock_diag());
    let _clients: Vec<TcpStream> = (0..2).map(|_| TcpStream::connect(addr).unwrap()).collect();
    let mut s = Sample::default();
    assert!(eventually(|| {
        collector.sample_into(&mut s);
        listener_in(&s, addr).is_some_and(|q| q.depth == 2)
    }));
    assert_eq!(
        listener_in(&s, addr).unwrap().backlog,
        0,
        "/proc/net/tcp carries no backlog"
    );
}

/// More listening ports than the sample's table holds: the table stops at its size, and the
/// host-wide totals (the `accept_queue.*` metrics, a possible demand signal) still count every
/// listener's queue.
#[test]
fn listeners_past_the_table_still_count_in_the_totals() {
    use headroom_collector::sample::MAX_LISTENERS;
    let ports = MAX_LISTENERS + 6;
    let listeners: Vec<(Socket, SocketAddr)> =
        (0..ports).map(|_| listener("127.0.0.1:0")).collect();
    // One connection waits in every queue.
    let _clients: Vec<TcpStream> = listeners
        .iter()
        .map(|(_, addr)| TcpStream::connect(addr).unwrap())
        .collect();
    let mut collector = Collector::new(&SamplerConfig::default()).unwrap();
    let mut s = Sample::default();
    assert!(eventually(|| {
        collector.sample_into(&mut s);
        s.accept_totals.depth >= ports as u64
    }));
    assert_eq!(s.listener_count as usize, MAX_LISTENERS);
    assert!(s.accept_totals.listeners as usize >= ports);
    assert!(s.accept_totals.max_fill >= 1.0 / f64::from(BACKLOG));
    let mut depth = None;
    s.visit(|m, v| {
        if m.family == "accept_queue.depth" {
            depth = Some(v);
        }
    });
    assert!(depth.is_some_and(|d| d >= ports as f64), "{depth:?}");
}
