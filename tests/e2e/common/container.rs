//! A real systemd, booted by `systemd-nspawn` in a throwaway container whose root is an overlay
//! of this machine's own: the lower layer is `/`, the upper and work layers live on a tmpfs, so
//! nothing the container does reaches the machine. The machine's own enabled services are masked
//! in the upper layer and cloud-init is disabled there, so the container boots only systemd's
//! basics. Commands run inside with `nsenter -t LEADER -a`.
//!
//! Needs root and Debian's `systemd-container`; shutdown is bounded (SIGTERM to nspawn, which
//! powers the container off; SIGKILL after 30 s), and the mounts are undone before the
//! directory is removed.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::Duration;

use super::wait_for;

/// Why a test cannot run without a container.
const NEEDS_NSPAWN: &str = "this test needs root and systemd-nspawn: apt-get install systemd-container (see .ci/apt-packages.txt)";

/// A booted container; powered off and unmounted on drop.
pub(crate) struct Container {
    nspawn: Child,
    leader: u32,
    dir: tempfile::TempDir,
}

impl Container {
    /// Boots the container and waits until systemd reports it running. Without root or
    /// systemd-nspawn it fails in CI (`CI` set) and elsewhere returns None after printing why
    /// the test is SKIPPED.
    pub(crate) fn boot() -> Option<Container> {
        let root = rustix::process::geteuid().is_root();
        if !root
            || Command::new("systemd-nspawn")
                .arg("--version")
                .output()
                .is_err()
        {
            assert!(std::env::var_os("CI").is_none(), "{NEEDS_NSPAWN}");
            println!("SKIPPED: {NEEDS_NSPAWN}");
            return None;
        }
        let dir = tempfile::tempdir().unwrap();
        let base = dir.path();
        must(
            Command::new("mount")
                .args(["-t", "tmpfs", "tmpfs"])
                .arg(base),
        );
        for d in ["upper", "work", "root"] {
            std::fs::create_dir(base.join(d)).unwrap();
        }
        let root = base.join("root");
        must(
            Command::new("mount")
                .args(["-t", "overlay", "overlay", "-o"])
                .arg(format!(
                    "lowerdir=/,upperdir={},workdir={}",
                    base.join("upper").display(),
                    base.join("work").display()
                ))
                .arg(&root),
        );
        mask_host_services(&root);
        let log = std::fs::File::create(base.join("upper/nspawn.log")).unwrap();
        let nspawn = Command::new("systemd-nspawn")
            .arg("-D")
            .arg(&root)
            .args([
                "-b",
                "--private-network",
                "--register=no",
                "--keep-unit",
                "-q",
            ])
            .stdin(Stdio::null())
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .spawn()
            .expect("starting systemd-nspawn");
        let pid = nspawn.id();
        let mut c = Container {
            nspawn,
            leader: 0,
            dir,
        };
        c.leader = wait_for(Duration::from_secs(30), || leader_of(pid))
            .unwrap_or_else(|| panic!("no container init under nspawn {pid}: {}", c.boot_log()));
        let state = wait_for(Duration::from_secs(90), || {
            let out = c.exec(&["systemctl", "is-system-running"]);
            let s = String::from_utf8_lossy(&out.stdout).trim().to_string();
            (s == "running" || s == "degraded").then_some(s)
        });
        assert!(
            state.is_some(),
            "the container never booted: {}",
            c.boot_log()
        );
        Some(c)
    }

    /// The container's root, as this machine sees it (writes land in the tmpfs).
    pub(crate) fn root(&self) -> PathBuf {
        self.dir.path().join("root")
    }

    /// Runs `args` inside the container (every namespace of its init), as root.
    pub(crate) fn exec(&self, args: &[&str]) -> Output {
        Command::new("nsenter")
            .args(["-t", &self.leader.to_string(), "-a", "--"])
            .args(args)
            .stdin(Stdio::null())
            .output()
            .expect("nsenter")
    }

