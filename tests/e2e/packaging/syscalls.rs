//! The agent's system calls fit the unit's SystemCallFilter.

use super::*;

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
    let mut child = KillOnDrop::spawn_logged(
        cmd.arg(bin()).args(["agent", "--config"]).arg(&config),
        &log_path,
    );
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
