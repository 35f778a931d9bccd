//! `headroom groups`: asks a coordinator for its groups and prints them as a table or JSON.

use std::fmt::Write as _;
use std::time::Duration;

use anyhow::Context;

use crate::view::{GroupView, GroupsView, LedgerView};
use headroom_common::cli::GroupsArgs;
use headroom_common::exit::{CONFIG_INVALID, Exit, UNAVAILABLE};
use headroom_common::signal::ErrorAnswer;
use headroom_common::stdout;
use headroom_common::token::Token;
use headroom_model::ledger::Figures;

use crate::lease::LeaseView;
use crate::view::WarmupView;
use crate::warmup::{InstanceWarmup, NEEDED};
use headroom_model::schedule::span;

/// Longest accepted answer, bytes.
const MAX_ANSWER: u64 = 16 * 1024 * 1024;

/// Runs `headroom groups`.
pub fn groups(args: &GroupsArgs) -> anyhow::Result<()> {
    let Some(token_file) = &args.token_file else {
        return Err(Exit::new(
            CONFIG_INVALID,
            "groups: --token-file (or HEADROOM_TOKEN_FILE) is needed",
        ));
    };
    let token = Token::read(token_file).map_err(Exit::config)?;
    let base = args.url.trim_end_matches('/');
    if let Some(why) = headroom_common::url::problem(&args.url, false) {
        return Err(Exit::new(CONFIG_INVALID, format!("groups: --url {why}")));
    }
    let url = match &args.group {
        Some(g) => format!("{base}/v1/groups/{g}"),
        None => format!("{base}/v1/groups"),
    };
    // No redirect followed, as the agent's sender follows none: the answer is the
    // coordinator's own, never a page it was sent on to (over plain HTTP, say).
    let mut config = ureq::Agent::config_builder()
        .timeout_global(Some(Duration::from_secs(10)))
        .http_status_as_error(false)
        .max_redirects(0);
    if let Some(ca) = &args.ca_cert {
        let tls = headroom_common::tls::trusting(ca)
            .map_err(|e| Exit::new(CONFIG_INVALID, e.to_string()))?;
        config = config.tls_config(tls);
    }
    let agent: ureq::Agent = config.build().into();
    let mut resp = agent
        .get(&url)
        .header("Authorization", &format!("Bearer {}", token.as_str()))
        .call()
        .map_err(|e| {
            Exit::new(
                UNAVAILABLE,
                format!("cannot reach coordinator at {base}: {e}"),
            )
        })?;
    let status = resp.status().as_u16();
    let body = resp
        .body_mut()
        .with_config()
        .limit(MAX_ANSWER)
        .read_to_string()
        .with_context(|| format!("reading the answer of {url}"))?;
    if status != 200 {
        let msg = ErrorAnswer::reason_in(&body).unwrap_or(body);
        anyhow::bail!("{url}: HTTP {status}: {msg}");
    }
    let groups = match &args.group {
        Some(_) => vec![serde_json::from_str::<GroupView>(&body).context("decoding the group")?],
        None => {
            serde_json::from_str::<GroupsView>(&body)
                .context("decoding the groups")?
                .groups
        }
    };
    if args.json {
        let text = match &args.group {
            Some(_) => serde_json::to_string_pretty(&groups[0])?,
            None => serde_json::to_string_pretty(&GroupsView { groups })?,
        };
        stdout::print(&format!("{text}\n"))
    } else {
        stdout::print(&render(&groups))
    }
}

/// A group's ledger in three lines: the last day, then the hour being filled.
fn ledger_line(name: &str, l: &LedgerView) -> String {
    let pct = |v: Option<f64>| v.map_or_else(|| "-".into(), |v| format!("{:.1}%", 100.0 * v));
    let one = |f: &Figures| {
        let short = |s: f64| {
            if f.observed_s > 0.0 {
                format!("{:.2}%", 100.0 * s / f.observed_s)
            } else {
                "-".into()
            }
        };
        format!(
            "plan {:.2} vs target tracking {:.2} instance-hours ({}), short {} vs {}; \
             forecast at the lead: MAPE {}, WAPE {}, P90 coverage {} ({} scored)",
            f.plan_instance_hours,
            f.shadow_instance_hours,
            f.cost_ratio
                .map_or_else(|| "-".into(), |r| format!("{r:.2}x")),
            short(f.plan_short_s),
            short(f.shadow_short_s),
            pct(f.mape),
            pct(f.wape),
            pct(f.p90_coverage),
            f.forecasts_scored
        )
    };
    let mut out = format!("{name} ledger, last 24h: {}", one(&l.last_day));
    if let Some(h) = &l.this_hour {
        let _ = write!(out, "\n  this hour: {}", one(h));
    }
    out
}

fn opt(v: Option<f64>) -> String {
    v.map_or_else(|| "-".into(), |v| format!("{v:.2}"))
}

