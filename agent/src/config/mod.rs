//! The agent's configuration: TOML, every key optional, validated as a whole.
//!
//! A missing file at the default path means built-in defaults, so the agent runs with zero setup.
//! Validation reports every problem it finds at once, each as `file: key: reason`
//! ([`headroom_common::config`]). [`Config::parse`] judges the text alone; [`Config::load`]
//! also reads the files it names (the coordinator token), so that a token the coordinator
//! would refuse stops the agent at start, and a reload keeps the running configuration.

use std::path::{Path, PathBuf};
use std::time::Duration;

use headroom_common::config::{self as loader, ConfigError, Problem};
use headroom_common::duration::{self, format as fmt_dur};
use headroom_common::id::check_id;
use headroom_common::token::Token;
use headroom_model::ScaleIn;
use headroom_model::policy::{
    DEFAULT_SHORTFALL_BUDGET, DEFAULT_SPEND_CEILING, scale_in_step_problem,
    shortfall_budget_problem, spend_ceiling_problem, target_utilization_problem,
};
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
        keep("model.demand", self.model.demand != new.model.demand);
        keep("coordinator", self.coordinator != new.coordinator);
        keep("metrics", self.metrics != new.metrics);
        applied.agent = AgentSection {
            decision_interval: b.decision_interval,
            ..a.clone()
        };
        applied.sources = self.sources.clone();
        applied.store = self.store.clone();
        applied.model.demand = self.model.demand.clone();
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
    /// How long decisions, forecasts and health transitions are kept.
    #[serde(with = "duration")]
    pub retention_events: Duration,
    /// SQLite page cache, KiB (small keeps the agent's memory small).
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
    /// Demand one host serves at full capacity, in the demand's unit; 0 = the number of CPUs
    /// (only valid for cpu.busy_cores).
    pub capacity: f64,
    /// History the forecaster keeps and is refilled from at start (at least 1h, at most
    /// `store.retention_1m`: what is not stored cannot be read back).
    #[serde(with = "duration")]
    pub history: Duration,
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
    /// Largest scale-in step, instances.
    pub max_scale_in_step: u32,
    /// What scales in: "predictive" (the plan) or "reactive" (only target tracking; the plan
    /// only adds, as AWS's predictive scaling does).
    pub scale_in: ScaleIn,
}

