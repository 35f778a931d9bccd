//! The coordinator's TOML configuration, its defaults and its validation.
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
//! [groups.web]
//! token_files = ["/etc/headroom/tokens/web"]    # not world-readable; reloaded on SIGHUP (deleting one revokes it)
//! capacity_per_instance = 4.0                   # default: mean of the hosts' reported capacity
//! target_utilization = 0.7
//! warmup = "5m"
//! decision_interval = "10s"
//! min = 1
//! max = 20
//! scale_in_stabilization = "5m"
//! max_scale_in_step = 1
//! mode = "predictive"                           # or "reactive"
//! host_ttl = "1m"                               # hosts silent this long leave the group
//! signal_ttl = "2m"                             # older signals are stored for audit only
//! replace_unhealthy_after = 0                   # N consecutive unhealthy signals; 0 = off
//! actuation_interval = "10s"                    # at most one actuation per interval
//!
//! [groups.web.actuator]
//! kind = "aws"                                  # aws | keda | command | dry-run
//! auto_scaling_group = "web-asg"
//! region = "eu-west-1"                          # default: the standard chain
//! endpoint = "http://127.0.0.1:5000"            # default: the real service
//! ```

use std::collections::BTreeMap;
use std::fmt;
use std::path::PathBuf;

use serde::{Deserialize, Deserializer};

use crate::actuator::ActuatorConfig;
use crate::cli::CoordinatorArgs;
use crate::exit::{CONFIG_INVALID, Exit};

/// Default listen address of the HTTP API.
pub const DEFAULT_LISTEN: &str = "127.0.0.1:7070";
/// Default state file
/// (used when `$STATE_DIRECTORY`, which systemd sets for the unit, is not).
pub const DEFAULT_STATE: &str = "/var/lib/headroom-coordinator/coordinator.db";
/// The group used when no configuration file is given.
pub const DEFAULT_GROUP: &str = "default";

/// A duration written as `"30s"`, `"5m"`, `"14d"` or a number of seconds.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Secs(pub f64);

impl<'de> Deserialize<'de> for Secs {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        #[derive(Deserialize)]
        #[serde(untagged)]
        enum Raw {
            Num(f64),
            Text(String),
        }
        match Raw::deserialize(d)? {
            Raw::Num(v) if v.is_finite() && v >= 0.0 => Ok(Secs(v)),
            Raw::Num(v) => Err(serde::de::Error::custom(format!("{v} is not a duration"))),
            Raw::Text(s) => humantime::parse_duration(&s)
                .map(|d| Secs(d.as_secs_f64()))
                .map_err(|e| serde::de::Error::custom(format!("{s:?} is not a duration: {e}"))),
        }
    }
}

impl fmt::Display for Secs {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}s", self.0)
    }
}

/// The whole coordinator configuration file.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CoordinatorConfig {
    /// Address the HTTP API listens on (`host:port`; port 0 picks a free one).
    #[serde(default = "default_listen")]
    pub listen: String,
    /// SQLite state file: applied signal keys, group demand series and actions, so a restarted
    /// coordinator applies each (host, epoch, seq) exactly once.
    #[serde(default = "default_state")]
    pub state: PathBuf,
    /// Largest accepted request body, bytes (larger gets 413).
    #[serde(default = "default_max_body")]
    pub max_body_bytes: usize,
    /// How long stored signals, demand points and actions are kept.
    #[serde(default = "default_retention")]
    pub retention: Secs,
    /// Serve HTTPS with this certificate and key (PEM).
    pub tls: Option<TlsConfig>,
    /// Serve KEDA's external scaler gRPC service (for groups whose actuator is `keda`).
    pub keda: Option<KedaConfig>,
    /// The scaled groups, by name.
    #[serde(default)]
    pub groups: BTreeMap<String, GroupConfig>,
}

/// TLS certificate and key, PEM files.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TlsConfig {
    /// Certificate chain, PEM.
    pub cert: PathBuf,
    /// Private key, PEM.
    pub key: PathBuf,
}

/// Where the KEDA external scaler gRPC service listens.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
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

