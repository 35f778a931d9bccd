//! The .deb installed and run under a real systemd, in a throwaway container booted by
//! `systemd-nspawn` ([`crate::common::Container`]): what the offline unit checks cannot see —
//! readiness reaching systemd, the sandbox letting every source work, the socket's group,
//! reload, restart after kill -9, the watchdog, the coordinator's unit with an agent delivering
//! to it, stop, and purge.

use std::time::{Duration, Instant};

use serde_json::Value;

use crate::common::{Container, wait_for};

const TOKEN: &str = "installed-token-5a4b3c2d1e0f";

/// The agent's status, asked inside the container as root.
fn status(c: &Container) -> Value {
    serde_json::from_str(&c.sh("headroom status --json")).expect("status JSON")
}

/// Waits (60 s at most) for the coordinator on 127.0.0.1:7070 to list the one agent's host in
/// group `web`: the agent's signals reach it.
fn assert_delivered(c: &Container) {
    let delivered = wait_for(Duration::from_secs(60), || {
        let out = c.exec(&[
            "headroom",
            "groups",
            "--json",
            "--url",
            "http://127.0.0.1:7070",
            "--token-file",
            "/etc/headroom/tokens/web",
        ]);
        let v: Value = serde_json::from_slice(&out.stdout).ok()?;
        (v["groups"][0]["hosts"].as_array()?.len() == 1).then_some(())
    });
    assert!(
        delivered.is_some(),
        "no signal reached the coordinator: {}",
        c.sh("journalctl -u headroom -u headroom-coordinator --no-pager | tail -40")
    );
}

/// Waits for `unit`'s main process to be a new one, active; returns it.
fn restarted(c: &Container, unit: &str, old: &str, limit: Duration) -> Option<String> {
    wait_for(limit, || {
        let pid = c.unit(unit, "MainPID");
        (pid != old && pid != "0" && c.unit(unit, "ActiveState") == "active").then_some(pid)
    })
}

