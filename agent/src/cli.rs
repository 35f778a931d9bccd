//! Command-line definitions (also the source of the man page and shell completions).

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand, ValueEnum};
use headroom_common::cli::{CoordinatorArgs, GroupsArgs, ScheduleArgs};

/// headroom: predictive autoscaling for Linux hosts.
#[derive(Debug, Parser)]
#[command(name = "headroom", version, about, propagate_version = true)]
pub struct Cli {
    /// The command to run.
    #[command(subcommand)]
    pub command: Command,
}

/// Every headroom command.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the agent daemon: sample, store, forecast, decide and signal.
    Agent(AgentArgs),
    /// Show the running agent: sources, latest values, ring drops, last decision, health.
    Status(QueryArgs),
    /// Show the current forecast (P50/P90 per horizon) with a chart of the last hour.
    Forecast(ForecastArgs),
    /// Show stored history of a metric.
    History(HistoryArgs),
    /// Show the agent's health and its reasons.
    Health(QueryArgs),
    /// Show recent scaling decisions and their reasons.
    Decisions(DecisionsArgs),
    /// Show the ledger: what the plan spent and how often it fell short, next to target
    /// tracking on the same demand, and the forecast's error at the lead.
    Report(ReportArgs),
    /// Check or print configuration.
    #[command(subcommand)]
    Config(ConfigCommand),
    /// Replay a trace through the forecaster and write forecasts per origin and horizon.
    Backtest(BacktestArgs),
    /// Replay a demand trace through forecaster and policy and write the capacity plan.
    Simulate(SimulateArgs),
    /// Run the group coordinator: receive signals, decide group capacity, drive actuators
    /// (runs `headroom-coordinator`, installed beside this binary).
    Coordinator(CoordinatorArgs),
    /// Show a coordinator's groups: desired vs actual capacity, hosts, last actions (runs
    /// `headroom-coordinator`).
    Groups(GroupsArgs),
    /// List the next firings of each group's scheduled entries, from the coordinator's
    /// configuration file (runs `headroom-coordinator`).
    Schedule(ScheduleArgs),
    /// Write shell completions or the man page (for packaging).
    #[command(hide = true)]
    Generate(GenerateArgs),
}

/// `headroom agent`.
#[derive(Debug, Args)]
pub struct AgentArgs {
    /// Configuration file; a missing default file means built-in defaults.
    #[arg(
        long,
        env = "HEADROOM_CONFIG",
        default_value = "/etc/headroom/headroom.toml"
    )]
    pub config: PathBuf,
}

/// Options shared by every command that asks the running agent.
#[derive(Debug, Args, Clone)]
pub struct QueryArgs {
    /// Control socket of the agent (default: $HEADROOM_SOCKET if set and not empty,
    /// $RUNTIME_DIRECTORY, /run/headroom, then $XDG_RUNTIME_DIR/headroom).
    #[arg(long)]
    pub socket: Option<PathBuf>,
    /// Print JSON for scripts instead of text for people.
    #[arg(long)]
    pub json: bool,
}

/// `headroom forecast`.
#[derive(Debug, Args)]
pub struct ForecastArgs {
    /// Where the agent is and how to print.
    #[command(flatten)]
    pub query: QueryArgs,
    /// Metric to forecast (default: the demand signal).
    #[arg(long)]
    pub metric: Option<String>,
}

/// History resolution.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Resolution {
    /// Every sample of the last five minutes, kept in memory for the demand metric only.
    #[value(name = "raw")]
    Raw,
    /// 10-second rollups (kept for `store.retention_10s`).
    #[value(name = "10s")]
    TenSeconds,
    /// 1-minute rollups (kept for `store.retention_1m`).
    #[value(name = "1m")]
    OneMinute,
}

/// `headroom history`.
#[derive(Debug, Args)]
pub struct HistoryArgs {
    /// Where the agent is and how to print.
    #[command(flatten)]
    pub query: QueryArgs,
    /// Metric (default: the demand signal).
    #[arg(long)]
    pub metric: Option<String>,
    /// How far back, e.g. `1h`, `30m`, `7d`.
    #[arg(long, default_value = "1h")]
    pub since: String,
    /// Resolution (default: 10s up to 6 h back, else 1m; raw: every sample of the last five
    /// minutes, demand metric only).
    #[arg(long, value_enum)]
    pub resolution: Option<Resolution>,
    /// List every stored metric instead.
    #[arg(long)]
    pub list: bool,
    /// Write `timestamp,value` CSV (input for `backtest` and `simulate`).
    #[arg(long, conflicts_with = "json")]
    pub csv: bool,
}

/// `headroom decisions`.
#[derive(Debug, Args)]
pub struct DecisionsArgs {
    /// Where the agent is and how to print.
    #[command(flatten)]
    pub query: QueryArgs,
    /// How far back, e.g. `1h`.
    #[arg(long, default_value = "1h")]
    pub since: String,
}

/// `headroom report`.
#[derive(Debug, Args)]
pub struct ReportArgs {
    /// Where the agent is and how to print.
    #[command(flatten)]
    pub query: QueryArgs,
    /// How far back, e.g. `24h` or `7d`.
    #[arg(long, default_value = "7d")]
    pub since: String,
}

/// `headroom config …`.
#[derive(Debug, Subcommand)]
pub enum ConfigCommand {
    /// Validate a configuration file; report every problem with its key.
    Check {
        /// The file to check.
        path: PathBuf,
    },
    /// Print the default configuration, every key commented.
    Default,
}

