//! Shared harness of the fault, access and load tests: the built `headroom` binary started as an
//! agent or a coordinator in temporary directories, on 127.0.0.1, with real SQLite files.
#![allow(dead_code)]

use std::io::{BufRead, BufReader};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use serde_json::Value;

/// The binary under test.
pub const BIN: &str = env!("CARGO_BIN_EXE_headroom");
/// The bearer token the tests' coordinators accept.
pub const TOKEN: &str = "s3cret-token-7f1e2d3c4b5a69788796a5b4";

/// Unix time now, seconds.
pub fn now() -> f64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs_f64()
}

/// A free loopback port (bound then released, so a restarted coordinator can reuse it).
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// Writes a 0600 token file.
pub fn write_token(dir: &Path, name: &str, token: &str) -> PathBuf {
    let path = dir.join(name);
    std::fs::write(&path, format!("{token}\n")).unwrap();
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600)).unwrap();
    path
}

/// Polls `f` every 100 ms until it returns Some or `limit` passes.
pub fn wait_for<T>(limit: Duration, mut f: impl FnMut() -> Option<T>) -> Option<T> {
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

/// An agent directory (config, state, socket, log) and maybe its running process.
pub struct Agent {
    pub dir: tempfile::TempDir,
    pub state: PathBuf,
    pub child: Option<Child>,
    pub starts: u32,
}

impl Agent {
    /// A new agent at cadence `interval` deciding every second; `extra` is appended to the
    /// config (it may add `[sources]`, `[coordinator]`, ... tables).
    pub fn new(interval: &str, extra: &str) -> Agent {
        let dir = tempfile::tempdir().expect("tempdir");
        let state = dir.path().join("state");
        Self::with_state(dir, state, interval, extra)
    }

    /// Like [`Agent::new`] with the state directory at `state`.
    pub fn with_state(
        dir: tempfile::TempDir,
        state: PathBuf,
        interval: &str,
        extra: &str,
    ) -> Agent {
        let cfg = format!(
            "[agent]\ninterval = \"{interval}\"\ndecision_interval = \"1s\"\nstate_directory = \"{}\"\nsocket = \"{}\"\nhost_id = \"fault-host\"\ngroup = \"web\"\n{extra}",
            state.display(),
            dir.path().join("run/headroom.sock").display(),
        );
        std::fs::write(dir.path().join("headroom.toml"), cfg).expect("write config");
        Agent {
            dir,
            state,
            child: None,
            starts: 0,
        }
    }

    pub fn config_path(&self) -> PathBuf {
        self.dir.path().join("headroom.toml")
    }
    pub fn socket(&self) -> PathBuf {
        self.dir.path().join("run/headroom.sock")
    }
    pub fn db(&self) -> PathBuf {
        self.state.join("headroom.db")
    }
    pub fn log_path(&self) -> PathBuf {
        self.dir.path().join("agent.log")
    }

    /// Spawns the agent (log appended) without waiting for it.
    pub fn spawn(&mut self) {
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.log_path())
            .expect("log file");
        let child = Command::new(BIN)
            .args(["agent", "--config"])
            .arg(self.config_path())
            .env("RUST_LOG", "info")
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .expect("spawn agent");
        self.child = Some(child);
        self.starts += 1;
    }

    /// Spawns the agent and waits until its control socket answers.
    pub fn start(&mut self) {
        self.spawn();
        let deadline = Instant::now() + Duration::from_secs(30);
        while Instant::now() < deadline {
            if self.socket().exists() && self.cli(&["status", "--json"]).status.success() {
                return;
            }
            if let Some(Ok(Some(st))) = self.child.as_mut().map(|c| c.try_wait()) {
                panic!("agent exited with {st}; log:\n{}", self.log());
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        panic!("agent did not become ready; log:\n{}", self.log());
    }

    pub fn log(&self) -> String {
        std::fs::read_to_string(self.log_path()).unwrap_or_default()
    }

    pub fn cli(&self, args: &[&str]) -> Output {
        Command::new(BIN)
            .args(args)
            .arg("--socket")
            .arg(self.socket())
            .output()
            .expect("run cli")
    }

    /// `ARGS --json`, which must succeed.
    pub fn json(&self, args: &[&str]) -> Value {
        let mut a = args.to_vec();
        a.push("--json");
        let out = self.cli(&a);
        assert!(
            out.status.success(),
            "{args:?} failed: {}\nlog:\n{}",
            String::from_utf8_lossy(&out.stderr),
            self.log()
        );
        serde_json::from_slice(&out.stdout).expect("valid json")
    }

    /// Waits until `f` holds on `status --json`.
    pub fn wait_status(&self, what: &str, secs: u64, f: impl Fn(&Value) -> bool) -> Value {
        let deadline = Instant::now() + Duration::from_secs(secs);
        loop {
            let v = self.json(&["status"]);
            if f(&v) {
                return v;
            }
            assert!(
                Instant::now() < deadline,
                "timed out waiting for {what}; last status: {v:#}\nlog tail:\n{}",
                tail(&self.log(), 40)
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// kill -9 and reap.
    pub fn kill9(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    /// SIGTERM and reap; returns the exit status.
    pub fn term(&mut self) -> std::process::ExitStatus {
        let mut c = self.child.take().expect("running");
        let _ = Command::new("kill")
            .args(["-TERM", &c.id().to_string()])
            .status();
        c.wait().expect("wait")
    }

    /// The process id, while running.
    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(Child::id)
    }
}

impl Drop for Agent {
    fn drop(&mut self) {
        self.kill9();
    }
}

/// The last `n` lines of `s`.
pub fn tail(s: &str, n: usize) -> String {
    let lines: Vec<&str> = s.lines().collect();
    lines[lines.len().saturating_sub(n)..].join("\n")
}

/// `(committed.rollup_ts, committed.seq)` of a status.
pub fn committed(v: &Value) -> (Option<i64>, Option<u64>) {
    (
        v["committed"]["rollup_ts"].as_i64(),
        v["committed"]["seq"].as_u64(),
    )
}

/// A running coordinator; killed on drop.
pub struct Coordinator {
    pub child: Child,
    pub url: String,
    pub log: PathBuf,
}

impl Coordinator {
    /// Starts `headroom coordinator --config CONFIG` and waits for its listen line.
    pub fn start(dir: &Path, config: &Path) -> Coordinator {
        Self::start_with(dir, config, None)
    }

    /// Like [`Coordinator::start`], pinned to `cpus` (a taskset list) when given.
    pub fn start_with(dir: &Path, config: &Path, cpus: Option<&str>) -> Coordinator {
        let log = dir.join(format!("coordinator-{}.log", now()));
        let mut cmd = match cpus {
            Some(c) => {
                let mut cmd = Command::new("taskset");
                cmd.args(["-c", c, BIN]);
                cmd
            }
            None => Command::new(BIN),
        };
        cmd.arg("coordinator")
            .arg("--config")
            .arg(config)
            .env("HEADROOM_LOG", "info")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(std::fs::File::create(&log).unwrap());
        let mut child = cmd.spawn().expect("starting the coordinator");
        let stdout = child.stdout.take().unwrap();
        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            let Ok(line) = rx.recv_timeout(left) else {
                let _ = child.kill();
                let _ = child.wait();
                panic!(
                    "coordinator did not start: {}",
                    std::fs::read_to_string(&log).unwrap_or_default()
                );
            };
            if let Some(url) = line.strip_prefix("headroom coordinator listening on ") {
                return Coordinator {
                    child,
                    url: url.to_string(),
                    log,
                };
            }
        }
    }

    pub fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    pub fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for Coordinator {
    fn drop(&mut self) {
        self.kill();
    }
}

/// A coordinator config: one group `web` accepting `token`, deciding every 200 ms.
pub fn coordinator_toml(listen: &str, state: &Path, token: &Path, actuator: &str) -> String {
    format!(
        r#"listen = "{listen}"
state = "{state}"

[groups.web]
token_files = ["{token}"]
capacity_per_instance = 1.0
target_utilization = 1.0
warmup = "1s"
decision_interval = "200ms"
min = 1
max = 20
scale_in_stabilization = 60
max_scale_in_step = 10
host_ttl = "30s"
signal_ttl = "60s"
actuation_interval = 0

[groups.web.actuator]
{actuator}
"#,
        state = state.display(),
        token = token.display()
    )
}

/// One signal as the coordinator recorded it.
pub struct Recorded {
    pub epoch: String,
    pub seq: u64,
    pub received_at: f64,
    pub decided_at: f64,
    /// Applied to the group's demand; false = stored for audit only (older than the TTL).
    pub applied: bool,
}

/// Every signal the coordinator recorded for `host` (applied or stored), read from its state
/// file, in the order they were received.
pub fn coordinator_recorded(state: &Path, host: &str) -> Vec<Recorded> {
    let conn =
        rusqlite::Connection::open_with_flags(state, rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY)
            .unwrap();
    let mut stmt = conn
        .prepare(
            "SELECT epoch, seq, received_at, decided_at, applied FROM signals WHERE host = ?1
             ORDER BY received_at, seq",
        )
        .unwrap();
    stmt.query_map([host], |r| {
        Ok(Recorded {
            epoch: r.get(0)?,
            seq: r.get::<_, i64>(1)? as u64,
            received_at: r.get(2)?,
            decided_at: r.get(3)?,
            applied: r.get::<_, i64>(4)? != 0,
        })
    })
    .unwrap()
    .map(Result::unwrap)
    .collect()
}

/// The `(epoch, seq)` the coordinator applied for `host`.
pub fn coordinator_applied(state: &Path, host: &str) -> Vec<(String, u64)> {
    coordinator_recorded(state, host)
        .into_iter()
        .filter(|r| r.applied)
        .map(|r| (r.epoch, r.seq))
        .collect()
}

/// Distinct `(epoch, seq)` the agent put in its outbox.
pub fn outbox_produced(db: &Path) -> Vec<(String, u64)> {
    let conn = rusqlite::Connection::open(db).unwrap();
    let mut stmt = conn
        .prepare("SELECT payload FROM outbox ORDER BY seq")
        .unwrap();
    stmt.query_map([], |r| r.get::<_, String>(0))
        .unwrap()
        .map(|p| {
            let v: Value = serde_json::from_str(&p.unwrap()).unwrap();
            (
                v["epoch"].as_str().unwrap_or_default().to_string(),
                v["seq"].as_u64().unwrap(),
            )
        })
        .collect()
}

/// Resident set size of a process, KiB.
pub fn rss_kib(pid: u32) -> Option<u64> {
    let s = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    s.lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.split_whitespace().next()?.parse().ok())
}
