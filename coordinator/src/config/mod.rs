//! The coordinator's TOML configuration, its defaults and its validation. Loaded as the agent's
//! is ([`headroom_common::config`]): every problem at once, as `FILE: key: reason`, exit 64;
//! durations are written with their unit ([`headroom_common::duration`]).
//!
//! ```toml
//! listen = "0.0.0.0:7070"                      # HTTP API
//! state = "/var/lib/headroom-coordinator/coordinator.db"  # default: $STATE_DIRECTORY/coordinator.db
//! max_body_bytes = 65536                       # larger POST bodies get 413
//! retention = "14d"                            # stored signals/actions older than this are pruned
//!
//! [tls]                                         # optional: serve HTTPS (rustls)
//! cert = "/etc/headroom/tls/cert.pem"
//! key = "/etc/headroom/tls/key.pem"
//!
//! [keda]                                        # optional: KEDA external scaler gRPC service
//! listen = "0.0.0.0:9090"
//!
//! [lease]                                       # optional: one of several replicas (etcd elects)
//! endpoints = ["http://10.0.0.5:2379", "http://10.0.0.6:2379", "http://10.0.0.7:2379"]
//! ttl = "10s"                                   # whole seconds; a failover waits about this
//! prefix = "/headroom/"                         # group web campaigns on /headroom/web
//! replica = "coord-a"                           # default: the host name
//!
//! [groups.web]
//! token_files = ["/etc/headroom/tokens/web"]    # not world-readable; reloaded on SIGHUP (deleting one revokes it)
//! capacity_per_instance = 4.0                   # default: mean of the hosts' reported capacity
//! target_utilization = 0.7                     # target tracking's (fallback, shadow, reactive scale-in)
//! shortfall_budget = 0.05                       # share of time the group may run short
//! spend_ceiling = 0.0                           # most the plan spends per target tracking's (0: from the budget)
//! scale_in = "predictive"                       # or "reactive": only target tracking scales in
//! warmup = "5m"                                # with "measured": until 5 launches are seen
//! instance_warmup = "configured"                # or "measured": P90 of the last 20 launches
//! warmup_floor = "30s"                          # bounds of a measured warm-up
//! warmup_ceiling = "30m"
//! decision_interval = "10s"
//! min = 1
//! max = 20
//! max_breach = "hold"                          # or "raise": the plan may exceed max (aws, dry-run)
//! max_breach_buffer = 0.1                       # with raise: MaxSize = the plan x 1.1, back to max after
//! scale_in_stabilization = "5m"
//! max_scale_in_step = 1
//! max_scale_in_fraction = 0.5                  # of the count per decision; 0 = the step alone
//! mode = "predictive"                           # or "reactive"
//! host_ttl = "1m"                               # hosts silent this long leave the group
//! signal_ttl = "2m"                             # signals older when sent are stored for audit only
//! replace_unhealthy_after = 0                   # N consecutive unhealthy signals; 0 = off
//! actuation_interval = "10s"                    # at most one actuation per interval
//! scale_in_protection = false                   # aws: protect instances whose hosts are busy
//! protection_idle = "5m"                        # cleared after the host is idle this long
//! protection_interval = "15s"                   # at most one protection pass per interval
//!
//! [[groups.web.schedule]]                      # scheduled events, as many as needed
//! name = "friday-evening"                       # default: schedule[N]
//! cron = "0 17 * * FRI"                         # or at = "2026-12-24T08:00:00Z"
//! tz = "Europe/Berlin"                          # default: UTC
//! duration = "4h"
//! min_instances = 12                            # or demand_factor = 1.5
//!
//! [groups.web.actuator]
//! kind = "aws"                                  # aws | keda | command | dry-run
//! auto_scaling_group = "web-asg"
//! region = "eu-west-1"                          # default: the standard chain
//! endpoint = "http://127.0.0.1:5000"            # default: the real service
//!
//! # or, for Kubernetes:
//! # kind = "keda"
//! # metric_name = "headroom_desired_instances"
//! # fallback_replicas = 3                       # while every host is silent; default: an error
//! ```

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

use headroom_common::cli::CoordinatorArgs;
use headroom_common::config::{self as loader, ConfigError, Problem};
use headroom_common::duration;
use headroom_common::id::check_group;
use headroom_common::schedule::{self, ScheduleEntryConfig};
use headroom_model::schedule::Schedule;
use serde::Deserialize;

use headroom_model::policy::{
    bounds_problem, capacity_problem, decision_interval_problem, scale_in_fraction_problem,
    scale_in_step_problem, shortfall_budget_problem, spend_ceiling_problem,
    target_utilization_problem, warmup_problem,
};
use headroom_model::{PolicyConfig, ScaleIn};

