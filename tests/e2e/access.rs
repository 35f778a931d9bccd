//! Access tests of the built `headroom` binary. Tests run as root, which bypasses file modes,
//! so they create throw-away system users and a group (`useradd`, `groupadd`) and run the CLI
//! as those users with `setpriv`; the users and the group are removed at the end.

use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::Path;
use std::process::{Command, Output};
use std::time::Duration;

use crate::common::*;

fn run(cmd: &str, args: &[&str]) -> bool {
    Command::new(cmd)
        .args(args)
        .status()
        .is_ok_and(|s| s.success())
}

fn id(flag: &str, name: &str) -> String {
    let out = Command::new("id").args([flag, name]).output().unwrap();
    String::from_utf8(out.stdout).unwrap().trim().to_string()
}

/// A system group and two users (one in it, one not), deleted on drop.
struct Users {
    group: String,
    member: String,
    outsider: String,
}

impl Users {
    /// None when not root or the tools are missing.
    fn create() -> Option<Users> {
        let tag = format!("{:x}", (now() * 1e6) as u64 & 0xff_ffff);
        let u = Users {
            group: format!("hrtest-g{tag}"),
            member: format!("hrtest-m{tag}"),
            outsider: format!("hrtest-o{tag}"),
        };
        if !run("groupadd", &["--system", &u.group]) {
            return None;
        }
        let ok = run(
            "useradd",
            &["--system", "--no-create-home", "-G", &u.group, &u.member],
        ) && run("useradd", &["--system", "--no-create-home", &u.outsider]);
        ok.then_some(u)
    }

    fn gid(&self) -> String {
        let out = Command::new("getent")
            .args(["group", &self.group])
            .output()
            .unwrap();
        String::from_utf8(out.stdout)
            .unwrap()
            .split(':')
            .nth(2)
            .unwrap()
            .to_string()
    }

    /// Runs the CLI as `user` with exactly its groups.
    fn cli_as(&self, user: &str, args: &[&str], socket: &Path) -> Output {
        let uid = id("-u", user);
        let gid = id("-g", user);
        let groups = id("-G", user).replace(' ', ",");
        Command::new("setpriv")
            .args([
                &format!("--reuid={uid}"),
                &format!("--regid={gid}"),
                &format!("--groups={groups}"),
                "--",
                bin(),
            ])
            .args(args)
            .arg("--socket")
            .arg(socket)
            .output()
            .unwrap()
    }
}

impl Drop for Users {
    fn drop(&mut self) {
        run("userdel", &[&self.member]);
        run("userdel", &[&self.outsider]);
        run("groupdel", &[&self.group]);
    }
}

/// Every path under `dir` that others may write.
fn world_writable(dir: &Path) -> Vec<String> {
    let mut bad = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(p) = stack.pop() {
        let Ok(md) = std::fs::symlink_metadata(&p) else {
            continue;
        };
        if md.mode() & 0o002 != 0 {
            bad.push(format!("{} {:o}", p.display(), md.mode() & 0o7777));
        }
        if md.is_dir() {
            for e in std::fs::read_dir(&p).unwrap().flatten() {
                stack.push(e.path());
            }
        }
    }
    bad
}

