//! The query commands of the CLI: ask the running agent, print for people or for scripts.

use std::fmt::Write as _;

use headroom_common::duration;
use headroom_common::exit::Exit;
use serde_json::Value;

use crate::cli::{DecisionsArgs, ForecastArgs, HistoryArgs, QueryArgs, ReportArgs, Resolution};
use crate::control::protocol::{PROTOCOL_VERSION, Request, request};
use crate::paths::client_socket_candidates;

fn ask(q: &QueryArgs, req: Request) -> anyhow::Result<Value> {
    request(&client_socket_candidates(q.socket.clone()), &req)
}

fn print_json(v: &Value) -> anyhow::Result<()> {
    println!("{}", serde_json::to_string_pretty(v)?);
    Ok(())
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

/// `headroom status`.
pub fn status(q: &QueryArgs) -> anyhow::Result<()> {
    let v = ask(
        q,
        Request::Status {
            v: PROTOCOL_VERSION,
        },
    )?;
    if q.json {
        return print_json(&v);
    }
    let mut o = String::new();
    let _ = writeln!(
        o,
        "headroom {} (pid {}), up {}, host {} in group {}",
        v["version"].as_str().unwrap_or("?"),
        v["pid"],
        duration::format(std::time::Duration::from_secs(f(&v["uptime_s"]) as u64)),
        v["host"].as_str().unwrap_or("?"),
        v["group"].as_str().unwrap_or("?"),
    );
    let _ = writeln!(
        o,
        "sampling every {}s, deciding every {}s; demand {} (capacity {})",
        num(f(&v["interval_s"])),
        num(f(&v["decision_interval_s"])),
        v["demand_metric"].as_str().unwrap_or("?"),
        num(f(&v["capacity"]))
    );
    let h = &v["health"];
    let _ = writeln!(o, "health: {}", h["state"].as_str().unwrap_or("?"));
    for r in h["reasons"].as_array().into_iter().flatten() {
        let _ = writeln!(o, "  - {}", r.as_str().unwrap_or(""));
    }
    for n in h["notes"].as_array().into_iter().flatten() {
        let _ = writeln!(o, "  ({})", n.as_str().unwrap_or(""));
    }
    let _ = writeln!(o, "sources:");
    for s in v["sources"].as_array().into_iter().flatten() {
        let _ = write!(
            o,
            "  {:<13} {}",
            s["name"].as_str().unwrap_or("?"),
            s["state"].as_str().unwrap_or("?")
        );
        if let Some(r) = s["reason"].as_str() {
            let _ = write!(o, ": {r}");
        }
        o.push('\n');
    }
    let l = &v["latest"];
    if l.is_object() {
        let _ = writeln!(o, "latest sample ({}):", ts_text(f(&l["ts"])));
        if l["cpu"].is_object() {
            let c = &l["cpu"];
            let _ = writeln!(
                o,
                "  cpu      {:.1}% busy = {} of {} cores (user {:.1}% system {:.1}% iowait {:.1}% steal {:.1}%), run queue {}, load {}",
                f(&c["busy"]) * 100.0,
                num(f(&c["busy_cores"])),
                c["cores"],
                f(&c["user"]) * 100.0,
                f(&c["system"]) * 100.0,
                f(&c["iowait"]) * 100.0,
                f(&c["steal"]) * 100.0,
                c["procs_running"],
                num(f(&c["load1"]))
            );
        }
        if l["memory"].is_object() {
            let m = &l["memory"];
            let _ = writeln!(
                o,
                "  memory   {}B available of {}B",
                num(f(&m["available_bytes"])),
                num(f(&m["total_bytes"]))
            );
        }
        if l["pressure"].is_object() {
            let p = &l["pressure"];
            let _ = writeln!(
                o,
                "  pressure some/full avg10: cpu {}%, io {}/{}%, memory {}/{}%",
                num(f(&p["cpu_some_avg10"])),
                num(f(&p["io_some_avg10"])),
                num(f(&p["io_full_avg10"])),
                num(f(&p["memory_some_avg10"])),
                num(f(&p["memory_full_avg10"]))
            );
        }
        for d in l["disks"].as_array().into_iter().flatten() {
            let _ = writeln!(
                o,
                "  disk {:<8} {} ops/s, {}B/s, {:.1}% busy, queue {}",
                d["name"].as_str().unwrap_or("?"),
                num(f(&d["reads_per_s"]) + f(&d["writes_per_s"])),
                num(f(&d["read_bytes_per_s"]) + f(&d["write_bytes_per_s"])),
                f(&d["busy"]) * 100.0,
                num(f(&d["queue_depth"]))
            );
        }
        for n in l["nets"].as_array().into_iter().flatten() {
            let _ = writeln!(
                o,
                "  net  {:<8} rx {}B/s tx {}B/s, {} errors/s, {} drops/s",
                n["name"].as_str().unwrap_or("?"),
                num(f(&n["rx_bytes_per_s"])),
                num(f(&n["tx_bytes_per_s"])),
                num(f(&n["errors_per_s"])),
                num(f(&n["drops_per_s"]))
            );
        }
        if let Some(ls) = l["listeners"].as_array() {
            let total = l["listeners_total"].as_u64().unwrap_or(ls.len() as u64);
            let shown = if total > ls.len() as u64 {
                format!(" (the first {} shown)", ls.len())
            } else {
                String::new()
            };
            let _ = writeln!(
                o,
                "  accept queues: {total} listening sockets{shown}; overflows {} drops {} in the last interval",
                l["listen_overflows"], l["listen_drops"]
            );
            for q in ls {
                let fam = if q["ipv6"].as_bool().unwrap_or(false) {
                    "tcp6"
                } else {
                    "tcp"
                };
                let _ = writeln!(
                    o,
                    "    {fam} :{:<6} depth {} / backlog {}",
                    q["port"], q["depth"], q["backlog"]
                );
            }
        }
        for g in l["app"].as_array().into_iter().flatten() {
            let _ = writeln!(
                o,
                "  app {} = {}",
                g["name"].as_str().unwrap_or("?"),
                num(f(&g["value"]))
            );
        }
    } else {
        let _ = writeln!(o, "latest sample: none yet");
    }
    let s = &v["sampler"];
    let _ = writeln!(
        o,
        "sampler: {} ticks, {} late, {} dropped by the ring",
        s["ticks"], s["late_ticks"], s["ring_dropped"]
    );
    let d = &v["decision"];
    if d.is_object() {
        let _ = writeln!(
            o,
            "last decision ({}): {} -> {} instance(s) for this host's load; {}",
            ts_text(f(&d["t"])),
            d["action"].as_str().unwrap_or("?"),
            d["desired"],
            d["reason"].as_str().unwrap_or("")
        );
    }
    let c = &v["committed"];
    let _ = writeln!(
        o,
        "stored: rollups up to {}, decisions up to #{}{}",
        c["rollup_ts"]
            .as_f64()
            .map(ts_text)
            .unwrap_or_else(|| "-".into()),
        c["seq"]
            .as_u64()
            .map(|s| s.to_string())
            .unwrap_or_else(|| "-".into()),
        v["store_error"]
            .as_str()
            .map(|e| format!(" (write failing: {e})"))
            .unwrap_or_default()
    );
    let ob = &v["outbox"];
    if ob.is_object() {
        let _ = writeln!(
            o,
            "outbox: {} pending, {} delivered, {} dropped",
            ob["pending"], ob["delivered"], ob["dropped"]
        );
        for d in ob["destinations"].as_array().into_iter().flatten() {
            let _ = writeln!(
                o,
                "  to {}: {} pending, done up to seq {}, {} dropped",
                d["url"].as_str().unwrap_or("?"),
                d["pending"],
                d["acked"],
                d["dropped"]
            );
        }
    }
    print!("{o}");
    Ok(())
}

/// `headroom forecast`.
pub fn forecast(a: &ForecastArgs) -> anyhow::Result<()> {
    let v = ask(
        &a.query,
        Request::Forecast {
            v: PROTOCOL_VERSION,
            metric: a.metric.clone(),
        },
    )?;
    if a.query.json {
        return print_json(&v);
    }
    let metric = v["metric"].as_str().unwrap_or("?");
    let fc = &v["forecast"];
    println!("{metric}: now {}", num(f(&v["value"])));
    if !fc.is_object() {
        println!("no forecast yet: the model needs more history");
        return Ok(());
    }
    println!(
        "model {}{}",
        fc["model"].as_str().unwrap_or("?"),
        fc["fallback"]
            .as_str()
            .map(|r| format!(" (fallback: {r})"))
            .unwrap_or_default()
    );
    println!("  horizon        p50        p90        p99");
    let lead = v["lead_s"].as_f64();
    for p in fc["points"].as_array().into_iter().flatten() {
        let h = f(&p["horizon_s"]);
        let mark = if lead.is_some_and(|l| (l - h).abs() < 0.5) {
            "  <- lead"
        } else {
            ""
        };
        println!(
            "  {:>7} {:>10} {:>10} {:>10}{mark}",
            duration::format(std::time::Duration::from_secs(h as u64)),
            num(f(&p["p50"])),
            num(f(&p["p90"])),
            num(f(&p["p99"]))
        );
    }
    let recent: Vec<f64> = v["recent"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|p| f(&p["mean"]))
        .collect();
    let band: Vec<(f64, f64)> = fc["points"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|p| (f(&p["p50"]), f(&p["p90"])))
        .collect();
    print!("{}", chart(&recent, &band, 60, 10));
    Ok(())
}

/// A small terminal chart: history as `*`, the forecast P50 as `o` with its P90 band as `:`.
pub fn chart(history: &[f64], band: &[(f64, f64)], width: usize, height: usize) -> String {
    if history.is_empty() {
        return String::new();
    }
    let hist_w = width.saturating_sub(band.len()).max(1);
    let step = history.len().div_ceil(hist_w).max(1);
    let cols: Vec<f64> = history
        .chunks(step)
        .map(|c| c.iter().sum::<f64>() / c.len() as f64)
        .collect();
    let finite = |x: &f64| x.is_finite();
    let hi = cols
        .iter()
        .copied()
        .chain(band.iter().map(|b| b.1))
        .filter(finite)
        .fold(f64::MIN, f64::max);
    let lo = cols
        .iter()
        .copied()
        .chain(band.iter().map(|b| b.0))
        .filter(finite)
        .fold(f64::MAX, f64::min);
    if !(hi.is_finite() && lo.is_finite()) {
        return String::new();
    }
    let span = (hi - lo).max(1e-9);
    let row = |v: f64| (((v - lo) / span) * (height - 1) as f64).round() as usize;
    let mut grid = vec![vec![' '; cols.len() + band.len() + 1]; height];
    for (x, v) in cols.iter().enumerate() {
        if v.is_finite() {
            grid[height - 1 - row(*v).min(height - 1)][x] = '*';
        }
    }
    grid.iter_mut().for_each(|r| r[cols.len()] = '|');
    for (i, (p50, p90)) in band.iter().enumerate() {
        let x = cols.len() + 1 + i;
        if p50.is_finite() && p90.is_finite() {
            for y in row(*p50)..=row(*p90).min(height - 1) {
                grid[height - 1 - y][x] = ':';
            }
            grid[height - 1 - row(*p50).min(height - 1)][x] = 'o';
        }
    }
    let mut out = String::new();
    for (i, r) in grid.iter().enumerate() {
        let label = if i == 0 {
            num(hi)
        } else if i == height - 1 {
            num(lo)
        } else {
            String::new()
        };
        let _ = writeln!(out, "{label:>8} {}", r.iter().collect::<String>());
    }
    let _ = writeln!(
        out,
        "{:>8} last hour{:>w$}",
        "",
        "| forecast (o p50, : to p90)",
        w = cols.len().saturating_sub(9) + 28
    );
    out
}

/// `headroom history`.
pub fn history(a: &HistoryArgs) -> anyhow::Result<()> {
    if a.list {
        let v = ask(
            &a.query,
            Request::Metrics {
                v: PROTOCOL_VERSION,
            },
        )?;
        if a.query.json {
            return print_json(&v);
        }
        for m in v["metrics"].as_array().into_iter().flatten() {
            let name = m.as_str().unwrap_or("?");
            let tag = if v["demand"].as_str() == Some(name) {
                "  (demand)"
            } else {
                ""
            };
            println!("{name}{tag}");
        }
        return Ok(());
    }
    let since_s = parse_since(&a.since)?;
    let resolution = a.resolution.map(|r| match r {
        Resolution::Raw => "raw".to_string(),
        Resolution::TenSeconds => "10s".to_string(),
        Resolution::OneMinute => "1m".to_string(),
    });
    let v = ask(
        &a.query,
        Request::History {
            v: PROTOCOL_VERSION,
            metric: a.metric.clone(),
            since_s,
            resolution,
        },
    )?;
    if a.query.json {
        return print_json(&v);
    }
    let points = v["points"].as_array().cloned().unwrap_or_default();
    if a.csv {
        let mut out = String::from("timestamp,value\n");
        for p in &points {
            let _ = writeln!(out, "{},{}", p["ts"], f(&p["mean"]));
        }
        print!("{out}");
        return Ok(());
    }
    println!(
        "{} at {} ({} points)",
        v["metric"].as_str().unwrap_or("?"),
        v["resolution"].as_str().unwrap_or("?"),
        points.len()
    );
    println!(
        "  {:<19} {:>10} {:>10} {:>10}",
        "time (UTC)", "mean", "max", "last"
    );
    for p in &points {
        println!(
            "  {:<19} {:>10} {:>10} {:>10}",
            ts_text(f(&p["ts"])),
            num(f(&p["mean"])),
            num(f(&p["max"])),
            num(f(&p["last"]))
        );
    }
    Ok(())
}

/// `headroom health`.
pub fn health(q: &QueryArgs) -> anyhow::Result<()> {
    let v = ask(
        q,
        Request::Health {
            v: PROTOCOL_VERSION,
        },
    )?;
    if q.json {
        return print_json(&v);
    }
    println!("{}", v["state"].as_str().unwrap_or("?"));
    for r in v["reasons"].as_array().into_iter().flatten() {
        println!("  - {}", r.as_str().unwrap_or(""));
    }
    for n in v["notes"].as_array().into_iter().flatten() {
        println!("  ({n})", n = n.as_str().unwrap_or(""));
    }
    let transitions = v["transitions"].as_array().cloned().unwrap_or_default();
    if !transitions.is_empty() {
        println!("changes in the last 24 h:");
        for t in transitions.iter().rev().take(20) {
            println!(
                "  {}  {}",
                ts_text(f(&t["ts"])),
                t["state"].as_str().unwrap_or("?")
            );
        }
    }
    Ok(())
}

/// `headroom decisions`.
pub fn decisions(a: &DecisionsArgs) -> anyhow::Result<()> {
    let since_s = parse_since(&a.since)?;
    let v = ask(
        &a.query,
        Request::Decisions {
            v: PROTOCOL_VERSION,
            since_s,
        },
    )?;
    if a.query.json {
        return print_json(&v);
    }
    let ds = v["decisions"].as_array().cloned().unwrap_or_default();
    println!("{} decisions in the last {}", ds.len(), a.since);
    println!(
        "  {:>6} {:<19} {:<9} {:>7} {:>8} {:>8}  reason",
        "seq", "time (UTC)", "action", "desired", "demand", "p90@lead"
    );
    for d in &ds {
        println!(
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
    Ok(())
}

/// `headroom report`.
pub fn report(a: &ReportArgs) -> anyhow::Result<()> {
    let since_s = parse_since(&a.since)?;
    let v = ask(
        &a.query,
        Request::Report {
            v: PROTOCOL_VERSION,
            since_s,
        },
    )?;
    if a.query.json {
        return print_json(&v);
    }
    print!("{}", report_text(&v, &a.since));
    Ok(())
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
        "ledger of the last {since} ({} observed), this host's share of {} next to target tracking at {:.0}%:",
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn chart_draws_history_and_band() {
        let hist: Vec<f64> = (0..120).map(|i| i as f64 / 10.0).collect();
        let out = chart(&hist, &[(12.0, 13.0), (13.0, 15.0)], 40, 6);
        assert!(
            out.contains('*') && out.contains('o') && out.contains(':'),
            "{out}"
        );
        assert_eq!(out.lines().count(), 7);
    }

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