#[test]
fn the_deb_under_a_real_systemd() {
    let _host = crate::common::host_packages();
    let Some(c) = Container::boot() else { return };
    let out = tempfile::tempdir().unwrap();
    let deb = crate::packaging::build_deb(out.path(), "0.0.1-systemd");
    // Not /tmp: the container mounts a tmpfs of its own there.
    std::fs::copy(&deb, c.root().join("root/headroom.deb")).unwrap();
    c.sh("dpkg -i /root/headroom.deb");

    // Type=notify: "active" means READY=1 reached systemd.
    c.wait_active("headroom", Duration::from_secs(60));
    assert_eq!(c.unit("headroom", "Type"), "notify");

    // Every source but app_metrics (not configured) works under the sandbox.
    let v = wait_for(Duration::from_secs(30), || {
        let v = status(&c);
        v["latest"].is_object().then_some(v)
    })
    .expect("a sample");
    for s in v["sources"].as_array().expect("sources") {
        if s["name"] != "app_metrics" {
            assert_eq!(s["state"], "ok", "under the sandbox: {s}");
        }
    }

    // A listener whose accept queue is full is seen through sock_diag.
    c.sh("setsid python3 -c 'import socket, time\n\
         s = socket.socket(); s.bind((\"127.0.0.1\", 9099)); s.listen(1)\n\
         held = [socket.create_connection((\"127.0.0.1\", 9099)) for _ in range(3)]\n\
         time.sleep(300)' >/dev/null 2>&1 < /dev/null &");
    let queued = wait_for(Duration::from_secs(30), || {
        let v = status(&c);
        v["latest"]["listeners"]
            .as_array()?
            .iter()
            .find(|l| l["port"] == 9099 && l["depth"].as_u64().is_some_and(|d| d >= 2))
            .cloned()
    });
    assert!(
        queued.is_some(),
        "the full accept queue unseen: {:#}",
        status(&c)["latest"]
    );

    // The journal has the agent's lines.
    let journal = c.sh("journalctl -u headroom --no-pager");
    assert!(journal.contains("agent ready"), "{journal}");

    // The socket's group decides access.
    c.sh("useradd -M -G headroom alice && useradd -M bob");
    let alice = c.exec(&["runuser", "-u", "alice", "--", "headroom", "status"]);
    assert!(
        alice.status.success(),
        "a member of group headroom: {}",
        String::from_utf8_lossy(&alice.stderr)
    );
    let bob = c.exec(&["runuser", "-u", "bob", "--", "headroom", "status"]);
    assert!(!bob.status.success(), "not a member, yet answered");
    let refused = String::from_utf8_lossy(&bob.stderr).to_lowercase();
    assert!(
        refused.contains("permission") || refused.contains("denied"),
        "{refused}"
    );

    // `systemctl reload` applies a change: a shorter warm-up shortens the decisions' lead.
    let lead = status(&c)["decision"]["lead_s"].as_f64().unwrap_or(0.0);
    assert!(lead > 200.0, "the default 5-minute warm-up: lead {lead}");
    c.sh("printf '[policy]\\nwarmup = \"2m\"\\n' > /etc/headroom/headroom.toml");
    c.sh("systemctl reload headroom");
    let reloaded = wait_for(Duration::from_secs(40), || {
        status(&c)["decision"]["lead_s"]
            .as_f64()
            .filter(|l| *l < 200.0)
    });
    assert!(reloaded.is_some(), "{:#}", status(&c)["decision"]);

    // kill -9: systemd restarts it after RestartSec (5 s), and the history is kept.
    let before = status(&c)["committed"]["seq"].as_u64().unwrap_or(0);
    let pid = c.unit("headroom", "MainPID");
    c.sh(&format!("kill -9 {pid}"));
    let killed = Instant::now();
    // A debug build's start inside the container, on a loaded machine, may take seconds.
    let new = restarted(&c, "headroom", &pid, Duration::from_secs(30));
    let took = killed.elapsed();
    assert!(new.is_some(), "not restarted within RestartSec + 25 s");
    let after = wait_for(Duration::from_secs(20), || {
        status(&c)["committed"]["seq"]
            .as_u64()
            .filter(|s| *s >= before)
    });
    assert!(
        after.is_some(),
        "history lost: seq {before} before the kill"
    );

    // A short watchdog: a stopped agent is killed and restarted by it.
    c.sh(
        "mkdir -p /etc/systemd/system/headroom.service.d && \
         printf '[Service]\\nWatchdogSec=3s\\n' > /etc/systemd/system/headroom.service.d/watchdog.conf && \
         systemctl daemon-reload && systemctl restart headroom",
    );
    let pid = c.unit("headroom", "MainPID");
    c.sh(&format!("kill -STOP {pid}"));
    let woken = restarted(&c, "headroom", &pid, Duration::from_secs(30));
    assert!(
        woken.is_some(),
        "the watchdog did not restart a stopped agent"
    );
    let journal = c.sh("journalctl -u headroom --no-pager");
    assert!(
        journal.to_lowercase().contains("watchdog timeout"),
        "{journal}"
    );
    c.sh(
        "rm /etc/systemd/system/headroom.service.d/watchdog.conf && systemctl daemon-reload && \
         systemctl restart headroom",
    );

    // The coordinator's unit, with its token file, and the agent delivering to it.
    c.sh(&format!(
        "install -d -m 0750 -g headroom-coordinator /etc/headroom/tokens && \
         printf '{TOKEN}' > /etc/headroom/tokens/web && chmod 0640 /etc/headroom/tokens/web && \
         chgrp headroom-coordinator /etc/headroom/tokens/web && \
         printf 'listen = \"127.0.0.1:7070\"\\n[groups.web]\\ntoken_files = [\"/etc/headroom/tokens/web\"]\\n[groups.web.actuator]\\nkind = \"dry-run\"\\n' > /etc/headroom/coordinator.toml && \
         systemctl enable --now headroom-coordinator"
    ));
    c.wait_active("headroom-coordinator", Duration::from_secs(60));
    c.sh(&format!(
        "printf '{TOKEN}' > /etc/headroom/token && chmod 0640 /etc/headroom/token && \
         chgrp headroom /etc/headroom/token && \
         printf '[agent]\\ngroup = \"web\"\\ndecision_interval = \"1s\"\\n[coordinator]\\nurls = [\"http://127.0.0.1:7070\"]\\ntoken_file = \"/etc/headroom/token\"\\n' > /etc/headroom/headroom.toml && \
         systemctl restart headroom"
    ));
    assert_delivered(&c);

    // Stop: a clean result for both.
    c.sh("systemctl stop headroom headroom-coordinator");
    assert_eq!(c.unit("headroom", "Result"), "success");
    assert_eq!(c.unit("headroom-coordinator", "Result"), "success");

    // Purge leaves no unit, state, runtime directory or configuration; the users stay.
    c.sh("apt-get purge -y -q headroom");
    let left = c.sh("for p in /usr/lib/systemd/system/headroom.service \
         /usr/lib/systemd/system/headroom-coordinator.service /var/lib/headroom \
         /var/lib/headroom-coordinator /run/headroom /etc/headroom; do \
         [ -e $p ] && echo $p; done; true");
    assert_eq!(left.trim(), "", "left behind by purge");
    c.sh("getent passwd headroom && getent passwd headroom-coordinator");
    eprintln!(
        "under systemd: ready, sources ok, accept queue seen, socket by group, reload, restart {:.1}s after kill -9, watchdog, coordinator fed, stop success, purge clean",
        took.as_secs_f64()
    );
}