/// The agent runs with the test group as its group: a member may use the CLI, a local user
/// outside the group is refused in one line with a non-zero exit, and nothing under the state
/// or runtime directory is world-writable.
#[test]
fn socket_admits_the_group_and_refuses_others() {
    let Some(users) = Users::create() else {
        eprintln!("SKIPPED: cannot create users (needs root, useradd)");
        return;
    };
    let mut a = Agent::options().identity("fault-host", "web").create("");
    // Others must be able to reach the socket's directory for the mode to decide.
    std::fs::set_permissions(a.dir.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
    let log = std::fs::File::create(a.log_path()).unwrap();
    let child = Command::new("setpriv")
        .args([
            &format!("--regid={}", users.gid()),
            "--clear-groups",
            "--",
            bin(),
        ])
        .args(["agent", "--config"])
        .arg(a.config_path())
        .stdout(std::process::Stdio::null())
        .stderr(log)
        .spawn()
        .unwrap();
    a.child = Some(child);
    wait_for(Duration::from_secs(30), || {
        a.cli(&["status", "--json"]).status.success().then_some(())
    })
    .unwrap_or_else(|| panic!("agent not ready: {}", a.log()));
    let socket = a.socket();
    let md = std::fs::metadata(&socket).unwrap();
    assert_eq!(md.mode() & 0o777, 0o660);
    assert_eq!(md.gid().to_string(), users.gid(), "socket group");

    let ok = users.cli_as(&users.member, &["status", "--json"], &socket);
    assert!(
        ok.status.success(),
        "group member refused: {}",
        String::from_utf8_lossy(&ok.stderr)
    );
    let _: serde_json::Value = serde_json::from_slice(&ok.stdout).unwrap();

    for cmd in ["status", "health", "decisions"] {
        let no = users.cli_as(&users.outsider, &[cmd], &socket);
        let err = String::from_utf8_lossy(&no.stderr);
        assert!(!no.status.success(), "{cmd}: outsider admitted");
        assert_eq!(err.trim_end().lines().count(), 1, "{cmd}: one line: {err}");
        assert!(
            err.to_lowercase().contains("permission denied"),
            "{cmd}: says why: {err}"
        );
        // The agent is there, just not for this user: said so, not "no agent running".
        assert_eq!(no.status.code(), Some(77), "{cmd}: {err}");
        assert!(err.contains("not open to this user"), "{cmd}: {err}");
        assert!(no.stdout.is_empty(), "{cmd}: nothing leaked on stdout");
    }

    let bad = world_writable(&a.state);
    assert!(bad.is_empty(), "world-writable state paths: {bad:?}");
    let bad = world_writable(socket.parent().unwrap());
    assert!(bad.is_empty(), "world-writable runtime paths: {bad:?}");
    a.kill9();
}

/// Missing and wrong tokens are refused with 401 on every authenticated route; the token
/// (right or wrong) never shows in the coordinator's log, the agent's log or `status --json`.
#[test]
fn tokens_are_required_and_never_leak() {
    let dir = tempfile::tempdir().unwrap();
    let token = write_token(dir.path(), "token", TOKEN);
    let state = dir.path().join("coordinator.db");
    let config = dir.path().join("coordinator.toml");
    std::fs::write(
        &config,
        coordinator_toml("127.0.0.1:0", &state, &token, "kind = \"dry-run\""),
    )
    .unwrap();
    let c = Coordinator::start(dir.path(), &config, &[]);
    let http = http_within(Duration::from_secs(5));
    let wrong = "wrong-token-bd71a0c9e3f2";
    let body = r#"{"version":1}"#;
    for auth in [
        None,
        Some(format!("Bearer {wrong}")),
        Some(wrong.to_string()),
        Some("Bearer ".to_string()),
        Some(format!("Basic {TOKEN}")),
        Some(format!("Bearer {TOKEN}x")),
    ] {
        let mut req = http
            .post(format!("{}/v1/signals", c.url))
            .header("Content-Type", "application/json");
        let mut get = http.get(format!("{}/v1/groups", c.url));
        if let Some(a) = &auth {
            req = req.header("Authorization", a);
            get = get.header("Authorization", a);
        }
        assert_eq!(req.send(body).unwrap().status(), 401, "{auth:?}");
        assert_eq!(get.call().unwrap().status(), 401, "{auth:?}");
    }

    // An agent with the right token delivers; one with a wrong token is refused and says so.
    let right = Agent::options()
        .identity("fault-host", "web")
        .create(&format!(
            "[coordinator]\nurls = [\"{}\"]\ntoken_file = \"{}\"\n",
            c.url,
            token.display()
        ));
    let wrong_file = write_token(dir.path(), "wrong", wrong);
    let wrong_agent = Agent::options()
        .identity("fault-host", "web")
        .create(&format!(
            "[coordinator]\nurls = [\"{}\"]\ntoken_file = \"{}\"\n",
            c.url,
            wrong_file.display()
        ));
    let mut agents = [right, wrong_agent];
    for a in &mut agents {
        a.start();
    }
    agents[0].wait_status("a delivered signal", 30, |v| {
        v["outbox"]["delivered"].as_u64().unwrap_or(0) > 0
    });
    agents[1].wait_status("a refused signal waiting", 30, |v| {
        v["outbox"]["pending"].as_u64().unwrap_or(0) > 0
    });
    std::thread::sleep(Duration::from_secs(2));
    assert_eq!(
        agents[1].json(&["status"])["outbox"]["delivered"],
        0,
        "a wrong token delivers nothing"
    );
    for a in &agents {
        let status = String::from_utf8(a.cli(&["status", "--json"]).stdout).unwrap();
        let text = String::from_utf8(a.cli(&["status"]).stdout).unwrap();
        for secret in [TOKEN, wrong] {
            assert!(!status.contains(secret), "token in status --json");
            assert!(!text.contains(secret), "token in status");
            assert!(!a.log().contains(secret), "token in the agent log");
        }
    }
    let clog = c.log();
    assert!(!clog.is_empty());
    for secret in [TOKEN, wrong] {
        assert!(!clog.contains(secret), "token in the coordinator log");
    }
    let (_, metrics) = {
        let mut r = http.get(format!("{}/metrics", c.url)).call().unwrap();
        (r.status(), r.body_mut().read_to_string().unwrap())
    };
    assert!(!metrics.contains(TOKEN) && !metrics.contains(wrong));
}

/// A control socket removed under a running agent (a cleanup of its runtime directory) is bound
/// again, with its mode: the CLI finds the agent instead of saying none runs.
#[test]
fn a_removed_control_socket_is_bound_again() {
    let mut a = Agent::options().identity("rebind-host", "web").create("");
    a.start();
    a.wait_status("an answer", 20, |v| v["host"] == "rebind-host");
    std::fs::remove_file(a.socket()).expect("remove the socket");
    assert!(
        !a.cli(&["health"]).status.success(),
        "the CLI reached an agent without its socket"
    );
    let back = wait_for(Duration::from_secs(20), || {
        a.cli(&["health"]).status.success().then_some(())
    });
    assert!(back.is_some(), "not bound again: {}", a.log());
    assert!(
        a.log()
            .contains("the control socket was removed or replaced: bound again"),
        "{}",
        a.log()
    );
    let mode = std::fs::metadata(a.socket()).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o660);
    assert!(a.term().success());
}

