//! Semantic checks over a well-typed configuration: ranges, and the keys that depend on each
//! other. Every problem is collected (none stops the others from being found), each under the
//! dotted key an operator would edit; a rule shared with the coordinator or `simulate` comes
//! from the crate that owns it (`headroom_model::policy::*_problem`), so the three cannot drift.

use std::time::Duration;

use headroom_collector::sample::{MAX_APP_GAUGES, SHORT_NAME_MAX, Sample};
use headroom_common::config::Problem;
use headroom_common::duration::format as fmt_dur;
use headroom_common::id::{check_group, check_id};
use headroom_common::signal::MAX_FIGURE;
use headroom_model::policy::{
    decision_interval_problem, scale_in_fraction_problem, scale_in_step_problem,
    shortfall_budget_problem, spend_ceiling_problem, target_utilization_problem, warmup_problem,
};

use super::{
    AgentSection, Config, CoordinatorSection, HealthSection, PolicySection, SourcesSection,
};

/// The problems found so far.
#[derive(Default)]
struct Problems(Vec<Problem>);

impl Problems {
    fn bad(&mut self, key: &str, reason: impl Into<String>) {
        self.0.push(Problem::new(key, reason));
    }
}

impl Config {
    /// Semantic checks over a well-typed configuration.
    pub fn problems(&self) -> Vec<Problem> {
        let mut out = Problems::default();
        agent(&self.agent, &mut out);
        sources(&self.sources, &mut out);
        store_and_model(self, &mut out);
        policy(&self.policy, &mut out);
        health(&self.health, &mut out);
        coordinator(&self.coordinator, &self.sources, &mut out);
        if !self.metrics.listen.is_empty()
            && self.metrics.listen.parse::<std::net::SocketAddr>().is_err()
        {
            out.bad(
                "metrics.listen",
                format!(
                    "{:?} is not an address like 127.0.0.1:9473",
                    self.metrics.listen
                ),
            );
        }
        out.0
    }
}

fn agent(a: &AgentSection, out: &mut Problems) {
    if a.interval < Duration::from_millis(100) || a.interval > Duration::from_secs(60) {
        out.bad(
            "agent.interval",
            format!("{} is outside 100ms..=60s", fmt_dur(a.interval)),
        );
    }
    if a.decision_interval < a.interval {
        out.bad(
            "agent.decision_interval",
            format!(
                "{} is shorter than agent.interval ({})",
                fmt_dur(a.decision_interval),
                fmt_dur(a.interval)
            ),
        );
    }
    if let Some(why) = decision_interval_problem(a.decision_interval) {
        out.bad(
            "agent.decision_interval",
            format!("{} {why}", fmt_dur(a.decision_interval)),
        );
    }
    if a.group.trim().is_empty() {
        out.bad("agent.group", "must not be empty");
    } else if let Err(why) = check_group(&a.group) {
        out.bad("agent.group", why);
    }
    if let Err(e) = headroom_common::logging::parse_filter(&a.log) {
        out.bad("agent.log", e);
    }
    if !a.host_id.is_empty()
        && let Err(why) = check_id(&a.host_id)
    {
        out.bad("agent.host_id", why);
    }
    // sockaddr_un holds 108 bytes, the terminating NUL included.
    if a.socket.len() > SOCKET_PATH_MAX {
        out.bad(
            "agent.socket",
            format!(
                "is {} bytes long, more than the {SOCKET_PATH_MAX} a Unix socket's path holds",
                a.socket.len()
            ),
        );
    }
}

/// The longest path a Unix socket can be bound at, bytes.
const SOCKET_PATH_MAX: usize = 107;

