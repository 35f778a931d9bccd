//! Actuators that apply a group's desired capacity: `aws`, `keda`, `command`, `dry-run`.
//!
//! Each actuator implements [`Actuate`]; [`Actuator`] dispatches over the configured one (an
//! enum rather than `dyn`, because async trait methods are not object safe without boxing).
//!
//! **One actuator acts per group at a time.** Inside one coordinator, each group's decision
//! loop is a single task that awaits its actuator, so two actuations of a group never overlap,
//! and the loop rate-limits them (`actuation_interval`). Across coordinator replicas, the one
//! holding the group's election in etcd actuates it, fenced before every call
//! ([`crate::lease`]); without `[lease]` run one coordinator per group. The `keda` actuator only
//! publishes a value that KEDA pulls, so any number of replicas serving it agree as long as
//! they receive the same signals, and its groups need no leader.

pub mod command;
pub mod dry_run;

#[cfg(feature = "aws")]
pub mod aws;
#[cfg(feature = "keda")]
pub mod keda;

use std::time::Duration;

use headroom_common::config::Problem;
use headroom_common::duration;
use serde::Deserialize;

/// What an actuator reports about the scaled group.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Capacity {
    /// Instances desired now according to the scaler itself.
    pub desired: u32,
    /// The scaler's own lower bound, if it has one.
    pub min: Option<u32>,
    /// The scaler's own upper bound, if it has one.
    pub max: Option<u32>,
}

impl Capacity {
    /// A capacity known only by its desired count: a scaler without bounds of its own.
    pub fn unbounded(desired: u32) -> Capacity {
        Capacity {
            desired,
            min: None,
            max: None,
        }
    }
}

/// Why an actuation failed.
#[derive(Debug, thiserror::Error)]
pub enum ActuatorError {
    /// The external program failed, timed out or could not start.
    #[error("command: {0}")]
    Command(String),
    /// The AWS API refused or could not be reached.
    #[cfg_attr(not(feature = "aws"), allow(dead_code))]
    #[error("aws: {0}")]
    Aws(String),
    /// The actuator cannot do this (e.g. replace without an instance id).
    #[error("{0}")]
    Unsupported(String),
    /// Not attempted: this replica's lease ran out during the actuation (a call before it was
    /// slow), so the rest waits for whichever replica leads next.
    #[error("fenced: {0}")]
    Fenced(String),
}

/// The actuator contract: read the scaler's capacity, set it, and replace a host.
pub trait Actuate {
    /// The capacity the scaler has now, or `None` when it cannot tell.
    fn current(&self) -> impl Future<Output = Result<Option<Capacity>, ActuatorError>> + Send;
    /// Asks for `desired` instances; returns what was applied (after the scaler's own clamp).
    fn set_capacity(
        &self,
        desired: u32,
        current: u32,
        reason: &str,
    ) -> impl Future<Output = Result<u32, ActuatorError>> + Send;
    /// Reports an unhealthy host for replacement.
    fn replace(
        &self,
        host: &str,
        instance_id: Option<&str>,
        reason: &str,
    ) -> impl Future<Output = Result<String, ActuatorError>> + Send;
}

/// Which actuator a group uses, with its settings (`[groups.NAME.actuator]`, `kind = …`).
/// Read by kind, then the kind's settings by their own keys ([`ActuatorConfig::deserialize`]).
#[derive(Debug, Clone, Default)]
pub enum ActuatorConfig {
    /// Log what would be done.
    #[default]
    DryRun,
    /// Run a program with the desired capacity and reason.
    Command(CommandConfig),
    /// AWS Auto Scaling group.
    Aws(AwsConfig),
    /// Publish the desired capacity to KEDA's external scaler service.
    Keda(KedaActuatorConfig),
}

/// The kinds, as `kind` names them.
const KINDS: &[&str] = &["dry-run", "command", "aws", "keda"];

/// Read in two steps, not as a serde-tagged enum: a tagged enum buffers the table and its
/// errors lose the key they are about ("invalid type: integer `5`, expected a string"), so
/// the kind is read first and its settings then deserialized with their path, and an error
/// names its key (`auto_scaling_group: ...`).
impl<'de> Deserialize<'de> for ActuatorConfig {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        use serde::de::Error;
        let mut table = toml::Table::deserialize(d)?;
        let kind = match table.remove("kind") {
            None => return Err(D::Error::missing_field("kind")),
            Some(toml::Value::String(kind)) => kind,
            Some(other) => {
                return Err(D::Error::custom(format!(
                    "kind: {other} is no actuator kind (one of {})",
                    KINDS.join(", ")
                )));
            }
        };
        fn settings<T: serde::de::DeserializeOwned, E: Error>(table: toml::Table) -> Result<T, E> {
            serde_path_to_error::deserialize(toml::Value::Table(table)).map_err(|e| {
                let reason = headroom_common::config::in_plain_words(&e.inner().to_string());
                match e.path().to_string().as_str() {
                    "." | "" => E::custom(reason),
                    path if reason.contains(&format!("`{path}`")) => E::custom(reason),
                    path => E::custom(format!("{path}: {reason}")),
                }
            })
        }
        match kind.as_str() {
            "dry-run" => match table.keys().next() {
                Some(key) => Err(D::Error::custom(format!(
                    "{key}: unknown key (kind \"dry-run\" takes no settings)"
                ))),
                None => Ok(ActuatorConfig::DryRun),
            },
            "command" => settings(table).map(ActuatorConfig::Command),
            "aws" => settings(table).map(ActuatorConfig::Aws),
            "keda" => settings(table).map(ActuatorConfig::Keda),
            other => Err(D::Error::unknown_variant(other, KINDS)),
        }
    }
}