/// The Ansible roles (`packaging/ansible/`), run with Debian's ansible inside the container
/// (connection local): one coordinator and one agent pointing at it. The agent's signals reach
/// the coordinator, and a second run changes nothing.
#[test]
fn the_ansible_roles_deploy_a_coordinator_and_an_agent_idempotently() {
    let _host = crate::common::host_packages();
    if std::process::Command::new("/usr/bin/ansible-playbook")
        .arg("--version")
        .output()
        .is_err()
    {
        assert!(
            std::env::var_os("CI").is_none(),
            "this test needs Debian's ansible (see .ci/apt-packages.txt)"
        );
        println!("SKIPPED: this test needs Debian's ansible");
        return;
    }
    let Some(c) = Container::boot() else { return };
    let out = tempfile::tempdir().unwrap();
    let deb = crate::packaging::build_deb(out.path(), "0.0.1-ansible");
    std::fs::copy(&deb, c.root().join("root/headroom.deb")).unwrap();
    // Into the container's own root: a checkout under /tmp is hidden by the container's tmpfs.
    let repo = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let copied = std::process::Command::new("cp")
        .arg("-r")
        .arg(repo.join("packaging/ansible"))
        .arg(c.root().join("root/ansible"))
        .status()
        .unwrap();
    assert!(copied.success());
    std::fs::write(
        c.root().join("root/inventory.yml"),
        format!(
            "all:\n  vars:\n    ansible_connection: local\n    ansible_python_interpreter: /usr/bin/python3\n\
             \x20   headroom_agent_group: web\n    headroom_agent_token: {TOKEN}\n\
             \x20   headroom_package_deb_path: /root/headroom.deb\n\
             \x20   headroom_coordinator_listen: \"127.0.0.1:7070\"\n\
             \x20 children:\n    headroom_coordinators:\n      hosts:\n        localhost:\n\
             \x20         headroom_coordinator_url: http://127.0.0.1:7070\n\
             \x20   headroom_agents:\n      hosts:\n        localhost: {{}}\n"
        ),
    )
    .unwrap();
    let run = || {
        c.sh("ANSIBLE_NOCOLOR=1 /usr/bin/ansible-playbook -i /root/inventory.yml /root/ansible/site.yml")
    };
    let recap = |out: &str| {
        out.lines()
            .find(|l| l.starts_with("localhost"))
            .unwrap_or_default()
            .split_whitespace()
            .collect::<Vec<_>>()
            .join(" ")
    };
    let first = run();
    assert!(first.contains("failed=0"), "{first}");
    for unit in ["headroom", "headroom-coordinator"] {
        assert_eq!(c.unit(unit, "ActiveState"), "active", "{unit}");
        assert_eq!(c.unit(unit, "UnitFileState"), "enabled", "{unit}");
    }
    c.sh("test \"$(stat -c %a:%G /etc/headroom/token)\" = 640:headroom");
    c.sh("test \"$(stat -c %a:%G /etc/headroom/tokens/web)\" = 640:headroom-coordinator");
    assert_delivered(&c);
    let second = run();
    assert!(
        recap(&second).contains("changed=0") && recap(&second).contains("failed=0"),
        "the second run changed something: {second}"
    );
    eprintln!(
        "ansible: first run: {}; delivering; second run: {}",
        recap(&first),
        recap(&second)
    );
}

