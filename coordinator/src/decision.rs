//! The decision loop of one group: every `decision_interval`, read the engine's capacity,
//! evaluate the group (summed demand, forecast, policy, scale-in guard, rate limit, ledger),
//! publish the figures, and run the step it asks for on the group's actuator, recording the
//! outcome.
//!
//! One task per group awaits its actuator, so two actuations of a group never overlap.

use std::sync::Arc;

use headroom_common::clock::unix_now;
use headroom_model::ledger::Hour;

use crate::actuator::ActuatorError;
use crate::app::{App, Group};
use crate::backfill::{self, Backfill};
use crate::daemon::RESTORE_HISTORY_S;
use crate::every::Every;
use crate::fault;
use crate::group::Step;
use crate::leading::Leading;
use crate::lock::locked;
use crate::metrics::{ActuationLabel, GroupLabel};
use crate::protection;
use crate::state::ActionRecord;

/// Evaluates one group every decision interval and applies what it decides.
pub async fn run_group(app: Arc<App>, name: String, mut stop: tokio::sync::watch::Receiver<bool>) {
    let Some(group) = app.groups.get(&name).cloned() else {
        return;
    };
    let mut tick = tokio::time::interval(group.config.decision_interval);
    // Ticks missed behind a slow call (a hook, a throttled API) are not run back to back: each
    // would read the engine again and put points microseconds apart into the forecast.
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let label = GroupLabel {
        group: name.clone(),
    };
    // The ledger's running total already counted in /metrics.
    let mut ledger_exported = Hour::default();
    // None for this run when the state file cannot say where the backfill stands: a rebuild
    // must know where the group's own series begins.
    let mut backfill = {
        let db = locked(&app.state);
        match db.backfill(&name, unix_now()) {
            Ok((started, accounted)) => Some(Backfill::new(started, accounted)),
            Err(e) => {
                tracing::warn!(group = %name, "reading where the backfill stands: {e:#}; late signals are not rebuilt until a restart");
                None
            }
        }
    };
    let mut protection = Every::new(group.config.protection_interval.as_secs_f64());
    // Whether the count applied while another replica may have led is still to read.
    let mut unread = false;
    let mut read_failed = false;
    // Winning the group's election decides at once, without waiting for the next tick.
    let won = group.lease.as_ref().and_then(|l| l.wake(&name));
    loop {
        // Stopping comes first: a coordinator told to stop during an actuation starts none after it.
        tokio::select! {
            biased;
            _ = stop.changed() => return,
            _ = tick.tick() => {}
            _ = async {
                match &won {
                    Some(n) => n.notified().await,
                    None => std::future::pending().await,
                }
            } => {}
        }
        let standby = group.lease.as_ref().and_then(|l| l.standby(&name));
        let leading = standby.is_none();
        app.metrics
            .leader
            .get_or_create(&label)
            .set(i64::from(standby.is_none()));
        let reported = match group.actuator.current().await {
            Ok(c) => c,
            Err(e) => {
                tracing::warn!(group = %name, "reading actual capacity: {e}");
                None
            }
        };
        // Another replica may have led since the last look: what this one set is forgotten,
        // and the count the group's leaders last applied, as etcd keeps it, stands for it once
        // read (until then, what the engine or the hosts show).
        let led_elsewhere = group
            .lease
            .as_ref()
            .is_some_and(|l| l.take_led_elsewhere(&name));
        unread |= led_elsewhere;
        let applied = match &group.lease {
            Some(l) if unread => match l.applied(&name).await {
                Ok(applied) => {
                    unread = false;
                    read_failed = false;
                    applied
                }
                Err(e) => {
                    // Once per run of failures: an etcd that is away fails every tick.
                    if !std::mem::replace(&mut read_failed, true) {
                        tracing::warn!(group = %name, "reading the applied count from etcd: {e}; the hosts reporting stand for the capacity meanwhile");
                    }
                    None
                }
            },
            _ => None,
        };
        let t = unix_now();
        // Forecasting may take milliseconds with a long history: keep it off the async workers.
        let (
            step,
            eval,
            ledger_unsaved,
            memory,
            learned,
            ledger_total,
            ready_unsaved,
            (warmup, warming),
        ) = tokio::task::block_in_place(|| {
            // What the group's state logs while evaluating names the group.
            let _span = tracing::info_span!("group", name = %name).entered();
            let mut g = locked(&group.state);
            g.set_standby(standby, led_elsewhere, applied);
            g.set_engine_max(reported.and_then(|c| c.max));
            let step = g.evaluate(t, reported.map(|c| c.desired));
            (
                step,
                g.evaluation().cloned(),
                g.take_ledger_unsaved(),
                g.policy_memory(t),
                g.learned(),
                g.ledger_total(),
                g.take_ready_unsaved(),
                g.warmup_figures(),
            )
        });
        app.metrics.warmup.get_or_create(&label).set(warmup);
        app.metrics
            .price_factor
            .get_or_create(&label)
            .set(learned.price_factor);
        app.metrics
            .spend_ratio
            .get_or_create(&label)
            .set(learned.spend_ratio);
        app.metrics
            .warming
            .get_or_create(&label)
            .set(warming as i64);
        app.metrics
            .count_ledger(&name, &ledger_total.since(&ledger_exported));
        ledger_exported = ledger_total;
        if let Some(e) = &eval {
            // Not for a group no host has spoken for: that would publish its minimum.
            if e.live_hosts > 0 {
                group.actuator.seed(e.actual);
            }
            group.actuator.live_hosts(e.live_hosts);
            app.metrics
                .desired
                .get_or_create(&label)
                .set(i64::from(e.desired));
            app.metrics
                .actual
                .get_or_create(&label)
                .set(i64::from(e.actual));
            app.metrics.demand.get_or_create(&label).set(e.demand);
            app.metrics
                .hosts
                .get_or_create(&label)
                .set(e.live_hosts as i64);
        }
        // Demand, the ledger and the policy's memory while hosts speak; a measured launch
        // whenever one was taken (its host may have gone silent since).
        let demand = eval.as_ref().filter(|e| e.live_hosts > 0).map(|e| e.demand);
        if demand.is_some() || !ready_unsaved.is_empty() {
            let (db, group_name) = (app.state.clone(), name.clone());
            let _ = tokio::task::spawn_blocking(move || {
                let db = locked(&db);
                if let Some(demand) = demand {
                    if let Err(err) = db.add_demand(&group_name, t, demand) {
                        tracing::warn!(group = %group_name, "storing demand: {err:#}");
                    }
                    if let Err(err) = db.put_ledger(&group_name, &ledger_unsaved) {
                        tracing::warn!(group = %group_name, "storing the ledger: {err:#}");
                    }
                    if let Err(err) = db.put_policy_memory(&group_name, &memory) {
                        tracing::warn!(group = %group_name, "storing the policy memory: {err:#}");
                    }
                }
                for ready in &ready_unsaved {
                    if let Err(err) = db.add_action(&group_name, ready) {
                        tracing::warn!(group = %group_name, "storing a measured launch: {err:#}");
                    }
                }
            })
            .await;
        }
        if let Some(b) = backfill.as_mut()
            && b.due(t)
        {
            rebuild_history(&app, &group, &name, b).await;
        }
        if group.config.scale_in_protection
            && leading
            && protection.due(t)
            && let Some(mut lead) = Leading::fence(&app, &group, &name, &label).await
        {
            protect_busy(&mut lead, t).await;
        }
        let Some(step) = step else { continue };
        let Some(mut lead) = Leading::fence(&app, &group, &name, &label).await else {
            // A capacity is decided afresh every tick; a replacement is asked for once.
            if let Step::Replace {
                host, instance_id, ..
            } = step
            {
                locked(&group.state).return_replacement(host, instance_id);
            }
            continue;
        };
        let record = act(&mut lead, step).await;
        record_action(&app, &group, &name, record).await;
    }
}

