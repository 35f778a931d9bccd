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

/// A child process killed and reaped on drop.
struct KillOnDrop(Child);

impl KillOnDrop {
    /// Spawns `cmd` with stdout discarded and stderr written to `log`.
    fn spawn_logged(cmd: &mut Command, log: &Path) -> KillOnDrop {
        let child = cmd
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(log).unwrap())
            .spawn()
            .unwrap();
        KillOnDrop(child)
    }
}

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

mod dashboard;
mod deb;
mod fleet;
mod layout;
mod notify;
mod scripts;
mod syscalls;

pub(crate) use deb::build_deb;