/// One scaled group: who may signal it, how it decides, and what it drives.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GroupConfig {
    /// Files each holding one bearer token accepted for this group (several allow rotation).
    /// A file readable or writable by others is refused; group-readable is allowed.
    #[serde(default)]
    pub token_files: Vec<PathBuf>,
    /// Demand one instance serves at full capacity; default: mean capacity the hosts report.
    pub capacity_per_instance: Option<f64>,
    /// Target utilisation of expected demand, (0, 1].
    #[serde(default = "default_target")]
    pub target_utilization: f64,
    /// Instance warm-up.
    #[serde(default = "default_warmup")]
    pub warmup: Secs,
    /// How often the group decides.
    #[serde(default = "default_interval")]
    pub decision_interval: Secs,
    /// Fewest instances.
    #[serde(default = "default_min")]
    pub min: u32,
    /// Most instances.
    #[serde(default = "default_max")]
    pub max: u32,
    /// Scale in only after demand allowed it for this long.
    #[serde(default = "default_stabilization")]
    pub scale_in_stabilization: Secs,
    /// Largest scale-in step, instances.
    #[serde(default = "default_step")]
    pub max_scale_in_step: u32,
    /// `predictive` or `reactive`.
    #[serde(default = "default_mode")]
    pub mode: GroupMode,
    /// A host that has not signalled for this long leaves the group.
    #[serde(default = "default_host_ttl")]
    pub host_ttl: Secs,
    /// Only signals decided less than this long ago drive actuation; older ones (a drained
    /// backlog) are stored for audit.
    #[serde(default = "default_signal_ttl")]
    pub signal_ttl: Secs,
    /// Report a host to the actuator for replacement after this many consecutive unhealthy
    /// signals; 0 turns replacement off.
    #[serde(default)]
    pub replace_unhealthy_after: u32,
    /// At most one actuation (capacity change or replacement) per this interval.
    #[serde(default = "default_actuation_interval")]
    pub actuation_interval: Secs,
    /// What applies the desired capacity.
    #[serde(default)]
    pub actuator: ActuatorConfig,
}

