//! The agent's answers to control requests, as JSON: the same data the CLI prints, from the
//! pipeline's snapshot and the database (read-only).

use anyhow::Context;
use headroom_collector::{Sample, SourceKind, SourceState};
use headroom_common::clock::unix_now;
use headroom_model::ForecastConfig;
use headroom_model::ledger::{self, Hour};
use serde_json::{Value, json};

use super::protocol::Request;
use crate::pipeline::{REPORT_HORIZONS, Refill, Shared, Snapshot};
use crate::store::{Point, Reader, Resolution};

/// Answers one request from the snapshot and the database.
pub fn answer(req: &Request, shared: &Shared) -> anyhow::Result<Value> {
    let snap = shared.lock().clone();
    let now = unix_now();
    match req {
        Request::Status { .. } => status(&snap, now),
        Request::Health { .. } => {
            let reader = history_db(&snap)?;
            let transitions = reader.health(now - 86_400.0)?;
            Ok(json!({
                "state": snap.health.state,
                "reasons": snap.health.reasons,
                "notes": snap.health.notes,
                "sources": sources_json(&snap.sources),
                "transitions": transitions,
            }))
        }
        Request::Decisions { since_s, .. } => {
            let reader = history_db(&snap)?;
            Ok(json!({ "decisions": reader.decisions(window_start(now, *since_s))? }))
        }
        Request::Metrics { .. } => {
            let reader = history_db(&snap)?;
            Ok(json!({ "metrics": reader.metrics()?, "demand": snap.demand_metric }))
        }
        Request::History {
            metric,
            since_s,
            resolution,
            ..
        } => {
            let metric = metric.clone().unwrap_or_else(|| snap.demand_metric.clone());
            if resolution.as_deref() == Some("raw") {
                if metric != snap.demand_metric {
                    anyhow::bail!(
                        "raw samples are kept for the demand metric ({}) only; use 10s or 1m for {metric:?}",
                        snap.demand_metric
                    );
                }
                let points: Vec<Value> = snap
                    .raw
                    .iter()
                    .filter(|p| p.ts >= window_start(now, *since_s))
                    .map(
                        |p| json!({ "ts": p.ts, "mean": p.value, "max": p.value, "last": p.value }),
                    )
                    .collect();
                return Ok(json!({ "metric": metric, "resolution": "raw", "points": points }));
            }
            let res = match resolution.as_deref() {
                Some("10s") => Resolution::TenSeconds,
                Some("1m") => Resolution::OneMinute,
                None if *since_s <= 6.0 * 3600.0 => Resolution::TenSeconds,
                None => Resolution::OneMinute,
                Some(other) => anyhow::bail!("unknown resolution {other:?} (raw, 10s or 1m)"),
            };
            let reader = history_db(&snap)?;
            let points = reader.history(&metric, window_start(now, *since_s) as i64, res)?;
            if points.is_empty() && !reader.metrics()?.contains(&metric) {
                anyhow::bail!("no history for metric {metric:?} (see `headroom history --list`)");
            }
            Ok(json!({
                "metric": metric,
                "resolution": if res == Resolution::TenSeconds { "10s" } else { "1m" },
                "points": points,
            }))
        }
        Request::Forecast { metric, .. } => forecast(&snap, metric.as_deref(), now),
        Request::Report { since_s, .. } => report(&snap, *since_s, now),
    }
}

/// Where a window reaching `since_s` back from `now` starts: never before the epoch, however
/// long the window asked for (`--since 1000000000y` means everything kept).
fn window_start(now: f64, since_s: f64) -> f64 {
    (now - since_s).max(0.0)
}

/// The agent's database, read-only, opened for one answer: the CLI sends one request per
/// connection, so a connection kept per client would be opened as often.
fn history_db(snap: &Snapshot) -> anyhow::Result<Reader> {
    Reader::open(&snap.db_path)
        .with_context(|| format!("opening the history database {}", snap.db_path.display()))
}