impl Default for PolicySection {
    fn default() -> Self {
        PolicySection {
            mode: ModeSetting::Predictive,
            shortfall_budget: DEFAULT_SHORTFALL_BUDGET,
            spend_ceiling: DEFAULT_SPEND_CEILING,
            target_utilization: 0.7,
            warmup: Duration::from_secs(300),
            scale_in_stabilization: Duration::from_secs(300),
            max_scale_in_step: 1,
            scale_in: ScaleIn::Predictive,
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
            timeout: Duration::from_secs(5),
            max_send_rate: 50,
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
    /// Loads `path` and checks the files it names; a missing file at the default path gives
    /// the defaults.
    pub fn load(path: &Path, is_default_path: bool) -> Result<Config, ConfigError> {
        let config = match loader::read(path, is_default_path)? {
            Some(text) => Config::parse(path, &text)?,
            None => Config::default(),
        };
        loader::finish(path, config.clone(), config.file_problems())?;
        Ok(config)
    }

    /// Parses and validates a configuration text read from `file`, without reading the files
    /// it names.
    pub fn parse(file: &Path, text: &str) -> Result<Config, ConfigError> {
        let (config, mut problems) = loader::parse::<Config>(file, text).map_err(|mut e| {
            moved_keys(&mut e.problems);
            e
        })?;
        moved_keys(&mut problems);
        problems.extend(config.problems());
        loader::finish(file, config, problems)
    }

    /// Problems of the files the configuration names: the coordinator token must be one the
    /// coordinator accepts.
    pub fn file_problems(&self) -> Vec<Problem> {
        let c = &self.coordinator;
        if c.urls.is_empty() || c.token_file.is_empty() {
            return Vec::new();
        }
        match Token::read(Path::new(&c.token_file)) {
            Ok(_) => Vec::new(),
            Err(e) => vec![Problem::new("coordinator.token_file", e.to_string())],
        }
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

    /// Semantic checks over a well-typed configuration.
    pub fn problems(&self) -> Vec<Problem> {
        let mut out = Vec::new();
        let mut bad = |key: &str, reason: String| {
            out.push(Problem {
                key: key.into(),
                reason,
            });
        };
        let a = &self.agent;
        if a.interval < Duration::from_millis(100) || a.interval > Duration::from_secs(60) {
            bad(
                "agent.interval",
                format!("{} is outside 100ms..=60s", fmt_dur(a.interval)),
            );
        }
        if a.decision_interval < a.interval {
            bad(
                "agent.decision_interval",
                format!(
                    "{} is shorter than agent.interval ({})",
                    fmt_dur(a.decision_interval),
                    fmt_dur(a.interval)
                ),
            );
        }
        if a.decision_interval > Duration::from_secs(600) {
            bad(
                "agent.decision_interval",
                format!("{} is longer than 10m", fmt_dur(a.decision_interval)),
            );
        }
        if a.group.trim().is_empty() {
            bad("agent.group", "must not be empty".into());
        } else if let Err(why) = check_id(&a.group) {
            bad("agent.group", why);
        }
        if let Err(e) = headroom_common::logging::parse_filter(&a.log) {
            bad("agent.log", e);
        }
        if !a.host_id.is_empty()
            && let Err(why) = check_id(&a.host_id)
        {
            bad("agent.host_id", why);
        }
        // Every slot of the ring ends up resident (a sample is about 4 KiB).
        if self.sources.ring_capacity < 2 || self.sources.ring_capacity > 4096 {
            bad(
                "sources.ring_capacity",
                format!("{} is outside 2..=4096", self.sources.ring_capacity),
            );
        }
        let app = &self.sources.app;
        if app.timeout < Duration::from_millis(10) {
            bad(
                "sources.app.timeout",
                format!("{} is shorter than 10ms", fmt_dur(app.timeout)),
            );
        }
        if !app.endpoint.is_empty() {
            if !app.endpoint.starts_with("http://") {
                bad(
                    "sources.app.endpoint",
                    format!("{:?} must be an http:// URL", app.endpoint),
                );
            }
            if app.gauges.is_empty() {
                bad(
                    "sources.app.gauges",
                    "an endpoint is set but no gauge is named".into(),
                );
            }
        }
        for g in &app.gauges {
            let max = headroom_collector::sample::SHORT_NAME_MAX;
            if g.len() > max {
                bad(
                    "sources.app.gauges",
                    format!("{g:?} is longer than {max} bytes (a sample holds names that long)"),
                );
            }
        }
        if let Some(gauge) = self.model.demand.strip_prefix("app.")
            && !app.gauges.iter().any(|g| g == gauge)
        {
            bad(
                "model.demand",
                format!("{gauge:?} is not one of sources.app.gauges"),
            );
        }
        if app.gauges.len() > headroom_collector::sample::MAX_APP_GAUGES {
            bad(
                "sources.app.gauges",
                format!(
                    "at most {} gauges",
                    headroom_collector::sample::MAX_APP_GAUGES
                ),
            );
        }
        let s = &self.store;
        if s.retention_10s < Duration::from_secs(600) {
            bad("store.retention_10s", "must be at least 10m".into());
        }
        if s.retention_1m < s.retention_10s {
            bad(
                "store.retention_1m",
                "must be at least store.retention_10s".into(),
            );
        }
        let m = &self.model;
        let p = &self.policy;
        if m.demand.trim().is_empty() {
            bad(
                "model.demand",
                "must name a metric, e.g. cpu.busy_cores".into(),
            );
        } else if m.capacity == 0.0 && m.demand != "cpu.busy_cores" {
            bad(
                "model.capacity",
                format!("must be set (> 0) for demand {:?}", m.demand),
            );
        }
        if m.history < Duration::from_secs(3600) {
            bad("model.history", "must be at least 1h".into());
        } else if m.history > s.retention_1m {
            bad(
                "model.history",
                format!(
                    "{} is longer than store.retention_1m ({}): history that is not kept \
                     cannot be read back",
                    duration::format(m.history),
                    duration::format(s.retention_1m)
                ),
            );
        }
        if !(m.capacity >= 0.0 && m.capacity.is_finite()) {
            bad(
                "model.capacity",
                format!("{} must be a finite number >= 0", m.capacity),
            );
        }
        if let Some(why) = target_utilization_problem(p.target_utilization) {
            bad("policy.target_utilization", why);
        }
        if let Some(why) = shortfall_budget_problem(p.shortfall_budget) {
            bad("policy.shortfall_budget", why);
        }
        if let Some(why) = spend_ceiling_problem(p.spend_ceiling) {
            bad("policy.spend_ceiling", why);
        }
        if p.warmup > Duration::from_secs(7200) {
            bad(
                "policy.warmup",
                format!(
                    "{} is longer than 2h, past what the forecaster looks ahead",
                    fmt_dur(p.warmup)
                ),
            );
        }
        if let Some(why) = scale_in_step_problem(p.max_scale_in_step) {
            bad("policy.max_scale_in_step", why);
        }
        let h = &self.health;
        for (key, v) in [
            (
                "health.memory_available_degraded",
                h.memory_available_degraded,
            ),
            (
                "health.memory_available_unhealthy",
                h.memory_available_unhealthy,
            ),
            ("health.disk_used_degraded", h.disk_used_degraded),
        ] {
            if !(0.0..=1.0).contains(&v) {
                bad(key, format!("{v} is outside 0..=1"));
            }
        }
        if h.undelivered_degraded < Duration::from_secs(1) {
            bad("health.undelivered_degraded", "must be at least 1s".into());
        }
        if h.psi_full_unhealthy < h.psi_full_degraded {
            bad(
                "health.psi_full_unhealthy",
                "must be at least health.psi_full_degraded".into(),
            );
        }
        let c = &self.coordinator;
        for (i, url) in c.urls.iter().enumerate() {
            if c.urls[..i].contains(url) {
                bad(
                    "coordinator.urls",
                    format!("{url:?} is listed twice: each replica has one place in the outbox"),
                );
            }
            if !(url.starts_with("http://") || url.starts_with("https://")) {
                bad(
                    "coordinator.urls",
                    format!("{url:?} must be an http:// or https:// URL"),
                );
            }
        }
        if !c.urls.is_empty() && c.token_file.is_empty() {
            bad(
                "coordinator.token_file",
                "required when coordinator.urls is set".into(),
            );
        }
        // A bound this tight would drop undelivered signals during a short outage.
        if c.outbox_max_age < Duration::from_secs(600) {
            bad(
                "coordinator.outbox_max_age",
                format!("{} is shorter than 10m", fmt_dur(c.outbox_max_age)),
            );
        }
        if c.outbox_max_rows < 1000 {
            bad(
                "coordinator.outbox_max_rows",
                format!("{} is fewer than 1000", c.outbox_max_rows),
            );
        }
        if c.timeout < Duration::from_millis(100) {
            bad(
                "coordinator.timeout",
                format!("{} is shorter than 100ms", fmt_dur(c.timeout)),
            );
        }
        if c.max_send_rate == 0 {
            bad("coordinator.max_send_rate", "must be at least 1".into());
        }
        match c.busy.strip_prefix("app.") {
            Some(gauge) if !self.sources.app.gauges.iter().any(|g| g == gauge) => bad(
                "coordinator.busy",
                format!("{gauge:?} is not one of sources.app.gauges"),
            ),
            None if !matches!(c.busy.as_str(), "" | "connections") => bad(
                "coordinator.busy",
                format!(
                    "{:?} is none of \"connections\", \"app.GAUGE\" or \"\" (off)",
                    c.busy
                ),
            ),
            _ => {}
        }
        if !c.busy_ports.is_empty() && c.busy != "connections" {
            bad(
                "coordinator.busy_ports",
                "only counts with busy = \"connections\"".into(),
            );
        }
        if c.busy_ports.contains(&0) {
            bad("coordinator.busy_ports", "0 is not a port".into());
        }
        if !self.metrics.listen.is_empty()
            && self.metrics.listen.parse::<std::net::SocketAddr>().is_err()
        {
            bad(
                "metrics.listen",
                format!(
                    "{:?} is not an address like 127.0.0.1:9473",
                    self.metrics.listen
                ),
            );
        }
        out
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

#[cfg(test)]
mod tests;