use crate::actuator::ActuatorConfig;
use crate::lease::LeaseConfig;
use crate::warmup::InstanceWarmup;

/// Default listen address of the HTTP API.
pub const DEFAULT_LISTEN: &str = "127.0.0.1:7070";
/// Default state file
/// (used when `$STATE_DIRECTORY`, which systemd sets for the unit, is not).
pub const DEFAULT_STATE: &str = "/var/lib/headroom-coordinator/coordinator.db";
/// The group used when no configuration file is given.
pub const DEFAULT_GROUP: &str = "default";
/// Shortest accepted decision interval.
const MIN_DECISION_INTERVAL: Duration = Duration::from_millis(50);

/// The whole coordinator configuration file.
#[derive(Debug, Clone, Deserialize)]
#[serde(default)]
pub struct CoordinatorConfig {
    /// Address the HTTP API listens on (`host:port`; port 0 picks a free one).
    pub listen: String,
    /// SQLite state file: applied signal keys, group demand series and actions, so a restarted
    /// coordinator applies each (host, epoch, seq) exactly once.
    pub state: PathBuf,
    /// Largest accepted request body, bytes (larger gets 413).
    pub max_body_bytes: usize,
    /// How long stored signals, demand points and actions are kept.
    #[serde(with = "duration")]
    pub retention: Duration,
    /// Serve HTTPS with this certificate and key (PEM).
    pub tls: Option<TlsConfig>,
    /// Serve KEDA's external scaler gRPC service (for groups whose actuator is `keda`).
    pub keda: Option<KedaConfig>,
    /// Run as one of several replicas: the leader of each group's election in etcd actuates it.
    pub lease: Option<LeaseConfig>,
    /// The scaled groups, by name.
    pub groups: BTreeMap<String, GroupConfig>,
}

impl Default for CoordinatorConfig {
    fn default() -> Self {
        CoordinatorConfig {
            listen: DEFAULT_LISTEN.into(),
            state: default_state(),
            max_body_bytes: 64 * 1024,
            retention: Duration::from_secs(14 * 86_400),
            tls: None,
            keda: None,
            lease: None,
            groups: BTreeMap::new(),
        }
    }
}

/// TLS certificate and key, PEM files.
#[derive(Debug, Clone, Deserialize)]
pub struct TlsConfig {
    /// Certificate chain, PEM.
    pub cert: PathBuf,
    /// Private key, PEM.
    pub key: PathBuf,
}

/// Where the KEDA external scaler gRPC service listens.
#[derive(Debug, Clone, Deserialize)]
pub struct KedaConfig {
    /// `host:port` of the gRPC service (plain HTTP/2: keep it on the cluster network).
    pub listen: String,
}

/// Forecast mode of a group's policy.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum GroupMode {
    /// Plan for the forecast at the lead time.
    Predictive,
    /// Follow current demand only.
    Reactive,
}

/// What a plan above `max` does (after AWS's MaxCapacityBreachBehavior).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum MaxBreach {
    /// `max` is the most the group gets.
    Hold,
    /// The plan may exceed `max`: the scaler's own maximum is raised to the plan plus
    /// `max_breach_buffer`, and put back to `max` once the plan fits under it again.
    Raise,
}

