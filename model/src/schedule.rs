//! Scheduled events: capacity an operator knows will be needed (a sale at 08:00, Friday
//! evenings) that no forecast can foresee. Each entry fires at a cron time or once at an
//! instant, lasts a duration, and raises the plan to at least a count (`min_instances`) or to
//! the plan for a multiple of demand (`demand_factor`) from `start − lead` to `end`: capacity
//! asked for at `start − lead` is ready at `start`. The policy takes the larger of the plan and
//! the schedule, so an entry never lowers a plan.
//!
//! Time zones: a cron entry reads its fields on the wall clock of its zone (UTC unless given),
//! through `croner` over `chrono-tz`'s database. In a DST gap (spring forward) a fixed time
//! that does not exist fires at the first minute after the gap, the same day; in an overlap
//! (fall back) a fixed time fires once, at its first occurrence. Patterns with wildcards or
//! steps in the minute or hour fire on every wall-clock match, skipping the gap.
//!
//! Pure: time is passed in (unix seconds), no clock is read.

use chrono::{DateTime, TimeZone, Utc};
use chrono_tz::Tz;
use croner::Cron;
use croner::parser::{CronParser, Seconds, Year};

/// When an entry fires.
#[derive(Debug, Clone, PartialEq)]
pub enum Firing {
    /// At every match of a 5-field cron pattern, read in a time zone.
    Cron {
        /// The pattern as written.
        pattern: String,
        /// The parsed pattern (boxed: it is large, and an instant is one number).
        cron: Box<Cron>,
        /// Its zone.
        tz: Tz,
    },
    /// Once, at this unix second.
    At(f64),
}

impl Firing {
    /// A 5-field cron pattern (minute hour day-of-month month day-of-week) in `tz` (an IANA
    /// name; UTC when `None`). The error says which part is wrong: `("cron" | "tz", reason)`.
    pub fn cron(pattern: &str, tz: Option<&str>) -> Result<Firing, (&'static str, String)> {
        let tz = zone(tz)?;
        let fields = pattern.split_whitespace().count();
        if fields != 5 {
            return Err((
                "cron",
                format!(
                    "{pattern:?} has {fields} fields, not 5 (minute hour day-of-month month \
                     day-of-week)"
                ),
            ));
        }
        let parser = CronParser::builder()
            .seconds(Seconds::Disallowed)
            .year(Year::Disallowed)
            .build();
        let cron = parser
            .parse(pattern)
            .map_err(|e| ("cron", format!("{pattern:?} is not a cron pattern: {e}")))?;
        // A pattern no date matches (`0 0 30 2 *`) would make every decision search to the
        // end of croner's calendar; refused once here instead.
        let probe = Utc
            .timestamp_opt(0, 0)
            .single()
            .map(|t| t.with_timezone(&tz));
        if probe.is_none_or(|t| cron.find_next_occurrence(&t, false).is_err()) {
            return Err((
                "cron",
                format!("{pattern:?} never fires: no date matches it"),
            ));
        }
        Ok(Firing::Cron {
            pattern: pattern.trim().to_string(),
            cron: Box::new(cron),
            tz,
        })
    }

    /// Once at `at`: RFC 3339 with an offset (`2026-12-24T08:00:00Z`), or a wall-clock time
    /// without one (`2026-12-24T08:00:00`) read in `tz` (UTC when `None`). A wall-clock time
    /// in a DST gap is refused; one in an overlap is its first occurrence.
    pub fn at(at: &str, tz: Option<&str>) -> Result<Firing, (&'static str, String)> {
        let zone = zone(tz)?;
        if let Ok(t) = DateTime::parse_from_rfc3339(at) {
            return Ok(Firing::At(t.timestamp() as f64));
        }
        let local = [
            "%Y-%m-%dT%H:%M:%S",
            "%Y-%m-%dT%H:%M",
            "%Y-%m-%d %H:%M:%S",
            "%Y-%m-%d %H:%M",
        ]
        .iter()
        .find_map(|f| chrono::NaiveDateTime::parse_from_str(at, f).ok())
        .ok_or((
            "at",
            format!("{at:?} is not a time such as \"2026-12-24T08:00:00Z\""),
        ))?;
        match zone.from_local_datetime(&local).earliest() {
            Some(t) => Ok(Firing::At(t.timestamp() as f64)),
            None => Err((
                "at",
                format!("{at:?} does not exist in {zone} (a daylight-saving gap)"),
            )),
        }
    }