fn sources(s: &SourcesSection, out: &mut Problems) {
    // Every slot of the ring ends up resident (a sample is about 4 KiB).
    if s.ring_capacity < 2 || s.ring_capacity > 4096 {
        out.bad(
            "sources.ring_capacity",
            format!("{} is outside 2..=4096", s.ring_capacity),
        );
    }
    let app = &s.app;
    if app.timeout < Duration::from_millis(10) {
        out.bad(
            "sources.app.timeout",
            format!("{} is shorter than 10ms", fmt_dur(app.timeout)),
        );
    }
    if !app.endpoint.is_empty() {
        // The collector's own rule: the agent reads the gauges of this host only.
        if !headroom_collector::is_loopback_http(&app.endpoint) {
            out.bad(
                "sources.app.endpoint",
                format!(
                    "{:?} must be a plain http:// URL on this host (127.0.0.1, [::1] or \
                     localhost, no user info)",
                    app.endpoint
                ),
            );
        }
        if app.gauges.is_empty() {
            out.bad(
                "sources.app.gauges",
                "an endpoint is set but no gauge is named",
            );
        }
    }
    for g in &app.gauges {
        if g.len() > SHORT_NAME_MAX {
            out.bad(
                "sources.app.gauges",
                format!(
                    "{g:?} is longer than {SHORT_NAME_MAX} bytes (a sample holds names that long)"
                ),
            );
        }
    }
    if app.gauges.len() > MAX_APP_GAUGES {
        out.bad(
            "sources.app.gauges",
            format!("at most {MAX_APP_GAUGES} gauges"),
        );
    }
}

/// The store's retention and the demand model, which reads its history back from the store.
/// Bounds of the writer's page cache, KiB: below, every commit rereads its pages; above, an
/// agent meant to stay small would hold a gigabyte.
const MIN_CACHE_KIB: u32 = 16;
const MAX_CACHE_KIB: u32 = 1 << 20;

fn store_and_model(config: &Config, out: &mut Problems) {
    let s = &config.store;
    if s.retention_10s < Duration::from_secs(600) {
        out.bad("store.retention_10s", "must be at least 10m");
    }
    if s.retention_1m < s.retention_10s {
        out.bad("store.retention_1m", "must be at least store.retention_10s");
    }
    // Shorter, a decision would be gone before `headroom decisions` could show it.
    if s.retention_events < Duration::from_secs(600) {
        out.bad("store.retention_events", "must be at least 10m");
    }
    if !(MIN_CACHE_KIB..=MAX_CACHE_KIB).contains(&s.cache_kib) {
        out.bad(
            "store.cache_kib",
            format!(
                "{} is outside {MIN_CACHE_KIB}..={MAX_CACHE_KIB}",
                s.cache_kib
            ),
        );
    }
    let m = &config.model;
    if m.demand.trim().is_empty() {
        out.bad("model.demand", "must name a metric, e.g. cpu.busy_cores");
    } else if !Sample::names_a_metric(&m.demand) {
        // A name no sample holds would leave the agent healthy and never deciding.
        let renamed = m
            .demand
            .strip_suffix("_stall_us")
            .filter(|_| m.demand.starts_with("psi."))
            .map(|stem| format!(" (renamed {stem}_stall_us_per_s: per second, not per read)"))
            .unwrap_or_default();
        out.bad(
            "model.demand",
            format!(
                "{:?} is no metric headroom samples{renamed} (`headroom history --list` shows \
                 them), e.g. cpu.busy_cores, accept_queue.depth, app.GAUGE",
                m.demand
            ),
        );
    } else if m.capacity == 0.0 && m.demand != "cpu.busy_cores" {
        out.bad(
            "model.capacity",
            format!("must be set (> 0) for demand {:?}", m.demand),
        );
    }
    if let Some(gauge) = m.demand.strip_prefix("app.")
        && !config.sources.app.gauges.iter().any(|g| g == gauge)
    {
        out.bad(
            "model.demand",
            format!("{gauge:?} is not one of sources.app.gauges"),
        );
    }
    if m.history < Duration::from_secs(3600) {
        out.bad("model.history", "must be at least 1h");
    } else if m.history > s.retention_1m {
        out.bad(
            "model.history",
            format!(
                "{} is longer than store.retention_1m ({}): history that is not kept cannot be \
                 read back",
                fmt_dur(m.history),
                fmt_dur(s.retention_1m)
            ),
        );
    }
    if !(m.capacity >= 0.0 && m.capacity <= MAX_FIGURE) {
        out.bad(
            "model.capacity",
            format!(
                "{} must be a number in 0..=1e15 (a coordinator refuses larger figures)",
                m.capacity
            ),
        );
    }
}