/// One scaled group: who may signal it, how it decides, and what it drives.
#[derive(Debug, Clone, Deserialize)]
#[serde(default)]
pub struct GroupConfig {
    /// Files each holding one bearer token accepted for this group (several allow rotation).
    /// A file readable or writable by others is refused; group-readable is allowed.
    pub token_files: Vec<PathBuf>,
    /// Demand one instance serves at full capacity; default: mean capacity the hosts report.
    pub capacity_per_instance: Option<f64>,
    /// Target tracking's utilisation, (0, 1]: the reactive rule of the fallback, of
    /// `scale_in = "reactive"` and of the ledger's shadow.
    pub target_utilization: f64,
    /// The share of time the group may run short of full capacity, (0, 0.5): it prices a
    /// short sample, and the plan spends capacity where it pays.
    pub shortfall_budget: f64,
    /// The most the plan spends over the last hours per instance target tracking would run,
    /// at least 1, or 0 to derive it from the budget: past it, target tracking decides.
    pub spend_ceiling: f64,
    /// `predictive` (the plan scales in after the stabilisation window) or `reactive` (only
    /// target tracking scales in; the plan only adds).
    pub scale_in: ScaleIn,
    /// Instance warm-up (with `instance_warmup = "measured"`: until enough launches are seen).
    #[serde(with = "duration")]
    pub warmup: Duration,
    /// `configured` (the default: `warmup`) or `measured` from this group's launches.
    pub instance_warmup: InstanceWarmup,
    /// The least a measured warm-up is taken to be.
    #[serde(with = "duration")]
    pub warmup_floor: Duration,
    /// The most a measured warm-up is taken to be.
    #[serde(with = "duration")]
    pub warmup_ceiling: Duration,
    /// How often the group decides (at least 50ms).
    #[serde(with = "duration")]
    pub decision_interval: Duration,
    /// Fewest instances.
    pub min: u32,
    /// Most instances (unless `max_breach = "raise"`).
    pub max: u32,
    /// `hold` (the default) or `raise`: may the plan exceed `max`? (`aws` and `dry-run` only.)
    pub max_breach: MaxBreach,
    /// With `raise`, the scaler's maximum is the plan times 1 + this (0 to 1).
    pub max_breach_buffer: f64,
    /// Scale in only after demand allowed it for this long.
    #[serde(with = "duration")]
    pub scale_in_stabilization: Duration,
    /// Largest scale-in step per decision, instances, or `max_scale_in_fraction` of the
    /// current count when that is more.
    pub max_scale_in_step: u32,
    /// Largest scale-in step per decision as a share of the current count, 0 to 1 (0: only
    /// `max_scale_in_step` instances a decision).
    pub max_scale_in_fraction: f64,
    /// `predictive` or `reactive`.
    pub mode: GroupMode,
    /// A host that has not signalled for this long leaves the group.
    #[serde(with = "duration")]
    pub host_ttl: Duration,
    /// Only signals decided less than this long ago drive actuation; older ones (a drained
    /// backlog) are stored for audit.
    #[serde(with = "duration")]
    pub signal_ttl: Duration,
    /// Report a host to the actuator for replacement after this many consecutive unhealthy
    /// signals; 0 turns replacement off.
    pub replace_unhealthy_after: u32,
    /// At most one actuation (capacity change or replacement) per this interval.
    #[serde(with = "duration")]
    pub actuation_interval: Duration,
    /// Protect instances whose hosts report work in progress from scale-in (`aws` only).
    pub scale_in_protection: bool,
    /// Clear an instance's protection once its host has been idle this long.
    #[serde(with = "duration")]
    pub protection_idle: Duration,
    /// At most one protection pass (its calls batched) per this interval (at least 1s).
    #[serde(with = "duration")]
    pub protection_interval: Duration,
    /// What applies the desired capacity.
    pub actuator: ActuatorConfig,
    /// Scheduled events (`[[groups.NAME.schedule]]`): each raises the plan from its start −
    /// lead to its end.
    pub schedule: Vec<ScheduleEntryConfig>,
}

impl Default for GroupConfig {
    fn default() -> Self {
        // The policy's defaults are the model's, so a group and `simulate` cannot drift apart.
        let policy = PolicyConfig::default();
        let seconds = Duration::from_secs_f64;
        GroupConfig {
            token_files: Vec::new(),
            capacity_per_instance: None,
            target_utilization: policy.target_utilization,
            shortfall_budget: policy.shortfall_budget,
            spend_ceiling: policy.spend_ceiling,
            scale_in: policy.scale_in,
            warmup: seconds(policy.warmup_s),
            instance_warmup: InstanceWarmup::Configured,
            warmup_floor: Duration::from_secs(30),
            warmup_ceiling: Duration::from_secs(1800),
            decision_interval: seconds(policy.decision_interval_s),
            min: policy.min_instances,
            max: policy.max_instances,
            max_breach: MaxBreach::Hold,
            max_breach_buffer: 0.10,
            scale_in_stabilization: seconds(policy.scale_in_stabilization_s),
            max_scale_in_step: policy.max_scale_in_step,
            max_scale_in_fraction: policy.max_scale_in_fraction,
            mode: GroupMode::Predictive,
            host_ttl: Duration::from_secs(60),
            signal_ttl: Duration::from_secs(120),
            replace_unhealthy_after: 0,
            actuation_interval: Duration::from_secs(10),
            scale_in_protection: false,
            protection_idle: Duration::from_secs(300),
            protection_interval: Duration::from_secs(15),
            actuator: ActuatorConfig::default(),
            schedule: Vec::new(),
        }
    }
}

