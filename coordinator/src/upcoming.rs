//! `headroom schedule`: the next firings of each group's `[[schedule]]` entries, read from the
//! coordinator's configuration file (validated as the coordinator validates it, so a broken
//! entry is reported here before a reload would refuse it). Each firing is shown with the time
//! the plan starts rising for it (its start − the group's lead) and its end.
//!
//! Reads a file and the clock; no network: it answers the same on the coordinator's host and
//! on an operator's laptop.

use serde::Serialize;

use headroom_common::cli::ScheduleArgs;
use headroom_common::clock::unix_now;
use headroom_common::config as loader;
use headroom_common::exit::{CONFIG_INVALID, Exit};
use headroom_common::stdout;
use headroom_model::schedule::{Entry, rfc3339, span};

use crate::config::CoordinatorConfig;

/// One group's entries.
#[derive(Debug, Serialize)]
struct GroupSchedule {
    group: String,
    /// Seconds between the plan rising and an entry's start (warm-up + decision interval),
    /// with the configured warm-up.
    lead_s: f64,
    /// The group measures its warm-up (`instance_warmup = "measured"`): the running
    /// coordinator's lead may differ from `lead_s` (`headroom groups` shows it).
    measured_warmup: bool,
    entries: Vec<EntryView>,
}

/// One entry and its next firings.
#[derive(Debug, Serialize)]
struct EntryView {
    name: String,
    /// In words: `friday-evening (cron "0 17 * * FRI" Europe/Berlin, 4h)`.
    description: String,
    /// `min_instances 12` or `demand x1.5`.
    raise: String,
    next: Vec<FiringView>,
}

/// One firing, as RFC 3339 UTC times.
#[derive(Debug, Serialize)]
struct FiringView {
    raises_from: String,
    start: String,
    end: String,
    /// It has begun raising the plan.
    in_progress: bool,
}

/// Runs `headroom schedule`.
pub fn schedule(args: &ScheduleArgs) -> anyhow::Result<()> {
    let text = loader::read(&args.config, false)
        .map_err(Exit::config)?
        .unwrap_or_default();
    let config = CoordinatorConfig::parse(&args.config, &text).map_err(Exit::config)?;
    if let Some(g) = &args.group
        && !config.groups.contains_key(g)
    {
        return Err(Exit::new(
            CONFIG_INVALID,
            format!("{}: no group {g:?}", args.config.display()),
        ));
    }
    let now = unix_now();
    let groups: Vec<GroupSchedule> = config
        .groups
        .iter()
        .filter(|(name, _)| args.group.as_ref().is_none_or(|g| g == *name))
        .map(|(name, g)| {
            let lead_s = g.warmup.as_secs_f64() + g.decision_interval.as_secs_f64();
            let (schedule, _) = g.schedule("");
            GroupSchedule {
                group: name.clone(),
                lead_s,
                measured_warmup: g.instance_warmup == crate::warmup::InstanceWarmup::Measured,
                entries: schedule
                    .entries
                    .iter()
                    .map(|e| view(e, now, lead_s, args.count as usize))
                    .collect(),
            }
        })
        .collect();
    if args.json {
        stdout::print(&format!("{}\n", serde_json::to_string_pretty(&groups)?))
    } else {
        stdout::print(&text_of(&groups))
    }
}

fn view(entry: &Entry, now: f64, lead_s: f64, count: usize) -> EntryView {
    EntryView {
        name: entry.name.clone(),
        description: entry.describe(),
        raise: entry.raise.to_string(),
        next: entry
            .upcoming(now, count)
            .into_iter()
            .map(|o| FiringView {
                raises_from: rfc3339(o.start - lead_s),
                start: rfc3339(o.start),
                end: rfc3339(o.end),
                in_progress: o.start - lead_s <= now,
            })
            .collect(),
    }
}

fn text_of(groups: &[GroupSchedule]) -> String {
    let mut out = String::new();
    for g in groups {
        if g.entries.is_empty() {
            out.push_str(&format!("{}: no scheduled entries\n", g.group));
            continue;
        }
        let measured = if g.measured_warmup {
            ", with the configured warm-up: this group measures its own (headroom groups)"
        } else {
            ""
        };
        out.push_str(&format!(
            "{}: the plan rises {} (the lead{measured}) before each start\n",
            g.group,
            span(g.lead_s)
        ));
        for e in &g.entries {
            out.push_str(&format!("  {}: {}\n", e.description, e.raise));
            if e.next.is_empty() {
                out.push_str("    no firing to come\n");
            }
            for f in &e.next {
                let now = if f.in_progress { "  (now)" } else { "" };
                out.push_str(&format!(
                    "    {} to {}, raised from {}{now}\n",
                    f.start, f.end, f.raises_from
                ));
            }
        }
    }
    out
}
