//! The agent's Prometheus endpoint (`/metrics`), off unless `metrics.listen` is set.

use std::fmt::Write as _;
use std::sync::Arc;

use axum::Router;
use axum::extract::State;
use axum::http::header;
use axum::response::IntoResponse;
use axum::routing::get;
use headroom_collector::SourceState;

use crate::health::HealthState;
use crate::pipeline::Shared;

/// Serves `/metrics` until the task is dropped.
pub async fn serve(listener: tokio::net::TcpListener, shared: Arc<Shared>) {
    let app = Router::new()
        .route("/metrics", get(handler))
        .with_state(shared);
    if let Err(e) = axum::serve(listener, app).await {
        tracing::error!(error = %e, "metrics endpoint stopped");
    }
}

async fn handler(State(shared): State<Arc<Shared>>) -> impl IntoResponse {
    (
        [(header::CONTENT_TYPE, "text/plain; version=0.0.4")],
        render(&shared),
    )
}

/// Renders the Prometheus text exposition of the snapshot.
pub fn render(shared: &Shared) -> String {
    let s = shared.lock();
    let mut out = String::with_capacity(4096);
    let mut m = |name: &str, kind: &str, help: &str, lines: &[(String, f64)]| {
        let _ = writeln!(
            out,
            "# HELP headroom_{name} {help}\n# TYPE headroom_{name} {kind}"
        );
        for (labels, v) in lines {
            let _ = writeln!(out, "headroom_{name}{labels} {v}");
        }
    };
    m(
        "samples_total",
        "counter",
        "Sampler ticks.",
        &[(String::new(), s.ticks as f64)],
    );
    m(
        "ring_dropped_total",
        "counter",
        "Samples dropped because the ring was full.",
        &[(String::new(), s.ring_dropped as f64)],
    );
    m(
        "late_ticks_total",
        "counter",
        "Sampler ticks that started late.",
        &[(String::new(), s.late_ticks as f64)],
    );
    // A source not configured (no app endpoint) has no series: 0 is a configured source that
    // fails, which an alert on `== 0` is for.
    let sources: Vec<(String, f64)> = s
        .sources
        .iter()
        .filter(|(_, st)| !matches!(st, SourceState::Off))
        .map(|(k, st)| {
            (
                format!("{{source=\"{}\"}}", k.name()),
                if matches!(st, SourceState::Ok) {
                    1.0
                } else {
                    0.0
                },
            )
        })
        .collect();
    m(
        "source_up",
        "gauge",
        "1 when a source is delivering values, 0 when it failed (a source turned off has none).",
        &sources,
    );
    let health: Vec<(String, f64)> = [
        HealthState::Healthy,
        HealthState::Degraded,
        HealthState::Unhealthy,
    ]
    .iter()
    .map(|h| {
        (
            format!("{{state=\"{}\"}}", h.name()),
            if s.health.state == *h { 1.0 } else { 0.0 },
        )
    })
    .collect();
    m(
        "health",
        "gauge",
        "Current health state (1 for the state in force).",
        &health,
    );
    if let Some(last) = s.recent.back() {
        m(
            "demand",
            "gauge",
            "Latest 10 s mean of the demand signal.",
            &[(
                format!("{{metric=\"{}\"}}", label_value(&s.demand_metric)),
                last.mean,
            )],
        );
    }
    m(
        "capacity",
        "gauge",
        "This host's capacity in the demand unit.",
        &[(String::new(), s.capacity)],
    );
    if let Some(f) = &s.forecast {
        let p50: Vec<(String, f64)> = f
            .points
            .iter()
            .map(|p| (format!("{{horizon_seconds=\"{}\"}}", p.horizon_s), p.p50))
            .collect();
        let p90: Vec<(String, f64)> = f
            .points
            .iter()
            .map(|p| (format!("{{horizon_seconds=\"{}\"}}", p.horizon_s), p.p90))
            .collect();
        m(
            "forecast_p50",
            "gauge",
            "Forecast median of demand per horizon.",
            &p50,
        );
        m(
            "forecast_p90",
            "gauge",
            "Forecast 90th percentile of demand per horizon.",
            &p90,
        );
    }
    if let Some(d) = &s.decision {
        m(
            "desired_instances",
            "gauge",
            "Instances this host's load needs at the lead time.",
            &[(String::new(), d.desired as f64)],
        );
    }
    if let Some(l) = &s.learned {
        m(
            "policy_price_factor",
            "gauge",
            "What a short sample is priced at over the shortfall budget's own (above 1 while \
             short more often than the budget).",
            &[(String::new(), l.price_factor)],
        );
        m(
            "policy_spend_ratio",
            "gauge",
            "The plan's recent spend per instance target tracking would run (past the ceiling, \
             target tracking decides).",
            &[(String::new(), l.spend_ratio)],
        );
        m(
            "policy_spend_ceiling",
            "gauge",
            "The spend ratio past which target tracking decides.",
            &[(String::new(), l.spend_ceiling)],
        );
    }
    if let Some(sample) = &s.sample {
        let q: Vec<(String, f64)> = sample.listeners[..sample.listener_count as usize]
            .iter()
            .map(|l| {
                (
                    format!(
                        "{{port=\"{}\",family=\"{}\"}}",
                        l.port,
                        if l.ipv6 { "ipv6" } else { "ipv4" }
                    ),
                    l.depth as f64,
                )
            })
            .collect();
        m(
            "accept_queue_depth",
            "gauge",
            "Connections waiting to be accepted per listening socket.",
            &q,
        );
    }
    // The ledger since this agent started, as counters: cost and shortfall ratios, WAPE and
    // coverage are ratios of their rates over any window.
    let l = &s.ledger_total;
    let both = |plan: f64, shadow: f64| {
        [
            ("{policy=\"plan\"}".to_string(), plan),
            ("{policy=\"target_tracking\"}".to_string(), shadow),
        ]
    };
    let one = |v: f64| [(String::new(), v)];
    m(
        "ledger_observed_seconds_total",
        "counter",
        "Seconds the ledger judged.",
        &one(l.observed_s),
    );
    m(
        "ledger_instance_seconds_total",
        "counter",
        "Instance-seconds asked for: the plan, and target tracking on the same demand.",
        &both(l.plan_instance_s, l.shadow_instance_s),
    );
    m(
        "ledger_short_seconds_total",
        "counter",
        "Seconds demand exceeded the instances ready (asked for at least a warm-up before).",
        &both(l.plan_short_s, l.shadow_short_s),
    );
    m(
        "ledger_forecasts_scored_total",
        "counter",
        "Forecasts at the lead scored against the demand that came.",
        &one(l.scored as f64),
    );
    m(
        "ledger_forecast_zero_actuals_total",
        "counter",
        "Scored forecasts whose actual demand was zero (left out of MAPE).",
        &one(l.zero_actuals as f64),
    );
    m(
        "ledger_forecast_abs_error_total",
        "counter",
        "Summed |actual - P50| of scored forecasts (WAPE = its rate over actual_total's).",
        &one(l.abs_error),
    );
    m(
        "ledger_forecast_actual_total",
        "counter",
        "Summed actual demand of scored forecasts.",
        &one(l.actual),
    );
    m(
        "ledger_forecast_pct_error_total",
        "counter",
        "Summed |actual - P50| / actual over scored forecasts with actual > 0 (MAPE's numerator).",
        &one(l.pct_error),
    );
    m(
        "ledger_p90_covered_total",
        "counter",
        "Scored forecasts whose actual demand was at most the P90.",
        &one(l.p90_covered as f64),
    );
    m(
        "committed_seq",
        "gauge",
        "Newest decision committed to the store.",
        &[(String::new(), s.committed.seq.unwrap_or(0) as f64)],
    );
    m(
        "store_backlog_batches",
        "gauge",
        "Batches waiting for the store.",
        &[(String::new(), s.store_backlog as f64)],
    );
    m(
        "store_batches_dropped_total",
        "counter",
        "Batches dropped unwritten, the oldest first, while the store's backlog was full.",
        &[(String::new(), s.store_lost as f64)],
    );
    let refused: Vec<(String, f64)> = s
        .replicas
        .iter()
        .map(|l| (replica_label(&l.url), l.refused as f64))
        .collect();
    m(
        "signals_refused_total",
        "counter",
        "Signals a coordinator replica refused for good (kept in the outbox for audit, never applied).",
        &refused,
    );
    let now = headroom_common::clock::unix_now();
    let waiting: Vec<(String, f64)> = s
        .replicas
        .iter()
        .map(|l| {
            (
                replica_label(&l.url),
                l.waiting_since.map_or(0.0, |since| (now - since).max(0.0)),
            )
        })
        .collect();
    m(
        "signals_waiting_seconds",
        "gauge",
        "How long a coordinator replica has left signals waiting in the outbox (0 while it takes them).",
        &waiting,
    );
    let dropped: Vec<(String, f64)> = s
        .signals_dropped
        .iter()
        .map(|(url, n)| (replica_label(url), *n as f64))
        .collect();
    m(
        "signals_dropped_total",
        "counter",
        "Undelivered signals the outbox bounds ([coordinator] outbox_max_age, outbox_max_rows) dropped before this replica had them.",
        &dropped,
    );
    drop(s);
    out
}

