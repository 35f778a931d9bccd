//! `simulate`'s policy: its flags over a `--config` policy file, which has a `[policy]` table
//! of a coordinator group's keys and `[[schedule]]` entries, so a group's settings replay as
//! they would run:
//!
//! ```toml
//! [policy]
//! capacity_per_instance = 20.0
//! target_utilization = 0.7
//! warmup = "5m"
//! decision_interval = "1m"         # default: the trace's median step
//! min = 1
//! max = 100
//! shortfall_budget = 0.05
//! spend_ceiling = 0.0
//! scale_in = "predictive"
//! scale_in_stabilization = "5m"
//! max_scale_in_step = 1
//! max_scale_in_fraction = 0.5
//! mode = "predictive"              # or "reactive"
//!
//! [[schedule]]
//! at = "2026-01-02T12:00:00Z"
//! duration = "1h"
//! min_instances = 12
//! ```
//!
//! A flag given on the command line wins over the file; every problem of either is reported
//! at once, keyed by the flag or by the file's key, with the same range rules the coordinator
//! applies (the model's `*_problem` functions and `common::schedule`).

use std::path::PathBuf;
use std::time::Duration;

use headroom_common::config::{self as loader, ConfigError, Problem};
use headroom_common::duration;
use headroom_common::schedule::{self, ScheduleEntryConfig};
use headroom_model::policy::{
    bounds_problem, capacity_problem, scale_in_fraction_problem, scale_in_step_problem,
    shortfall_budget_problem, spend_ceiling_problem, target_utilization_problem, warmup_problem,
};
use headroom_model::{PolicyConfig, PolicyMode, ScaleIn};
use serde::Deserialize;

use crate::cli::{SimPolicy, SimScaleIn, SimulateArgs};

/// A `simulate --config` file.
#[derive(Debug, Default, Deserialize)]
#[serde(default)]
struct PolicyFile {
    policy: PolicyTable,
    schedule: Vec<ScheduleEntryConfig>,
}

/// Its `[policy]` table: a coordinator group's policy keys.
#[derive(Debug, Default, Deserialize)]
#[serde(default)]
struct PolicyTable {
    capacity_per_instance: Option<f64>,
    target_utilization: Option<f64>,
    shortfall_budget: Option<f64>,
    spend_ceiling: Option<f64>,
    scale_in: Option<ScaleIn>,
    #[serde(deserialize_with = "duration::optional")]
    warmup: Option<Duration>,
    #[serde(deserialize_with = "duration::optional")]
    decision_interval: Option<Duration>,
    min: Option<u32>,
    max: Option<u32>,
    #[serde(deserialize_with = "duration::optional")]
    scale_in_stabilization: Option<Duration>,
    max_scale_in_step: Option<u32>,
    max_scale_in_fraction: Option<f64>,
    mode: Option<FileMode>,
}

/// `mode` as a group writes it.
#[derive(Debug, Clone, Copy, Deserialize)]
#[serde(rename_all = "snake_case")]
enum FileMode {
    Predictive,
    Reactive,
}

/// The policy `simulate` replays.
#[derive(Debug)]
pub(super) struct Settings {
    /// Everything but the decision interval when neither flag nor file gave it.
    pub(super) config: PolicyConfig,
    /// Seconds between decisions, if given (else the trace's median step).
    pub(super) decision_interval: Option<f64>,
}

/// A value from its flag, else from the file, with the key that names where it came from.
fn pick<T>(flag: Option<T>, flag_name: &str, file: Option<T>, key: &str) -> Option<(T, String)> {
    match (flag, file) {
        (Some(v), _) => Some((v, flag_name.to_string())),
        (None, Some(v)) => Some((v, format!("policy.{key}"))),
        (None, None) => None,
    }
}

/// [`pick`], else `default`, named by no key: a default is not the user's to fix.
fn pick_or<T>(
    flag: Option<T>,
    flag_name: &str,
    file: Option<T>,
    key: &str,
    default: T,
) -> (T, String) {
    pick(flag, flag_name, file, key).unwrap_or((default, String::new()))
}

/// Reads `args.config` (if any) under `args`' flags; every problem at once.
pub(super) fn resolve(args: &SimulateArgs) -> Result<Settings, ConfigError> {
    let (origin, file, mut problems) = match &args.config {
        Some(path) => {
            let text = loader::read(path, false)?.unwrap_or_default();
            let (file, problems) = loader::parse::<PolicyFile>(path, &text)?;
            (path.clone(), file, problems)
        }
        None => (
            PathBuf::from("command line"),
            PolicyFile::default(),
            Vec::new(),
        ),
    };
    let config = merge(args, &file, &mut problems);
    let seconds = |d: Option<Duration>| d.map(|d| d.as_secs_f64());
    let interval = pick(
        args.decision_interval,
        "--decision-interval",
        seconds(file.policy.decision_interval),
        "decision_interval",
    );
    if let Some((s, key)) = &interval
        && !(s.is_finite() && *s > 0.0)
    {
        problems.push(Problem::new(key, "must be a positive number of seconds"));
    }
    loader::finish(
        &origin,
        Settings {
            config,
            decision_interval: interval.map(|(s, _)| s),
        },
        problems,
    )
}