/// `headroom backtest`.
#[derive(Debug, Args)]
pub struct BacktestArgs {
    /// Trace: CSV `timestamp,value` (unix seconds or ISO 8601); `-` reads standard input.
    #[arg(long)]
    pub input: PathBuf,
    /// Horizons 1..=H rows ahead.
    #[arg(long)]
    pub horizon: usize,
    /// First origin: the first row at or after this time.
    #[arg(long)]
    pub start: Option<String>,
    /// With --start: every K-th row after the first origin.
    #[arg(long, default_value_t = 1)]
    pub every: usize,
    /// Output CSV `origin,target,horizon,p50,p90`; `-` writes standard output.
    #[arg(long)]
    pub output: PathBuf,
    /// Also draw actual vs P50/P90 band as SVG.
    #[arg(long)]
    pub plot: Option<PathBuf>,
    /// How much history the forecaster keeps.
    #[command(flatten)]
    pub window: HistoryWindow,
}

/// The history `backtest` and `simulate` forecast from.
#[derive(Debug, Args)]
pub struct HistoryWindow {
    /// History the forecaster keeps, e.g. `14d` or `6w`; at least 1,000 rows are kept
    /// whatever the age (an hourly trace keeps six weeks, so a weekly cycle can show).
    #[arg(long, default_value = "14d", value_parser = headroom_common::duration::parse)]
    pub history: std::time::Duration,
}

/// Policy used by `simulate`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum SimPolicy {
    /// Plan ahead with the forecast (the default).
    Predictive,
    /// Follow current demand only (reactive target tracking).
    Reactive,
}

/// What scales in during `simulate`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum SimScaleIn {
    /// The plan, after the stabilisation window.
    Predictive,
    /// Target tracking alone.
    Reactive,
}

/// `headroom simulate`. The policy comes from these flags over a `--config` file; a flag
/// given wins over the file.
#[derive(Debug, Args)]
pub struct SimulateArgs {
    /// Demand: CSV `timestamp,value`; `-` reads standard input.
    #[arg(long)]
    pub input: PathBuf,
    /// Policy file: a `[policy]` table with a coordinator group's keys and `[[schedule]]`
    /// entries (see the README's "Scheduled events").
    #[arg(long)]
    pub config: Option<PathBuf>,
    /// Demand one instance serves at full capacity (needed, here or in the file).
    #[arg(long)]
    pub capacity_per_instance: Option<f64>,
    /// Target tracking's utilisation (0, 1]: the reactive policy, the cold-start fallback and
    /// the shadow the plan is compared with [default: 0.7, as a group's].
    #[arg(long)]
    pub target_utilization: Option<f64>,
    /// Instance warm-up, e.g. `5m` (a bare number is seconds) [default: 5m, as a group's].
    #[arg(long, value_parser = headroom_common::duration::parse_seconds)]
    pub warmup: Option<f64>,
    /// Fewest instances [default: 1].
    #[arg(long)]
    pub min: Option<u32>,
    /// Most instances [default: 1000].
    #[arg(long)]
    pub max: Option<u32>,
    /// Which policy decides [default: predictive].
    #[arg(long, value_enum)]
    pub policy: Option<SimPolicy>,
    /// Output CSV `timestamp,desired`; `-` writes standard output, and the summary then goes
    /// to standard error.
    #[arg(long)]
    pub output: PathBuf,
    /// Also draw an SVG: demand, the plan's capacity and target tracking's, with the time the
    /// plan's ready capacity fell short of demand shaded.
    #[arg(long)]
    pub plot: Option<PathBuf>,
    /// The interval the replayed agent decides at, e.g. `1m` (a bare number is seconds): each
    /// decision plans for warm-up + this. The replay decides at every row, so give a trace at
    /// that interval (`headroom history --resolution`). Default: the trace's median step, read
    /// from all its timestamps: give it to keep a replay causal where the cadence changes.
    #[arg(long, value_parser = headroom_common::duration::parse_seconds)]
    pub decision_interval: Option<f64>,
    /// Scale in only after lower counts were recommended for this long, e.g. `5m` (a bare
    /// number is seconds) [default: 5m].
    #[arg(long, value_parser = headroom_common::duration::parse_seconds)]
    pub stabilization: Option<f64>,
    /// Largest scale-in step per decision, instances, or --max-scale-in-fraction of the current
    /// count when that is more [default: 1].
    #[arg(long)]
    pub max_scale_in_step: Option<u32>,
    /// Largest scale-in step per decision as a share of the current count, 0 to 1 (0: only
    /// --max-scale-in-step instances a decision) [default: 0.5].
    #[arg(long)]
    pub max_scale_in_fraction: Option<f64>,
    /// The share of time demand may find too little ready capacity (0 < b < 0.5)
    /// [default: 0.05].
    #[arg(long)]
    pub shortfall_budget: Option<f64>,
    /// The most the plan spends over the last hours per instance target tracking would run
    /// (at least 1; 0 derives it from the budget, 1.4 at 5%): past it, target tracking decides
    /// [default: 0].
    #[arg(long)]
    pub spend_ceiling: Option<f64>,
    /// What scales in: the plan (`predictive`), or only target tracking (`reactive`: the plan
    /// only adds capacity) [default: predictive].
    #[arg(long, value_enum)]
    pub scale_in: Option<SimScaleIn>,
    /// How much history the forecaster keeps.
    #[command(flatten)]
    pub window: HistoryWindow,
}

/// What `generate` writes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum GenerateKind {
    /// Man pages (one per command).
    Man,
    /// bash, zsh and fish completions.
    Completions,
}

/// `headroom generate`.
#[derive(Debug, Args)]
pub struct GenerateArgs {
    /// What to write.
    #[arg(value_enum)]
    pub kind: GenerateKind,
    /// Output directory.
    pub dir: PathBuf,
}