    /// The first start strictly after `t`, if any.
    fn next_after(&self, t: f64) -> Option<f64> {
        match self {
            Firing::At(at) => (*at > t).then_some(*at),
            Firing::Cron { cron, tz, .. } => {
                let from = Utc
                    .timestamp_opt(t.floor() as i64, 0)
                    .single()?
                    .with_timezone(tz);
                cron.find_next_occurrence(&from, false)
                    .ok()
                    .map(|s| s.timestamp() as f64)
            }
        }
    }
}

fn zone(tz: Option<&str>) -> Result<Tz, (&'static str, String)> {
    match tz {
        None => Ok(Tz::UTC),
        Some(name) => name.parse::<Tz>().map_err(|_| {
            (
                "tz",
                format!("{name:?} is not an IANA time zone such as \"Europe/Berlin\""),
            )
        }),
    }
}

/// What an entry raises the plan to.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Raise {
    /// At least this many instances.
    MinInstances(u32),
    /// The plan for this multiple of demand (and of its forecast), at least 1.
    DemandFactor(f64),
}

impl std::fmt::Display for Raise {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Raise::MinInstances(n) => write!(f, "min_instances {n}"),
            Raise::DemandFactor(x) => write!(f, "demand x{x}"),
        }
    }
}

/// One scheduled event.
#[derive(Debug, Clone, PartialEq)]
pub struct Entry {
    /// Its name (`schedule[N]` when the operator gave none).
    pub name: String,
    /// When it starts.
    pub firing: Firing,
    /// How long it lasts, seconds (> 0).
    pub duration_s: f64,
    /// What it raises the plan to.
    pub raise: Raise,
}

/// One occurrence of an entry: it holds capacity from `start` to `end` (unix seconds).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Occurrence {
    /// When the capacity must be ready.
    pub start: f64,
    /// When the entry stops raising the plan.
    pub end: f64,
}

impl Entry {
    /// The occurrence that raises the plan at `t` for a decision `lead_s` ahead: the one
    /// with `start − lead ≤ t < end`, if any (the earliest when several overlap).
    pub fn raising_at(&self, t: f64, lead_s: f64) -> Option<Occurrence> {
        // Starts s with s − lead ≤ t < s + d, i.e. s in (t − d, t + lead].
        let start = self.firing.next_after(t - self.duration_s)?;
        (start <= t + lead_s + 1e-9).then_some(Occurrence {
            start,
            end: start + self.duration_s,
        })
    }

    /// Up to `n` occurrences that have not ended at `t`, the one in progress first.
    pub fn upcoming(&self, t: f64, n: usize) -> Vec<Occurrence> {
        let mut out = Vec::with_capacity(n.min(64));
        let mut from = t - self.duration_s;
        while out.len() < n {
            let Some(start) = self.firing.next_after(from) else {
                break;
            };
            out.push(Occurrence {
                start,
                end: start + self.duration_s,
            });
            from = start;
        }
        out
    }

    /// The entry in words: `name (cron "0 8 * * FRI" Europe/Berlin, 4h)` or
    /// `name (at 2026-12-24T08:00:00Z, 1h)`.
    pub fn describe(&self) -> String {
        let when = match &self.firing {
            Firing::Cron { pattern, tz, .. } => format!("cron {pattern:?} {tz}"),
            Firing::At(at) => format!("at {}", rfc3339(*at)),
        };
        format!("{} ({when}, {})", self.name, span(self.duration_s))
    }
}

/// Every entry of a group (or of a `simulate --config` file).
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Schedule {
    /// In file order.
    pub entries: Vec<Entry>,
}

impl Schedule {
    /// No entries.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// The entries raising the plan at `t` for a decision `lead_s` ahead, with their
    /// occurrence.
    pub fn raising_at(&self, t: f64, lead_s: f64) -> impl Iterator<Item = (&Entry, Occurrence)> {
        self.entries
            .iter()
            .filter_map(move |e| e.raising_at(t, lead_s).map(|o| (e, o)))
    }
}

/// `t` as `2026-12-24T08:00:00Z`.
pub fn rfc3339(t: f64) -> String {
    DateTime::<Utc>::from_timestamp(t.floor() as i64, 0).map_or_else(
        || format!("{t:.0}"),
        |d| d.format("%Y-%m-%dT%H:%M:%SZ").to_string(),
    )
}