/// An agent whose socket was removed and then bound by another agent (same socket path,
/// another state directory) leaves that one alone: it does not take it over, and stopping
/// does not unlink it. Before, the first agent's exit removed the second one's socket.
#[test]
fn an_agent_stopping_leaves_a_socket_another_agent_bound_in_place() {
    let mut a = Agent::options().identity("first-host", "web").create("");
    a.start();
    let mut b = Agent::options().identity("second-host", "web").create("");
    let config = std::fs::read_to_string(b.config_path()).unwrap().replace(
        &b.socket().display().to_string(),
        &a.socket().display().to_string(),
    );
    std::fs::write(b.config_path(), config).unwrap();
    let socket = a.socket().display().to_string();
    let status = || {
        let out = std::process::Command::new(crate::common::bin())
            .args(["status", "--json", "--socket", &socket])
            .output()
            .expect("run cli");
        serde_json::from_slice::<serde_json::Value>(&out.stdout).ok()
    };
    // The first agent binds the path again within 5 s of finding it gone. On a loaded machine
    // the second one's start can take longer and lose that race: it then exits (the path is
    // taken), and the path is removed and the second one started again.
    let mut answered = false;
    for _ in 0..3 {
        b.kill9();
        let _ = std::fs::remove_file(a.socket());
        b.spawn();
        answered = wait_for(Duration::from_secs(30), || {
            if status().is_some_and(|v| v["host"] == "second-host") {
                return Some(true);
            }
            b.exited().then_some(false)
        }) == Some(true);
        if answered {
            break;
        }
    }
    assert!(answered, "the second agent never answered: {}", b.log());
    // The first agent's rebind check (every 5 s) finds another agent there.
    wait_for(Duration::from_secs(20), || {
        a.log().contains("cannot be bound again").then_some(())
    })
    .unwrap_or_else(|| panic!("{}", a.log()));
    assert!(a.term().success());
    let v = status().unwrap_or_else(|| panic!("the socket is gone: {}", a.log()));
    assert_eq!(v["host"], "second-host");
    assert!(b.term().success());
}