/// `kind = "command"`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CommandConfig {
    /// Program to run (absolute path or looked up in PATH); no shell is involved.
    pub program: String,
    /// Arguments; `{group}`, `{desired}`, `{current}` and `{reason}` are replaced.
    #[serde(default = "default_command_args")]
    pub args: Vec<String>,
    /// Arguments for a replacement; `{group}`, `{host}`, `{instance_id}` and `{reason}` are
    /// replaced. Without it, replacement is not supported by this actuator.
    pub replace_args: Option<Vec<String>>,
    /// Kill the program after this long.
    #[serde(default = "default_command_timeout", with = "duration")]
    pub timeout: Duration,
}

fn default_command_args() -> Vec<String> {
    vec!["{group}".into(), "{desired}".into(), "{reason}".into()]
}
fn default_command_timeout() -> Duration {
    Duration::from_secs(30)
}

/// `kind = "aws"`.
#[cfg_attr(not(feature = "aws"), allow(dead_code))]
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AwsConfig {
    /// Name of the Auto Scaling group.
    pub auto_scaling_group: String,
    /// Region; default: the standard chain (AWS_REGION, profile, IMDS).
    pub region: Option<String>,
    /// Endpoint URL; default: the service's regional endpoint.
    pub endpoint: Option<String>,
    /// Timeout of each API call.
    #[serde(default = "default_aws_timeout", with = "duration")]
    pub timeout: Duration,
}

fn default_aws_timeout() -> Duration {
    Duration::from_secs(10)
}

/// `kind = "keda"`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct KedaActuatorConfig {
    /// Metric name reported to KEDA (the ScaledObject's metadata `group` selects the group).
    #[serde(default = "default_keda_metric")]
    pub metric_name: String,
    /// What GetMetrics answers while every host of the group has gone silent and it should
    /// have instances; unset (the default): an error, so KEDA's own `fallback` applies.
    #[serde(default)]
    pub fallback_replicas: Option<u32>,
}

fn default_keda_metric() -> String {
    "headroom_desired_instances".into()
}

impl ActuatorConfig {
    /// The kind as written in the config.
    pub fn kind(&self) -> &'static str {
        match self {
            ActuatorConfig::DryRun => "dry-run",
            ActuatorConfig::Command(_) => "command",
            ActuatorConfig::Aws(_) => "aws",
            ActuatorConfig::Keda(_) => "keda",
        }
    }

    /// Problems, keyed relative to the actuator table.
    pub fn problems(&self) -> Vec<Problem> {
        let mut out = Vec::new();
        match self {
            ActuatorConfig::DryRun => {}
            ActuatorConfig::Command(c) => {
                if c.program.is_empty() {
                    out.push(Problem::new("program", "must not be empty"));
                }
                if c.timeout.is_zero() {
                    out.push(Problem::new("timeout", "must be longer than 0s"));
                }
            }
            ActuatorConfig::Aws(a) => {
                if !cfg!(feature = "aws") {
                    out.push(Problem::new("kind", "this build has no `aws` feature"));
                }
                if a.auto_scaling_group.is_empty() {
                    out.push(Problem::new("auto_scaling_group", "must not be empty"));
                }
                if let Some(why) = a
                    .endpoint
                    .as_deref()
                    .and_then(|e| headroom_common::url::problem(e, false))
                {
                    out.push(Problem::new("endpoint", why));
                }
            }
            ActuatorConfig::Keda(k) => {
                if !cfg!(feature = "keda") {
                    out.push(Problem::new("kind", "this build has no `keda` feature"));
                }
                if k.metric_name.is_empty() {
                    out.push(Problem::new("metric_name", "must not be empty"));
                }
            }
        }
        out
    }
}

/// The configured actuator of one group.
pub enum Actuator {
    /// Logs only.
    DryRun(dry_run::DryRun),
    /// Runs a program.
    Command(command::Command),
    /// AWS Auto Scaling.
    #[cfg(feature = "aws")]
    Aws(aws::Aws),
    /// KEDA external scaler.
    #[cfg(feature = "keda")]
    Keda(keda::Keda),
}

/// Shared state the actuators of a coordinator may need (the KEDA board).
#[derive(Clone, Default)]
pub struct Shared {
    /// Desired capacities published to KEDA.
    #[cfg(feature = "keda")]
    pub keda: keda::Board,
}