    /// Runs a shell command inside; returns stdout, failing the test with its output if it fails.
    pub(crate) fn sh(&self, script: &str) -> String {
        let out = self.exec(&["sh", "-c", script]);
        assert!(
            out.status.success(),
            "in the container: {script}\nstdout: {}\nstderr: {}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    /// A property of a unit (`systemctl show -p NAME --value`).
    pub(crate) fn unit(&self, unit: &str, property: &str) -> String {
        self.sh(&format!("systemctl show -p {property} --value {unit}"))
            .trim()
            .to_string()
    }

    /// Waits up to `limit` for `unit` to be active; panics with its status and journal if it
    /// is not (a Type=notify unit is active once READY=1 reached systemd).
    pub(crate) fn wait_active(&self, unit: &str, limit: std::time::Duration) {
        let active = super::wait_for(limit, || {
            (self.unit(unit, "ActiveState") == "active").then_some(())
        });
        assert!(
            active.is_some(),
            "{unit} not active: {}",
            self.sh(&format!(
                "systemctl status {unit} --no-pager; journalctl -u {unit} --no-pager | tail -30 || true"
            ))
        );
    }

    /// What nspawn printed (the boot's console).
    pub(crate) fn boot_log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("upper/nspawn.log")).unwrap_or_default()
    }
}

impl Drop for Container {
    fn drop(&mut self) {
        let _ = Command::new("kill")
            .args(["-TERM", &self.nspawn.id().to_string()])
            .status();
        let stopped = wait_for(Duration::from_secs(30), || {
            self.nspawn.try_wait().ok().flatten()
        });
        if stopped.is_none() {
            let _ = self.nspawn.kill();
            let _ = self.nspawn.wait();
        }
        let _ = Command::new("umount").arg("-R").arg(self.root()).status();
        let _ = Command::new("umount").arg(self.dir.path()).status();
    }
}

/// Runs `cmd`, failing the test if it fails.
fn must(cmd: &mut Command) {
    let out = cmd.output().expect("running a command");
    assert!(
        out.status.success(),
        "{cmd:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// The pid of the container's `systemd`, a child of `nspawn` (or a grandchild, on versions
/// that fork twice).
fn leader_of(nspawn: u32) -> Option<u32> {
    let first = children(nspawn);
    let second: Vec<u32> = first.iter().flat_map(|c| children(*c)).collect();
    first.into_iter().chain(second).find(|p| {
        std::fs::read_to_string(format!("/proc/{p}/comm")).is_ok_and(|c| c.trim() == "systemd")
    })
}

/// Every process whose parent is `pid` (from each one's /proc stat).
fn children(pid: u32) -> Vec<u32> {
    std::fs::read_dir("/proc")
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|e| e.file_name().to_str()?.parse::<u32>().ok())
        .filter(|p| {
            std::fs::read_to_string(format!("/proc/{p}/stat"))
                .ok()
                .and_then(|s| {
                    let rest = s.rsplit_once(") ")?.1.to_string();
                    rest.split_whitespace().nth(1)?.parse::<u32>().ok()
                })
                == Some(pid)
        })
        .collect()
}

/// Masks, in the container's upper layer, every service this machine enables for itself, and
/// disables cloud-init, so the container boots systemd's basics only; lets package scripts start
/// services, as on a VM.
fn mask_host_services(root: &Path) {
    let units = root.join("etc/systemd/system");
    for wants in std::fs::read_dir("/etc/systemd/system")
        .into_iter()
        .flatten()
        .flatten()
    {
        let name = wants.file_name().to_string_lossy().into_owned();
        if !name.ends_with(".wants") {
            continue;
        }
        for unit in std::fs::read_dir(wants.path())
            .into_iter()
            .flatten()
            .flatten()
        {
            let unit = unit.file_name().to_string_lossy().into_owned();
            if unit.ends_with(".service") || unit.ends_with(".timer") || unit.ends_with(".socket") {
                let _ = std::fs::remove_file(units.join(&unit));
                let _ = std::os::unix::fs::symlink("/dev/null", units.join(&unit));
            }
        }
    }
    // An image-building machine forbids starting services on install (exit 101); a VM does not.
    let _ = std::fs::remove_file(root.join("usr/sbin/policy-rc.d"));
    let cloud = root.join("etc/cloud");
    let _ = std::fs::create_dir_all(&cloud);
    let _ = std::fs::write(cloud.join("cloud-init.disabled"), "");
}
