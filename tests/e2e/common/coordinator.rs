//! The built binary as `headroom coordinator`, its config and what it records in its state file.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use serde_json::Value;

use super::{bin, now};

/// A running `headroom coordinator`; killed on drop.
pub(crate) struct Coordinator {
    /// The process.
    pub child: Child,
    /// Its HTTP base URL, from its listen line.
    pub url: String,
    /// The KEDA external scaler's URL, when it serves one.
    pub keda: Option<String>,
    /// Its stderr, in the directory given at start.
    pub log: PathBuf,
}

impl Coordinator {
    /// Starts `headroom coordinator --config CONFIG` (log in `dir`, `env` set on top of
    /// `HEADROOM_LOG=info`) and waits for its listen line.
    pub(crate) fn start(dir: &Path, config: &Path, env: &[(&str, &str)]) -> Coordinator {
        Self::start_pinned(dir, config, env, None)
    }

    /// Like [`Coordinator::start`], run under `taskset -c CPUS` when `cpus` is given.
    pub(crate) fn start_pinned(
        dir: &Path,
        config: &Path,
        env: &[(&str, &str)],
        cpus: Option<&str>,
    ) -> Coordinator {
        let log = dir.join(format!("coordinator-{}.log", now()));
        let mut cmd = match cpus {
            Some(c) => {
                let mut cmd = Command::new("taskset");
                cmd.args(["-c", c, bin()]);
                cmd
            }
            None => Command::new(bin()),
        };
        super::without_ambient(&mut cmd)
            .arg("coordinator")
            .arg("--config")
            .arg(config)
            .env("HEADROOM_LOG", "info")
            .envs(env.iter().copied())
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
        let mut keda = None;
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
            if let Some(addr) = line.strip_prefix("keda external scaler listening on ") {
                keda = Some(format!("http://{addr}"));
            }
            if let Some(url) = line.strip_prefix("headroom coordinator listening on ") {
                return Coordinator {
                    child,
                    url: url.to_string(),
                    keda,
                    log,
                };
            }
        }
    }

    /// Its log so far.
    pub(crate) fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// kill -9 and reap.
    pub(crate) fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for Coordinator {
    fn drop(&mut self) {
        self.kill();
    }
}

/// The config of one fast group `name` (decisions every 200 ms) accepting the token in `token`.
pub(crate) fn group_toml(name: &str, token: &Path, stabilization_s: f64, actuator: &str) -> String {
    group_toml_with(name, token, stabilization_s, "", actuator)
}

/// [`group_toml`] with extra keys in the group table.
pub(crate) fn group_toml_with(
    name: &str,
    token: &Path,
    stabilization_s: f64,
    extra: &str,
    actuator: &str,
) -> String {
    format!(
        r#"
[groups.{name}]
token_files = ["{token}"]
capacity_per_instance = 1.0
target_utilization = 1.0
warmup = "1s"
decision_interval = "200ms"
min = 1
max = 20
scale_in_stabilization = "{stabilization_ms}ms"
max_scale_in_step = 10
host_ttl = "30s"
signal_ttl = "60s"
actuation_interval = "0s"
{extra}
[groups.{name}.actuator]
{actuator}
"#,
        token = token.display(),
        stabilization_ms = (stabilization_s * 1000.0).round() as u64,
    )
}

/// Group `web` deciding once a second with a 20 s warm-up, as the fleet and HA scenarios run
/// it on moto: `capacity` per instance at `target` utilisation, at most `max` instances, scale-in
/// after `stabilization_s` (all at once).
pub(crate) fn web_group_toml(
    token: &Path,
    capacity: f64,
    target: f64,
    max: u32,
    stabilization_s: f64,
    actuator: &str,
) -> String {
    format!(
        r#"
[groups.web]
token_files = ["{token}"]
capacity_per_instance = {capacity}
target_utilization = {target}
warmup = "20s"
decision_interval = "1s"
min = 1
max = {max}
scale_in_stabilization = "{stabilization_s}s"
max_scale_in_step = {max}
host_ttl = "30s"
signal_ttl = "60s"
actuation_interval = "0s"

[groups.web.actuator]
{actuator}
"#,
        token = token.display(),
    )
}

/// A whole coordinator config: `listen`, `state` and one group `web` as [`group_toml`] makes
/// it with a 60 s scale-in window.
pub(crate) fn coordinator_toml(listen: &str, state: &Path, token: &Path, actuator: &str) -> String {
    format!(
        "listen = \"{listen}\"\nstate = \"{}\"\n{}",
        state.display(),
        group_toml("web", token, 60.0, actuator)
    )
}

/// One signal as the coordinator recorded it.
pub(crate) struct Recorded {
    /// The sending agent's epoch.
    pub epoch: String,
    /// Its sequence number within the epoch.
    pub seq: u64,
    /// When the coordinator received it, Unix seconds.
    pub received_at: f64,
    /// When the agent decided it, Unix seconds.
    pub decided_at: f64,
    /// Applied to the group's demand; false = stored for audit only (older than the TTL).
    pub applied: bool,
}

/// Every signal the coordinator recorded for `host` (applied or stored), read from its state
/// file, in the order they were received.
pub(crate) fn coordinator_recorded(state: &Path, host: &str) -> Vec<Recorded> {
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
pub(crate) fn coordinator_applied(state: &Path, host: &str) -> Vec<(String, u64)> {
    coordinator_recorded(state, host)
        .into_iter()
        .filter(|r| r.applied)
        .map(|r| (r.epoch, r.seq))
        .collect()
}

/// Distinct `(epoch, seq)` an agent put in its outbox (`db` is its store).
pub(crate) fn outbox_produced(db: &Path) -> Vec<(String, u64)> {
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
