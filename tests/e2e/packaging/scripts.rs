//! Maintainer scripts with systemd running.

use super::*;

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
        "deb-systemd-helper",
        "deb-systemd-invoke",
        "systemd-sysusers",
    ] {
        write_script(
            &bin.join(tool),
            &format!("#!/bin/sh\necho \"{tool} $*\" >> \"$STANDIN_LOG\"\nexit 0\n"),
        );
    }
    // A unit is enabled when a file `log.enabled.UNIT` says so.
    write_script(
        &bin.join("systemctl"),
        "#!/bin/sh\necho \"systemctl $*\" >> \"$STANDIN_LOG\"\n\
         if [ \"$1 $2\" = \"--quiet is-enabled\" ]; then [ -e \"$STANDIN_LOG.enabled.$3\" ]; exit; fi\n\
         exit 0\n",
    );
    let log = dir.path().join("log");
    let enable =
        |unit: &str| std::fs::write(dir.path().join(format!("log.enabled.{unit}")), "").unwrap();
    enable("headroom.service");
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
        "deb-systemd-helper unmask headroom-coordinator.service",
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
    assert!(!install.contains("restart headroom.service"), "{install}");
    assert!(
        install.contains("deb-systemd-invoke try-restart headroom-coordinator.service"),
        "a coordinator not enabled runs only if started by hand: {install}"
    );

    // An upgrade, or a reinstall after removal (dpkg names the old version in both): the
    // units are unmasked, and the enabled ones restarted, which starts a stopped one.
    enable("headroom-coordinator.service");
    run_script_with_systemd(&bin, &log, "postinst", &["configure", "0.1.0-1"]);
    let upgrade = take();
    println!("upgrade:\n{upgrade}");
    for line in [
        "deb-systemd-helper unmask headroom-coordinator.service",
        "deb-systemd-invoke restart headroom.service",
        "deb-systemd-invoke restart headroom-coordinator.service",
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