/// The cloud-init bootstrap script, run in the container as cloud-init would run it: it
/// installs the .deb served over HTTP after checking its sha256 and points the agent at the
/// coordinator; a wrong sha256, or a tag lookup without instance metadata, stops it loudly
/// after bounded retries.
#[test]
fn the_cloud_init_script_installs_and_configures_or_fails_loudly() {
    let _host = crate::common::host_packages();
    let Some(c) = Container::boot() else { return };
    let out = tempfile::tempdir().unwrap();
    let deb = crate::packaging::build_deb(out.path(), "0.0.1-cloudinit");
    let served = c.root().join("srv/debs");
    std::fs::create_dir_all(&served).unwrap();
    std::fs::copy(&deb, served.join("headroom.deb")).unwrap();
    let sha = c
        .sh("sha256sum /srv/debs/headroom.deb | cut -d' ' -f1")
        .trim()
        .to_string();
    let repo = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    std::fs::copy(
        repo.join("packaging/cloud-init/headroom-bootstrap.sh"),
        c.root().join("usr/local/sbin/headroom-bootstrap"),
    )
    .unwrap();
    c.sh("cd /srv/debs && setsid python3 -m http.server 8088 --bind 127.0.0.1 >/dev/null 2>&1 < /dev/null &");
    wait_for(Duration::from_secs(20), || {
        c.exec(&[
            "curl",
            "-sf",
            "-o",
            "/dev/null",
            "http://127.0.0.1:8088/headroom.deb",
        ])
        .status
        .success()
        .then_some(())
    })
    .expect("the package served");
    let base = "HEADROOM_DEB_URL=http://127.0.0.1:8088/headroom.deb HEADROOM_ATTEMPTS=2";
    // A wrong sha256: nothing installed.
    let bad = c.exec(&[
        "sh",
        "-c",
        &format!(
            "{base} HEADROOM_DEB_SHA256={} HEADROOM_GROUP=web HEADROOM_COORDINATOR_URLS=http://127.0.0.1:7070 HEADROOM_TOKEN={TOKEN} /usr/local/sbin/headroom-bootstrap",
            "0".repeat(64)
        ),
    ]);
    assert!(!bad.status.success());
    assert!(
        String::from_utf8_lossy(&bad.stderr).contains("does not have sha256"),
        "{}",
        String::from_utf8_lossy(&bad.stderr)
    );
    assert!(
        !c.exec(&["dpkg", "-s", "headroom"]).status.success(),
        "installed despite the wrong sha256"
    );
    // The group from an instance tag, without instance metadata: bounded retries, then a loud
    // failure.
    let started = Instant::now();
    let no_imds = c.exec(&[
        "sh",
        "-c",
        &format!(
            "{base} HEADROOM_DEB_SHA256={sha} HEADROOM_GROUP_TAG=headroom:group HEADROOM_COORDINATOR_URLS=http://127.0.0.1:7070 HEADROOM_TOKEN={TOKEN} /usr/local/sbin/headroom-bootstrap"
        ),
    ]);
    assert!(!no_imds.status.success());
    let why = String::from_utf8_lossy(&no_imds.stderr);
    assert!(why.contains("failed 2 times"), "{why}");
    assert!(
        started.elapsed() < Duration::from_secs(60),
        "bounded: {:?}",
        started.elapsed()
    );
    // Given everything: installed, configured, running, pointed at the coordinator.
    c.sh(&format!(
        "{base} HEADROOM_DEB_SHA256={sha} HEADROOM_GROUP=web HEADROOM_COORDINATOR_URLS='http://127.0.0.1:7070, http://127.0.0.1:7071' HEADROOM_TOKEN={TOKEN} /usr/local/sbin/headroom-bootstrap"
    ));
    c.wait_active("headroom", Duration::from_secs(30));
    let config = c.sh("cat /etc/headroom/headroom.toml");
    assert!(
        config.contains("group = \"web\"")
            && config.contains("urls = [\"http://127.0.0.1:7070\", \"http://127.0.0.1:7071\"]"),
        "{config}"
    );
    c.sh("test \"$(stat -c %a:%G /etc/headroom/token)\" = 640:headroom");
    let v = status(&c);
    let urls: Vec<&str> = v["outbox"]["destinations"]
        .as_array()
        .map(|d| d.iter().filter_map(|x| x["url"].as_str()).collect())
        .unwrap_or_default();
    eprintln!("cloud-init script: installed and configured; destinations {urls:?}");
}
