//! `headroom report`: the ledger of the plan next to target tracking, in total and per hour.

use std::fmt::Write as _;

use headroom_common::duration;
use serde_json::Value;

use super::{answer, f, num, parse_since, ts_text};
use crate::cli::ReportArgs;
use crate::control::protocol::{PROTOCOL_VERSION, Request};
use headroom_common::stdout;

/// `headroom report`.
pub fn report(a: &ReportArgs) -> anyhow::Result<()> {
    let since_s = parse_since(&a.since)?;
    let Some(v) = answer(
        &a.query,
        Request::Report {
            v: PROTOCOL_VERSION,
            since_s,
        },
    )?
    else {
        return Ok(());
    };
    stdout::print(&report_text(&v, &a.since))
}

/// The ledger as `headroom report` prints it.
fn report_text(v: &Value, since: &str) -> String {
    let pct = |x: &Value| {
        x.as_f64()
            .map_or_else(|| "-".into(), |p| format!("{:.1}%", 100.0 * p))
    };
    let t = &v["total"];
    let observed = f(&t["observed_s"]);
    let share = |s: f64| {
        if observed > 0.0 {
            format!("{:.2}%", 100.0 * s / observed)
        } else {
            "-".into()
        }
    };
    let mut o = String::new();
    let _ = writeln!(
        o,
        "ledger of the last {since}, in whole hours from {} UTC ({} observed), this host's share of {} next to target tracking at {:.0}%:",
        ts_text(f(&v["from"])).get(..16).unwrap_or(""),
        duration::format(std::time::Duration::from_secs(observed as u64)),
        v["demand_metric"].as_str().unwrap_or("?"),
        100.0 * f(&v["target_utilization"])
    );
    let ratio = t["cost_ratio"].as_f64();
    let _ = writeln!(
        o,
        "  instance-hours     plan {:>9}   target tracking {:>9}   {}",
        format!("{:.2}", f(&t["plan_instance_hours"])),
        format!("{:.2}", f(&t["shadow_instance_hours"])),
        ratio.map_or_else(String::new, |r| if r <= 1.0 {
            format!("({r:.2}x: {:.0}% saved)", 100.0 * (1.0 - r))
        } else {
            format!("({r:.2}x: {:.0}% more)", 100.0 * (r - 1.0))
        })
    );
    let _ = writeln!(
        o,
        "  under-provisioned  plan {:>9}   target tracking {:>9}   (minutes: {:.1} and {:.1})",
        share(f(&t["plan_short_s"])),
        share(f(&t["shadow_short_s"])),
        f(&t["plan_short_s"]) / 60.0,
        f(&t["shadow_short_s"]) / 60.0
    );
    let _ = writeln!(
        o,
        "  forecast at the lead ({} s ahead): MAPE {} ({} scored, {} at zero demand left out), WAPE {}, P90 coverage {}",
        num(f(&v["lead_s"])),
        pct(&t["mape"]),
        t["forecasts_scored"],
        t["zero_actuals"],
        pct(&t["wape"]),
        pct(&t["p90_coverage"])
    );
    let hours = v["hours"].as_array().cloned().unwrap_or_default();
    if !hours.is_empty() {
        let _ = writeln!(
            o,
            "  {:<16} {:>9} {:>9} {:>10} {:>10} {:>7} {:>7}",
            "hour (UTC)", "plan i-h", "tt i-h", "plan short", "tt short", "WAPE", "P90 cov"
        );
        for h in hours.iter().rev().take(24).rev() {
            let _ = writeln!(
                o,
                "  {:<16} {:>9.2} {:>9.2} {:>9.1}m {:>9.1}m {:>7} {:>7}",
                ts_text(f(&h["start"])).get(..16).unwrap_or(""),
                f(&h["plan_instance_hours"]),
                f(&h["shadow_instance_hours"]),
                f(&h["plan_short_s"]) / 60.0,
                f(&h["shadow_short_s"]) / 60.0,
                pct(&h["wape"]),
                pct(&h["p90_coverage"])
            );
        }
        if hours.len() > 24 {
            let _ = writeln!(
                o,
                "  (the last 24 of {} hours; --json has them all)",
                hours.len()
            );
        }
    }
    o
}
