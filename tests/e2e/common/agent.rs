//! The built binary as `headroom agent` in its own directory (config, state, socket, log).

use std::path::PathBuf;
use std::process::{Child, Command, ExitStatus, Output, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;

use super::{bin, tail};

/// An agent directory and maybe its running process; killed on drop.
pub(crate) struct Agent {
    /// Holds the config, the socket under `run/` and the log.
    pub dir: tempfile::TempDir,
    /// The state directory (`dir/state` unless [`AgentOptions::state`] says otherwise).
    pub state: PathBuf,
    /// The running process, if any.
    pub child: Option<Child>,
    /// How many times it was spawned.
    pub starts: u32,
    /// Environment set on every spawn, after the default `RUST_LOG=info`.
    pub env: Vec<(&'static str, &'static str)>,
}

/// How to lay out a new [`Agent`]: cadence, identity and where its state lives.
pub(crate) struct AgentOptions {
    interval: String,
    identity: Option<(String, String)>,
    dir: Option<(tempfile::TempDir, PathBuf)>,
}

impl AgentOptions {
    /// Samples every `interval` (a duration string) instead of every 200 ms.
    pub(crate) fn interval(mut self, interval: &str) -> Self {
        self.interval = interval.to_string();
        self
    }

    /// Sets `host_id` and `group` in the `[agent]` table.
    pub(crate) fn identity(mut self, host: &str, group: &str) -> Self {
        self.identity = Some((host.to_string(), group.to_string()));
        self
    }

    /// Uses `dir` for config, socket and log and `state` as the state directory.
    pub(crate) fn state(mut self, dir: tempfile::TempDir, state: PathBuf) -> Self {
        self.dir = Some((dir, state));
        self
    }

    /// Writes the config, with `extra` appended after the `[agent]` keys (it may add keys
    /// to that table, then `[sources]`, `[coordinator]`, ... tables).
    pub(crate) fn create(self, extra: &str) -> Agent {
        let (dir, state) = self.dir.unwrap_or_else(|| {
            let dir = tempfile::tempdir().expect("tempdir");
            let state = dir.path().join("state");
            (dir, state)
        });
        let identity = self
            .identity
            .map(|(host, group)| format!("host_id = \"{host}\"\ngroup = \"{group}\"\n"))
            .unwrap_or_default();
        let cfg = format!(
            "[agent]\ninterval = \"{}\"\ndecision_interval = \"1s\"\nstate_directory = \"{}\"\nsocket = \"{}\"\n{identity}{extra}",
            self.interval,
            state.display(),
            dir.path().join("run/headroom.sock").display(),
        );
        std::fs::write(dir.path().join("headroom.toml"), cfg).expect("write config");
        Agent {
            dir,
            state,
            child: None,
            starts: 0,
            env: Vec::new(),
        }
    }
}

impl Agent {
    /// A new agent sampling every 200 ms and deciding every second; `extra` as in
    /// [`AgentOptions::create`].
    pub(crate) fn new(extra: &str) -> Agent {
        Agent::options().create(extra)
    }

    /// Host `host-{index}` of group `web`, whose demand is the gauge `queue_depth` served at
    /// `gauge_url` with `capacity` per instance and a 20 s warm-up, delivering to `urls` with
    /// the token in `token`; `coordinator` adds keys to its `[coordinator]` table.
    pub(crate) fn on_gauge(
        index: usize,
        gauge_url: &str,
        capacity: f64,
        urls: &[String],
        token: &std::path::Path,
        coordinator: &str,
    ) -> Agent {
        let urls = urls
            .iter()
            .map(|u| format!("\"{u}\""))
            .collect::<Vec<_>>()
            .join(", ");
        Agent::new(&format!(
            "host_id = \"host-{index}\"\ngroup = \"web\"\n\
             [sources.app]\nendpoint = \"{gauge_url}\"\ngauges = [\"queue_depth\"]\n\
             [model]\ndemand = \"app.queue_depth\"\ncapacity = {capacity}\n[policy]\nwarmup = \"20s\"\n\
             [coordinator]\nurls = [{urls}]\ntoken_file = \"{}\"\nmax_send_rate = 200\n{coordinator}",
            token.display(),
        ))
    }

    /// Options for an agent other than [`Agent::new`]'s.
    pub(crate) fn options() -> AgentOptions {
        AgentOptions {
            interval: "200ms".to_string(),
            identity: None,
            dir: None,
        }
    }

    /// Its config file.
    pub(crate) fn config_path(&self) -> PathBuf {
        self.dir.path().join("headroom.toml")
    }
    /// Its control socket.
    pub(crate) fn socket(&self) -> PathBuf {
        self.dir.path().join("run/headroom.sock")
    }
    /// Its SQLite store.
    pub(crate) fn db(&self) -> PathBuf {
        self.state.join("headroom.db")
    }
    /// Its log file (stderr, appended across starts).
    pub(crate) fn log_path(&self) -> PathBuf {
        self.dir.path().join("agent.log")
    }
    /// Its log so far.
    pub(crate) fn log(&self) -> String {
        std::fs::read_to_string(self.log_path()).unwrap_or_default()
    }

    /// Spawns the agent (log appended) without waiting for it.
    pub(crate) fn spawn(&mut self) {
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.log_path())
            .expect("log file");
        let child = super::without_ambient(&mut Command::new(bin()))
            .args(["agent", "--config"])
            .arg(self.config_path())
            .env("RUST_LOG", "info")
            .envs(self.env.iter().copied())
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .expect("spawn agent");
        self.child = Some(child);
        self.starts += 1;
    }

    /// Spawns the agent and waits until its control socket answers.
    pub(crate) fn start(&mut self) {
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

    /// Runs a CLI command against this agent.
    pub(crate) fn cli(&self, args: &[&str]) -> Output {
        Command::new(bin())
            .args(args)
            .arg("--socket")
            .arg(self.socket())
            .output()
            .expect("run cli")
    }

    /// `ARGS --json`, which must succeed, parsed.
    pub(crate) fn json(&self, args: &[&str]) -> Value {
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

    /// Waits up to `secs` until `f` holds on `status --json`.
    pub(crate) fn wait_status(&self, what: &str, secs: u64, f: impl Fn(&Value) -> bool) -> Value {
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

    /// Sends a signal with kill(1) (`sig` like `-TERM`) and reaps the process.
    pub(crate) fn signal(&mut self, sig: &str) -> ExitStatus {
        let mut child = self.child.take().expect("running");
        let ok = Command::new("kill")
            .args([sig, &child.id().to_string()])
            .status()
            .expect("kill");
        assert!(ok.success());
        child.wait().expect("wait")
    }

    /// SIGHUP: reload the configuration (the agent keeps running).
    pub(crate) fn reload(&self) {
        let pid = self.pid().expect("running").to_string();
        let sent = Command::new("kill").args(["-HUP", &pid]).status();
        assert!(sent.is_ok_and(|s| s.success()), "kill -HUP {pid}");
    }

    /// SIGTERM and reap; returns the exit status.
    pub(crate) fn term(&mut self) -> ExitStatus {
        self.signal("-TERM")
    }

    /// kill -9 and reap.
    pub(crate) fn kill9(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    /// Whether the spawned process has exited (reaped if so).
    pub(crate) fn exited(&mut self) -> bool {
        self.child
            .as_mut()
            .is_some_and(|c| matches!(c.try_wait(), Ok(Some(_))))
    }

    /// The process id, while running.
    pub(crate) fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(Child::id)
    }
}

impl Drop for Agent {
    fn drop(&mut self) {
        self.kill9();
    }
}

/// `(committed.rollup_ts, committed.seq)` of a status.
pub(crate) fn committed(v: &Value) -> (Option<i64>, Option<u64>) {
    (
        v["committed"]["rollup_ts"].as_i64(),
        v["committed"]["seq"].as_u64(),
    )
}
