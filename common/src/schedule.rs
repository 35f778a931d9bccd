//! `[[schedule]]` entries as written in a configuration (a coordinator group's
//! `[[groups.NAME.schedule]]`, or the top level of a `simulate --config` file), and the one
//! rule that checks them and turns them into the model's [`Schedule`].
//!
//! ```toml
//! [[schedule]]
//! name = "friday-evening"        # default: schedule[N], N counted from 0 in file order
//! cron = "0 8 * * FRI"           # 5 fields; or at = "2026-12-24T08:00:00Z"
//! tz = "Europe/Berlin"           # default: UTC
//! duration = "4h"
//! min_instances = 12             # or demand_factor = 1.5
//! ```
//!
//! Every problem names the entry by its place and field (`schedule[1].cron`), and by its name
//! when it has one.

use serde::Deserialize;

use headroom_model::schedule::{Entry, Firing, Raise, Schedule};

use crate::config::Problem;
use crate::duration;

/// The largest demand factor: past it, an entry is a typo rather than a plan.
const MAX_DEMAND_FACTOR: f64 = 100.0;

/// One `[[schedule]]` entry as written.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default)]
pub struct ScheduleEntryConfig {
    /// Name in reasons and summaries; default `schedule[N]`.
    pub name: Option<String>,
    /// 5-field cron pattern (minute hour day-of-month month day-of-week).
    pub cron: Option<String>,
    /// One instant instead of `cron`: RFC 3339, or a wall-clock time read in `tz`.
    pub at: Option<String>,
    /// IANA time zone of `cron` (and of an `at` without offset); default UTC.
    pub tz: Option<String>,
    /// How long each occurrence lasts, with its unit (`4h`).
    pub duration: Option<String>,
    /// Raise the plan to at least this many instances.
    pub min_instances: Option<u32>,
    /// Or: raise it to the plan for this multiple of demand (at least 1).
    pub demand_factor: Option<f64>,
}

