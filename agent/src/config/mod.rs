//! The agent's configuration: TOML, every key optional, validated as a whole.
//!
//! A missing file at the default path means built-in defaults, so the agent runs with zero setup.
//! Validation (`validate.rs`) reports every problem it finds at once, each as `file: key: reason`
//! ([`headroom_common::config`]). [`Config::parse`] judges the text alone; [`Config::load`]
//! also reads the files it names (the coordinator token), so that a token the coordinator
//! would refuse stops the agent at start, and a reload keeps the running configuration.

use std::path::{Path, PathBuf};
use std::time::Duration;

use headroom_common::config::{self as loader, ConfigError, Problem};
use headroom_common::duration;
use headroom_common::token::Token;
use headroom_model::{PolicyConfig, ScaleIn};
use serde::{Deserialize, Serialize};

/// The whole agent configuration.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(default)]
pub struct Config {
    /// Identity, cadence and local paths.
    pub agent: AgentSection,
    /// What the collector reads.
    pub sources: SourcesSection,
    /// History kept in SQLite.
    pub store: StoreSection,
    /// The demand signal and this host's capacity.
    pub model: ModelSection,
    /// How decisions are made from the forecast.
    pub policy: PolicySection,
    /// Thresholds of the health state.
    pub health: HealthSection,
    /// Where decisions are signalled.
    pub coordinator: CoordinatorSection,
    /// The Prometheus endpoint.
    pub metrics: MetricsSection,
}

impl Config {
    /// What a reload (SIGHUP) applies of `new`: everything but the keys only a restart can
    /// change (the sampler, the paths, the identity, the demand series the forecaster was
    /// trained on, the store writer's and the sender's settings, the endpoints), which keep
    /// their running values. Returns that configuration and the keys `new` changed in vain.
    pub fn reloaded(&self, new: &Config) -> (Config, Vec<&'static str>) {
        let mut applied = new.clone();
        let mut kept = Vec::new();
        let mut keep = |name: &'static str, changed: bool| {
            if changed {
                kept.push(name);
            }
        };
        let (a, b) = (&self.agent, &new.agent);
        keep("agent.interval", a.interval != b.interval);
        keep(
            "agent.state_directory",
            a.state_directory != b.state_directory,
        );
        keep("agent.socket", a.socket != b.socket);
        keep("agent.host_id", a.host_id != b.host_id);
        keep("agent.group", a.group != b.group);
        keep("agent.log", a.log != b.log);
        keep("sources", self.sources != new.sources);
        keep("store", self.store != new.store);
        // A capacity is in the demand's unit: a new one waits with the new demand.
        let demand_changed = self.model.demand != new.model.demand;
        keep("model.demand", demand_changed);
        keep(
            "model.capacity",
            demand_changed && self.model.capacity != new.model.capacity,
        );
        // The forecaster's history is sized when it is built, at start.
        keep("model.history", self.model.history != new.model.history);
        keep("coordinator", self.coordinator != new.coordinator);
        keep("metrics", self.metrics != new.metrics);
        applied.agent = AgentSection {
            decision_interval: b.decision_interval,
            ..a.clone()
        };
        applied.sources = self.sources.clone();
        applied.store = self.store.clone();
        applied.model.demand = self.model.demand.clone();
        applied.model.history = self.model.history;
        if demand_changed {
            applied.model.capacity = self.model.capacity;
        }
        applied.coordinator = self.coordinator.clone();
        applied.metrics = self.metrics.clone();
        (applied, kept)
    }
}

/// `[agent]`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct AgentSection {
    /// Stable host id sent to the coordinator; empty = /etc/machine-id, else the hostname.
    pub host_id: String,
    /// The scaling group this host belongs to.
    pub group: String,
    /// Sampling cadence, 100ms to 60s.
    #[serde(with = "duration")]
    pub interval: Duration,
    /// How often a forecast and a decision are made, at least the sampling cadence, at most 10m.
    #[serde(with = "duration")]
    pub decision_interval: Duration,
    /// State directory for the database; empty = $STATE_DIRECTORY, /var/lib/headroom (root),
    /// else $XDG_STATE_HOME/headroom or ~/.local/state/headroom.
    pub state_directory: String,
    /// Control socket path; empty = $RUNTIME_DIRECTORY/headroom.sock, /run/headroom (root), else
    /// $XDG_RUNTIME_DIR/headroom.
    pub socket: String,
    /// Log filter: a default level and per-target levels, e.g. `info` or
    /// `warn,headroom::pipeline=debug`; $HEADROOM_LOG, else $RUST_LOG, wins when set.
    pub log: String,
}