impl GroupConfig {
    /// The group's schedule, with the problems of its entries keyed under `prefix`
    /// (`groups.web.`): an entry's `min_instances` may not exceed `max` unless
    /// `max_breach = "raise"`.
    pub fn schedule(&self, prefix: &str) -> (Schedule, Vec<Problem>) {
        let most = match self.max_breach {
            MaxBreach::Hold => self.max,
            MaxBreach::Raise => u32::MAX,
        };
        schedule::build(&self.schedule, prefix, most)
    }
}

fn default_state() -> PathBuf {
    match std::env::var_os("STATE_DIRECTORY") {
        Some(d) if !d.is_empty() => {
            let first = d
                .to_string_lossy()
                .split(':')
                .next()
                .unwrap_or_default()
                .to_string();
            PathBuf::from(first).join("coordinator.db")
        }
        _ => PathBuf::from(DEFAULT_STATE),
    }
}

impl CoordinatorConfig {
    /// Reads the file (if any), applies the quick-start flags and validates: the configuration
    /// with every problem found, keyed (an error only for a file that does not parse). Without
    /// a file, one group named [`DEFAULT_GROUP`] is served. [`crate::auth::Tokens::load`] adds
    /// the token files' problems and reports them all at once.
    pub fn read(args: &CoordinatorArgs) -> Result<(CoordinatorConfig, Vec<Problem>), ConfigError> {
        let (mut config, mut problems) = match &args.config {
            Some(path) => {
                let text = loader::read(path, false)?.unwrap_or_default();
                loader::parse::<CoordinatorConfig>(path, &text)?
            }
            None => {
                let config = CoordinatorConfig {
                    groups: BTreeMap::from([(DEFAULT_GROUP.to_string(), GroupConfig::default())]),
                    ..CoordinatorConfig::default()
                };
                (config, Vec::new())
            }
        };
        if let Some(listen) = &args.listen {
            config.listen = listen.clone();
        }
        if let Some(state) = &args.state {
            config.state = state.clone();
        }
        if let Some(token) = &args.token_file {
            for group in config.groups.values_mut() {
                group.token_files = vec![token.clone()];
            }
        }
        problems.extend(config.problems());
        Ok((config, problems))
    }

    /// Renames the problems of values a flag set (`--listen`, `--state`, `--token-file`) after
    /// the flag: the file does not hold them, and its operator would look there in vain.
    pub fn name_flags(args: &CoordinatorArgs, problems: &mut [Problem]) {
        for p in problems {
            let flag = if p.key == "listen" && args.listen.is_some() {
                Some("--listen")
            } else if p.key == "state" && args.state.is_some() {
                Some("--state")
            } else if p.key.starts_with("groups.")
                && p.key.contains(".token_files")
                && args.token_file.is_some()
            {
                Some("--token-file")
            } else {
                None
            };
            if let Some(flag) = flag {
                p.key = match &args.config {
                    Some(_) => format!("{flag} (command line)"),
                    None => flag.to_string(),
                };
            }
        }
    }

    /// Where the configuration came from, as its problems name it: the file, or the command
    /// line for the quick-start flags alone.
    pub fn origin(args: &CoordinatorArgs) -> PathBuf {
        args.config
            .clone()
            .unwrap_or_else(|| PathBuf::from("command line"))
    }

    /// Parses and validates a configuration text read from `file`.
    pub fn parse(file: &Path, text: &str) -> Result<CoordinatorConfig, ConfigError> {
        let (config, mut problems) = loader::parse::<CoordinatorConfig>(file, text)?;
        problems.extend(config.problems());
        loader::finish(file, config, problems)
    }