/// Checks `entries` (keyed under `prefix`, e.g. `groups.web.` or ``) against a group's `max`
/// and builds the schedule from the good ones; returns it with every problem found.
pub fn build(entries: &[ScheduleEntryConfig], prefix: &str, max: u32) -> (Schedule, Vec<Problem>) {
    let mut problems = Vec::new();
    let mut schedule = Schedule::default();
    for (i, e) in entries.iter().enumerate() {
        let place = format!("schedule[{i}]");
        let name = e.name.clone().unwrap_or_else(|| place.clone());
        let mut bad = |field: &str, reason: String| {
            let key = if field.is_empty() {
                format!("{prefix}{place}")
            } else {
                format!("{prefix}{place}.{field}")
            };
            let reason = match &e.name {
                Some(n) => format!("({n}) {reason}"),
                None => reason,
            };
            problems.push(Problem::new(key, reason));
        };
        if let Some(n) = &e.name {
            if n.trim().is_empty() {
                bad("name", "must not be empty".into());
            } else if let Some(j) = entries[..i]
                .iter()
                .position(|other| other.name.as_deref() == Some(n))
            {
                bad(
                    "name",
                    format!("{n:?} is already the name of schedule[{j}]"),
                );
            }
        }
        let firing = match (&e.cron, &e.at) {
            (Some(_), Some(_)) => {
                bad("at", "give cron or at, not both".into());
                None
            }
            (None, None) => {
                bad(
                    "",
                    "needs cron (a 5-field pattern) or at (an instant)".into(),
                );
                None
            }
            (Some(pattern), None) => Firing::cron(pattern, e.tz.as_deref())
                .map_err(|(field, why)| bad(field, why))
                .ok(),
            (None, Some(at)) => Firing::at(at, e.tz.as_deref())
                .map_err(|(field, why)| bad(field, why))
                .ok(),
        };
        let duration_s = match e.duration.as_deref().map(duration::parse) {
            None => {
                bad("duration", "needed, e.g. \"4h\"".into());
                None
            }
            Some(Err(why)) => {
                bad("duration", why);
                None
            }
            Some(Ok(d)) if d.is_zero() => {
                bad("duration", "must be longer than 0s".into());
                None
            }
            Some(Ok(d)) => Some(d.as_secs_f64()),
        };
        let raise = match (e.min_instances, e.demand_factor) {
            (Some(_), Some(_)) => {
                bad(
                    "demand_factor",
                    "give min_instances or demand_factor, not both".into(),
                );
                None
            }
            (None, None) => {
                bad("", "needs min_instances or demand_factor".into());
                None
            }
            (Some(n), None) if n > max => {
                bad(
                    "min_instances",
                    format!("{n} is above the group's max {max}"),
                );
                None
            }
            (Some(n), None) => Some(Raise::MinInstances(n)),
            (None, Some(f)) if !(1.0..=MAX_DEMAND_FACTOR).contains(&f) => {
                bad(
                    "demand_factor",
                    format!(
                        "{f} is outside [1, {MAX_DEMAND_FACTOR}] (a schedule only raises the plan)"
                    ),
                );
                None
            }
            (None, Some(f)) => Some(Raise::DemandFactor(f)),
        };
        if let (Some(firing), Some(duration_s), Some(raise)) = (firing, duration_s, raise) {
            schedule.entries.push(Entry {
                name,
                firing,
                duration_s,
                raise,
            });
        }
    }
    (schedule, problems)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(toml_text: &str) -> ScheduleEntryConfig {
        toml::from_str(toml_text).unwrap()
    }

    #[test]
    fn a_good_entry_builds_and_an_unnamed_one_is_named_by_its_place() {
        let entries = [
            entry(
                "name = \"friday\"\ncron = \"0 8 * * FRI\"\nduration = \"4h\"\nmin_instances = 12",
            ),
            entry("at = \"2026-12-24T08:00:00Z\"\nduration = \"1h\"\ndemand_factor = 1.5"),
        ];
        let (schedule, problems) = build(&entries, "groups.web.", 20);
        assert_eq!(problems, vec![]);
        let names: Vec<&str> = schedule.entries.iter().map(|e| e.name.as_str()).collect();
        assert_eq!(names, ["friday", "schedule[1]"]);
        assert_eq!(schedule.entries[0].duration_s, 4.0 * 3600.0);
        assert_eq!(schedule.entries[1].raise, Raise::DemandFactor(1.5));
    }

    #[test]
    fn every_problem_names_its_entry_and_field() {
        let entries = [
            entry("name = \"sale\"\ncron = \"0 8 * *\"\nduration = \"4h\"\nmin_instances = 30"),
            entry(
                "cron = \"0 8 * * *\"\nat = \"2026-12-24T08:00:00Z\"\nduration = \"4 hours please\"\nmin_instances = 1\ndemand_factor = 2.0",
            ),
            entry("tz = \"Mars/Olympus\"\ncron = \"0 8 * * *\"\ndemand_factor = 0.5"),
            entry("name = \"sale\"\nduration = \"0s\""),
        ];
        let (schedule, problems) = build(&entries, "groups.web.", 20);
        assert!(schedule.is_empty());
        let keys: Vec<String> = problems
            .iter()
            .map(|p| format!("{}: {}", p.key, p.reason))
            .collect();
        let expect = [
            "groups.web.schedule[0].cron: (sale) \"0 8 * *\" has 4 fields",
            "groups.web.schedule[0].min_instances: (sale) 30 is above the group's max 20",
            "groups.web.schedule[1].at: give cron or at, not both",
            "groups.web.schedule[1].duration: ",
            "groups.web.schedule[1].demand_factor: give min_instances or demand_factor",
            "groups.web.schedule[2].tz: \"Mars/Olympus\" is not an IANA time zone",
            "groups.web.schedule[2].duration: needed",
            "groups.web.schedule[2].demand_factor: 0.5 is outside [1, 100]",
            "groups.web.schedule[3].name: (sale) \"sale\" is already the name of schedule[0]",
            "groups.web.schedule[3]: (sale) needs cron (a 5-field pattern) or at",
            "groups.web.schedule[3].duration: (sale) must be longer than 0s",
            "groups.web.schedule[3]: (sale) needs min_instances or demand_factor",
        ];
        assert_eq!(keys.len(), expect.len(), "{keys:#?}");
        for (got, want) in keys.iter().zip(expect) {
            assert!(got.starts_with(want), "{got:?} should start with {want:?}");
        }
    }
}