fn forecast(snap: &Snapshot, metric: Option<&str>, now: f64) -> anyhow::Result<Value> {
    let demand = snap.demand_metric.as_str();
    let lead = snap.decision.as_ref().map(|d| d.lead_s);
    match metric {
        None => {
            let recent: Vec<Point> = snap.recent.iter().copied().collect();
            Ok(json!({
                "metric": demand,
                "now": now,
                "value": recent.last().map(|p| p.mean),
                "lead_s": lead,
                "forecast": snap.forecast,
                "recent": recent,
            }))
        }
        Some(m) if m == demand => forecast(snap, None, now),
        Some(m) => {
            // Any other metric: the same model, refilled from its stored history.
            let mut refill =
                Refill::from_store(&history_db(snap)?, m, ForecastConfig::default(), now)?;
            let Some(latest) = refill.recent().back().map(|p| p.mean) else {
                anyhow::bail!("no history for metric {m:?} (see `headroom history --list`)");
            };
            let forecast = refill.forecaster().forecast(&REPORT_HORIZONS);
            let hour_ago = (now - 3600.0) as i64;
            let recent: Vec<&Point> = refill
                .recent()
                .iter()
                .filter(|p| p.ts >= hour_ago)
                .collect();
            Ok(json!({
                "metric": m,
                "now": now,
                "value": latest,
                "lead_s": lead,
                "forecast": forecast,
                "recent": recent,
            }))
        }
    }
}

/// The ledger since `since_s` ago: its hours (stored, and the one being filled) and their sum,
/// with the figures an operator reads.
fn report(snap: &Snapshot, since_s: f64, now: f64) -> anyhow::Result<Value> {
    let since = ledger::hour_start(window_start(now, since_s));
    let mut hours = history_db(snap)?.ledger(since)?;
    if let Some(open) = snap.ledger_open.filter(|h| h.start >= since) {
        match hours.iter_mut().find(|h| h.start == open.start) {
            Some(h) => h.add(&open),
            None => hours.push(open),
        }
    }
    let mut total = Hour::default();
    for h in &hours {
        total.add(h);
    }
    let policy = snap.decision.as_ref();
    Ok(json!({
        "since_s": since_s,
        // The ledger is kept by the hour: the first hour the window reaches into.
        "from": since,
        "demand_metric": snap.demand_metric,
        "capacity": snap.capacity,
        "lead_s": policy.map(|d| d.lead_s),
        "target_utilization": snap.target_utilization,
        "total": total.figures(),
        "hours": hours.iter().map(Hour::figures).collect::<Vec<_>>(),
    }))
}

fn state_json(st: &SourceState) -> (&'static str, Option<&str>) {
    match st {
        SourceState::Ok => ("ok", None),
        SourceState::Off => ("off", None),
        SourceState::Disabled { reason } => ("disabled", Some(reason.as_str())),
    }
}

fn sources_json(sources: &[(SourceKind, SourceState)]) -> Value {
    Value::Array(
        sources
            .iter()
            .map(|(k, st)| {
                let (state, reason) = state_json(st);
                json!({ "name": k.name(), "state": state, "reason": reason })
            })
            .collect(),
    )
}