impl Actuator {
    /// Builds the actuator of `group` from its config.
    pub async fn build(
        group: &str,
        config: &ActuatorConfig,
        shared: &Shared,
    ) -> anyhow::Result<Actuator> {
        let _ = shared;
        Ok(match config {
            ActuatorConfig::DryRun => Actuator::DryRun(dry_run::DryRun::new(group)),
            ActuatorConfig::Command(c) => {
                Actuator::Command(command::Command::new(group, c.clone()))
            }
            #[cfg(feature = "aws")]
            ActuatorConfig::Aws(a) => Actuator::Aws(aws::Aws::new(a).await),
            #[cfg(feature = "keda")]
            ActuatorConfig::Keda(k) => {
                Actuator::Keda(keda::Keda::new(group, k, shared.keda.clone()))
            }
            #[allow(unreachable_patterns)]
            other => anyhow::bail!("actuator {} is not in this build", other.kind()),
        })
    }

    /// The kind, as in the config.
    pub fn kind(&self) -> &'static str {
        match self {
            Actuator::DryRun(_) => "dry-run",
            Actuator::Command(_) => "command",
            #[cfg(feature = "aws")]
            Actuator::Aws(_) => "aws",
            #[cfg(feature = "keda")]
            Actuator::Keda(_) => "keda",
        }
    }

    /// See [`Actuate::current`].
    pub async fn current(&self) -> Result<Option<Capacity>, ActuatorError> {
        match self {
            Actuator::DryRun(a) => a.current().await,
            Actuator::Command(a) => a.current().await,
            #[cfg(feature = "aws")]
            Actuator::Aws(a) => a.current().await,
            #[cfg(feature = "keda")]
            Actuator::Keda(a) => a.current().await,
        }
    }

    /// Gives a scaler that reads its value from the coordinator the capacity the group has
    /// (`actual`), when nothing was published since the coordinator started: KEDA asks for its
    /// metric whether or not the group needs a change, and must not get an error (and scale to
    /// its fallback) because demand held steady.
    pub fn seed(&self, actual: u32) {
        match self {
            #[cfg(feature = "keda")]
            Actuator::Keda(a) => a.seed(actual),
            _ => {
                let _ = actual;
            }
        }
    }

    /// Tells a scaler that reads its value from the coordinator how many hosts the group heard
    /// from at its last evaluation (none while it should have instances: no decision stands).
    pub fn live_hosts(&self, live: usize) {
        match self {
            #[cfg(feature = "keda")]
            Actuator::Keda(a) => a.live_hosts(live),
            _ => {
                let _ = live;
            }
        }
    }

    /// Sets the scaler's own maximum (`max_breach = "raise"`); only `aws` has one to set, and
    /// `dry-run` logs it.
    pub async fn set_max(&self, max: u32, reason: &str) -> Result<(), ActuatorError> {
        match self {
            Actuator::DryRun(_) => {
                tracing::info!(max, reason, "dry-run: would set the maximum");
                Ok(())
            }
            #[cfg(feature = "aws")]
            Actuator::Aws(a) => a.set_max(max, reason).await,
            other => Err(ActuatorError::Unsupported(format!(
                "{} has no maximum to set",
                other.kind()
            ))),
        }
    }

    /// The group's instances and whether each is protected from scale-in (`aws` only).
    pub async fn protection_members(&self) -> Result<Vec<(String, bool)>, ActuatorError> {
        match self {
            #[cfg(feature = "aws")]
            Actuator::Aws(a) => a.members().await,
            other => Err(ActuatorError::Unsupported(format!(
                "{} cannot protect instances",
                other.kind()
            ))),
        }
    }

    /// Sets or clears the scale-in protection of `ids` (`aws` only).
    pub async fn set_protection(&self, ids: &[String], protect: bool) -> Result<(), ActuatorError> {
        match self {
            #[cfg(feature = "aws")]
            Actuator::Aws(a) => a.set_protection(ids, protect).await,
            other => {
                let _ = (ids, protect);
                Err(ActuatorError::Unsupported(format!(
                    "{} cannot protect instances",
                    other.kind()
                )))
            }
        }
    }

    /// See [`Actuate::set_capacity`].
    pub async fn set_capacity(
        &self,
        desired: u32,
        current: u32,
        reason: &str,
    ) -> Result<u32, ActuatorError> {
        match self {
            Actuator::DryRun(a) => a.set_capacity(desired, current, reason).await,
            Actuator::Command(a) => a.set_capacity(desired, current, reason).await,
            #[cfg(feature = "aws")]
            Actuator::Aws(a) => a.set_capacity(desired, current, reason).await,
            #[cfg(feature = "keda")]
            Actuator::Keda(a) => a.set_capacity(desired, current, reason).await,
        }
    }

    /// See [`Actuate::replace`].
    pub async fn replace(
        &self,
        host: &str,
        instance_id: Option<&str>,
        reason: &str,
    ) -> Result<String, ActuatorError> {
        match self {
            Actuator::DryRun(a) => a.replace(host, instance_id, reason).await,
            Actuator::Command(a) => a.replace(host, instance_id, reason).await,
            #[cfg(feature = "aws")]
            Actuator::Aws(a) => a.replace(host, instance_id, reason).await,
            #[cfg(feature = "keda")]
            Actuator::Keda(a) => a.replace(host, instance_id, reason).await,
        }
    }
}
