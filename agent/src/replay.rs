//! `headroom backtest` and `headroom simulate`: CSV in, CSV (and optional SVG) out. Both replay
//! the model crate's live code over a trace, strictly causally.
//!
//! `-` as the input or the output is standard input or output, so a replay composes in a
//! pipeline: standard output then carries the CSV alone, and what the command says about the
//! run goes to standard error. A reader that closes the pipe early (`| head`) only stops the
//! CSV, quietly, as it stops any Unix filter: the plot and the summary are still written.

mod figures;
mod plot;
mod policy_file;
pub mod trace;

use std::borrow::Cow;
use std::fmt::Write as _;
use std::fs::File;
use std::io::{BufWriter, IsTerminal, Write};
use std::path::Path;

use anyhow::Context;
use headroom_model::forecast::MAX_STEPS;
use headroom_model::ledger::Hour;
use headroom_model::replay::{self, Origins};
use headroom_model::{ForecastConfig, PolicyConfig, PolicyMode};
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};

use crate::cli::{BacktestArgs, HistoryWindow, SimulateArgs};
use headroom_common::exit::{CONFIG_INVALID, Exit};
use headroom_common::stdout;

/// Inputs at least this long get a progress bar (when stderr is a terminal).
const PROGRESS_ROWS: usize = 20_000;

/// The forecaster of a replay: the history window asked for, the rest as the agent's.
fn forecast_config(window: &HistoryWindow) -> ForecastConfig {
    ForecastConfig {
        max_history_s: window.history.as_secs_f64(),
        ..ForecastConfig::default()
    }
}

/// Runs `headroom backtest`.
pub fn backtest(args: &BacktestArgs) -> anyhow::Result<()> {
    if args.horizon == 0 || args.horizon > MAX_STEPS {
        return Err(Exit::new(
            CONFIG_INVALID,
            format!(
                "--horizon must be 1 to {MAX_STEPS} steps (the forecaster looks no further ahead)"
            ),
        ));
    }
    if args.every == 0 {
        return Err(Exit::new(CONFIG_INVALID, "--every must be at least 1"));
    }
    let start = match &args.start {
        Some(s) => Some(
            trace::parse_time(s).map_err(|e| Exit::new(CONFIG_INVALID, format!("--start: {e}")))?,
        ),
        None => None,
    };
    refuse_plot_to_stdout(args.plot.as_deref())?;
    let tr = read_trace(&args.input, trace::Values::Any)?;
    let bar = progress(tr.times.len(), "backtest");
    let rows = replay::backtest(
        &tr.times,
        &tr.values,
        args.horizon,
        Origins {
            start,
            every: args.every,
        },
        &forecast_config(&args.window),
        |i| tick(&bar, i),
    );
    bar.finish_and_clear();
    let mut out = create(&args.output)?;
    let write = |out: &mut dyn Write| -> std::io::Result<()> {
        writeln!(out, "origin,target,horizon,p50,p90")?;
        for r in &rows {
            writeln!(
                out,
                "{},{},{},{},{}",
                trace::format_time(r.origin),
                trace::format_time(r.target),
                r.horizon,
                r.p50,
                r.p90
            )?;
        }
        out.flush()
    };
    let whole = written(write(&mut out), &args.output)?;
    if let Some(path) = &args.plot {
        let title = format!(
            "{}: actual vs forecast {} rows ahead",
            shown(&args.input, trace::STANDARD_INPUT),
            args.horizon
        );
        let svg = figures::backtest(&title, &tr.times, &tr.values, &rows, args.horizon);
        write_file(path, &svg)?;
    }
    eprintln!(
        "backtest: {} rows read, {} forecasts written to {}{}",
        tr.times.len(),
        rows.len(),
        shown(&args.output, "standard output"),
        if whole {
            ""
        } else {
            " (its reader stopped early)"
        }
    );
    Ok(())
}