fn default_listen() -> String {
    DEFAULT_LISTEN.into()
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
fn default_max_body() -> usize {
    64 * 1024
}
fn default_retention() -> Secs {
    Secs(14.0 * 86_400.0)
}
fn default_target() -> f64 {
    0.7
}
fn default_warmup() -> Secs {
    Secs(300.0)
}
fn default_interval() -> Secs {
    Secs(10.0)
}
fn default_min() -> u32 {
    1
}
fn default_max() -> u32 {
    100
}
fn default_stabilization() -> Secs {
    Secs(300.0)
}
fn default_step() -> u32 {
    1
}
fn default_mode() -> GroupMode {
    GroupMode::Predictive
}
fn default_host_ttl() -> Secs {
    Secs(60.0)
}
fn default_signal_ttl() -> Secs {
    Secs(120.0)
}
fn default_actuation_interval() -> Secs {
    Secs(10.0)
}

impl Default for GroupConfig {
    fn default() -> Self {
        GroupConfig {
            token_files: Vec::new(),
            capacity_per_instance: None,
            target_utilization: default_target(),
            warmup: default_warmup(),
            decision_interval: default_interval(),
            min: default_min(),
            max: default_max(),
            scale_in_stabilization: default_stabilization(),
            max_scale_in_step: default_step(),
            mode: default_mode(),
            host_ttl: default_host_ttl(),
            signal_ttl: default_signal_ttl(),
            replace_unhealthy_after: 0,
            actuation_interval: default_actuation_interval(),
            actuator: ActuatorConfig::default(),
        }
    }
}

impl CoordinatorConfig {
    /// Reads the file (if any), applies the quick-start flags and validates; an invalid
    /// configuration is an [`Exit`] with code 64 naming the file, key and reason.
    pub fn load(args: &CoordinatorArgs) -> anyhow::Result<CoordinatorConfig> {
        let origin = args
            .config
            .as_ref()
            .map_or_else(|| "command line".to_string(), |p| p.display().to_string());
        let mut config = match &args.config {
            Some(path) => {
                let text = std::fs::read_to_string(path).map_err(|e| {
                    Exit::new(
                        CONFIG_INVALID,
                        format!("{}: cannot read: {e}", path.display()),
                    )
                })?;
                Self::parse(&text).map_err(|e| {
                    Exit::new(
                        CONFIG_INVALID,
                        format!("{}: {}", path.display(), e.trim_end()),
                    )
                })?
            }
            None => CoordinatorConfig {
                listen: default_listen(),
                state: default_state(),
                max_body_bytes: default_max_body(),
                retention: default_retention(),
                tls: None,
                keda: None,
                groups: BTreeMap::from([(DEFAULT_GROUP.to_string(), GroupConfig::default())]),
            },
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
        let problems = config.problems();
        if !problems.is_empty() {
            let list = problems.join("; ");
            return Err(Exit::new(CONFIG_INVALID, format!("{origin}: {list}")));
        }
        Ok(config)
    }

    /// Parses TOML text (no validation beyond types).
    pub fn parse(text: &str) -> Result<CoordinatorConfig, String> {
        toml::from_str(text).map_err(|e| e.to_string())
    }

    /// Every problem as `key: reason`.
    pub fn problems(&self) -> Vec<String> {
        let mut out = Vec::new();
        if self.listen.parse::<std::net::SocketAddr>().is_err() {
            out.push(format!(
                "listen: {:?} is not host:port (an IP address and a port)",
                self.listen
            ));
        }
        if let Some(keda) = &self.keda
            && keda.listen.parse::<std::net::SocketAddr>().is_err()
        {
            out.push(format!(
                "keda.listen: {:?} is not an IP address and port",
                keda.listen
            ));
        }
        if self.max_body_bytes < 1024 {
            out.push("max_body_bytes: must be at least 1024".into());
        }
        if self.groups.is_empty() {
            out.push("groups: at least one group is needed".into());
        }
        for (name, g) in &self.groups {
            let key = |k: &str| format!("groups.{name}.{k}");
            if let Err(why) = crate::signal::check_id(name) {
                out.push(format!("groups.{name:?}: name {why}"));
            }
            if g.token_files.is_empty() {
                out.push(format!(
                    "{}: at least one token file is needed (or --token-file)",
                    key("token_files")
                ));
            }
            if let Some(c) = g.capacity_per_instance
                && !(c.is_finite() && c > 0.0)
            {
                out.push(format!("{}: must be > 0", key("capacity_per_instance")));
            }
            if !(g.target_utilization > 0.0 && g.target_utilization <= 1.0) {
                out.push(format!("{}: must be in (0, 1]", key("target_utilization")));
            }
            if g.decision_interval.0 < 0.05 {
                out.push(format!(
                    "{}: must be at least 50ms",
                    key("decision_interval")
                ));
            }
            if g.max == 0 || g.min > g.max {
                out.push(format!(
                    "{}: need 0 < max and min <= max (min {}, max {})",
                    key("max"),
                    g.min,
                    g.max
                ));
            }
            if g.max_scale_in_step == 0 {
                out.push(format!("{}: must be >= 1", key("max_scale_in_step")));
            }
            if g.host_ttl.0 <= 0.0 {
                out.push(format!("{}: must be > 0", key("host_ttl")));
            }
            if g.signal_ttl.0 <= 0.0 {
                out.push(format!("{}: must be > 0", key("signal_ttl")));
            }
            for problem in g.actuator.problems() {
                out.push(format!("{}.{problem}", key("actuator")));
            }
            if matches!(g.actuator, ActuatorConfig::Keda(_)) && self.keda.is_none() {
                out.push(format!(
                    "{}: kind = \"keda\" needs a [keda] section with listen",
                    key("actuator")
                ));
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_a_full_group_and_defaults() {
        let c = CoordinatorConfig::parse(
            r#"
            listen = "127.0.0.1:0"
            state = "/tmp/x.db"
            [groups.web]
            token_files = ["/t"]
            warmup = "30s"
            scale_in_stabilization = 5
            [groups.web.actuator]
            kind = "command"
            program = "/bin/true"
            args = ["{desired}"]
            "#,
        )
        .unwrap();
        let g = &c.groups["web"];
        assert_eq!(g.warmup, Secs(30.0));
        assert_eq!(g.scale_in_stabilization, Secs(5.0));
        assert_eq!(g.min, 1);
        assert!(c.problems().is_empty(), "{:?}", c.problems());
    }

    #[test]
    fn reports_key_and_reason() {
        let c = CoordinatorConfig::parse(
            "listen = \"nope\"\n[groups.web]\ntoken_files = []\ntarget_utilization = 2.0\n",
        )
        .unwrap();
        let p = c.problems().join("\n");
        assert!(p.contains("listen:"), "{p}");
        assert!(p.contains("groups.web.token_files"), "{p}");
        assert!(p.contains("groups.web.target_utilization"), "{p}");
        let err = CoordinatorConfig::parse("[groups.web]\nbogus = 1\n").unwrap_err();
        assert!(err.contains("bogus"), "{err}");
        let err = CoordinatorConfig::parse("[groups.web]\nwarmup = \"soon\"\n").unwrap_err();
        assert!(err.contains("warmup") || err.contains("soon"), "{err}");
    }
}
