//! The one harness of the end-to-end tests: the built `headroom` binary started as an agent
//! ([`Agent`]) or a coordinator ([`Coordinator`]) in temporary directories on 127.0.0.1, a
//! local Prometheus gauge ([`AppGauge`]), a moto server for the AWS API ([`Moto`]), an etcd
//! cluster ([`Etcd`]), token and
//! script files, HTTP calls and polling.
//!
//! The binaries under test are the workspace's own builds, found in the target directory this
//! test binary was built into ([`bin`]); `cargo build --workspace --bins` makes them.

mod agent;
mod container;
mod coordinator;
mod delivery;
mod etcd;
mod gauge;
mod moto;
mod proxy;

pub(crate) use agent::{Agent, committed};
pub(crate) use container::Container;
pub(crate) use coordinator::{
    Coordinator, coordinator_applied, coordinator_recorded, coordinator_toml, group_toml,
    group_toml_with, outbox_produced, web_group_toml,
};
pub(crate) use delivery::{
    SIGNAL_TTL_S, agent_coordinator_toml, check_delivery, dry_run_coordinator,
};
pub(crate) use etcd::Etcd;
pub(crate) use gauge::AppGauge;
pub(crate) use moto::Moto;
pub(crate) use proxy::Proxy;

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

/// The binaries the tests run: `headroom`, and `headroom-coordinator` beside it (which
/// `headroom coordinator` runs).
const BINARIES: [&str; 2] = ["headroom", "headroom-coordinator"];

/// The `headroom` binary under test: in the target directory of this test binary (its
/// parent's parent: `target/<profile>/deps/e2e-<hash>`), with `headroom-coordinator` beside
/// it. A missing one fails the test with a line naming it and the command that builds both.
pub(crate) fn bin() -> &'static str {
    static BIN: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    BIN.get_or_init(|| {
        let exe = std::env::current_exe().expect("the test binary's path");
        let dir = exe
            .parent()
            .and_then(Path::parent)
            .expect("the test binary is in target/<profile>/deps");
        for name in BINARIES {
            let path = dir.join(name);
            assert!(
                path.is_file(),
                "{} not found: build the binaries first (cargo build --workspace --bins{})",
                path.display(),
                if dir.ends_with("release") {
                    " --release"
                } else {
                    ""
                }
            );
        }
        dir.join("headroom").display().to_string()
    })
}
/// Held, one test at a time, by the tests that change this machine's packages (dpkg -i on the
/// host) and by those whose container sees this machine's root through an overlay, which would
/// see the other's changes half made.
pub(crate) fn host_packages() -> std::sync::MutexGuard<'static, ()> {
    static LOCK: std::sync::Mutex<()> = std::sync::Mutex::new(());
    LOCK.lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// The bearer token the fault, access and load tests' coordinators accept.
pub(crate) const TOKEN: &str = "s3cret-token-7f1e2d3c4b5a69788796a5b4";

/// Variables a test runner may inherit (from a systemd unit, or an operator's shell) that would
/// change how the binary logs, where it keeps state, or whom it notifies.
const AMBIENT: [&str; 9] = [
    "HEADROOM_LOG",
    "HEADROOM_SOCKET",
    "NOTIFY_SOCKET",
    "WATCHDOG_USEC",
    "WATCHDOG_PID",
    "STATE_DIRECTORY",
    "RUNTIME_DIRECTORY",
    "LISTEN_FDS",
    "LISTEN_PID",
];

/// Removes [`AMBIENT`] from `cmd`'s environment; a test sets what it needs after.
pub(crate) fn without_ambient(cmd: &mut std::process::Command) -> &mut std::process::Command {
    for var in AMBIENT {
        cmd.env_remove(var);
    }
    cmd
}

/// Runs `cmd` with its standard output a pipe whose reader has already gone, as `| head`
/// leaves it once it has read enough: every write the command makes finds the pipe closed.
pub(crate) fn to_a_closed_reader(cmd: &mut std::process::Command) -> std::process::Output {
    let mut child = cmd
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("spawn");
    drop(child.stdout.take());
    child.wait_with_output().expect("wait")
}

