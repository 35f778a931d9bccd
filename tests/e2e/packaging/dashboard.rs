//! The Grafana dashboard queries metrics that exist.

use super::*;

fn dashboard_metrics() -> Vec<String> {
    let text = std::fs::read_to_string(packaging().join("grafana-dashboard.json")).unwrap();
    let dash: serde_json::Value = serde_json::from_str(&text).expect("dashboard is JSON");
    let panels = dash["panels"].as_array().expect("panels");
    let mut ids = std::collections::HashSet::new();
    let mut names = Vec::new();
    for p in panels {
        assert!(
            ids.insert(p["id"].as_u64().expect("panel id")),
            "duplicate panel id"
        );
        for t in p["targets"].as_array().into_iter().flatten() {
            let expr = t["expr"].as_str().expect("expr");
            let mut rest = expr;
            while let Some(i) = rest.find("headroom_") {
                let tail = &rest[i..];
                let end = tail
                    .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
                    .unwrap_or(tail.len());
                names.push(tail[..end].to_string());
                rest = &tail[end..];
            }
        }
    }
    names.sort();
    names.dedup();
    names
}

/// The agent's families every scrape carries (forecast, decision and demand appear later).
const ALWAYS: &[&str] = &[
    "samples_total",
    "ring_dropped_total",
    "late_ticks_total",
    "source_up",
    "health",
    "capacity",
    "committed_seq",
    "store_backlog_batches",
    "signals_dropped_total",
    "ledger_observed_seconds_total",
    "ledger_instance_seconds_total",
    "ledger_short_seconds_total",
    "ledger_forecasts_scored_total",
    "ledger_forecast_zero_actuals_total",
    "ledger_forecast_abs_error_total",
    "ledger_forecast_actual_total",
    "ledger_forecast_pct_error_total",
    "ledger_p90_covered_total",
];

#[test]
fn dashboard_queries_metrics_the_agent_and_coordinator_export() {
    let names = dashboard_metrics();
    assert!(names.len() >= 20, "{names:?}");
    let agent_src = std::fs::read_to_string(repo().join("agent/src/metrics.rs")).unwrap();
    let coord_src = std::fs::read_to_string(repo().join("coordinator/src/metrics.rs")).unwrap();
    assert!(
        coord_src.contains("headroom_coordinator"),
        "the coordinator's metric prefix"
    );
    for name in &names {
        if let Some(stem) = name.strip_prefix("headroom_coordinator_") {
            let stem = ["_total", "_bucket", "_sum", "_count"]
                .iter()
                .find_map(|s| stem.strip_suffix(s))
                .unwrap_or(stem);
            assert!(
                coord_src.contains(&format!("\"{stem}\"")),
                "dashboard queries {name}, which the coordinator does not export"
            );
        } else {
            let stem = name.strip_prefix("headroom_").unwrap();
            assert!(
                agent_src.contains(&format!("\"{stem}\"")),
                "dashboard queries {name}, which the agent does not export"
            );
        }
    }

    // Live: the agent's loopback endpoint serves the families the dashboard relies on.
    let port = free_port();
    let mut agent = Agent::new(&format!("[metrics]\nlisten = \"127.0.0.1:{port}\"\n"));
    agent.spawn();
    let deadline = Instant::now() + Duration::from_secs(20);
    let body = loop {
        use std::io::Read;
        if let Ok(mut s) = std::net::TcpStream::connect(("127.0.0.1", port)) {
            s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
            let _ = s.write_all(
                b"GET /metrics HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n",
            );
            let mut body = String::new();
            let _ = s.read_to_string(&mut body);
            if body.contains("headroom_samples_total") && body.contains("headroom_source_up{") {
                break body;
            }
        }
        assert!(Instant::now() < deadline, "no /metrics on 127.0.0.1:{port}");
        std::thread::sleep(Duration::from_millis(200));
    };
    for family in ALWAYS {
        assert!(
            body.contains(&format!("# TYPE headroom_{family} ")),
            "/metrics lacks headroom_{family}:\n{body}"
        );
        assert!(
            names.contains(&format!("headroom_{family}")),
            "dashboard never shows {family}"
        );
    }
}