/// Who actuates the group, as this replica sees the election.
fn lease_line(name: &str, l: &LeaseView) -> String {
    let age = l
        .lease_age_s
        .map_or_else(|| "-".into(), |a| format!("{a:.0}s"));
    format!(
        "{name} lease: leader {} (this replica: {}{}), lease renewed {age} ago of {:.0}s, replicas seen: {}",
        l.leader.as_deref().unwrap_or("none"),
        l.replica,
        if l.leader_here {
            ", actuating".to_string()
        } else {
            format!(", not actuating: {}", l.why.as_deref().unwrap_or("standby"))
        },
        l.ttl_s,
        if l.replicas.is_empty() {
            "-".into()
        } else {
            l.replicas.join(", ")
        },
    )
}

/// The warm-up the group plans with and what it rests on.
fn warmup_line(name: &str, w: &WarmupView) -> String {
    let basis = match (w.mode, w.launches) {
        (InstanceWarmup::Configured, _) => "configured".to_string(),
        (InstanceWarmup::Measured, 0) => format!(
            "configured, until {NEEDED} launches are measured ({} so far)",
            w.measured
        ),
        (InstanceWarmup::Measured, n) => format!("measured: P90 of the last {n} launches"),
    };
    format!(
        "{name} warm-up: {} ({basis}); {} instance(s) warming",
        span(w.in_force_s),
        w.warming
    )
}

/// The readable table.
pub fn render(groups: &[GroupView]) -> String {
    let mut out = String::new();
    let _ = writeln!(
        out,
        "{:<16} {:<9} {:>6} {:>7} {:>6} {:>9} {:>9} {:>9}  REASON",
        "GROUP", "ACTUATOR", "HOSTS", "DESIRED", "ACTUAL", "DEMAND", "P50@LEAD", "P90@LEAD"
    );
    for g in groups {
        let e = g.evaluation.as_ref();
        let desired = e.map_or_else(|| "-".into(), |e| e.desired.to_string());
        let actual = e.map_or_else(|| "-".into(), |e| e.actual.to_string());
        let f = e.and_then(|e| e.forecast.as_ref());
        let _ = writeln!(
            out,
            "{:<16} {:<9} {:>6} {:>7} {:>6} {:>9} {:>9} {:>9}  {}",
            g.name,
            g.actuator,
            g.hosts.len(),
            desired,
            actual,
            opt(e.map(|e| e.demand)),
            opt(f.map(|f| f.p50)),
            opt(f.map(|f| f.p90)),
            e.map_or("no evaluation yet", |e| e.reason.as_str()),
        );
    }
    for g in groups {
        if let Some(l) = &g.lease {
            let _ = writeln!(out, "\n{}", lease_line(&g.name, l));
        }
        if let Some(w) = &g.policy.warmup {
            let _ = writeln!(out, "\n{}", warmup_line(&g.name, w));
        }
        if let Some(l) = &g.policy.learned {
            let _ = writeln!(out, "\n{} policy: {l}", g.name);
        }
        if let Some(l) = &g.ledger {
            let _ = writeln!(out, "\n{}", ledger_line(&g.name, l));
        }
        let _ = writeln!(out, "\n{} hosts:", g.name);
        let _ = writeln!(
            out,
            "  {:<24} {:>8} {:>8} {:>8} {:>8} {:<10} {:<9} REASON",
            "HOST", "AGE_S", "DEMAND", "CAPACITY", "P90", "HEALTH", "ACTION"
        );
        for h in &g.hosts {
            let _ = writeln!(
                out,
                "  {:<24} {:>8.1} {:>8.2} {:>8.2} {:>8} {:<10} {:<9} {}",
                h.host,
                h.age_s,
                h.demand_now,
                h.capacity,
                opt(h.p90_at_lead),
                h.health,
                h.action,
                h.reason
            );
            if let Some(age) = h.shared_id_age_s {
                let _ = writeln!(
                    out,
                    "    two agents send as {} ({age:.0} s ago): give each its own [agent] \
                     host_id; their demand is counted as one host's",
                    h.host
                );
            }
        }
        if !g.last_actions.is_empty() {
            let _ = writeln!(out, "{} last actions:", g.name);
            for a in g.last_actions.iter().take(5) {
                let what = match (a.from, a.to, &a.host) {
                    (Some(f), Some(t), _) => format!("{f} -> {t}"),
                    (_, _, Some(h)) if a.kind == "replace" => format!("replace {h}"),
                    (_, _, Some(h)) => format!("{h} ready"),
                    _ => a.kind.clone(),
                };
                let ok = if a.ok { "ok" } else { "FAILED" };
                let at = chrono::DateTime::from_timestamp(a.at as i64, 0).map_or_else(
                    || format!("{:.0}", a.at),
                    |d| d.format("%Y-%m-%d %H:%M:%S").to_string(),
                );
                let _ = writeln!(
                    out,
                    "  {at}  {what:<14} {ok:<6} {}  ({})",
                    a.reason, a.detail
                );
            }
        }
    }
    out
}