/// Unix time now, seconds.
pub(crate) fn now() -> f64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs_f64()
}

/// Polls `f` every 100 ms until it returns Some or `limit` passes.
pub(crate) fn wait_for<T>(limit: Duration, mut f: impl FnMut() -> Option<T>) -> Option<T> {
    let deadline = Instant::now() + limit;
    loop {
        if let Some(v) = f() {
            return Some(v);
        }
        if Instant::now() > deadline {
            return None;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// A free loopback port (bound then released, so a restarted process can reuse it), taken
/// below the kernel's ephemeral range: a port from that range (what binding port 0 gives) is
/// also what every outgoing connection of the parallel tests takes as its source port, and one
/// of them took a replica's port between this check and the replica's bind ("Address already in
/// use"). Below the range only another test's explicit choice can collide, and choices are
/// spread at random over some 20,000 ports.
pub(crate) fn free_port() -> u16 {
    let low = std::fs::read_to_string("/proc/sys/net/ipv4/ip_local_port_range")
        .ok()
        .and_then(|r| r.split_whitespace().next()?.parse::<u16>().ok())
        .unwrap_or(32768);
    for _ in 0..200 {
        // fastrand is seeded anew in every thread: spread, and different in every process.
        let port = fastrand::u16(10_000..low.max(12_000));
        if std::net::TcpListener::bind(("127.0.0.1", port)).is_ok() {
            return port;
        }
    }
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// Writes a token file readable by its owner only (0600).
pub(crate) fn write_token(dir: &Path, name: &str, token: &str) -> PathBuf {
    let path = dir.join(name);
    std::fs::write(&path, format!("{token}\n")).unwrap();
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600)).unwrap();
    path
}

/// Writes an executable (0755) shell script `body` to `path`.
pub(crate) fn write_script(path: &Path, body: &str) -> PathBuf {
    std::fs::write(path, body).unwrap();
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o755)).unwrap();
    path.to_path_buf()
}

/// The last `n` lines of `s`.
pub(crate) fn tail(s: &str, n: usize) -> String {
    let lines: Vec<&str> = s.lines().collect();
    lines[lines.len().saturating_sub(n)..].join("\n")
}

/// Resident set size of a process, KiB.
pub(crate) fn rss_kib(pid: u32) -> Option<u64> {
    let s = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    s.lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.split_whitespace().next()?.parse().ok())
}

/// An HTTP client that returns error statuses instead of failing, giving up after 10 s.
pub(crate) fn http() -> ureq::Agent {
    http_within(Duration::from_secs(10))
}

/// [`http`] giving up after `limit`.
pub(crate) fn http_within(limit: Duration) -> ureq::Agent {
    ureq::Agent::config_builder()
        .http_status_as_error(false)
        .timeout_global(Some(limit))
        .build()
        .into()
}

/// GETs `url` + `path` with an optional bearer token; returns status and body.
pub(crate) fn get(url: &str, path: &str, token: Option<&str>) -> (u16, String) {
    let mut req = http().get(format!("{url}{path}"));
    if let Some(t) = token {
        req = req.header("Authorization", &format!("Bearer {t}"));
    }
    let mut resp = req.call().unwrap();
    let status = resp.status().as_u16();
    (status, resp.body_mut().read_to_string().unwrap_or_default())
}

/// POSTs a JSON body to `url/v1/signals` with an optional bearer token; returns status and body.
pub(crate) fn post_signals(url: &str, token: Option<&str>, body: &str) -> (u16, String) {
    let mut req = http()
        .post(format!("{url}/v1/signals"))
        .header("Content-Type", "application/json");
    if let Some(t) = token {
        req = req.header("Authorization", &format!("Bearer {t}"));
    }
    let mut resp = req.send(body).unwrap();
    let status = resp.status().as_u16();
    (status, resp.body_mut().read_to_string().unwrap_or_default())
}