fn policy(p: &PolicySection, out: &mut Problems) {
    if let Some(why) = target_utilization_problem(p.target_utilization) {
        out.bad("policy.target_utilization", why);
    }
    if let Some(why) = shortfall_budget_problem(p.shortfall_budget) {
        out.bad("policy.shortfall_budget", why);
    }
    if let Some(why) = spend_ceiling_problem(p.spend_ceiling) {
        out.bad("policy.spend_ceiling", why);
    }
    if let Some(why) = warmup_problem(p.warmup) {
        out.bad("policy.warmup", format!("{} {why}", fmt_dur(p.warmup)));
    }
    if let Some(why) = scale_in_step_problem(p.max_scale_in_step) {
        out.bad("policy.max_scale_in_step", why);
    }
    if let Some(why) = scale_in_fraction_problem(p.max_scale_in_fraction) {
        out.bad("policy.max_scale_in_fraction", why);
    }
}

fn health(h: &HealthSection, out: &mut Problems) {
    for (key, v) in [
        (
            "health.memory_available_degraded",
            h.memory_available_degraded,
        ),
        (
            "health.memory_available_unhealthy",
            h.memory_available_unhealthy,
        ),
        ("health.disk_used_degraded", h.disk_used_degraded),
    ] {
        if !(0.0..=1.0).contains(&v) {
            out.bad(key, format!("{v} is outside 0..=1"));
        }
    }
    for (key, v) in [
        ("health.psi_full_degraded", h.psi_full_degraded),
        ("health.psi_full_unhealthy", h.psi_full_unhealthy),
    ] {
        // A share of time, percent: below 0 the host would always be degraded.
        if !(0.0..=100.0).contains(&v) {
            out.bad(key, format!("{v} is outside 0..=100 (percent)"));
        }
    }
    if h.undelivered_degraded < Duration::from_secs(1) {
        out.bad("health.undelivered_degraded", "must be at least 1s");
    }
    if h.psi_full_unhealthy < h.psi_full_degraded {
        out.bad(
            "health.psi_full_unhealthy",
            "must be at least health.psi_full_degraded",
        );
    }
}

fn coordinator(c: &CoordinatorSection, sources: &SourcesSection, out: &mut Problems) {
    for (i, url) in c.urls.iter().enumerate() {
        if c.urls[..i].contains(url) {
            out.bad(
                "coordinator.urls",
                format!("{url:?} is listed twice: each replica has one place in the outbox"),
            );
        }
        if let Some(why) = headroom_common::url::problem(url, false) {
            out.bad("coordinator.urls", why);
        }
    }
    if !c.urls.is_empty() && c.token_file.is_empty() {
        out.bad(
            "coordinator.token_file",
            "required when coordinator.urls is set",
        );
    }
    // A bound this tight would drop undelivered signals during a short outage.
    if c.outbox_max_age < Duration::from_secs(600) {
        out.bad(
            "coordinator.outbox_max_age",
            format!("{} is shorter than 10m", fmt_dur(c.outbox_max_age)),
        );
    }
    if c.outbox_max_rows < 1000 {
        out.bad(
            "coordinator.outbox_max_rows",
            format!("{} is fewer than 1000", c.outbox_max_rows),
        );
    }
    if c.timeout < Duration::from_millis(100) {
        out.bad(
            "coordinator.timeout",
            format!("{} is shorter than 100ms", fmt_dur(c.timeout)),
        );
    }
    if c.max_send_rate == 0 {
        out.bad("coordinator.max_send_rate", "must be at least 1");
    }
    match c.busy.strip_prefix("app.") {
        Some(gauge) if !sources.app.gauges.iter().any(|g| g == gauge) => out.bad(
            "coordinator.busy",
            format!("{gauge:?} is not one of sources.app.gauges"),
        ),
        None if !matches!(c.busy.as_str(), "" | "connections") => out.bad(
            "coordinator.busy",
            format!(
                "{:?} is none of \"connections\", \"app.GAUGE\" or \"\" (off)",
                c.busy
            ),
        ),
        _ => {}
    }
    if !c.busy_ports.is_empty() && c.busy != "connections" {
        out.bad(
            "coordinator.busy_ports",
            "only counts with busy = \"connections\"",
        );
    }
    if c.busy_ports.contains(&0) {
        out.bad("coordinator.busy_ports", "0 is not a port");
    }
}