/// The policy from flags over `file`, pushing what is wrong onto `problems`.
fn merge(args: &SimulateArgs, file: &PolicyFile, problems: &mut Vec<Problem>) -> PolicyConfig {
    let p = &file.policy;
    let seconds = |d: Option<Duration>| d.map(|d| d.as_secs_f64());
    // The one value with no default: its flag, else the file's key, else a problem naming both.
    let capacity = pick(
        args.capacity_per_instance,
        "--capacity-per-instance",
        p.capacity_per_instance,
        "capacity_per_instance",
    );
    if capacity.is_none() {
        problems.push(Problem::new(
            "capacity_per_instance",
            "needed: give --capacity-per-instance or policy.capacity_per_instance in a --config \
             file",
        ));
    }
    // The rest default as a coordinator group's do: the model's defaults, held in one place.
    let defaults = PolicyConfig::default();
    let (utilization, utilization_key) = pick_or(
        args.target_utilization,
        "--target-utilization",
        p.target_utilization,
        "target_utilization",
        defaults.target_utilization,
    );
    let (warmup, warmup_key) = pick_or(
        args.warmup,
        "--warmup",
        seconds(p.warmup),
        "warmup",
        defaults.warmup_s,
    );
    let (budget, budget_key) = pick_or(
        args.shortfall_budget,
        "--shortfall-budget",
        p.shortfall_budget,
        "shortfall_budget",
        defaults.shortfall_budget,
    );
    let (ceiling, ceiling_key) = pick_or(
        args.spend_ceiling,
        "--spend-ceiling",
        p.spend_ceiling,
        "spend_ceiling",
        defaults.spend_ceiling,
    );
    let (min, min_key) = pick_or(args.min, "--min", p.min, "min", defaults.min_instances);
    let (max, max_key) = pick_or(args.max, "--max", p.max, "max", 1000);
    let (step, step_key) = pick_or(
        args.max_scale_in_step,
        "--max-scale-in-step",
        p.max_scale_in_step,
        "max_scale_in_step",
        defaults.max_scale_in_step,
    );
    let (fraction, fraction_key) = pick_or(
        args.max_scale_in_fraction,
        "--max-scale-in-fraction",
        p.max_scale_in_fraction,
        "max_scale_in_fraction",
        defaults.max_scale_in_fraction,
    );
    let (stabilization, stabilization_key) = pick_or(
        args.stabilization,
        "--stabilization",
        seconds(p.scale_in_stabilization),
        "scale_in_stabilization",
        defaults.scale_in_stabilization_s,
    );
    let mut bad = |key: &str, reason: String| problems.push(Problem::new(key, reason));
    if let Some((c, key)) = &capacity
        && let Some(why) = capacity_problem(*c)
    {
        bad(key, why);
    }
    if let Some(why) = target_utilization_problem(utilization) {
        bad(&utilization_key, why);
    }
    if let Some(why) = shortfall_budget_problem(budget) {
        bad(&budget_key, why);
    }
    if let Some(why) = spend_ceiling_problem(ceiling) {
        bad(&ceiling_key, why);
    }
    // A flag's seconds may be anything a float reads (`nan`, `-5`); the file's are durations.
    for (w, key) in [(warmup, &warmup_key), (stabilization, &stabilization_key)] {
        if !(w.is_finite() && w >= 0.0) {
            bad(key, "must be a non-negative number of seconds".into());
        }
    }
    if warmup.is_finite()
        && warmup >= 0.0
        && let Some(why) = warmup_problem(Duration::from_secs_f64(warmup.min(1e12)))
    {
        bad(&warmup_key, format!("{warmup}s {why}"));
    }
    if let Some(why) = bounds_problem(min, max) {
        // Named by whichever of the two was given (the default one is not the user's to fix).
        let key = if max_key.is_empty() {
            &min_key
        } else {
            &max_key
        };
        bad(key, why);
    }
    if let Some(why) = scale_in_step_problem(step) {
        bad(&step_key, why);
    }
    if let Some(why) = scale_in_fraction_problem(fraction) {
        bad(&fraction_key, why);
    }
    let (schedule, schedule_problems) = schedule::build(&file.schedule, "", max);
    problems.extend(schedule_problems);
    let scale_in = match args.scale_in {
        Some(SimScaleIn::Predictive) => ScaleIn::Predictive,
        Some(SimScaleIn::Reactive) => ScaleIn::Reactive,
        None => p.scale_in.unwrap_or(ScaleIn::Predictive),
    };
    let mode = match (args.policy, p.mode) {
        (Some(SimPolicy::Reactive), _) | (None, Some(FileMode::Reactive)) => PolicyMode::Reactive,
        _ => PolicyMode::Predictive,
    };
    PolicyConfig {
        // Placeholders where a problem was reported: the error is returned, not the config.
        capacity_per_instance: capacity.map_or(1.0, |(c, _)| c),
        target_utilization: utilization,
        warmup_s: warmup,
        min_instances: min,
        max_instances: max,
        max_scale_in_step: step,
        max_scale_in_fraction: fraction,
        scale_in_stabilization_s: stabilization,
        shortfall_budget: budget,
        spend_ceiling: ceiling,
        scale_in,
        mode,
        schedule,
        ..defaults
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    fn args(extra: &[&str]) -> SimulateArgs {
        let mut argv = vec![
            "headroom", "simulate", "--input", "x.csv", "--output", "y.csv",
        ];
        argv.extend_from_slice(extra);
        match crate::cli::Cli::parse_from(argv).command {
            crate::cli::Command::Simulate(a) => a,
            other => panic!("{other:?}"),
        }
    }

    fn resolve_text(text: &str, extra: &[&str]) -> Result<Settings, ConfigError> {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("policy.toml");
        std::fs::write(&path, text).unwrap();
        let path = path.to_string_lossy().to_string();
        let mut all = vec!["--config", path.as_str()];
        all.extend_from_slice(extra);
        resolve(&args(&all))
    }

    #[test]
    fn the_file_gives_the_policy_and_a_flag_wins_over_it() {
        let text = "[policy]\ncapacity_per_instance = 20.0\ntarget_utilization = 0.6\nwarmup = \"5m\"\nmax = 50\nscale_in = \"reactive\"\n[[schedule]]\nat = \"2026-01-02T12:00:00Z\"\nduration = \"1h\"\nmin_instances = 12\n";
        let s = resolve_text(text, &[]).unwrap();
        assert_eq!(s.config.capacity_per_instance, 20.0);
        assert_eq!(s.config.warmup_s, 300.0);
        assert_eq!(s.config.max_instances, 50);
        assert_eq!(s.config.scale_in, ScaleIn::Reactive);
        assert_eq!(s.config.schedule.entries[0].name, "schedule[0]");
        assert_eq!(s.decision_interval, None);
        let s = resolve_text(text, &["--warmup", "60", "--scale-in", "predictive"]).unwrap();
        assert_eq!(s.config.warmup_s, 60.0);
        assert_eq!(s.config.scale_in, ScaleIn::Predictive);
        assert_eq!(s.config.target_utilization, 0.6);
    }

    #[test]
    fn every_problem_is_named_by_flag_or_key() {
        let text = "[policy]\ntarget_utilization = 1.5\nmax = 5\nwarmup = 300\n";
        let err = resolve_text(text, &[]).unwrap_err().to_string();
        assert!(
            err.contains("policy.warmup: line 4: 300 is not a duration"),
            "{err}"
        );
        let text = "[policy]\ntarget_utilization = 1.5\nmax = 5\ncolour = 1\n[[schedule]]\nat = \"2026-01-02T12:00:00Z\"\nduration = \"1h\"\nmin_instances = 12\n";
        let err = resolve_text(text, &["--shortfall-budget", "0.7"]).unwrap_err();
        let keys: Vec<&str> = err.problems.iter().map(|p| p.key.as_str()).collect();
        assert_eq!(
            keys,
            [
                "policy.colour",
                "capacity_per_instance",
                "policy.target_utilization",
                "--shortfall-budget",
                "schedule[0].min_instances"
            ],
            "{err}"
        );
        let err = resolve(&args(&[])).unwrap_err().to_string();
        assert!(err.contains("command line"), "{err}");
        assert!(
            err.contains("needed: give --capacity-per-instance or policy.capacity_per_instance"),
            "{err}"
        );
        let err = resolve_text(
            "[policy]\ncapacity_per_instance = 2.0\ntarget_utilization = 0.7\n",
            &["--warmup", "inf", "--stabilization", "nan"],
        )
        .unwrap_err();
        let keys: Vec<&str> = err.problems.iter().map(|p| p.key.as_str()).collect();
        assert_eq!(keys, ["--warmup", "--stabilization"], "{err}");
        let err = resolve_text("[policy]\nmin = -1\n", &[])
            .unwrap_err()
            .to_string();
        assert!(err.contains("policy.min"), "{err}");
    }
}
