//! Packaging: the systemd units' hardening and validity, the .deb's contents and maintainer
//! scripts, the notify/watchdog protocol the service relies on, and the dashboard.
//!
//! Tests that need root, `systemd-analyze`, `dpkg` or `cargo-deb` skip with a printed reason
//! when the tool is missing, except under CI (`CI` set), where they must run.

use std::io::Write;
use std::os::unix::net::UnixDatagram;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use crate::common::{
    Agent, Coordinator, TOKEN, bin, coordinator_toml, free_port, write_script, write_token,
};

/// Highest `systemd-analyze security` exposure accepted for either unit.
const MAX_EXPOSURE: f64 = 1.5;
const UNITS: [&str; 2] = ["headroom.service", "headroom-coordinator.service"];

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("workspace root")
        .to_path_buf()
}

fn packaging() -> PathBuf {
    repo().join("packaging")
}

fn in_ci() -> bool {
    std::env::var("CI").is_ok_and(|v| !v.is_empty() && v != "0" && v != "false")
}

fn have(tool: &str) -> bool {
    Command::new("sh")
        .args(["-c", &format!("command -v {tool}")])
        .stdout(Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

fn is_root() -> bool {
    rustix::process::geteuid().is_root()
}

/// True when the test may run; prints why not otherwise. Under CI a missing requirement fails.
fn require(tools: &[&str], root: bool, test: &str) -> bool {
    let mut missing: Vec<String> = tools
        .iter()
        .filter(|t| !have(t))
        .map(|t| format!("`{t}` not found"))
        .collect();
    if root && !is_root() {
        missing.push("not running as root".into());
    }
    if missing.is_empty() {
        return true;
    }
    let why = missing.join(", ");
    assert!(!in_ci(), "{test}: required under CI: {why}");
    eprintln!("SKIPPED {test}: {why} (install systemd, dpkg-dev and cargo-deb; see .ci/run)");
    false
}

fn run(cmd: &mut Command) -> Output {
    let out = cmd.output().unwrap_or_else(|e| panic!("{cmd:?}: {e}"));
    assert!(
        out.status.success(),
        "{cmd:?} failed: {}\nstdout:\n{}\nstderr:\n{}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

fn text(out: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

/// Parses `→ Overall exposure level for UNIT: X.Y OK` from `systemd-analyze security`.
fn exposure(report: &str, unit: &str) -> f64 {
    let marker = format!("Overall exposure level for {unit}:");
    let line = report
        .lines()
        .find(|l| l.contains(&marker))
        .unwrap_or_else(|| panic!("no exposure line for {unit} in:\n{report}"));
    let rest = line
        .split_once(&marker)
        .map(|(_, r)| r.trim())
        .unwrap_or("");
    rest.split_whitespace()
        .next()
        .and_then(|v| v.parse().ok())
        .unwrap_or_else(|| panic!("unparsable exposure line: {line}"))
}

fn security(unit_path: &Path) -> String {
    let out = Command::new("systemd-analyze")
        .args(["security", "--offline=yes", "--no-pager"])
        .arg(unit_path)
        .output()
        .expect("systemd-analyze");
    text(&out)
}

#[test]
fn exposure_parser_reads_the_figure() {
    let r = "✗ UMask= ...  0.1\n\n→ Overall exposure level for headroom.service: 1.1 OK 🙂\n";
    assert_eq!(exposure(r, "headroom.service"), 1.1);
    let r = "→ Overall exposure level for x.service: 9.6 UNSAFE 😨";
    assert_eq!(exposure(r, "x.service"), 9.6);
}

#[test]
fn both_units_are_hardened_to_at_most_1_5() {
    if !require(&["systemd-analyze"], false, "units exposure") {
        return;
    }
    for unit in UNITS {
        let report = security(&packaging().join(unit));
        let e = exposure(&report, unit);
        println!("{unit}: exposure {e}");
        assert!(
            e <= MAX_EXPOSURE,
            "{unit}: exposure {e} > {MAX_EXPOSURE}\n{report}"
        );
    }
}

/// The hooks drop-in loosens the coordinator, but the result stays a hardened service.
#[test]
fn coordinator_with_hooks_drop_in_stays_bounded() {
    if !require(&["systemd-analyze"], false, "hooks drop-in exposure") {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let unit = dir.path().join("headroom-coordinator.service");
    std::fs::copy(packaging().join("headroom-coordinator.service"), &unit).unwrap();
    let base = exposure(&security(&unit), "headroom-coordinator.service");
    let d = dir.path().join("headroom-coordinator.service.d");
    std::fs::create_dir(&d).unwrap();
    std::fs::copy(
        packaging().join("coordinator-hooks.conf"),
        d.join("hooks.conf"),
    )
    .unwrap();
    let report = security(&unit);
    let loose = exposure(&report, "headroom-coordinator.service");
    println!("coordinator exposure: {base} default, {loose} with the hooks drop-in");
    assert!(loose > base, "the drop-in was not applied:\n{report}");
    assert!(loose <= 2.0, "hooks drop-in too loose: {loose}\n{report}");
}

#[test]
fn units_declare_notify_watchdog_and_directories() {
    let agent = std::fs::read_to_string(packaging().join("headroom.service")).unwrap();
    for line in [
        "Type=notify",
        "NotifyAccess=main",
        "Restart=on-failure",
        "StateDirectory=headroom",
        "RuntimeDirectory=headroom",
        "RuntimeDirectoryMode=0750",
        "ConfigurationDirectory=headroom",
        "User=headroom",
        "Group=headroom",
        "RestrictAddressFamilies=AF_UNIX AF_NETLINK AF_INET AF_INET6",
        "ExecStart=/usr/bin/headroom agent --config /etc/headroom/headroom.toml",
    ] {
        assert!(
            agent.lines().any(|l| l.trim() == line),
            "headroom.service lacks {line}"
        );
    }
    assert!(agent.lines().any(|l| l.starts_with("WatchdogSec=")));
    let coord = std::fs::read_to_string(packaging().join("headroom-coordinator.service")).unwrap();
    for line in [
        "ExecStart=/usr/bin/headroom-coordinator coordinator --config /etc/headroom/coordinator.toml",
        "Type=notify",
        "NotifyAccess=main",
        "StateDirectory=headroom-coordinator",
        "RestrictAddressFamilies=AF_UNIX AF_INET AF_INET6",
        "Restart=on-failure",
    ] {
        assert!(
            coord.lines().any(|l| l.trim() == line),
            "headroom-coordinator.service lacks {line}"
        );
    }
    // The sandbox must not take away what the agent needs: /proc subsets, private network.
    for forbidden in ["ProcSubset=pid", "PrivateNetwork=yes", "IPAddressDeny=any"] {
        assert!(
            !agent.lines().any(|l| l.trim() == forbidden),
            "headroom.service must not set {forbidden}"
        );
    }
}

// ---------------------------------------------------------------------------------------------
// The notify protocol: READY, watchdog pings only while the pipeline progresses, STOPPING.

struct Notified {
    at: Instant,
    msg: String,
}

fn recv_all(sock: &UnixDatagram, until: Instant, log: &mut Vec<Notified>) {
    let mut buf = [0u8; 4096];
    loop {
        let left = until.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return;
        }
        sock.set_read_timeout(Some(left.min(Duration::from_millis(100))))
            .unwrap();
        match sock.recv(&mut buf) {
            Ok(n) => {
                let msg = String::from_utf8_lossy(&buf[..n]).to_string();
                for m in msg.lines().filter(|l| !l.is_empty()) {
                    log.push(Notified {
                        at: Instant::now(),
                        msg: m.to_string(),
                    });
                }
            }
            Err(e)
                if matches!(
                    e.kind(),
                    std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                ) => {}
            Err(e) => panic!("notify socket: {e}"),
        }
    }
}

/// Waits until a message satisfying `f` arrives, or panics after `secs`.
fn wait_for(
    sock: &UnixDatagram,
    log: &mut Vec<Notified>,
    secs: u64,
    what: &str,
    f: impl Fn(&str) -> bool,
) -> Instant {
    let from = log.len();
    let deadline = Instant::now() + Duration::from_secs(secs);
    while Instant::now() < deadline {
        recv_all(sock, Instant::now() + Duration::from_millis(100), log);
        if let Some(n) = log[from..].iter().find(|n| f(&n.msg)) {
            return n.at;
        }
    }
    let seen: Vec<&str> = log.iter().map(|n| n.msg.as_str()).collect();
    panic!("no {what} within {secs} s; seen: {seen:?}");
}

fn pings_between(log: &[Notified], from: Instant, to: Instant) -> Vec<Instant> {
    log.iter()
        .filter(|n| n.msg == "WATCHDOG=1" && n.at >= from && n.at <= to)
        .map(|n| n.at)
        .collect()
}

/// Longest silence between pings (and the window's edges) in `[from, to]`.
fn longest_gap(pings: &[Instant], from: Instant, to: Instant) -> Duration {
    let mut prev = from;
    let mut gap = Duration::ZERO;
    for &p in pings.iter().chain(std::iter::once(&to)) {
        gap = gap.max(p.saturating_duration_since(prev));
        prev = p;
    }
    gap
}

struct KillOnDrop(Child);

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// The coordinator says READY=1 once it accepts signals, and STOPPING=1 on SIGTERM.
#[test]
fn coordinator_notifies_ready_when_listening_and_stopping_on_sigterm() {
    let dir = tempfile::tempdir().unwrap();
    let notify = dir.path().join("notify.sock");
    let sock = UnixDatagram::bind(&notify).unwrap();
    let token = write_token(dir.path(), "token", TOKEN);
    let config = dir.path().join("c.toml");
    let toml = coordinator_toml(
        "127.0.0.1:0",
        &dir.path().join("state.db"),
        &token,
        "kind = \"dry-run\"",
    );
    std::fs::write(&config, toml).unwrap();
    let notify_env = notify.to_str().unwrap();
    let c = Coordinator::start(dir.path(), &config, &[("NOTIFY_SOCKET", notify_env)]);
    let mut log = Vec::new();
    wait_for(&sock, &mut log, 10, "READY=1", |m| m == "READY=1");
    let accepts = std::net::TcpStream::connect(c.url.trim_start_matches("http://"));
    assert!(accepts.is_ok(), "READY=1 before the listener accepts");
    let pid = c.child.id().to_string();
    assert!(
        Command::new("kill")
            .args(["-TERM", &pid])
            .status()
            .unwrap()
            .success()
    );
    wait_for(&sock, &mut log, 10, "STOPPING=1", |m| m == "STOPPING=1");
}

#[test]
fn notify_ready_watchdog_stops_on_stalled_store_and_stopping_on_sigterm() {
    const WATCHDOG: Duration = Duration::from_secs(2);
    let dir = tempfile::tempdir().unwrap();
    let notify = dir.path().join("notify.sock");
    let sock = UnixDatagram::bind(&notify).unwrap();
    let state = dir.path().join("state");
    let config = dir.path().join("headroom.toml");
    std::fs::write(
        &config,
        format!(
            "[agent]\nstate_directory = \"{}\"\nsocket = \"{}\"\ninterval = \"200ms\"\ndecision_interval = \"1s\"\n",
            state.display(),
            dir.path().join("headroom.sock").display()
        ),
    )
    .unwrap();
    let log_path = dir.path().join("agent.log");
    // As systemd does, WATCHDOG_PID names the main process: the shell execs the agent, so
    // its pid is the agent's (sd-notify ignores WATCHDOG_USEC without a matching pid).
    let child = Command::new("sh")
        .args(["-c", "WATCHDOG_PID=$$ exec \"$0\" agent --config \"$1\""])
        .arg(bin())
        .arg(&config)
        .env("NOTIFY_SOCKET", &notify)
        .env("WATCHDOG_USEC", WATCHDOG.as_micros().to_string())
        .env("RUST_LOG", "info")
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(&log_path).unwrap())
        .spawn()
        .unwrap();
    let mut child = KillOnDrop(child);
    let agent_log = || std::fs::read_to_string(&log_path).unwrap_or_default();
    let mut log = Vec::new();

    wait_for(&sock, &mut log, 30, "READY=1", |m| m == "READY=1");

    // Healthy: pings every WATCHDOG/4 or so, never a silence reaching the watchdog timeout.
    let from = Instant::now();
    recv_all(&sock, from + Duration::from_secs(4), &mut log);
    let to = Instant::now();
    let healthy = pings_between(&log, from, to);
    let gap = longest_gap(&healthy, from, to);
    println!(
        "healthy: {} pings in {:?}, longest gap {gap:?}",
        healthy.len(),
        to - from
    );
    assert!(
        healthy.len() >= 3,
        "too few pings while healthy: {}\n{}",
        healthy.len(),
        agent_log()
    );
    // Expected every WATCHDOG/4; a loaded machine may delay a tick, never to the timeout.
    assert!(gap < WATCHDOG, "healthy gap {gap:?}\n{}", agent_log());

    // Stall the store: hold SQLite's write lock so every commit of the writer waits.
    let db = state.join("headroom.db");
    let conn = rusqlite::Connection::open(&db).unwrap();
    conn.busy_timeout(Duration::from_secs(10)).unwrap();
    conn.execute_batch("BEGIN EXCLUSIVE").unwrap();
    let locked_at = Instant::now();
    // The writer meets the lock with its next batch (decisions every second, rollups every
    // 10 s); from then on the pings must stop. Hold until a silence twice the watchdog
    // timeout is seen, at most 30 s.
    let deadline = locked_at + Duration::from_secs(30);
    let silence = loop {
        recv_all(&sock, Instant::now() + Duration::from_millis(100), &mut log);
        let now = Instant::now();
        let last = pings_between(&log, locked_at, now)
            .last()
            .copied()
            .unwrap_or(locked_at);
        if now - last >= WATCHDOG * 2 {
            break now - last;
        }
        assert!(
            now < deadline,
            "pings went on for 30 s while the store was locked\n{}",
            agent_log()
        );
    };
    let unlocked_at = Instant::now();
    let stalled = pings_between(&log, locked_at, unlocked_at);
    println!(
        "stalled: {} pings in the {:?} the store was locked, then silence for {silence:?} (systemd restarts after {WATCHDOG:?})",
        stalled.len(),
        unlocked_at - locked_at
    );
    conn.execute_batch("COMMIT").unwrap();
    drop(conn);

    // Released: the writer catches up and the pings resume.
    let resumed = wait_for(&sock, &mut log, 20, "WATCHDOG=1 after release", |m| {
        m == "WATCHDOG=1"
    });
    println!("pings resumed {:?} after release", resumed - unlocked_at);
    let from = Instant::now();
    recv_all(&sock, from + Duration::from_secs(3), &mut log);
    let after = pings_between(&log, from, Instant::now());
    assert!(
        after.len() >= 2,
        "pings did not resume regularly\n{}",
        agent_log()
    );

    // SIGTERM: STOPPING=1, then a clean exit.
    rustix::process::kill_process(
        rustix::process::Pid::from_child(&child.0),
        rustix::process::Signal::TERM,
    )
    .unwrap();
    wait_for(&sock, &mut log, 20, "STOPPING=1", |m| m == "STOPPING=1");
    let deadline = Instant::now() + Duration::from_secs(40);
    let status = loop {
        if let Some(s) = child.0.try_wait().unwrap() {
            break s;
        }
        assert!(
            Instant::now() < deadline,
            "agent did not exit after SIGTERM"
        );
        std::thread::sleep(Duration::from_millis(50));
    };
    assert!(status.success(), "exit {status:?}\n{}", agent_log());
    let _ = std::io::stdout().flush();
}

// ---------------------------------------------------------------------------------------------
// The .deb: build, contents, install, upgrade, purge.

/// Builds the .deb from the test's own binary with packaging/build-deb.sh (no release build:
/// the debug binary is staged where cargo-deb's assets expect the release one).
pub(crate) fn build_deb(out: &Path, version: &str) -> PathBuf {
    run(Command::new(packaging().join("build-deb.sh"))
        .arg("--binary")
        .arg(bin())
        .arg("--output")
        .arg(out)
        .args(["--fast", "--deb-version", version]));
    let deb = out.join(format!("headroom_{version}_amd64.deb"));
    let deb = if deb.exists() {
        deb
    } else {
        std::fs::read_dir(out)
            .unwrap()
            .map(|e| e.unwrap().path())
            .find(|p| {
                p.to_string_lossy().contains(version) && p.extension().is_some_and(|e| e == "deb")
            })
            .unwrap_or_else(|| panic!("no .deb for {version} in {}", out.display()))
    };
    assert!(deb.exists());
    deb
}

/// Everything the package must ship, by installed path.
const SHIPPED: &[&str] = &[
    "./usr/bin/headroom",
    "./usr/bin/headroom-coordinator",
    "./etc/headroom/headroom.toml",
    "./usr/lib/systemd/system/headroom.service",
    "./usr/lib/systemd/system/headroom-coordinator.service",
    "./usr/lib/sysusers.d/headroom.conf",
    "./usr/share/headroom/coordinator-hooks.conf",
    "./usr/share/headroom/grafana-dashboard.json",
    "./usr/share/doc/headroom/examples/coordinator.toml",
    "./usr/share/doc/headroom/examples/coordinator-ha.toml",
    "./usr/share/man/man1/headroom.1.gz",
    "./usr/share/man/man1/headroom-agent.1.gz",
    "./usr/share/man/man1/headroom-coordinator.1.gz",
    "./usr/share/bash-completion/completions/headroom",
    "./usr/share/zsh/vendor-completions/_headroom",
    "./usr/share/fish/vendor_completions.d/headroom.fish",
];

fn check_contents(deb: &Path) {
    let list = text(&run(Command::new("dpkg-deb").arg("-c").arg(deb)));
    for path in SHIPPED {
        assert!(
            list.lines().any(|l| l.ends_with(path)),
            "{path} missing from the .deb:\n{list}"
        );
    }
    let bin = list
        .lines()
        .find(|l| l.ends_with("./usr/bin/headroom"))
        .unwrap();
    assert!(
        bin.starts_with("-rwxr-xr-x root/root") || bin.starts_with("-rwxr-xr-x 0/0"),
        "{bin}"
    );
    let info = text(&run(Command::new("dpkg-deb").arg("-I").arg(deb)));
    for needle in [
        "Package: headroom",
        "Depends:",
        "postinst",
        "postrm",
        "prerm",
        "conffiles",
    ] {
        assert!(info.contains(needle), "dpkg-deb -I lacks {needle}:\n{info}");
    }
    let ctrl = tempfile::tempdir().unwrap();
    run(Command::new("dpkg-deb").arg("-e").arg(deb).arg(ctrl.path()));
    let conffiles = std::fs::read_to_string(ctrl.path().join("conffiles")).unwrap();
    assert_eq!(conffiles.trim(), "/etc/headroom/headroom.toml");
    for script in ["postinst", "prerm", "postrm"] {
        run(Command::new("sh").arg("-n").arg(ctrl.path().join(script)));
    }
}

/// The shipped conffile is the text `headroom config default` prints, and it checks clean.
fn check_conffile(root: &Path, bin: &Path) {
    let conf = root.join("etc/headroom/headroom.toml");
    let shipped = std::fs::read_to_string(&conf).unwrap();
    let printed = text(&run(Command::new(bin).args(["config", "default"])));
    assert_eq!(
        shipped.trim_end(),
        printed.trim_end(),
        "conffile differs from `headroom config default`"
    );
    let out = run(Command::new(bin).args(["config", "check"]).arg(&conf));
    assert!(text(&out).contains("OK"), "{}", text(&out));
}

#[test]
fn deb_builds_with_contents_and_runs_from_a_throwaway_root() {
    if !require(
        &["cargo-deb", "dpkg-deb", "systemd-analyze"],
        false,
        "deb build",
    ) {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let deb = build_deb(dir.path(), "0.1.0-1");
    check_contents(&deb);
    let root = dir.path().join("root");
    run(Command::new("dpkg-deb").arg("-x").arg(&deb).arg(&root));
    let bin = root.join("usr/bin/headroom");
    let version = text(&run(Command::new(&bin).arg("--version")));
    assert!(version.starts_with("headroom "), "{version}");
    // `headroom coordinator` runs the coordinator binary shipped next to it.
    let out = Command::new(&bin)
        .args(["coordinator", "--config", "/nonexistent/coordinator.toml"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(64), "{out:?}");
    check_conffile(&root, &bin);
    // The man page renders. (`systemd-analyze verify` needs the units' world — sysinit.target,
    // /bin/kill, man — so it runs on the real install in `deb_installs_upgrades_and_purges`.)
    let man = text(&run(Command::new("sh").arg("-c").arg(format!(
        "gzip -dc {} | head -c 4000",
        root.join("usr/share/man/man1/headroom-agent.1.gz")
            .display()
    ))));
    assert!(man.contains(".TH"), "not a man page:\n{man}");
    let bash = std::fs::read_to_string(root.join("usr/share/bash-completion/completions/headroom"))
        .unwrap();
    assert!(
        bash.contains("headroom") && bash.contains("complete"),
        "bash completion"
    );
}

/// A directory moved out of the way for the life of the value and moved back on drop.
struct SetAside {
    path: &'static Path,
    kept: Option<PathBuf>,
}

impl SetAside {
    fn new(path: &'static str) -> Self {
        let path = Path::new(path);
        let kept = path.exists().then(|| {
            let kept = path.with_extension(format!("test-set-aside-{}", std::process::id()));
            std::fs::rename(path, &kept).unwrap();
            eprintln!(
                "{} set aside as {} for the test",
                path.display(),
                kept.display()
            );
            kept
        });
        SetAside { path, kept }
    }
}

impl Drop for SetAside {
    fn drop(&mut self) {
        if let Some(kept) = &self.kept {
            let _ = std::fs::remove_dir_all(self.path);
            if let Err(e) = std::fs::rename(kept, self.path) {
                eprintln!(
                    "could not put {} back from {}: {e}",
                    self.path.display(),
                    kept.display()
                );
            }
        }
    }
}

/// While alive, a `policy-rc.d` that forbids starting services (`deb-systemd-invoke` honours
/// it), so installing the package does the same with or without a running systemd. One the
/// machine already has is left as it is.
struct NoServiceStarts(bool);

impl NoServiceStarts {
    const PATH: &str = "/usr/sbin/policy-rc.d";

    fn new() -> Self {
        if Path::new(Self::PATH).exists() {
            return NoServiceStarts(false);
        }
        write_script(Path::new(Self::PATH), "#!/bin/sh\nexit 101\n");
        NoServiceStarts(true)
    }
}

impl Drop for NoServiceStarts {
    fn drop(&mut self) {
        if self.0 {
            let _ = std::fs::remove_file(Self::PATH);
        }
    }
}

/// Purges the package on drop if it is still on the machine: a test that fails half-way
/// leaves no package (and no users' state) behind for the next run.
struct PurgeOnDrop;

impl Drop for PurgeOnDrop {
    fn drop(&mut self) {
        let status = Command::new("dpkg-query")
            .args(["-W", "-f=${Status}", "headroom"])
            .output();
        if status.is_ok_and(|o| {
            let s = String::from_utf8_lossy(&o.stdout).into_owned();
            !s.is_empty() && !s.ends_with("not-installed")
        }) {
            let _ = Command::new("dpkg").args(["--purge", "headroom"]).output();
        }
    }
}

/// Installs with dpkg, runs the installed binary, verifies the units where ExecStart points,
/// upgrades (keeping a local conffile edit), removes, and purges.
#[test]
fn deb_installs_upgrades_and_purges() {
    let _host = crate::common::host_packages();
    if !require(
        &["cargo-deb", "dpkg", "dpkg-deb", "systemd-analyze"],
        true,
        "dpkg -i",
    ) {
        return;
    }
    let installed = Command::new("dpkg-query")
        .args(["-W", "-f=${Status}", "headroom"])
        .output()
        .unwrap();
    // Nothing known, or known and purged ("unknown ok not-installed"): the test may install.
    let status = String::from_utf8_lossy(&installed.stdout).into_owned();
    if !status.is_empty() && !status.ends_with("not-installed") {
        assert!(
            !in_ci(),
            "the headroom package is on this machine: {status}"
        );
        eprintln!("SKIPPED dpkg -i: the headroom package is on this machine ({status})");
        return;
    }
    // State or configuration left by an agent run by hand (not by the package): kept aside
    // while the test installs and purges, put back after, pass or fail.
    let _kept = ["/var/lib/headroom", "/etc/headroom"].map(SetAside::new);
    let _no_starts = NoServiceStarts::new();
    let _purge = PurgeOnDrop;
    let dir = tempfile::tempdir().unwrap();
    let v1 = build_deb(dir.path(), "0.1.0-1");
    let v2 = build_deb(dir.path(), "0.1.0-2");
    let dpkg = |args: &[&str], deb: Option<&Path>| {
        let mut c = Command::new("dpkg");
        c.args(["--force-confold"]).args(args);
        if let Some(d) = deb {
            c.arg(d);
        }
        run(&mut c)
    };

    dpkg(&["-i"], Some(&v1));
    let bin = Path::new("/usr/bin/headroom");
    assert!(text(&run(Command::new(bin).arg("--version"))).starts_with("headroom "));
    check_conffile(Path::new("/"), bin);
    run(Command::new("getent").args(["passwd", "headroom"]));
    run(Command::new("getent").args(["group", "headroom"]));
    run(Command::new("getent").args(["passwd", "headroom-coordinator"]));
    // verify also checks Documentation= with man(1); images without man-db skip that part.
    let man = if have("man") { "--man=yes" } else { "--man=no" };
    let verify = run(Command::new("systemd-analyze")
        .args(["verify", man])
        .args(UNITS.map(|u| format!("/usr/lib/systemd/system/{u}"))));
    println!("systemd-analyze verify: ok {}", text(&verify));
    for unit in UNITS {
        let e = exposure(
            &security(&Path::new("/usr/lib/systemd/system").join(unit)),
            unit,
        );
        assert!(e <= MAX_EXPOSURE, "installed {unit}: exposure {e}");
    }
    // Enabled on first install (the symlink exists without a running systemd too).
    assert!(
        Path::new("/etc/systemd/system/multi-user.target.wants/headroom.service").exists(),
        "headroom.service not enabled"
    );

    // Upgrade: a local edit of the conffile survives; state survives.
    let conf = Path::new("/etc/headroom/headroom.toml");
    let mut edited = std::fs::read_to_string(conf).unwrap();
    edited.push_str("\n# local edit kept across upgrades\n");
    std::fs::write(conf, &edited).unwrap();
    std::fs::create_dir_all("/var/lib/headroom").unwrap();
    std::fs::write("/var/lib/headroom/marker", "state").unwrap();
    dpkg(&["-i"], Some(&v2));
    assert_eq!(std::fs::read_to_string(conf).unwrap(), edited);
    assert!(Path::new("/var/lib/headroom/marker").exists());
    let status = text(&run(Command::new("dpkg-query").args([
        "-W",
        "-f=${Version} ${Status}",
        "headroom",
    ])));
    assert_eq!(status, "0.1.0-2 install ok installed");

    // Remove keeps configuration and state; purge deletes both.
    dpkg(&["-r", "headroom"], None);
    assert!(!bin.exists());
    assert!(conf.exists() && Path::new("/var/lib/headroom/marker").exists());
    dpkg(&["--purge", "headroom"], None);
    for gone in [
        "/etc/headroom",
        "/var/lib/headroom",
        "/etc/systemd/system/multi-user.target.wants/headroom.service",
    ] {
        assert!(!Path::new(gone).exists(), "{gone} left after purge");
    }
}

// ---------------------------------------------------------------------------------------------
// sock_diag without privileges: the service runs as an ordinary user with no capabilities.

#[test]
fn unprivileged_agent_reads_accept_queue_of_a_root_socket() {
    if !require(&["setpriv"], true, "unprivileged sock_diag") {
        return;
    }
    use std::os::unix::fs::PermissionsExt;
    // A root-owned listener with one connection waiting to be accepted.
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let _waiting = std::net::TcpStream::connect(("127.0.0.1", port)).unwrap();

    let dir = tempfile::tempdir().unwrap();
    std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o777)).unwrap();
    let config = dir.path().join("headroom.toml");
    let socket = dir.path().join("headroom.sock");
    std::fs::write(
        &config,
        format!(
            "[agent]\nstate_directory = \"{}\"\nsocket = \"{}\"\ninterval = \"200ms\"\n[sources]\nsock_diag = true\n",
            dir.path().join("state").display(),
            socket.display()
        ),
    )
    .unwrap();
    std::fs::set_permissions(&config, std::fs::Permissions::from_mode(0o644)).unwrap();
    let log_path = dir.path().join("agent.log");
    let setpriv = [
        "--reuid=nobody",
        "--regid=nogroup",
        "--clear-groups",
        "--inh-caps=-all",
        "--bounding-set=-all",
        "--no-new-privs",
    ];
    // Like PrivateUsers=yes: a user namespace of its own, where the kernel still answers
    // sock_diag for the host's sockets. Skipped where user namespaces are disabled.
    let userns = ["unshare", "--user", "--map-current-user"];
    let userns_ok = Command::new("setpriv")
        .args(setpriv)
        .args(userns)
        .arg("true")
        .status()
        .is_ok_and(|s| s.success());
    if !userns_ok {
        println!("user namespaces unavailable: running without one");
    }
    let child = Command::new("setpriv")
        .args(setpriv)
        .args(if userns_ok { &userns[..] } else { &[] })
        .arg(bin())
        .args(["agent", "--config"])
        .arg(&config)
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(&log_path).unwrap())
        .spawn()
        .unwrap();
    let _child = KillOnDrop(child);
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let out = Command::new(bin())
            .args(["status", "--json", "--socket"])
            .arg(&socket)
            .output()
            .unwrap();
        if out.status.success() {
            let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
            let found = v["latest"]["listeners"].as_array().and_then(|ls| {
                ls.iter()
                    .find(|l| l["port"] == port && l["depth"].as_u64() >= Some(1))
                    .cloned()
            });
            let uid = v["pid"].as_u64().and_then(|pid| {
                std::fs::read_to_string(format!("/proc/{pid}/status"))
                    .ok()
                    .and_then(|s| {
                        s.lines()
                            .find(|l| l.starts_with("Uid:"))
                            .map(|l| l.to_string())
                    })
            });
            if let Some(l) = found {
                println!("as {uid:?} (user namespace: {userns_ok}): listener {l}");
                assert!(
                    uid.is_some_and(|u| !u.contains("\t0\t")),
                    "agent ran as root"
                );
                let accept = v["sources"]
                    .as_array()
                    .and_then(|s| s.iter().find(|s| s["name"] == "accept_queue").cloned())
                    .unwrap();
                assert_eq!(accept["state"], "ok", "{accept}");
                let log = std::fs::read_to_string(&log_path).unwrap_or_default();
                assert!(
                    !log.contains("sock_diag unavailable"),
                    "fell back to /proc/net/tcp:\n{log}"
                );
                return;
            }
        }
        assert!(
            Instant::now() < deadline,
            "the unprivileged agent never saw port {port} with a queued connection\n{}\n{}",
            text(&out),
            std::fs::read_to_string(&log_path).unwrap_or_default()
        );
        std::thread::sleep(Duration::from_millis(200));
    }
}

// ---------------------------------------------------------------------------------------------
// The Grafana dashboard queries metrics that exist.

fn dashboard_metrics() -> Vec<String> {
    let text = std::fs::read_to_string(packaging().join("grafana-dashboard.json")).unwrap();
    let dash: serde_json::Value = serde_json::from_str(&text).expect("dashboard is JSON");
    let panels = dash["panels"].as_array().expect("panels");
    let mut ids = std::collections::HashSet::new();
    let mut names = Vec::new();
    for p in panels {
        assert!(
            ids.insert(p["id"].as_u64().expect("panel id")),
            "duplicate panel id"
        );
        for t in p["targets"].as_array().into_iter().flatten() {
            let expr = t["expr"].as_str().expect("expr");
            let mut rest = expr;
            while let Some(i) = rest.find("headroom_") {
                let tail = &rest[i..];
                let end = tail
                    .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
                    .unwrap_or(tail.len());
                names.push(tail[..end].to_string());
                rest = &tail[end..];
            }
        }
    }
    names.sort();
    names.dedup();
    names
}

/// The agent's families every scrape carries (forecast, decision and demand appear later).
const ALWAYS: &[&str] = &[
    "samples_total",
    "ring_dropped_total",
    "late_ticks_total",
    "source_up",
    "health",
    "capacity",
    "committed_seq",
    "store_backlog_batches",
    "ledger_observed_seconds_total",
    "ledger_instance_seconds_total",
    "ledger_short_seconds_total",
    "ledger_forecasts_scored_total",
    "ledger_forecast_zero_actuals_total",
    "ledger_forecast_abs_error_total",
    "ledger_forecast_actual_total",
    "ledger_forecast_pct_error_total",
    "ledger_p90_covered_total",
];

#[test]
fn dashboard_queries_metrics_the_agent_and_coordinator_export() {
    let names = dashboard_metrics();
    assert!(names.len() >= 20, "{names:?}");
    let agent_src = std::fs::read_to_string(repo().join("agent/src/metrics.rs")).unwrap();
    let coord_src = std::fs::read_to_string(repo().join("coordinator/src/metrics.rs")).unwrap();
    assert!(
        coord_src.contains("headroom_coordinator"),
        "the coordinator's metric prefix"
    );
    for name in &names {
        if let Some(stem) = name.strip_prefix("headroom_coordinator_") {
            let stem = ["_total", "_bucket", "_sum", "_count"]
                .iter()
                .find_map(|s| stem.strip_suffix(s))
                .unwrap_or(stem);
            assert!(
                coord_src.contains(&format!("\"{stem}\"")),
                "dashboard queries {name}, which the coordinator does not export"
            );
        } else {
            let stem = name.strip_prefix("headroom_").unwrap();
            assert!(
                agent_src.contains(&format!("\"{stem}\"")),
                "dashboard queries {name}, which the agent does not export"
            );
        }
    }

    // Live: the agent's loopback endpoint serves the families the dashboard relies on.
    let port = free_port();
    let mut agent = Agent::new(&format!("[metrics]\nlisten = \"127.0.0.1:{port}\"\n"));
    agent.spawn();
    let deadline = Instant::now() + Duration::from_secs(20);
    let body = loop {
        use std::io::Read;
        if let Ok(mut s) = std::net::TcpStream::connect(("127.0.0.1", port)) {
            s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
            let _ = s.write_all(
                b"GET /metrics HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n",
            );
            let mut body = String::new();
            let _ = s.read_to_string(&mut body);
            if body.contains("headroom_samples_total") && body.contains("headroom_source_up{") {
                break body;
            }
        }
        assert!(Instant::now() < deadline, "no /metrics on 127.0.0.1:{port}");
        std::thread::sleep(Duration::from_millis(200));
    };
    for family in ALWAYS {
        assert!(
            body.contains(&format!("# TYPE headroom_{family} ")),
            "/metrics lacks headroom_{family}:\n{body}"
        );
        assert!(
            names.contains(&format!("headroom_{family}")),
            "dashboard never shows {family}"
        );
    }
}

// ---------------------------------------------------------------------------------------------
// The agent's system calls fit the unit's SystemCallFilter (a denied call would fail with
// EPERM under systemd). Traced with strace through start, sampling, sock_diag, a CLI query, a
// /metrics scrape, signals sent to a coordinator over HTTP, SIGHUP and SIGTERM.

/// `systemd-analyze syscall-filter` groups, expanded to system call names.
fn syscall_groups() -> std::collections::HashMap<String, Vec<String>> {
    let out = run(Command::new("systemd-analyze").args(["syscall-filter", "--no-pager"]));
    let mut groups: std::collections::HashMap<String, Vec<String>> = Default::default();
    let mut cur: Option<String> = None;
    for line in String::from_utf8_lossy(&out.stdout).lines() {
        let t = line.trim();
        if t.is_empty() || t.starts_with('#') {
            continue;
        }
        if !line.starts_with(' ') && t.starts_with('@') {
            cur = Some(t.split_whitespace().next().unwrap().to_string());
            groups.insert(cur.clone().unwrap(), Vec::new());
        } else if let Some(c) = &cur {
            groups
                .get_mut(c)
                .unwrap()
                .push(t.split_whitespace().next().unwrap().to_string());
        }
    }
    groups
}

fn expand(
    groups: &std::collections::HashMap<String, Vec<String>>,
    item: &str,
    out: &mut std::collections::HashSet<String>,
) {
    if !item.starts_with('@') {
        out.insert(item.to_string());
        return;
    }
    for m in groups
        .get(item)
        .unwrap_or_else(|| panic!("unknown group {item}"))
    {
        expand(groups, m, out);
    }
}

/// The allow list a unit's `SystemCallFilter=` lines produce (allow list first, then `~` denials).
fn allowed_syscalls(unit: &str) -> std::collections::HashSet<String> {
    let groups = syscall_groups();
    let mut allowed = std::collections::HashSet::new();
    expand(&groups, "@default", &mut allowed);
    for line in unit.lines() {
        let Some(v) = line.trim().strip_prefix("SystemCallFilter=") else {
            continue;
        };
        let (deny, list) = match v.strip_prefix('~') {
            Some(rest) => (true, rest),
            None => (false, v),
        };
        let mut set = std::collections::HashSet::new();
        for item in list.split_whitespace() {
            expand(&groups, item, &mut set);
        }
        if deny {
            allowed.retain(|s| !set.contains(s));
        } else {
            allowed.extend(set);
        }
    }
    allowed
}

/// A coordinator stand-in: answers up to 1000 requests 200 `{}` and counts them.
fn fake_coordinator() -> (u16, std::sync::Arc<std::sync::atomic::AtomicUsize>) {
    use std::io::Read;
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let hits = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let counter = hits.clone();
    std::thread::spawn(move || {
        for conn in listener.incoming().take(1000) {
            let Ok(mut c) = conn else { continue };
            let _ = c.set_read_timeout(Some(Duration::from_secs(2)));
            let mut buf = [0u8; 65536];
            let _ = c.read(&mut buf);
            counter.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            let _ = c.write_all(
                b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 2\r\nConnection: close\r\n\r\n{}",
            );
        }
    });
    (port, hits)
}

#[test]
fn agent_syscalls_fit_the_units_filter() {
    if !require(&["strace", "systemd-analyze"], false, "syscall filter") {
        return;
    }
    use std::os::unix::fs::PermissionsExt;
    let unit = std::fs::read_to_string(packaging().join("headroom.service")).unwrap();
    let allowed = allowed_syscalls(&unit);
    assert!(allowed.contains("read") && !allowed.contains("setuid"));

    let (coord_port, hits) = fake_coordinator();
    let metrics_port = free_port();
    let dir = tempfile::tempdir().unwrap();
    std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o777)).unwrap();
    let token = dir.path().join("token");
    std::fs::write(&token, format!("{TOKEN}\n")).unwrap();
    std::fs::set_permissions(&token, std::fs::Permissions::from_mode(0o640)).unwrap();
    let socket = dir.path().join("headroom.sock");
    let config = dir.path().join("headroom.toml");
    std::fs::write(
        &config,
        format!(
            "[agent]\nstate_directory = \"{}\"\nsocket = \"{}\"\ninterval = \"200ms\"\ndecision_interval = \"1s\"\n\
             [metrics]\nlisten = \"127.0.0.1:{metrics_port}\"\n\
             [coordinator]\nurls = [\"http://127.0.0.1:{coord_port}\"]\ntoken_file = \"{}\"\n",
            dir.path().join("state").display(),
            socket.display(),
            token.display()
        ),
    )
    .unwrap();
    std::fs::set_permissions(&config, std::fs::Permissions::from_mode(0o644)).unwrap();
    let trace = dir.path().join("trace");
    let mut cmd = Command::new("strace");
    cmd.args(["-f", "-qq", "-o"]).arg(&trace);
    // As the service would: an ordinary user (SQLite, for one, behaves differently as root).
    if is_root() {
        rustix::fs::chown(
            &token,
            Some(rustix::fs::Uid::from_raw(65534)),
            Some(rustix::fs::Gid::from_raw(65534)),
        )
        .unwrap();
        cmd.args([
            "setpriv",
            "--reuid=65534",
            "--regid=65534",
            "--clear-groups",
            "--inh-caps=-all",
        ]);
    }
    let log_path = dir.path().join("agent.log");
    let child = cmd
        .arg(bin())
        .args(["agent", "--config"])
        .arg(&config)
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(&log_path).unwrap())
        .spawn()
        .unwrap();
    let mut child = KillOnDrop(child);
    let agent_log = || std::fs::read_to_string(&log_path).unwrap_or_default();

    // Wait until the agent answers, has sent a signal and served /metrics.
    let deadline = Instant::now() + Duration::from_secs(60);
    let mut pid = None;
    while pid.is_none() || hits.load(std::sync::atomic::Ordering::Relaxed) == 0 {
        assert!(
            Instant::now() < deadline,
            "agent not ready or nothing sent to the coordinator\n{}",
            agent_log()
        );
        std::thread::sleep(Duration::from_millis(200));
        let out = Command::new(bin())
            .args(["status", "--json", "--socket"])
            .arg(&socket)
            .output()
            .unwrap();
        if out.status.success() {
            let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
            pid = v["pid"].as_i64();
        }
    }
    {
        use std::io::Read;
        let mut s = std::net::TcpStream::connect(("127.0.0.1", metrics_port)).unwrap();
        s.write_all(b"GET /metrics HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
            .unwrap();
        let mut body = String::new();
        s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
        let _ = s.read_to_string(&mut body);
        assert!(body.contains("headroom_samples_total"));
    }
    let agent = rustix::process::Pid::from_raw(pid.unwrap() as i32).unwrap();
    rustix::process::kill_process(agent, rustix::process::Signal::HUP).unwrap();
    std::thread::sleep(Duration::from_secs(1));
    rustix::process::kill_process(agent, rustix::process::Signal::TERM).unwrap();
    let deadline = Instant::now() + Duration::from_secs(40);
    while child.0.try_wait().unwrap().is_none() {
        assert!(Instant::now() < deadline, "agent did not stop");
        std::thread::sleep(Duration::from_millis(50));
    }

    // Only the agent's own calls: from its execve on.
    let trace = std::fs::read_to_string(&trace).unwrap();
    let exec = trace
        .find(&format!("execve(\"{}\"", bin()))
        .expect("agent execve in trace");
    let mut used = std::collections::BTreeMap::<String, usize>::new();
    for line in trace[exec..].lines() {
        let rest = line
            .split_once(char::is_whitespace)
            .map(|(_, r)| r.trim_start())
            .unwrap_or("");
        let name: String = rest
            .chars()
            .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
            .collect();
        if !name.is_empty() && rest[name.len()..].starts_with('(') {
            *used.entry(name).or_default() += 1;
        }
    }
    let denied: Vec<&String> = used.keys().filter(|s| !allowed.contains(*s)).collect();
    println!(
        "agent used {} distinct system calls; outside the filter: {denied:?}",
        used.len()
    );
    assert!(used.len() > 20, "trace too small: {used:?}");
    assert!(
        used.contains_key("socket") && trace.contains("NETLINK_SOCK_DIAG"),
        "sock_diag not exercised"
    );
    assert!(
        trace.contains(&format!("sin_port=htons({coord_port})")),
        "no connection to the coordinator traced"
    );
    assert!(
        denied.is_empty(),
        "system calls the unit's SystemCallFilter would refuse: {denied:?}\n{}",
        agent_log()
    );
}

