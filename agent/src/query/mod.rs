//! The query commands of the CLI: ask the running agent, print for people or for scripts.

use std::fmt::Write as _;

use headroom_common::duration;
use headroom_common::exit::Exit;
use serde_json::Value;

use crate::cli::{DecisionsArgs, HistoryArgs, QueryArgs, Resolution};
use crate::control::protocol::{PROTOCOL_VERSION, Request, request};
use crate::paths::client_socket_candidates;
use headroom_common::stdout;

mod forecast;
mod report;
mod status;

pub use forecast::forecast;
pub use report::report;
pub use status::status;

/// Asks the running agent; with `--json` prints its answer as it came and returns `None`
/// (nothing is left to print), else returns the answer for the command to print for people.
fn answer(q: &QueryArgs, req: Request) -> anyhow::Result<Option<Value>> {
    let v = request(&client_socket_candidates(q.socket.clone()), &req)?;
    if q.json {
        stdout::print(&format!("{}\n", serde_json::to_string_pretty(&v)?))?;
        return Ok(None);
    }
    Ok(Some(v))
}

fn parse_since(s: &str) -> anyhow::Result<f64> {
    duration::parse(s)
        .map(|d| d.as_secs_f64())
        .map_err(|why| Exit::config(format!("--since: {why}")))
}

fn f(v: &Value) -> f64 {
    v.as_f64().unwrap_or(f64::NAN)
}

fn ts_text(ts: f64) -> String {
    chrono::DateTime::from_timestamp(ts as i64, 0)
        .map(|d| d.format("%Y-%m-%d %H:%M:%S").to_string())
        .unwrap_or_else(|| format!("{ts}"))
}

/// A short human number.
fn num(v: f64) -> String {
    if !v.is_finite() {
        return "-".into();
    }
    let a = v.abs();
    if a >= 1e9 {
        format!("{:.1}G", v / 1e9)
    } else if a >= 1e6 {
        format!("{:.1}M", v / 1e6)
    } else if a >= 1e4 {
        format!("{:.1}k", v / 1e3)
    } else if a >= 100.0 || v == v.trunc() {
        format!("{v:.0}")
    } else {
        format!("{v:.2}")
    }
}

/// `headroom history`.
pub fn history(a: &HistoryArgs) -> anyhow::Result<()> {
    if a.list {
        let Some(v) = answer(
            &a.query,
            Request::Metrics {
                v: PROTOCOL_VERSION,
            },
        )?
        else {
            return Ok(());
        };
        let mut o = String::new();
        for m in v["metrics"].as_array().into_iter().flatten() {
            let name = m.as_str().unwrap_or("?");
            let tag = if v["demand"].as_str() == Some(name) {
                "  (demand)"
            } else {
                ""
            };
            let _ = writeln!(o, "{name}{tag}");
        }
        return stdout::print(&o);
    }
    let since_s = parse_since(&a.since)?;
    let resolution = a.resolution.map(|r| match r {
        Resolution::Raw => "raw".to_string(),
        Resolution::TenSeconds => "10s".to_string(),
        Resolution::OneMinute => "1m".to_string(),
    });
    let Some(v) = answer(
        &a.query,
        Request::History {
            v: PROTOCOL_VERSION,
            metric: a.metric.clone(),
            since_s,
            resolution,
        },
    )?
    else {
        return Ok(());
    };
    let points = v["points"].as_array().cloned().unwrap_or_default();
    if a.csv {
        let mut out = String::from("timestamp,value\n");
        for p in &points {
            let _ = writeln!(out, "{},{}", p["ts"], f(&p["mean"]));
        }
        return stdout::print(&out);
    }
    let mut o = String::new();
    let _ = writeln!(
        o,
        "{} at {} ({} points)",
        v["metric"].as_str().unwrap_or("?"),
        v["resolution"].as_str().unwrap_or("?"),
        points.len()
    );
    let _ = writeln!(
        o,
        "  {:<19} {:>10} {:>10} {:>10}",
        "time (UTC)", "mean", "max", "last"
    );
    for p in &points {
        let _ = writeln!(
            o,
            "  {:<19} {:>10} {:>10} {:>10}",
            ts_text(f(&p["ts"])),
            num(f(&p["mean"])),
            num(f(&p["max"])),
            num(f(&p["last"]))
        );
    }
    stdout::print(&o)
}

/// `headroom health`.
pub fn health(q: &QueryArgs) -> anyhow::Result<()> {
    let Some(v) = answer(
        q,
        Request::Health {
            v: PROTOCOL_VERSION,
        },
    )?
    else {
        return Ok(());
    };
    let mut o = String::new();
    let _ = writeln!(o, "{}", v["state"].as_str().unwrap_or("?"));
    for r in v["reasons"].as_array().into_iter().flatten() {
        let _ = writeln!(o, "  - {}", r.as_str().unwrap_or(""));
    }
    for n in v["notes"].as_array().into_iter().flatten() {
        let _ = writeln!(o, "  ({n})", n = n.as_str().unwrap_or(""));
    }
    let transitions = v["transitions"].as_array().cloned().unwrap_or_default();
    if !transitions.is_empty() {
        let _ = writeln!(o, "changes in the last 24 h:");
        for t in transitions.iter().rev().take(20) {
            let _ = writeln!(
                o,
                "  {}  {}",
                ts_text(f(&t["ts"])),
                t["state"].as_str().unwrap_or("?")
            );
        }
    }
    stdout::print(&o)
}

/// `headroom decisions`.
pub fn decisions(a: &DecisionsArgs) -> anyhow::Result<()> {
    let since_s = parse_since(&a.since)?;
    let Some(v) = answer(
        &a.query,
        Request::Decisions {
            v: PROTOCOL_VERSION,
            since_s,
        },
    )?
    else {
        return Ok(());
    };
    let ds = v["decisions"].as_array().cloned().unwrap_or_default();
    let mut o = String::new();
    let _ = writeln!(o, "{} decisions in the last {}", ds.len(), a.since);
    let _ = writeln!(
        o,
        "  {:>6} {:<19} {:<9} {:>7} {:>8} {:>8}  reason",
        "seq", "time (UTC)", "action", "desired", "demand", "p90@lead"
    );
    for d in &ds {
        let _ = writeln!(
            o,
            "  {:>6} {:<19} {:<9} {:>7} {:>8} {:>8}  {}",
            d["seq"].to_string(),
            ts_text(f(&d["ts"])),
            d["action"].as_str().unwrap_or("?"),
            d["desired"].to_string(),
            num(f(&d["demand"])),
            num(f(&d["p90"])),
            d["reason"].as_str().unwrap_or("")
        );
    }
    stdout::print(&o)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bad_since_is_a_clear_error() {
        let e = parse_since("yesterday").unwrap_err();
        assert!(
            e.to_string()
                .contains("--since: \"yesterday\" is not a duration"),
            "{e}"
        );
    }
}