    /// Every problem of a well-typed configuration, with its dotted key.
    pub fn problems(&self) -> Vec<Problem> {
        let mut out = Vec::new();
        let mut bad = |key: String, reason: String| out.push(Problem::new(key, reason));
        if self.listen.parse::<std::net::SocketAddr>().is_err() {
            bad(
                "listen".into(),
                format!(
                    "{:?} is not host:port (an IP address and a port)",
                    self.listen
                ),
            );
        }
        if let Some(keda) = &self.keda
            && keda.listen.parse::<std::net::SocketAddr>().is_err()
        {
            bad(
                "keda.listen".into(),
                format!("{:?} is not an IP address and port", keda.listen),
            );
        }
        if let Some(lease) = &self.lease {
            for p in lease.problems() {
                bad(p.key, p.reason);
            }
        }
        if self.retention < Duration::from_secs(3600) {
            bad(
                "retention".into(),
                format!(
                    "{} is shorter than 1h: the demand a group forecasts from and the senders' \
                     duplicate windows would be pruned every hour",
                    duration::format(self.retention)
                ),
            );
        }
        if self.max_body_bytes < 1024 {
            bad("max_body_bytes".into(), "must be at least 1024".into());
        }
        if self.groups.is_empty() {
            bad("groups".into(), "at least one group is needed".into());
        }
        for (name, g) in &self.groups {
            let key = |k: &str| format!("groups.{name}.{k}");
            if let Err(why) = check_group(name) {
                bad(format!("groups.{name:?}"), format!("name {why}"));
            }
            if g.token_files.is_empty() {
                bad(
                    key("token_files"),
                    "at least one token file is needed (or --token-file)".into(),
                );
            }
            if let Some(why) = g.capacity_per_instance.and_then(capacity_problem) {
                bad(key("capacity_per_instance"), why);
            }
            if let Some(why) = target_utilization_problem(g.target_utilization) {
                bad(key("target_utilization"), why);
            }
            if let Some(why) = shortfall_budget_problem(g.shortfall_budget) {
                bad(key("shortfall_budget"), why);
            }
            if let Some(why) = spend_ceiling_problem(g.spend_ceiling) {
                bad(key("spend_ceiling"), why);
            }
            if let Some(why) = decision_interval_problem(g.decision_interval) {
                bad(
                    key("decision_interval"),
                    format!("{} {why}", duration::format(g.decision_interval)),
                );
            }
            if let Some(why) = warmup_problem(g.warmup) {
                bad(
                    key("warmup"),
                    format!("{} {why}", duration::format(g.warmup)),
                );
            }
            if g.decision_interval < MIN_DECISION_INTERVAL {
                bad(
                    key("decision_interval"),
                    format!(
                        "{} is shorter than 50ms",
                        duration::format(g.decision_interval)
                    ),
                );
            }
            if let Some(why) = bounds_problem(g.min, g.max) {
                bad(key("max"), why);
            }
            if g.warmup_ceiling.is_zero() || g.warmup_floor > g.warmup_ceiling {
                bad(
                    key("warmup_ceiling"),
                    format!(
                        "need 0s < warmup_ceiling and warmup_floor <= warmup_ceiling (floor {}, ceiling {})",
                        duration::format(g.warmup_floor),
                        duration::format(g.warmup_ceiling)
                    ),
                );
            }
            if let Some(why) = scale_in_step_problem(g.max_scale_in_step) {
                bad(key("max_scale_in_step"), why);
            }
            if let Some(why) = scale_in_fraction_problem(g.max_scale_in_fraction) {
                bad(key("max_scale_in_fraction"), why);
            }
            if !(0.0..=1.0).contains(&g.max_breach_buffer) {
                bad(
                    key("max_breach_buffer"),
                    format!("{} is outside [0, 1]", g.max_breach_buffer),
                );
            }
            if g.max_breach == MaxBreach::Raise
                && !matches!(g.actuator, ActuatorConfig::Aws(_) | ActuatorConfig::DryRun)
            {
                bad(
                    key("max_breach"),
                    format!(
                        "\"raise\" needs an actuator that has a maximum to raise (aws or dry-run), not {:?}",
                        g.actuator.kind()
                    ),
                );
            }
            for (k, d) in [("host_ttl", g.host_ttl), ("signal_ttl", g.signal_ttl)] {
                if d.is_zero() {
                    bad(key(k), "must be longer than 0s".into());
                }
            }
            problems_of_schedule(&mut bad, g.schedule(&format!("groups.{name}.")).1);
            if g.scale_in_protection && !matches!(g.actuator, ActuatorConfig::Aws(_)) {
                bad(
                    key("scale_in_protection"),
                    format!(
                        "needs an actuator that can protect instances (aws), not {:?}",
                        g.actuator.kind()
                    ),
                );
            }
            if g.protection_idle.is_zero() {
                bad(key("protection_idle"), "must be longer than 0s".into());
            }
            if g.protection_interval < Duration::from_secs(1) {
                bad(key("protection_interval"), "must be at least 1s".into());
            }
            for p in g.actuator.problems() {
                bad(key(&format!("actuator.{}", p.key)), p.reason);
            }
            if matches!(g.actuator, ActuatorConfig::Keda(_)) && self.keda.is_none() {
                bad(
                    key("actuator.kind"),
                    "\"keda\" needs a [keda] section with listen".into(),
                );
            }
        }
        out
    }
}

/// Passes a schedule's problems (already keyed) on.
fn problems_of_schedule(bad: &mut impl FnMut(String, String), problems: Vec<Problem>) {
    for p in problems {
        bad(p.key, p.reason);
    }
}

#[cfg(test)]
mod tests;