/// Counts an action in `/metrics` and records it in the group (shown by the API) and in the
/// state file.
async fn record_action(app: &App, group: &Group, name: &str, record: ActionRecord) {
    app.metrics
        .actuations
        .get_or_create(&ActuationLabel {
            group: name.to_string(),
            kind: record.kind.clone(),
            outcome: if record.ok { "ok" } else { "error" }.into(),
        })
        .inc();
    locked(&group.state).record(record.clone());
    let (db, group_name) = (app.state.clone(), name.to_string());
    let _ = tokio::task::spawn_blocking(move || {
        if let Err(err) = locked(&db).add_action(&group_name, &record) {
            tracing::warn!(group = %group_name, "storing action: {err:#}");
        }
    })
    .await;
}

/// One scale-in protection pass ([`crate::protection`]): the group's instances as the engine
/// lists them, protected exactly when their hosts are busy, in bounded batches; each call is
/// recorded as a `protect` or `unprotect` action.
async fn protect_busy(lead: &mut Leading<'_>, t: f64) {
    let (app, group, name) = (lead.app, lead.group, lead.name);
    let members = match group.actuator.protection_members().await {
        Ok(m) => m,
        Err(e) => {
            tracing::warn!(group = %name, "scale-in protection: reading the group's instances: {e}");
            return;
        }
    };
    let busy = locked(&group.state).busy_instances(t);
    let plan = protection::plan(&members, &busy);
    if plan.all_busy {
        tracing::warn!(group = %name, instances = members.len(), "scale-in protection: every instance is busy, so none is protected and the group can still scale in");
    }
    let calls = protection::calls(&plan);
    // Reading the instances counts as the first call: it may have outlasted the lease.
    lead.calls = lead.calls.max(1);
    for (i, &(ids, protect)) in calls.iter().enumerate() {
        let result = lead
            .call(
                "during the protection pass",
                group.actuator.set_protection(ids, protect),
            )
            .await;
        let fenced = matches!(result, Err(ActuatorError::Fenced(_)));
        if let Err(e) = &result {
            tracing::warn!(group = %name, protect, "scale-in protection: {e}");
        }
        // A call refused before it was sent changed nothing; one abandoned at the deadline may
        // have been applied in part.
        if fenced && !lead.sent {
            tracing::warn!(group = %name, calls_left = calls.len() - i, "scale-in protection: the rest waits for the next leader");
            break;
        }
        let record = ActionRecord {
            at: t,
            kind: if protect { "protect" } else { "unprotect" }.into(),
            reason: match (protect, plan.all_busy) {
                (true, _) => format!("{} instance(s) busy", ids.len()),
                (false, true) => {
                    "every instance is busy: none protected, so the group can still scale in".into()
                }
                (false, false) => format!(
                    "idle for {}",
                    headroom_common::duration::format(group.config.protection_idle)
                ),
            },
            ok: result.is_ok(),
            detail: match &result {
                Ok(()) => ids.join(", "),
                Err(e) => format!("{}: {e}", ids.join(", ")),
            },
            ..ActionRecord::default()
        };
        record_action(app, group, name, record).await;
        if fenced {
            tracing::warn!(group = %name, calls_left = calls.len() - i - 1, "scale-in protection: the rest waits for the next leader");
            break;
        }
    }
}

