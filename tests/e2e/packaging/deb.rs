//! The .deb: build, contents, install, upgrade, purge; an unprivileged agent reading a root
//! socket's accept queue.

use super::*;

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

    // Remove keeps configuration and state, and masks the units; a reinstall unmasks them
    // (before, the coordinator stayed masked: enabled, it never started again).
    let masked = |unit: &str| {
        std::fs::read_link(Path::new("/etc/systemd/system").join(unit))
            .is_ok_and(|to| to == Path::new("/dev/null"))
    };
    dpkg(&["-r", "headroom"], None);
    assert!(!bin.exists());
    assert!(conf.exists() && Path::new("/var/lib/headroom/marker").exists());
    assert!(UNITS.iter().all(|u| masked(u)), "removal masks the units");
    dpkg(&["-i"], Some(&v2));
    for unit in UNITS {
        assert!(!masked(unit), "{unit} still masked after a reinstall");
    }
    assert!(
        Path::new("/etc/systemd/system/multi-user.target.wants/headroom.service").exists(),
        "headroom.service no longer enabled after a reinstall"
    );
    dpkg(&["-r", "headroom"], None);
    // Purge deletes configuration and state.
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
    let _child = KillOnDrop::spawn_logged(
        Command::new("setpriv")
            .args(setpriv)
            .args(if userns_ok { &userns[..] } else { &[] })
            .arg(bin())
            .args(["agent", "--config"])
            .arg(&config),
        &log_path,
    );
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