// ---------------------------------------------------------------------------------------------
// Maintainer scripts with systemd running: in a private mount namespace /run/systemd/system
// exists, and systemctl, deb-systemd-helper and systemd-sysusers are stand-ins that log.

fn run_script_with_systemd(bin: &Path, log: &Path, script: &str, args: &[&str]) {
    let path = format!("{}:/usr/sbin:/usr/bin:/sbin:/bin", bin.display());
    let inner = format!(
        "mount -t tmpfs tmpfs /run/systemd && mkdir /run/systemd/system && PATH={path} sh {} {}",
        packaging().join("debian").join(script).display(),
        args.iter()
            .map(|a| format!("'{a}'"))
            .collect::<Vec<_>>()
            .join(" ")
    );
    run(Command::new("unshare")
        .args(["--mount", "--propagation", "private", "sh", "-c"])
        .arg(inner)
        .env("STANDIN_LOG", log));
}

#[test]
fn maintainer_scripts_drive_systemd_on_install_upgrade_and_removal() {
    if !require(&["unshare"], true, "maintainer scripts under systemd") {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let bin = dir.path().join("bin");
    std::fs::create_dir(&bin).unwrap();
    for tool in [
        "systemctl",
        "deb-systemd-helper",
        "deb-systemd-invoke",
        "systemd-sysusers",
    ] {
        write_script(
            &bin.join(tool),
            &format!("#!/bin/sh\necho \"{tool} $*\" >> \"$STANDIN_LOG\"\nexit 0\n"),
        );
    }
    let log = dir.path().join("log");
    let take = || {
        let s = std::fs::read_to_string(&log).unwrap_or_default();
        let _ = std::fs::remove_file(&log);
        s
    };

    run_script_with_systemd(&bin, &log, "postinst", &["configure", ""]);
    let install = take();
    println!("install:\n{install}");
    for line in [
        "systemd-sysusers /usr/lib/sysusers.d/headroom.conf",
        "deb-systemd-helper unmask headroom.service",
        "systemctl --system daemon-reload",
        "deb-systemd-invoke start headroom.service",
    ] {
        assert!(
            install.lines().any(|l| l == line),
            "install lacks `{line}`:\n{install}"
        );
    }
    assert!(
        !install.contains("enable headroom-coordinator"),
        "{install}"
    );
    assert!(!install.contains("try-restart"), "{install}");

    run_script_with_systemd(&bin, &log, "postinst", &["configure", "0.1.0-1"]);
    let upgrade = take();
    println!("upgrade:\n{upgrade}");
    for line in [
        "deb-systemd-invoke try-restart headroom.service",
        "deb-systemd-invoke try-restart headroom-coordinator.service",
    ] {
        assert!(
            upgrade.lines().any(|l| l == line),
            "upgrade lacks `{line}`:\n{upgrade}"
        );
    }
    assert!(!upgrade.contains(" start "), "{upgrade}");

    run_script_with_systemd(&bin, &log, "prerm", &["upgrade", "0.1.0-2"]);
    assert!(
        !take().contains("stop"),
        "prerm stopped the service on upgrade"
    );
    run_script_with_systemd(&bin, &log, "prerm", &["remove"]);
    let remove = take();
    assert!(
        remove.contains("deb-systemd-invoke stop headroom.service headroom-coordinator.service"),
        "{remove}"
    );
    run_script_with_systemd(&bin, &log, "postrm", &["remove"]);
    let removed = take();
    assert!(
        removed.contains("systemctl --system daemon-reload"),
        "{removed}"
    );
    assert!(removed.contains("deb-systemd-helper mask"), "{removed}");
}

/// Defined code symbols of `bin`: (address, size, name), by address.
fn code_symbols(bin: &str) -> Vec<(u64, u64, String)> {
    let out = run(Command::new("nm").args(["--defined-only", "-S", "-n", bin]));
    text(&out)
        .lines()
        .filter_map(|l| {
            let f: Vec<&str> = l.split_whitespace().collect();
            match f[..] {
                [a, s, t, n] if "tTwW".contains(t) => Some((
                    u64::from_str_radix(a, 16).ok()?,
                    u64::from_str_radix(s, 16).ok()?,
                    n.to_string(),
                )),
                _ => None,
            }
        })
        .collect()
}

/// A symbol's name as agent/link/hot-functions.txt lists it: without Rust's legacy hash
/// (`17h` and 16 hex digits, then `E`) or the numbered suffix of a local copy (`.123`,
/// `.llvm.123`), as agent/link/order-link.sh matches them.
fn symbol_key(name: &str) -> String {
    let mut k = name.to_string();
    let hash = k.match_indices("17h").map(|(i, _)| i).find(|&i| {
        k.len() >= i + 20
            && k.as_bytes()[i + 19] == b'E'
            && k[i + 3..i + 19].bytes().all(|b| b.is_ascii_hexdigit())
    });
    if let Some(i) = hash {
        k.replace_range(i..i + 20, "");
    }
    if let Some(dot) = k.rfind('.')
        && dot + 1 < k.len()
        && k[dot + 1..].bytes().all(|b| b.is_ascii_digit())
    {
        k.truncate(dot);
        if k.ends_with(".llvm") {
            k.truncate(k.len() - ".llvm".len());
        }
    }
    k
}

#[test]
fn symbol_keys_drop_hashes_and_local_suffixes() {
    assert_eq!(
        symbol_key("_ZN14headroom_model8forecast10Forecaster7observe17he23b0503ce66a6c5E"),
        "_ZN14headroom_model8forecast10Forecaster7observe"
    );
    assert_eq!(
        symbol_key("_RNvXs_NtCs1_3std2io5Write9write_str.8"),
        "_RNvXs_NtCs1_3std2io5Write9write_str"
    );
    assert_eq!(symbol_key("foo17habcE.llvm.123"), "foo17habcE");
    assert_eq!(symbol_key("btreeNext.constprop.0"), "btreeNext.constprop");
    assert_eq!(symbol_key("sqlite3VdbeExec"), "sqlite3VdbeExec");
}

#[test]
fn agent_binary_lays_out_the_functions_it_runs_together() {
    if !require(
        &["nm"],
        false,
        "agent_binary_lays_out_the_functions_it_runs_together",
    ) {
        return;
    }
    let list = std::fs::read_to_string(repo().join("agent/link/hot-functions.txt"))
        .expect("agent/link/hot-functions.txt");
    let hot: std::collections::HashSet<&str> = list
        .lines()
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .collect();
    let symbols = code_symbols(bin());
    let listed: Vec<&(u64, u64, String)> = symbols
        .iter()
        .filter(|(_, size, name)| *size > 0 && hot.contains(symbol_key(name).as_str()))
        .collect();
    assert!(
        listed.len() >= hot.len() / 4,
        "only {} of the {} listed functions found in {}: is agent/link/hot-functions.txt current?",
        listed.len(),
        hot.len(),
        bin()
    );
    let size: u64 = listed.iter().map(|s| s.1).sum();
    let first = listed.iter().map(|s| s.0).min().expect("some listed");
    let last = listed.iter().map(|s| s.0 + s.1).max().expect("some listed");
    let text_start = symbols.first().map(|s| s.0).expect("code symbols");
    // Laid out together at the start of the code: the span they cover is little more than
    // their own size (alignment padding), where an unordered link scatters them over the text.
    assert!(
        last - first <= size + size / 4,
        "{} listed functions ({size} bytes) span {} bytes",
        listed.len(),
        last - first
    );
    assert!(
        first - text_start <= 4096,
        "listed functions start {} bytes into the code",
        first - text_start
    );
}

// ---------------------------------------------------------------------------------------------
// The fleet install files: the Ansible roles pass ansible-lint, the cloud-init script passes
// shellcheck, the user data passes cloud-init's schema and inlines the script unchanged.

#[test]
fn fleet_install_files_pass_their_checkers() {
    if !require(
        &["ansible-lint", "shellcheck", "cloud-init"],
        false,
        "fleet files",
    ) {
        return;
    }
    let script = packaging().join("cloud-init/headroom-bootstrap.sh");
    let user_data = packaging().join("cloud-init/user-data.yaml");
    run(Command::new("shellcheck").arg(&script));
    let schema = run(Command::new("cloud-init")
        .args(["schema", "--config-file"])
        .arg(&user_data));
    assert!(
        text(&schema).contains("Valid cloud-config"),
        "{}",
        text(&schema)
    );
    // The script as user-data.yaml inlines it: its block under the script's path, dedented.
    let yaml = std::fs::read_to_string(&user_data).unwrap();
    let block = yaml
        .split_once("path: /usr/local/sbin/headroom-bootstrap")
        .and_then(|(_, rest)| rest.split_once("content: |\n"))
        .map(|(_, rest)| rest)
        .expect("the script's block");
    let inlined: String = block
        .lines()
        .take_while(|l| l.is_empty() || l.starts_with("      "))
        .map(|l| format!("{}\n", l.strip_prefix("      ").unwrap_or(l)))
        .collect();
    assert_eq!(
        inlined.trim_end(),
        std::fs::read_to_string(&script).unwrap().trim_end(),
        "user-data.yaml inlines packaging/cloud-init/headroom-bootstrap.sh unchanged"
    );
    let lint = Command::new("ansible-lint")
        .current_dir(packaging().join("ansible"))
        .env("NO_COLOR", "1")
        .output()
        .unwrap();
    assert!(
        lint.status.success(),
        "ansible-lint: {}{}",
        text(&lint),
        String::from_utf8_lossy(&lint.stderr)
    );
}