/// Rebuilds the group's demand before its own series from signals received late, if any came
/// since the last look, and starts the forecaster again on the whole ([`crate::backfill`]).
async fn rebuild_history(app: &Arc<App>, group: &Arc<Group>, name: &str, b: &mut Backfill) {
    let (db, g, group_name) = (app.state.clone(), group.clone(), name.to_string());
    let (seen, started) = (b.seen_id, b.started);
    let step = group.config.decision_interval.as_secs_f64();
    let ttl = group.config.host_ttl.as_secs_f64();
    let look = {
        let (db, group_name) = (db.clone(), group_name.clone());
        tokio::task::spawn_blocking(move || {
            let db = locked(&db);
            let own_from = db.own_from(&group_name, unix_now())?;
            let found = db.late_signals(&group_name, seen, own_from, ttl)?;
            anyhow::Ok((own_from, found))
        })
        .await
    };
    let (own_from, (newest, late)) = match look {
        Ok(Ok(found)) => found,
        Ok(Err(e)) => {
            tracing::warn!(group = %name, "looking for signals received late: {e:#}");
            return;
        }
        Err(e) => {
            tracing::warn!(group = %name, "looking for signals received late: {e}");
            return;
        }
    };
    if !b.looked(unix_now(), newest, late) {
        account(app, name, b).await;
        return;
    }
    let done = tokio::task::spawn_blocking(move || -> anyhow::Result<usize> {
        let mut db = locked(&db);
        let points = db.late_demand(&group_name, started, own_from)?;
        let series = backfill::summed(&points, step, ttl, own_from);
        db.put_demand(&group_name, &series)?;
        let history = db.demand(&group_name, unix_now() - RESTORE_HISTORY_S)?;
        drop(db);
        locked(&g.state).refill(&history);
        Ok(series.len())
    })
    .await;
    match done {
        Ok(Ok(rebuilt)) => {
            if rebuilt > 0 {
                tracing::info!(group = %name, points = rebuilt, "demand history rebuilt from signals received late: the forecaster starts again on it");
            }
            account(app, name, b).await;
        }
        Ok(Err(e)) => {
            b.failed();
            tracing::warn!(group = %name, "rebuilding history from late signals: {e:#}")
        }
        Err(e) => {
            b.failed();
            tracing::warn!(group = %name, "rebuilding history from late signals: {e}")
        }
    }
}