impl Default for AgentSection {
    fn default() -> Self {
        AgentSection {
            host_id: String::new(),
            group: "default".into(),
            interval: Duration::from_secs(1),
            decision_interval: Duration::from_secs(10),
            state_directory: String::new(),
            socket: String::new(),
            log: "info".into(),
        }
    }
}

/// `[sources]`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct SourcesSection {
    /// Root of procfs.
    pub proc_root: PathBuf,
    /// Root of sysfs.
    pub sys_root: PathBuf,
    /// Count the loopback interface in network stats.
    pub include_loopback: bool,
    /// Read accept queues through NETLINK_SOCK_DIAG (false = parse /proc/net/tcp, slower).
    pub sock_diag: bool,
    /// Ring buffer between sampler and pipeline, in samples. Each slot holds a whole sample
    /// (about 4 KiB) and the sampler cycles through all of them, so every slot ends up
    /// resident: 16 rides out a 16 s stall of the pipeline at a 1 s cadence, far longer than
    /// its slowest step (a refit, milliseconds); writes go to their own thread. 2..=4096.
    pub ring_capacity: usize,
    /// The local application's Prometheus endpoint.
    pub app: AppSection,
}

impl Default for SourcesSection {
    fn default() -> Self {
        SourcesSection {
            proc_root: PathBuf::from("/proc"),
            sys_root: PathBuf::from("/sys"),
            include_loopback: false,
            sock_diag: true,
            ring_capacity: 16,
            app: AppSection::default(),
        }
    }
}

/// `[sources.app]`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct AppSection {
    /// URL of a Prometheus text endpoint on loopback, e.g. http://127.0.0.1:8080/metrics;
    /// empty = off.
    pub endpoint: String,
    /// Gauges or counters to read from it, e.g. ["http_requests_in_flight"].
    pub gauges: Vec<String>,
    /// Timeout of one read (at least 10ms).
    #[serde(with = "duration")]
    pub timeout: Duration,
}

impl Default for AppSection {
    fn default() -> Self {
        AppSection {
            endpoint: String::new(),
            gauges: Vec::new(),
            timeout: Duration::from_millis(200),
        }
    }
}

/// `[store]`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct StoreSection {
    /// How long 10-second rollups are kept.
    #[serde(with = "duration")]
    pub retention_10s: Duration,
    /// How long 1-minute rollups are kept.
    #[serde(with = "duration")]
    pub retention_1m: Duration,
    /// How long decisions, forecasts, health transitions and signals every replica has are
    /// kept, at least 10m.
    #[serde(with = "duration")]
    pub retention_events: Duration,
    /// SQLite page cache, KiB, 16 to 1048576 (small keeps the agent's memory small).
    pub cache_kib: u32,
}

impl Default for StoreSection {
    fn default() -> Self {
        StoreSection {
            retention_10s: Duration::from_secs(24 * 3600),
            retention_1m: Duration::from_secs(14 * 86_400),
            retention_events: Duration::from_secs(14 * 86_400),
            cache_kib: 256,
        }
    }
}

/// How the host's share of the group is planned.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum ModeSetting {
    /// Forecast and act ahead of demand.
    Predictive,
    /// Act on current demand only.
    Reactive,
    /// Forecast and decide, but recommend no change (a dry run for operators).
    ForecastOnly,
}

/// `[model]`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct ModelSection {
    /// Demand signal: a metric name as `headroom history --list` shows it, e.g. cpu.busy_cores,
    /// accept_queue.depth or app.http_requests_in_flight.
    pub demand: String,
    /// Demand one host serves at full capacity, in the demand's unit; 0 = the host's online
    /// CPUs as /proc/stat lists them (only valid for cpu.busy_cores).
    pub capacity: f64,
    /// History the forecaster keeps and is refilled from at start (at least 1h, at most
    /// `store.retention_1m`: what is not stored cannot be read back).
    #[serde(with = "duration")]
    pub history: Duration,
}

impl ModelSection {
    /// The capacity in force: the configured one, or for 0 the host's online CPUs as
    /// `proc_root/stat` lists them, the scale `cpu.busy_cores` is measured on. Not the CPUs
    /// this process may run on: a unit with `CPUQuota=` or `CPUAffinity=` (an agent kept
    /// small) must not shrink the host it measures.
    pub fn capacity_in_force(&self, proc_root: &std::path::Path) -> f64 {
        if self.capacity > 0.0 {
            return self.capacity;
        }
        headroom_collector::online_cpus(proc_root).map_or_else(
            || std::thread::available_parallelism().map_or(1.0, |n| n.get() as f64),
            f64::from,
        )
    }
}