/// The latest sample as JSON, by source.
pub fn sample_json(s: &Sample) -> Value {
    let c = &s.cpu;
    let p = &s.pressure;
    let mut out =
        json!({ "ts": s.wall_unix, "tick": s.tick, "late_ms": s.late.as_secs_f64() * 1e3 });
    let obj = out.as_object_mut().expect("json object");
    if s.has(SourceKind::Cpu) {
        obj.insert(
            "cpu".into(),
            json!({
                "cores": c.cores, "busy": c.busy, "busy_cores": c.busy_cores, "user": c.user,
                "nice": c.nice, "system": c.system, "iowait": c.iowait, "irq": c.irq,
                "softirq": c.softirq, "steal": c.steal, "procs_running": c.procs_running,
                "procs_blocked": c.procs_blocked, "load1": c.load1, "load5": c.load5, "load15": c.load15,
            }),
        );
    }
    if s.has(SourceKind::Memory) {
        obj.insert(
            "memory".into(),
            json!({ "total_bytes": s.memory.total_bytes, "available_bytes": s.memory.available_bytes }),
        );
    }
    if s.has(SourceKind::Pressure) {
        obj.insert(
            "pressure".into(),
            json!({
                "cpu_some_avg10": p.cpu_some_avg10, "cpu_full_avg10": p.cpu_full_avg10,
                "io_some_avg10": p.io_some_avg10, "io_full_avg10": p.io_full_avg10,
                "memory_some_avg10": p.memory_some_avg10, "memory_full_avg10": p.memory_full_avg10,
            }),
        );
    }
    if s.has(SourceKind::Disk) {
        let disks: Vec<Value> = s.disks[..s.disk_count as usize]
            .iter()
            .map(|d| {
                json!({
                    "name": d.name.as_str(), "reads_per_s": d.reads_per_s, "writes_per_s": d.writes_per_s,
                    "read_bytes_per_s": d.read_bytes_per_s, "write_bytes_per_s": d.write_bytes_per_s,
                    "busy": d.busy, "queue_depth": d.queue_depth,
                })
            })
            .collect();
        obj.insert("disks".into(), Value::Array(disks));
    }
    if s.has(SourceKind::Network) {
        let nets: Vec<Value> = s.nets[..s.net_count as usize]
            .iter()
            .map(|n| {
                json!({
                    "name": n.name.as_str(), "rx_bytes_per_s": n.rx_bytes_per_s,
                    "tx_bytes_per_s": n.tx_bytes_per_s, "rx_packets_per_s": n.rx_packets_per_s,
                    "tx_packets_per_s": n.tx_packets_per_s, "errors_per_s": n.errors_per_s,
                    "drops_per_s": n.drops_per_s,
                })
            })
            .collect();
        obj.insert("nets".into(), Value::Array(nets));
    }
    if s.has(SourceKind::AcceptQueue) {
        let l: Vec<Value> = s.listeners[..s.listener_count as usize]
            .iter()
            .map(|q| json!({ "port": q.port, "ipv6": q.ipv6, "depth": q.depth, "backlog": q.backlog }))
            .collect();
        obj.insert("listeners".into(), Value::Array(l));
        obj.insert("listeners_total".into(), json!(s.accept_totals.listeners));
    }
    if s.has(SourceKind::Netstat) {
        obj.insert("listen_overflows".into(), json!(s.listen_overflows));
        obj.insert("listen_drops".into(), json!(s.listen_drops));
    }
    if s.has(SourceKind::AppMetrics) {
        let a: Vec<Value> = s.app[..s.app_count as usize]
            .iter()
            .map(|g| json!({ "name": g.name.as_str(), "value": g.value }))
            .collect();
        obj.insert("app".into(), Value::Array(a));
        obj.insert(
            "app_age_s".into(),
            json!(s.app_age.map(|d| d.as_secs_f64())),
        );
    }
    out
}

fn status(snap: &Snapshot, now: f64) -> anyhow::Result<Value> {
    let outbox = Reader::open(&snap.db_path)
        .and_then(|r| r.outbox_stats())
        .ok();
    Ok(json!({
        "version": env!("CARGO_PKG_VERSION"),
        "pid": std::process::id(),
        "started_at": snap.started_at,
        "uptime_s": (now - snap.started_at).max(0.0),
        "host": snap.host,
        "group": snap.group,
        "interval_s": snap.interval_s,
        "decision_interval_s": snap.decision_interval_s,
        "demand_metric": snap.demand_metric,
        "capacity": snap.capacity,
        "database": snap.db_path,
        "sources": sources_json(&snap.sources),
        "latest": snap.sample.as_ref().map(sample_json),
        "sampler": { "ticks": snap.ticks, "ring_dropped": snap.ring_dropped, "late_ticks": snap.late_ticks },
        "decision": snap.decision,
        "learned": snap.learned,
        "health": snap.health,
        "committed": snap.committed,
        "store_error": snap.store_error,
        "store_backlog": snap.store_backlog,
        "outbox": outbox,
        "replicas": snap.replicas,
    }))
}