/// Records in the state file the rows whose late demand no rebuild awaits, when they moved.
async fn account(app: &Arc<App>, name: &str, b: &mut Backfill) {
    let Some(id) = b.to_account() else {
        return;
    };
    let (db, group) = (app.state.clone(), name.to_string());
    let put =
        tokio::task::spawn_blocking(move || locked(&db).put_backfill_accounted(&group, id)).await;
    match put {
        Ok(Ok(())) => {}
        Ok(Err(e)) => tracing::warn!(group = %name, "recording where the backfill stands: {e:#}"),
        Err(e) => tracing::warn!(group = %name, "recording where the backfill stands: {e}"),
    }
}

/// Sets the scaler's maximum (`max_breach = "raise"`) while this replica leads; whether it
/// was set, and what happened in words.
async fn set_max(lead: &mut Leading<'_>, max: u32, reason: &str) -> (bool, String) {
    let group = lead.group;
    let during = "before setting the maximum";
    match lead.call(during, group.actuator.set_max(max, reason)).await {
        Ok(()) => {
            tracing::info!(actuator = group.actuator.kind(), max, %reason, "maximum set (max_breach = raise)");
            (true, format!("maximum set to {max}"))
        }
        Err(e) => {
            tracing::warn!(
                actuator = group.actuator.kind(),
                max,
                "setting the maximum failed: {e}"
            );
            (false, format!("setting the maximum to {max} failed: {e}"))
        }
    }
}

/// Runs one step on the group's actuator and describes it.
async fn act(lead: &mut Leading<'_>, step: Step) -> ActionRecord {
    let group = lead.group;
    let at = unix_now();
    match step {
        Step::SetCapacity {
            from,
            to,
            max,
            reason,
        } => {
            // A raised maximum must be in place before the count that needs it; one put back
            // follows the scale-in that fits under it.
            let mut notes = Vec::new();
            let raise_first = max.is_some_and(|m| m >= to && to > from);
            if raise_first && let Some(m) = max {
                notes.push(set_max(lead, m, &reason).await.1);
                fault::stop_after_raise();
            }
            // The count in etcd is cleared first, then set once the call succeeded.
            let during = if raise_first {
                "while the maximum was raised"
            } else {
                "before setting the capacity"
            };
            let result = match lead.clear_applied(during).await {
                Ok(()) => {
                    lead.call(during, group.actuator.set_capacity(to, from, &reason))
                        .await
                }
                Err(e) => Err(e),
            };
            if let Ok(applied) = &result {
                lead.record_applied(*applied).await;
            }
            if !raise_first
                && result.is_ok()
                && let Some(m) = max
            {
                notes.push(set_max(lead, m, &reason).await.1);
            }
            match &result {
                Ok(applied) => {
                    tracing::info!(actuator = group.actuator.kind(), from, to, applied, %reason, "actuation")
                }
                Err(e) => {
                    tracing::warn!(actuator = group.actuator.kind(), from, to, %reason, "actuation failed: {e}")
                }
            }
            ActionRecord {
                at,
                kind: "set_capacity".into(),
                from: Some(from),
                to: Some(*result.as_ref().unwrap_or(&to)),
                host: None,
                reason,
                ok: result.is_ok(),
                detail: std::iter::once(
                    result.map_or_else(|e| e.to_string(), |n| format!("applied {n}")),
                )
                .chain(notes)
                .collect::<Vec<_>>()
                .join("; "),
                warmup_s: None,
            }
        }
        Step::SetMax { max, reason } => {
            let (ok, detail) = set_max(lead, max, &reason).await;
            ActionRecord {
                at,
                kind: "set_max".into(),
                reason,
                ok,
                detail,
                ..ActionRecord::default()
            }
        }
        Step::Replace {
            host,
            instance_id,
            reason,
        } => {
            let result = lead
                .call(
                    "before the replacement",
                    group
                        .actuator
                        .replace(&host, instance_id.as_deref(), &reason),
                )
                .await;
            match &result {
                Ok(d) => {
                    tracing::info!(actuator = group.actuator.kind(), %host, %reason, "replacement: {d}")
                }
                Err(e) => {
                    tracing::warn!(actuator = group.actuator.kind(), %host, %reason, "replacement failed: {e}")
                }
            }
            ActionRecord {
                at,
                kind: "replace".into(),
                from: None,
                to: None,
                host: Some(host),
                reason,
                ok: result.is_ok(),
                detail: result.unwrap_or_else(|e| e.to_string()),
                warmup_s: None,
            }
        }
    }
}