impl Default for ModelSection {
    fn default() -> Self {
        ModelSection {
            demand: "cpu.busy_cores".into(),
            capacity: 0.0,
            history: Duration::from_secs(14 * 86_400),
        }
    }
}

/// `[policy]`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct PolicySection {
    /// predictive, reactive or forecast-only.
    pub mode: ModeSetting,
    /// The share of time this host's share may run short of full capacity, above 0 and below
    /// 0.5: it prices a short sample, and the plan spends capacity where it pays.
    pub shortfall_budget: f64,
    /// The most the plan spends over the last hours per instance target tracking would run,
    /// at least 1, or 0 to derive it from the budget: past it, target tracking decides.
    pub spend_ceiling: f64,
    /// Target tracking's utilisation, above 0 and at most 1: the reactive rule of the fallback
    /// (cold start, a distrusted forecast), of `scale_in = "reactive"` and of the ledger's
    /// shadow policy.
    pub target_utilization: f64,
    /// Instance warm-up time: the lead the forecast must beat (at most 2h).
    #[serde(with = "duration")]
    pub warmup: Duration,
    /// Scale in only after demand allowed it for this long.
    #[serde(with = "duration")]
    pub scale_in_stabilization: Duration,
    /// Largest scale-in step per decision, instances, or `max_scale_in_fraction` of the
    /// current count when that is more.
    pub max_scale_in_step: u32,
    /// Largest scale-in step per decision as a share of the current count, 0 to 1 (0: only
    /// `max_scale_in_step`).
    pub max_scale_in_fraction: f64,
    /// What scales in: "predictive" (the plan) or "reactive" (only target tracking; the plan
    /// only adds, as AWS's predictive scaling does).
    pub scale_in: ScaleIn,
}

impl Default for PolicySection {
    fn default() -> Self {
        // The policy's defaults are the model's, as a coordinator group's and `simulate`'s are.
        let policy = PolicyConfig::default();
        PolicySection {
            mode: ModeSetting::Predictive,
            shortfall_budget: policy.shortfall_budget,
            spend_ceiling: policy.spend_ceiling,
            target_utilization: policy.target_utilization,
            warmup: Duration::from_secs_f64(policy.warmup_s),
            scale_in_stabilization: Duration::from_secs_f64(policy.scale_in_stabilization_s),
            max_scale_in_step: policy.max_scale_in_step,
            max_scale_in_fraction: policy.max_scale_in_fraction,
            scale_in: policy.scale_in,
        }
    }
}

/// Keys that were in `[model]` before the policy had its own table.
const MOVED_TO_POLICY: [&str; 5] = [
    "target_utilization",
    "warmup",
    "scale_in_stabilization",
    "max_scale_in_step",
    "mode",
];

/// `[health]`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct HealthSection {
    /// PSI `full avg10` (memory or io), percent, above which the host is degraded.
    pub psi_full_degraded: f64,
    /// PSI `full avg10`, percent, above which the host is unhealthy.
    pub psi_full_unhealthy: f64,
    /// Available memory fraction below which the host is degraded.
    pub memory_available_degraded: f64,
    /// Available memory fraction below which the host is unhealthy.
    pub memory_available_unhealthy: f64,
    /// Used fraction of the state directory's filesystem above which the host is degraded.
    pub disk_used_degraded: f64,
    /// How long a coordinator replica may leave signals waiting before the host is degraded.
    #[serde(with = "duration")]
    pub undelivered_degraded: Duration,
}

impl Default for HealthSection {
    fn default() -> Self {
        HealthSection {
            psi_full_degraded: 10.0,
            psi_full_unhealthy: 40.0,
            memory_available_degraded: 0.10,
            memory_available_unhealthy: 0.03,
            disk_used_degraded: 0.95,
            undelivered_degraded: Duration::from_secs(300),
        }
    }
}

/// `[coordinator]`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct CoordinatorSection {
    /// Base URLs of the coordinator replicas, each sent every signal; empty = standalone.
    pub urls: Vec<String>,
    /// File holding the bearer token: at least 16 bytes of printable ASCII, in a file others
    /// may not access ([`headroom_common::token`], the coordinator's rule too).
    pub token_file: String,
    /// PEM file of the CA (or self-signed certificate) an `https://` coordinator's certificate
    /// is checked against, instead of the built-in web roots; empty = those roots.
    pub ca_cert: String,
    /// Timeout of one request (at least 100ms).
    #[serde(with = "duration")]
    pub timeout: Duration,
    /// Most signals sent per second while draining a backlog.
    pub max_send_rate: u32,
    /// Undelivered signals older than this are dropped (counted and logged); at least 10m.
    #[serde(with = "duration")]
    pub outbox_max_age: Duration,
    /// At most this many signals are kept; the oldest undelivered beyond it are dropped (at
    /// least 1000).
    pub outbox_max_rows: u64,
    /// EC2 instance metadata (IMDSv2) endpoint to learn this host's instance id from, so the
    /// coordinator can mark an unhealthy host for replacement; empty = do not ask.
    pub imds_endpoint: String,
    /// The host's work in progress, sent with each signal so the coordinator can protect a
    /// busy instance from scale-in: `connections` (established TCP connections on the ports
    /// the host listens on), `app.GAUGE` (a gauge of `[sources.app]`), or empty = not sent.
    pub busy: String,
    /// With `busy = "connections"`: count only connections on these local ports (the service's,
    /// not sshd's or a metrics endpoint's); empty = every port the host listens on.
    pub busy_ports: Vec<u16>,
}

