//! `headroom status`: the agent's state at a glance.

use std::fmt::Write as _;

use headroom_common::duration;

use super::{answer, f, num, ts_text};
use crate::cli::QueryArgs;
use crate::control::protocol::{PROTOCOL_VERSION, Request};
use headroom_common::stdout;

/// `headroom status`.
pub fn status(q: &QueryArgs) -> anyhow::Result<()> {
    let Some(v) = answer(
        q,
        Request::Status {
            v: PROTOCOL_VERSION,
        },
    )?
    else {
        return Ok(());
    };
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
    if let Ok(l) = serde_json::from_value::<headroom_model::Learned>(v["learned"].clone()) {
        let _ = writeln!(o, "policy: {l}");
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
            let url = d["url"].as_str().unwrap_or("?");
            let _ = write!(
                o,
                "  to {url}: {} pending, done up to seq {}, {} dropped",
                d["pending"], d["acked"], d["dropped"]
            );
            // Why its signals wait, as the sender last saw it.
            let link = v["replicas"]
                .as_array()
                .into_iter()
                .flatten()
                .find(|r| r["url"] == url);
            if let Some(since) = link.and_then(|r| r["waiting_since"].as_f64()) {
                let waited = (headroom_common::clock::unix_now() - since).max(0.0);
                let _ = write!(
                    o,
                    "; waiting {:.0} s: {}",
                    waited,
                    link.and_then(|r| r["error"].as_str())
                        .unwrap_or("no answer")
                );
            }
            let _ = writeln!(o);
        }
    }
    stdout::print(&o)
}
