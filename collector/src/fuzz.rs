//! Entry points for the cargo-fuzz targets in `fuzz/` (feature `fuzzing`, off by default): each
//! feeds arbitrary bytes to one crate-private parser, the way the source feeds it a file or a
//! netlink reply. Not a stable API.

use crate::source::{accept_queue, app_metrics, cpu, disk, memory, net, netstat, pressure};

/// `/proc/stat` and `/proc/loadavg`.
pub fn cpu(data: &[u8]) {
    let _ = cpu::parse_stat(data);
    let _ = cpu::parse_loadavg(data);
}

/// `/proc/meminfo`.
pub fn memory(data: &[u8]) {
    let _ = memory::parse_meminfo(data);
}

/// `/proc/diskstats`.
pub fn disk(data: &[u8]) {
    let _ = disk::parse_diskstats(data, |_, _| {});
}

/// `/proc/net/dev`.
pub fn net_dev(data: &[u8]) {
    let _ = net::parse_net_dev(data, |_, _| {});
}

/// `/proc/net/netstat`.
pub fn netstat(data: &[u8]) {
    let _ = netstat::parse_netstat(data);
}

/// `/proc/pressure/*`.
pub fn pressure(data: &[u8]) {
    let _ = pressure::parse_psi(data);
}

/// `/proc/net/tcp` and `/proc/net/tcp6`.
pub fn proc_tcp(data: &[u8]) {
    let _ = accept_queue::parse_proc_tcp(data, false, |_| {});
    let _ = accept_queue::parse_proc_tcp(data, true, |_| {});
}

/// A NETLINK_SOCK_DIAG reply: the message walk, then each record.
pub fn sock_diag(data: &[u8]) {
    // The sequence the walk expects is the first message's own, so records are reached.
    let seq = data
        .get(8..12)
        .map_or(0, |b| u32::from_ne_bytes([b[0], b[1], b[2], b[3]]));
    let _ = accept_queue::walk(data, seq, |rec| {
        let _ = accept_queue::parse_record(rec);
    });
    let _ = accept_queue::parse_record(data);
}

/// A Prometheus text exposition body.
pub fn prometheus(data: &[u8]) {
    let wanted = [
        "http_requests_in_flight".to_string(),
        "queue_depth".to_string(),
    ];
    let mut out = app_metrics::AppSnapshot::default();
    app_metrics::parse_prometheus(data, &wanted, &mut out);
}