impl Default for CoordinatorSection {
    fn default() -> Self {
        CoordinatorSection {
            urls: Vec::new(),
            token_file: String::new(),
            ca_cert: String::new(),
            timeout: Duration::from_secs(5),
            max_send_rate: 1000,
            outbox_max_age: Duration::from_secs(7 * 86_400),
            outbox_max_rows: 200_000,
            imds_endpoint: String::new(),
            busy: String::new(),
            busy_ports: Vec::new(),
        }
    }
}

/// `[metrics]`.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(default)]
pub struct MetricsSection {
    /// Address of the Prometheus /metrics endpoint, e.g. 127.0.0.1:9473; empty = off.
    pub listen: String,
}

impl Config {
    /// Loads `path` and checks the files it names, reporting their problems with the text's;
    /// a missing file at the default path gives the defaults.
    pub fn load(path: &Path, is_default_path: bool) -> Result<Config, ConfigError> {
        let (config, mut problems) = match loader::read(path, is_default_path)? {
            Some(text) => Config::checked(path, &text)?,
            None => (Config::default(), Vec::new()),
        };
        problems.extend(config.file_problems());
        loader::finish(path, config, problems)
    }

    /// Parses and validates a configuration text read from `file`, without reading the files
    /// it names.
    pub fn parse(file: &Path, text: &str) -> Result<Config, ConfigError> {
        let (config, problems) = Config::checked(file, text)?;
        loader::finish(file, config, problems)
    }

    /// The configuration in `text` with every problem of the text (an `Err` when a value has
    /// the wrong type, which leaves nothing to check the rest against).
    fn checked(file: &Path, text: &str) -> Result<(Config, Vec<Problem>), ConfigError> {
        let (config, mut problems) = loader::parse::<Config>(file, text).map_err(|mut e| {
            moved_keys(&mut e.problems);
            e
        })?;
        moved_keys(&mut problems);
        problems.extend(config.problems());
        Ok((config, problems))
    }

    /// Problems of the files the configuration names: the coordinator token must be one the
    /// coordinator accepts, and a CA file must hold a certificate.
    pub fn file_problems(&self) -> Vec<Problem> {
        let c = &self.coordinator;
        let mut problems = Vec::new();
        if c.urls.is_empty() {
            return problems;
        }
        if !c.token_file.is_empty()
            && let Err(e) = Token::read(Path::new(&c.token_file))
        {
            problems.push(Problem::new("coordinator.token_file", e.to_string()));
        }
        if !c.ca_cert.is_empty()
            && let Err(e) = headroom_common::tls::trusting(Path::new(&c.ca_cert))
        {
            problems.push(Problem::new("coordinator.ca_cert", e.to_string()));
        }
        problems
    }

    /// How long the store keeps each kind of row, and the outbox's bounds.
    pub fn retention(&self) -> crate::store::Retention {
        crate::store::Retention {
            ten_seconds: self.store.retention_10s,
            one_minute: self.store.retention_1m,
            events: self.store.retention_events,
            ledger: self.store.retention_1m,
            outbox: crate::store::OutboxLimits {
                max_age: self.coordinator.outbox_max_age,
                max_rows: self.coordinator.outbox_max_rows,
            },
        }
    }
}

/// Says where a key that moved to `[policy]` lives now, instead of "unknown key".
fn moved_keys(problems: &mut [Problem]) {
    for p in problems {
        if let Some(key) = p.key.strip_prefix("model.")
            && MOVED_TO_POLICY.contains(&key)
            && p.reason == "unknown key"
        {
            p.reason = format!("moved to [policy]: write it as policy.{key}");
        }
    }
}

/// The default configuration file, every key commented. `headroom config default` prints it
/// and packaging installs it; a test keeps it equal to [`Config::default`].
pub const DEFAULT_FILE: &str = include_str!("default.toml");

mod validate;

#[cfg(test)]
mod tests;