/// Seconds as `4h`, `1h30m`, `90s`, `2d`.
pub fn span(secs: f64) -> String {
    let mut s = secs.max(0.0).round() as u64;
    if s == 0 {
        return "0s".into();
    }
    let mut out = String::new();
    for (unit, len) in [("d", 86_400), ("h", 3_600), ("m", 60), ("s", 1)] {
        if s >= len {
            out.push_str(&format!("{}{unit}", s / len));
            s %= len;
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(firing: Firing, duration_s: f64) -> Entry {
        Entry {
            name: "e".into(),
            firing,
            duration_s,
            raise: Raise::MinInstances(3),
        }
    }

    fn unix(s: &str) -> f64 {
        DateTime::parse_from_rfc3339(s).unwrap().timestamp() as f64
    }

    #[test]
    fn an_instant_raises_from_start_minus_lead_to_end() {
        let at = unix("2026-01-02T12:00:00Z");
        let e = entry(Firing::At(at), 3600.0);
        assert_eq!(e.raising_at(at - 311.0, 310.0), None);
        let o = e.raising_at(at - 310.0, 310.0).unwrap();
        assert_eq!((o.start, o.end), (at, at + 3600.0));
        assert!(e.raising_at(at + 3599.0, 310.0).is_some());
        assert_eq!(e.raising_at(at + 3600.0, 310.0), None);
        assert_eq!(e.upcoming(at + 3600.0, 3), vec![]);
        assert_eq!(e.upcoming(at + 10.0, 3).len(), 1);
    }

    #[test]
    fn a_cron_entry_fires_every_match_in_its_zone() {
        // Fridays 08:00 in Berlin: 07:00Z in winter.
        let f = Firing::cron("0 8 * * FRI", Some("Europe/Berlin")).unwrap();
        let e = entry(f, 4.0 * 3600.0);
        let thursday = unix("2026-12-10T12:00:00Z");
        let next = e.upcoming(thursday, 2);
        assert_eq!(rfc3339(next[0].start), "2026-12-11T07:00:00Z");
        assert_eq!(rfc3339(next[1].start), "2026-12-18T07:00:00Z");
        let during = unix("2026-12-11T10:59:00Z");
        assert_eq!(e.raising_at(during, 60.0).unwrap().start, next[0].start);
        assert_eq!(e.raising_at(unix("2026-12-11T11:00:00Z"), 60.0), None);
        // In progress: listed first.
        assert_eq!(e.upcoming(during, 1)[0].start, next[0].start);
    }

    #[test]
    fn a_fixed_time_in_a_dst_gap_fires_just_after_it() {
        // 2027-03-28: Berlin jumps from 02:00 to 03:00 (01:00Z).
        let f = Firing::cron("30 2 * * *", Some("Europe/Berlin")).unwrap();
        let e = entry(f, 600.0);
        let next = e.upcoming(unix("2027-03-27T12:00:00Z"), 2);
        assert_eq!(rfc3339(next[0].start), "2027-03-28T01:00:00Z");
        assert_eq!(rfc3339(next[1].start), "2027-03-29T00:30:00Z");
        // An overlap (2027-10-31, 03:00 back to 02:00): once, at the first 02:30.
        let next = e.upcoming(unix("2027-10-30T12:00:00Z"), 2);
        assert_eq!(rfc3339(next[0].start), "2027-10-31T00:30:00Z");
        assert_eq!(rfc3339(next[1].start), "2027-11-01T01:30:00Z");
    }

    #[test]
    fn bad_patterns_zones_and_times_say_which_field() {
        assert_eq!(Firing::cron("0 8 * *", None).unwrap_err().0, "cron");
        assert_eq!(Firing::cron("0 8 * * * *", None).unwrap_err().0, "cron");
        assert_eq!(Firing::cron("61 8 * * *", None).unwrap_err().0, "cron");
        let never = Firing::cron("0 0 30 2 *", None).unwrap_err();
        assert_eq!(
            never,
            (
                "cron",
                "\"0 0 30 2 *\" never fires: no date matches it".into()
            )
        );
        assert!(Firing::cron("0 0 29 2 *", None).is_ok(), "leap days come");
        assert_eq!(
            Firing::at("2026-12-24T08:00:00Z", Some("Mars/Olympus"))
                .unwrap_err()
                .0,
            "tz"
        );
        assert_eq!(
            Firing::cron("0 8 * * *", Some("Mars/Olympus"))
                .unwrap_err()
                .0,
            "tz"
        );
        assert_eq!(Firing::at("tomorrow", None).unwrap_err().0, "at");
        assert_eq!(
            Firing::at("2027-03-28T02:30:00", Some("Europe/Berlin"))
                .unwrap_err()
                .0,
            "at"
        );
        let Firing::At(t) = Firing::at("2026-12-24T08:00:00", Some("Europe/Berlin")).unwrap()
        else {
            panic!("an instant")
        };
        assert_eq!(rfc3339(t), "2026-12-24T07:00:00Z");
    }

    #[test]
    fn spans_read_as_written() {
        assert_eq!(span(4.0 * 3600.0), "4h");
        assert_eq!(span(5400.0), "1h30m");
        assert_eq!(span(90.0), "1m30s");
        assert_eq!(span(2.0 * 86_400.0), "2d");
    }
}