/// The label set naming one coordinator replica.
fn replica_label(url: &str) -> String {
    format!("{{replica=\"{}\"}}", label_value(url))
}

/// `v` as a label value of the text exposition: backslash, double quote and newline escaped
/// (a demand such as `app.q{pool="a"}` would otherwise break the whole scrape).
fn label_value(v: &str) -> String {
    let mut out = String::with_capacity(v.len());
    for c in v.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '"' => out.push_str("\\\""),
            '\n' => out.push_str("\\n"),
            c => out.push(c),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    /// An agent's snapshot as it starts.
    fn starting() -> Arc<Shared> {
        Shared::new(crate::pipeline::Snapshot::starting(
            &crate::config::Config::default(),
            "h".into(),
            1.0,
            crate::store::Committed::default(),
            "/nonexistent".into(),
            0.0,
        ))
    }

    #[test]
    fn signals_waiting_and_dropped_are_per_replica() {
        let shared = starting();
        let now = headroom_common::clock::unix_now();
        shared.lock().replicas = vec![
            crate::pipeline::ReplicaLink {
                url: "http://a:7180".into(),
                waiting_since: None,
                error: None,
                refused: 0,
            },
            crate::pipeline::ReplicaLink {
                url: "http://b:7180".into(),
                waiting_since: Some(now - 90.0),
                error: Some("HTTP 503".into()),
                refused: 3,
            },
        ];
        shared.lock().signals_dropped = vec![("http://b:7180".into(), 12)];
        let text = render(&shared);
        assert!(text.contains("headroom_signals_waiting_seconds{replica=\"http://a:7180\"} 0\n"));
        assert!(
            text.contains("headroom_signals_dropped_total{replica=\"http://b:7180\"} 12\n"),
            "{text}"
        );
        assert!(
            text.contains("headroom_signals_refused_total{replica=\"http://b:7180\"} 3\n"),
            "{text}"
        );
        assert!(
            text.contains("headroom_store_batches_dropped_total 0\n"),
            "{text}"
        );
        let b = text
            .lines()
            .find_map(|l| {
                l.strip_prefix("headroom_signals_waiting_seconds{replica=\"http://b:7180\"} ")
            })
            .and_then(|v| v.parse::<f64>().ok())
            .unwrap();
        assert!((90.0..100.0).contains(&b), "{text}");
    }

    #[test]
    fn what_the_policy_learned_is_exported_once_it_decided() {
        let shared = starting();
        assert!(!render(&shared).contains("headroom_policy_"));
        shared.lock().learned = Some(headroom_model::Learned {
            price_factor: 2.5,
            spend_ratio: 1.25,
            spend_ceiling: 1.4,
            demand_unit: None,
        });
        let text = render(&shared);
        for line in [
            "headroom_policy_price_factor 2.5\n",
            "headroom_policy_spend_ratio 1.25\n",
            "headroom_policy_spend_ceiling 1.4\n",
        ] {
            assert!(text.contains(line), "{line} not in\n{text}");
        }
    }

    /// A source turned off is not down: no series, so `source_up == 0` alerts on failures only.
    #[test]
    fn a_source_turned_off_has_no_up_series() {
        use headroom_collector::{SourceKind, SourceState};
        let shared = starting();
        shared.lock().sources = vec![
            (SourceKind::Cpu, SourceState::Ok),
            (
                SourceKind::Disk,
                SourceState::Disabled {
                    reason: "diskstats: gone".into(),
                },
            ),
            (SourceKind::AppMetrics, SourceState::Off),
        ];
        let text = render(&shared);
        assert!(
            text.contains("headroom_source_up{source=\"cpu\"} 1\n"),
            "{text}"
        );
        assert!(
            text.contains("headroom_source_up{source=\"disk\"} 0\n"),
            "{text}"
        );
        assert!(!text.contains("source=\"app_metrics\""), "{text}");
    }

    #[test]
    fn label_values_are_escaped() {
        assert_eq!(label_value("cpu.busy_cores"), "cpu.busy_cores");
        assert_eq!(
            label_value("app.q{pool=\"a\\b\"}\n"),
            "app.q{pool=\\\"a\\\\b\\\"}\\n"
        );
    }
}