/// Runs `headroom simulate`.
pub fn simulate(args: &SimulateArgs) -> anyhow::Result<()> {
    let settings =
        policy_file::resolve(args).map_err(|e| Exit::new(CONFIG_INVALID, e.to_string()))?;
    refuse_plot_to_stdout(args.plot.as_deref())?;
    let tr = read_trace(&args.input, trace::Values::Demand)?;
    let step = replay::median_step(&tr.times);
    let config = PolicyConfig {
        decision_interval_s: settings.decision_interval.unwrap_or(step),
        ..settings.config
    };
    // Planned over every step to the lead, which the forecaster must reach: a lead of more
    // steps than it looks ahead would be planned at a horizon far short of it.
    let lead_steps = config.lead_s() / step;
    if config.mode != PolicyMode::Reactive && lead_steps > MAX_STEPS as f64 {
        return Err(Exit::new(
            CONFIG_INVALID,
            format!(
                "the lead ({:.0} s) is {lead_steps:.0} steps of this trace ({step:.3} s), and the \
                 forecaster looks {MAX_STEPS} ahead: give a trace of steps of at least {:.2} s \
                 (`headroom history --resolution 10s` gives 10 s)",
                config.lead_s(),
                config.lead_s() / MAX_STEPS as f64
            ),
        ));
    }
    let bar = progress(tr.times.len(), "simulate");
    let decisions = replay::simulate_decisions(
        &tr.times,
        &tr.values,
        &config,
        &forecast_config(&args.window),
        |i| tick(&bar, i),
    );
    bar.finish_and_clear();
    let plan: Vec<replay::PlanRow> = decisions
        .iter()
        .map(|d| replay::PlanRow {
            t: d.t,
            desired: d.desired,
        })
        .collect();
    let mut out = create(&args.output)?;
    let write = |out: &mut dyn Write| -> std::io::Result<()> {
        writeln!(out, "timestamp,desired")?;
        for p in &plan {
            writeln!(out, "{},{}", trace::format_time(p.t), p.desired)?;
        }
        out.flush()
    };
    written(write(&mut out), &args.output)?;
    let s = replay::summarize(&tr.times, &tr.values, &plan, &config);
    let fallbacks = decisions.iter().filter(|d| d.fallback).count();
    let span_h = (tr.times[tr.times.len() - 1] - tr.times[0]) / 3600.0;
    // Writing to a String cannot fail.
    let mut said = String::new();
    let _ = writeln!(
        said,
        "simulated {} decisions over {span_h:.1} h ({} policy, warm-up {:.0} s, lead {:.0} s)",
        plan.len(),
        match config.mode {
            PolicyMode::Reactive => "reactive",
            _ => "predictive",
        },
        config.warmup_s,
        config.lead_s()
    );
    let _ = writeln!(said, "instance-hours: {:.1}", s.instance_hours);
    let _ = writeln!(
        said,
        "under-provisioned: {:.2}% of decisions ({:.1} min); lost work {:.3}%",
        100.0 * s.under_fraction,
        s.under_s / 60.0,
        100.0 * s.lost_fraction
    );
    let _ = writeln!(
        said,
        "scaling actions: {} ({} out, {} in); peak {} instances",
        s.actions,
        s.scale_outs,
        s.actions - s.scale_outs,
        s.peak
    );
    if fallbacks > 0 {
        let _ = writeln!(
            said,
            "reactive fallback: {fallbacks} decisions (cold start or distrusted forecast)"
        );
    }
    for entry in &config.schedule.entries {
        let raised = decisions
            .iter()
            .filter(|d| d.schedule.as_deref() == Some(entry.name.as_str()))
            .count();
        let _ = writeln!(said, "{}: raised {raised} decisions", entry.describe());
    }
    let (ledger, judged) = replay::ledger_judged(&tr.times, &tr.values, &decisions, &config);
    said.push_str(&ledger_text(&ledger, &config));
    if let Some(path) = &args.plot {
        let title = format!(
            "{}: demand vs planned capacity ({} per instance)",
            shown(&args.input, trace::STANDARD_INPUT),
            config.capacity_per_instance
        );
        let svg = figures::simulate(&title, &tr.times, &tr.values, &judged, &config);
        write_file(path, &svg)?;
    }
    if trace::is_stdio(&args.output) {
        eprint!("{said}");
        Ok(())
    } else {
        stdout::print(&said)
    }
}

/// The ledger of a replay, as `simulate` prints it.
fn ledger_text(l: &Hour, config: &PolicyConfig) -> String {
    let pct = |x: Option<f64>| x.map_or_else(|| "-".into(), |v| format!("{:.1}%", 100.0 * v));
    let share = |s: f64| {
        if l.observed_s > 0.0 {
            100.0 * s / l.observed_s
        } else {
            0.0
        }
    };
    format!(
        "ledger, next to target tracking at {:.0}% on the same demand:\n  \
         instance-hours: plan {:.1}, target tracking {:.1} ({})\n  \
         under-provisioned: plan {:.2}% of the time ({:.1} min), target tracking {:.2}% ({:.1} min)\n  \
         forecast at the lead ({:.0} s): MAPE {} ({} scored, {} at zero demand left out), WAPE {}, P90 coverage {}\n",
        100.0 * config.target_utilization,
        l.plan_instance_hours(),
        l.shadow_instance_hours(),
        l.cost_ratio()
            .map_or_else(|| "-".into(), |r| format!("{r:.2}x")),
        share(l.plan_short_s),
        l.plan_short_s / 60.0,
        share(l.shadow_short_s),
        l.shadow_short_s / 60.0,
        config.lead_s(),
        pct(l.mape()),
        l.scored,
        l.zero_actuals,
        pct(l.wape()),
        pct(l.p90_coverage()),
    )
}

fn read_trace(path: &Path, values: trace::Values) -> anyhow::Result<trace::Trace> {
    trace::read(path, values).map_err(|e| Exit::new(CONFIG_INVALID, e.to_string()))
}

/// `path` as messages name it; `stdio` names what `-` stands for.
fn shown<'a>(path: &'a Path, stdio: &'static str) -> Cow<'a, str> {
    if trace::is_stdio(path) {
        Cow::Borrowed(stdio)
    } else {
        path.to_string_lossy()
    }
}

/// The output CSV: a file, or standard output for `-`.
fn create(path: &Path) -> anyhow::Result<Box<dyn Write>> {
    if trace::is_stdio(path) {
        return Ok(Box::new(BufWriter::new(std::io::stdout().lock())));
    }
    let f = File::create(path).with_context(|| format!("creating {}", path.display()))?;
    Ok(Box::new(BufWriter::new(f)))
}

/// Whether the CSV was written whole: false when the reader closed the pipe first, which is
/// no error; any other failure is one, naming where it wrote.
fn written(result: std::io::Result<()>, path: &Path) -> anyhow::Result<bool> {
    stdout::quiet_when_closed(result)
        .with_context(|| format!("writing {}", shown(path, "standard output")))
}

/// An SVG on standard output would be mixed with the CSV or the summary: `--plot` takes a file.
fn refuse_plot_to_stdout(plot: Option<&Path>) -> anyhow::Result<()> {
    match plot {
        Some(p) if trace::is_stdio(p) => Err(Exit::new(
            CONFIG_INVALID,
            "--plot: give a file for the SVG (`-` is for --input and --output)",
        )),
        _ => Ok(()),
    }
}

fn write_file(path: &Path, text: &str) -> anyhow::Result<()> {
    std::fs::write(path, text).with_context(|| format!("writing {}", path.display()))
}

fn progress(rows: usize, what: &str) -> ProgressBar {
    if rows < PROGRESS_ROWS || !std::io::stderr().is_terminal() {
        return ProgressBar::hidden();
    }
    let bar = ProgressBar::with_draw_target(Some(rows as u64), ProgressDrawTarget::stderr());
    if let Ok(style) = ProgressStyle::with_template("{msg} [{bar:40}] {pos}/{len} rows ({eta})") {
        bar.set_style(style.progress_chars("=> "));
    }
    bar.set_message(what.to_string());
    bar
}

fn tick(bar: &ProgressBar, i: usize) {
    if i.is_multiple_of(1024) {
        bar.set_position(i as u64);
    }
}
