//! A group's state: demand sums, scale-in, expiry, replacement.
use super::*;
use std::time::Duration;

fn signal(host: &str, seq: u64, t: f64, demand: f64, health: &str) -> Signal {
    Signal {
        version: 1,
        host: host.into(),
        group: "g".into(),
        epoch: "e".into(),
        seq,
        decided_at: t,
        sent_at: t,
        metric: "cpu.busy_cores".into(),
        demand_now: demand,
        capacity: 1.0,
        lead_s: 10.0,
        p50_at_lead: None,
        p90_at_lead: None,
        saturated: false,
        action: "hold".into(),
        desired_change: 0,
        reason: String::new(),
        health: health.into(),
        health_reasons: vec![],
        instance_id: Some(format!("i-{host}")),
        busy: None,
    }
}

fn config() -> GroupConfig {
    GroupConfig {
        capacity_per_instance: Some(1.0),
        target_utilization: 1.0,
        min: 1,
        max: 10,
        scale_in_stabilization: Duration::from_secs(30),
        actuation_interval: Duration::from_secs(0),
        host_ttl: Duration::from_secs(100),
        ..GroupConfig::default()
    }
}

#[test]
fn sums_current_demand_and_scales_out_at_once() {
    let mut g = GroupState::new(config());
    for (i, h) in ["a", "b", "c"].iter().enumerate() {
        g.ingest(
            signal(h, 1, 1.0, 1.5 + i as f64, "healthy"),
            Outcome::Applied,
            1.0,
        );
    }
    let step = g.evaluate(2.0, Some(2));
    assert_eq!(
        step,
        Some(Step::SetCapacity {
            from: 2,
            to: 8,
            max: None,
            reason: g.evaluation().unwrap().reason.clone()
        })
    );
    assert_eq!(g.evaluation().unwrap().demand, 7.5);
}

#[test]
fn scale_in_waits_for_the_window_and_steps() {
    let mut g = GroupState::new(config());
    g.ingest(signal("a", 1, 0.0, 5.0, "healthy"), Outcome::Applied, 0.0);
    for t in 1..10 {
        assert_eq!(g.evaluate(f64::from(t), Some(5)), None);
    }
    g.ingest(signal("a", 2, 10.0, 1.0, "healthy"), Outcome::Applied, 10.0);
    for t in [11.0, 20.0, 35.0, 39.0] {
        assert_eq!(g.evaluate(t, Some(5)), None, "at {t}: {:?}", g.evaluation());
    }
    let Some(Step::SetCapacity { to, .. }) = g.evaluate(40.5, Some(5)) else {
        panic!("{:?}", g.evaluation())
    };
    // By max_scale_in_step (1), or half the count, rounded up, when that is more.
    assert_eq!(to, 2, "one step: 5 less 3");
    // With no share of the count, max_scale_in_step alone.
    let mut g = GroupState::new(GroupConfig {
        max_scale_in_fraction: 0.0,
        ..config()
    });
    g.ingest(signal("a", 1, 0.0, 5.0, "healthy"), Outcome::Applied, 0.0);
    for t in 1..10 {
        g.evaluate(f64::from(t), Some(5));
    }
    g.ingest(signal("a", 2, 10.0, 1.0, "healthy"), Outcome::Applied, 10.0);
    for t in [11.0, 20.0, 35.0, 39.0] {
        g.evaluate(t, Some(5));
    }
    let Some(Step::SetCapacity { to, .. }) = g.evaluate(40.5, Some(5)) else {
        panic!("{:?}", g.evaluation())
    };
    assert_eq!(to, 4, "one instance a decision");
}

#[test]
fn expires_silent_hosts_and_reports_unhealthy_ones() {
    let mut c = config();
    c.replace_unhealthy_after = 2;
    let mut g = GroupState::new(c);
    g.ingest(signal("a", 1, 0.0, 1.0, "unhealthy"), Outcome::Applied, 0.0);
    g.ingest(signal("b", 1, 0.0, 1.0, "healthy"), Outcome::Applied, 0.0);
    assert_eq!(g.evaluate(1.0, Some(2)).map(|_| ()), None);
    g.ingest(
        signal("a", 2, 2.0, 1.0, "unhealthy"),
        Outcome::Applied,
        150.0,
    );
    let step = g.evaluate(150.0, Some(1));
    assert!(
        matches!(step, Some(Step::Replace { ref host, .. }) if host == "a"),
        "{step:?}"
    );
    assert_eq!(g.view("g", "dry-run", 150.0).hosts.len(), 1, "b expired");
}

#[test]
fn a_clock_stepped_back_neither_freezes_hosts_nor_holds_actuation() {
    let mut c = config();
    c.actuation_interval = Duration::from_secs(60);
    let mut g = GroupState::new(c);
    g.ingest(
        signal("a", 1, 1000.0, 2.0, "healthy"),
        Outcome::Applied,
        1000.0,
    );
    assert!(g.evaluate(1000.0, Some(1)).is_some(), "scales out to 2");
    // The host's and the coordinator's clocks step back an hour: the newer signal (by seq)
    // is the host's state, and the group acts on it at once.
    g.ingest(
        signal("a", 2, -2600.0, 5.0, "healthy"),
        Outcome::Applied,
        -2600.0,
    );
    let step = g.evaluate(-2600.0, Some(2));
    assert!(
        matches!(step, Some(Step::SetCapacity { to: 5, .. })),
        "{step:?} {:?}",
        g.evaluation()
    );
    // A retry of an older signal refreshes the host, without becoming its state.
    g.ingest(
        signal("a", 1, 1000.0, 2.0, "healthy"),
        Outcome::Applied,
        -2500.0,
    );
    let h = &g.view("g", "dry-run", -2500.0).hosts;
    assert_eq!(h.len(), 1);
    assert_eq!(g.hosts["a"].latest.seq, 2);
    assert_eq!(g.hosts["a"].received_at, -2500.0);
}

/// A group that replaces a host after 2 unhealthy signals, and host `a` that sent them.
fn unhealthy_twice() -> GroupState {
    let mut c = config();
    c.replace_unhealthy_after = 2;
    let mut g = GroupState::new(c);
    for seq in 1..=2 {
        g.ingest(
            signal("a", seq, seq as f64, 1.0, "unhealthy"),
            Outcome::Applied,
            2.0,
        );
    }
    g
}

/// A maximum left raised is put back, but after a waiting replacement: a put-back that keeps
/// failing must not hold one back.
#[test]
fn a_replacement_goes_before_putting_a_maximum_back() {
    let mut g = unhealthy_twice();
    g.config.max_breach = crate::config::MaxBreach::Raise;
    g.set_engine_max(Some(g.config.max + 6));
    let step = g.evaluate(3.0, Some(1));
    assert!(matches!(step, Some(Step::Replace { .. })), "{step:?}");
    let step = g.evaluate(100.0, Some(1));
    assert!(
        matches!(step, Some(Step::SetMax { max, .. }) if max == g.config.max),
        "{step:?}"
    );
}

#[test]
fn a_failed_replacement_is_asked_for_again() {
    let mut g = unhealthy_twice();
    let Some(Step::Replace { host, reason, .. }) = g.evaluate(3.0, Some(1)) else {
        panic!("{:?}", g.evaluation())
    };
    g.record(ActionRecord {
        at: 3.0,
        kind: "replace".into(),
        from: None,
        to: None,
        host: Some(host),
        reason,
        ok: false,
        detail: "throttled".into(),
        warmup_s: None,
    });
    assert_eq!(g.evaluate(4.0, Some(1)), None, "no signal since");
    g.ingest(signal("a", 3, 5.0, 1.0, "unhealthy"), Outcome::Applied, 5.0);
    let step = g.evaluate(6.0, Some(1));
    assert!(
        matches!(step, Some(Step::Replace { ref host, .. }) if host == "a"),
        "{step:?}"
    );
}

/// A replacement the fence refused (not attempted) is asked for again at the next
/// evaluation, without waiting for a signal: the host is still reported for it.
#[test]
fn a_replacement_the_fence_refused_is_asked_for_at_the_next_evaluation() {
    let mut g = unhealthy_twice();
    let Some(Step::Replace {
        host, instance_id, ..
    }) = g.evaluate(3.0, Some(1))
    else {
        panic!("{:?}", g.evaluation())
    };
    g.return_replacement(host, instance_id);
    let step = g.evaluate(4.0, Some(1));
    assert!(
        matches!(step, Some(Step::Replace { ref host, .. }) if host == "a"),
        "{step:?}"
    );
    assert_eq!(
        g.evaluate(5.0, Some(1)),
        None,
        "asked for once more, not twice"
    );
}

#[test]
fn a_restart_does_not_repeat_a_replacement_already_made() {
    let mut c = config();
    c.replace_unhealthy_after = 2;
    let signals = || {
        (1..=2)
            .map(|seq| (seq as f64, signal("a", seq, seq as f64, 1.0, "unhealthy")))
            .collect::<Vec<_>>()
    };
    let replaced = ActionRecord {
        at: 2.5,
        kind: "replace".into(),
        from: None,
        to: None,
        host: Some("a".into()),
        reason: String::new(),
        ok: true,
        detail: String::new(),
        warmup_s: None,
    };
    let mut g = GroupState::new(c.clone());
    // The replacement is no longer among the last actions shown (protection calls and
    // measured launches came after it), but it is among the replacements.
    g.restore(
        &[],
        signals(),
        Some(1),
        Vec::new(),
        &[replaced],
        SignalCounts::default(),
    );
    assert_eq!(
        g.evaluate(3.0, Some(1)),
        None,
        "replaced before the restart"
    );
    let mut g = GroupState::new(c);
    g.restore(
        &[],
        signals(),
        Some(1),
        Vec::new(),
        &[],
        SignalCounts::default(),
    );
    let step = g.evaluate(3.0, Some(1));
    assert!(
        matches!(step, Some(Step::Replace { ref host, .. }) if host == "a"),
        "not yet replaced: {step:?}"
    );
}

/// A scale-out opens launches; new hosts' first healthy signals measure them; with
/// `instance_warmup = "measured"` the fifth measurement replaces the configured warm-up.
#[test]
fn new_instances_measure_the_warm_up_the_plan_then_uses() {
    let mut c = config();
    c.instance_warmup = crate::warmup::InstanceWarmup::Measured;
    c.warmup = Duration::from_secs(30);
    c.warmup_floor = Duration::from_secs(1);
    c.host_ttl = Duration::from_secs(10);
    let mut g = GroupState::new(c);
    g.ingest(signal("a", 1, 0.0, 1.0, "healthy"), Outcome::Applied, 0.0);
    g.evaluate(0.0, None);
    let mut t = 20.0;
    for i in 0..5u32 {
        g.record(ActionRecord {
            at: t,
            kind: "set_capacity".into(),
            from: Some(1 + i),
            to: Some(2 + i),
            ok: true,
            ..ActionRecord::default()
        });
        g.ingest(
            signal("a", 2 + u64::from(i), t, 1.0, "healthy"),
            Outcome::Applied,
            t,
        );
        let view = g.view("g", "dry-run", t);
        assert_eq!(view.policy.warmup.as_ref().unwrap().warming, 1);
        let host = format!("new-{i}");
        g.ingest(
            signal(&host, 1, t + 4.0, 0.0, "degraded"),
            Outcome::Applied,
            t + 4.0,
        );
        g.ingest(
            signal(&host, 2, t + 5.0 + f64::from(i), 0.0, "healthy"),
            Outcome::Applied,
            t + 5.0 + f64::from(i),
        );
        t += 20.0;
    }
    let ready = g.take_ready_unsaved();
    let measured: Vec<f64> = ready.iter().filter_map(|a| a.warmup_s).collect();
    assert_eq!(measured, [5.0, 6.0, 7.0, 8.0, 9.0]);
    assert_eq!(ready[0].kind, "instance_ready");
    g.evaluate(t, None);
    let w = g.view("g", "dry-run", t).policy.warmup.unwrap();
    assert_eq!((w.in_force_s, w.launches, w.warming), (9.0, 5, 0));
    assert_eq!(g.policy.config().warmup_s, 9.0);
}

/// A group with no live host (at zero, or silent) still wakes for a scheduled entry in force.
#[test]
fn a_scheduled_entry_raises_a_group_without_live_hosts() {
    let mut c = config();
    c.min = 0;
    c.schedule = vec![headroom_common::schedule::ScheduleEntryConfig {
        name: Some("sale".into()),
        at: Some("1970-01-01T00:01:40Z".into()),
        duration: Some("1h".into()),
        min_instances: Some(5),
        ..Default::default()
    }];
    let mut g = GroupState::new(c);
    // Before the entry's window (start 100 s, lead 310 s): holds.
    assert_eq!(g.evaluate(-300.0, Some(0)), None);
    assert_eq!(g.evaluation().unwrap().reason, "no live hosts: holding");
    let step = g.evaluate(0.0, Some(0));
    let Some(Step::SetCapacity {
        from, to, reason, ..
    }) = step
    else {
        panic!("{step:?}")
    };
    assert_eq!((from, to), (0, 5));
    assert!(
        reason.contains("scheduled: sale (at 1970-01-01T00:01:40Z, 1h)"),
        "{reason}"
    );
    // Already there: nothing more.
    assert_eq!(g.evaluate(10.0, Some(5)), None);
}

/// A standby measures launches from the engine's count rising, so a replica that takes over
/// plans with measurements of its own.
#[test]
fn a_standby_measures_launches_from_the_engines_count() {
    let mut c = config();
    c.host_ttl = Duration::from_secs(10);
    let mut g = GroupState::new(c);
    g.set_standby(Some("standby: coord-1 leads".into()), true, None);
    g.ingest(signal("a", 1, 0.0, 1.0, "healthy"), Outcome::Applied, 0.0);
    assert_eq!(g.evaluate(0.0, Some(2)), None);
    g.ingest(signal("a", 2, 19.0, 1.0, "healthy"), Outcome::Applied, 19.0);
    assert_eq!(g.evaluate(20.0, Some(4)), None, "a standby never actuates");
    assert_eq!(g.view("g", "aws", 20.0).policy.warmup.unwrap().warming, 2);
    g.ingest(signal("b", 1, 32.0, 0.0, "healthy"), Outcome::Applied, 32.0);
    let ready = g.take_ready_unsaved();
    assert_eq!(ready.len(), 1);
    assert_eq!(ready[0].warmup_s, Some(12.0));
    // The engine's count falling closes the launches it no longer holds (a and b are live).
    g.ingest(signal("a", 3, 32.0, 1.0, "healthy"), Outcome::Applied, 32.0);
    g.evaluate(33.0, Some(2));
    assert_eq!(g.view("g", "aws", 33.0).policy.warmup.unwrap().warming, 0);
}

/// Records that this replica set the group to 30.
fn set_30(g: &mut GroupState) {
    g.record(ActionRecord {
        at: 0.0,
        kind: "set_capacity".into(),
        from: Some(2),
        to: Some(30),
        ok: true,
        ..ActionRecord::default()
    });
}

/// A replica that takes over after another led forgets the count it set in an earlier term:
/// for an engine it cannot read, the hosts reporting stand for the capacity, not that count.
/// With no other leader seen (a late renewal), its own count stands.
#[test]
fn a_takeover_forgets_the_count_set_in_an_earlier_term() {
    let mut g = GroupState::new(config());
    set_30(&mut g);
    for (i, h) in ["a", "b", "c"].iter().enumerate() {
        g.ingest(
            signal(h, 1, 100.0, 1.0, "healthy"),
            Outcome::Applied,
            100.0 + i as f64,
        );
    }
    g.set_standby(Some("no lease: renewal late".into()), false, None);
    g.evaluate(103.0, None);
    assert_eq!(
        g.evaluation().unwrap().actual_source,
        "last_set",
        "standing by"
    );
    g.set_standby(None, false, None);
    g.evaluate(103.5, None);
    assert_eq!(g.evaluation().unwrap().actual, 30, "nobody else led");
    g.set_standby(Some("standby: coord-1 leads".into()), true, None);
    g.evaluate(103.7, None);
    // Forgotten at once: a standby plans with it too.
    assert_eq!(
        g.evaluation().unwrap().actual_source,
        "hosts",
        "standing by"
    );
    g.set_standby(None, false, None);
    g.evaluate(104.0, None);
    let e = g.evaluation().unwrap();
    assert_eq!((e.actual, e.actual_source.as_str()), (3, "hosts"), "{e:?}");
    // A restart under a lease: the count read back from the state file is not trusted either.
    let mut restarted = GroupState::new(config());
    set_30(&mut restarted);
    restarted.ingest(
        signal("a", 1, 100.0, 1.0, "healthy"),
        Outcome::Applied,
        100.0,
    );
    restarted.set_standby(None, true, None);
    restarted.evaluate(101.0, None);
    assert_eq!(restarted.evaluation().unwrap().actual_source, "hosts");
    // The count the group's leaders last applied, as etcd keeps it, stands for what was
    // forgotten (hosts do not count instances still booting); never for a count this replica
    // set since.
    restarted.set_standby(None, true, Some(7));
    restarted.evaluate(102.0, None);
    let e = restarted.evaluation().unwrap();
    assert_eq!(
        (e.actual, e.actual_source.as_str()),
        (7, "last_set"),
        "{e:?}"
    );
    restarted.set_standby(None, false, Some(4));
    restarted.evaluate(103.0, None);
    assert_eq!(
        restarted.evaluation().unwrap().actual,
        7,
        "a count known is kept"
    );
}

/// A restarted group takes back what its policy learned at the first decision, once the
/// capacity the hosts report is in force: target tracking's hold then survives although the
/// policy started at a capacity of 1 (none configured), and it decides as if never stopped.
#[test]
fn a_restored_policy_memory_survives_the_measured_capacity() {
    let cfg = GroupConfig {
        capacity_per_instance: None,
        ..config()
    };
    let with_capacity = |seq, t, demand| {
        let mut s = signal("a", seq, t, demand, "healthy");
        s.capacity = 10.0;
        s
    };
    let mut went_on = GroupState::new(cfg.clone());
    went_on.ingest(with_capacity(1, 0.0, 80.0), Outcome::Applied, 0.0);
    went_on.evaluate(1.0, Some(5));
    let memory = went_on.policy_memory(1.0);

    let mut restarted = GroupState::new(cfg.clone());
    restarted.ingest(with_capacity(1, 0.0, 80.0), Outcome::Applied, 0.0);
    restarted.restore_policy(memory);
    let mut forgetful = GroupState::new(cfg);
    forgetful.ingest(with_capacity(1, 0.0, 80.0), Outcome::Applied, 0.0);
    for g in [&mut went_on, &mut restarted, &mut forgetful] {
        g.ingest(with_capacity(2, 1.8, 10.0), Outcome::Applied, 1.8);
        g.evaluate(2.0, Some(5));
    }
    let tracking = |g: &GroupState| {
        serde_json::to_value(g.policy_memory(2.0)).expect("serialises")["tracking"].clone()
    };
    assert_eq!(tracking(&restarted), tracking(&went_on));
    assert_ne!(
        tracking(&forgetful),
        tracking(&went_on),
        "without the memory the hold is lost, or this test shows nothing"
    );
    // The second between the memory and the restart was nobody's: not spend, and not seen.
    let spend = |g: &GroupState| {
        serde_json::to_value(g.policy_memory(2.0)).expect("serialises")["price"]["plan_spend"]
            .as_f64()
    };
    assert!(spend(&restarted) < spend(&went_on));
}

/// With `max_breach = "raise"` the ledger charges the plan what it sets above `max`, as it
/// charges target tracking: a plan capped at `max` in the ledger alone read as cheaper than it
/// ran.
#[test]
fn the_ledger_charges_the_count_set_above_max() {
    let mut cfg = config();
    cfg.max = 2;
    cfg.max_breach = crate::config::MaxBreach::Raise;
    let mut g = GroupState::new(cfg);
    for t in [1.0, 11.0, 21.0] {
        g.ingest(
            signal("a", t as u64, t, 5.0, "healthy"),
            Outcome::Applied,
            t,
        );
        g.evaluate(t + 1.0, Some(5));
    }
    let total = g.ledger_total();
    assert!(total.plan_instance_s >= 5.0 * 19.0, "{total:?}");
    assert!(
        (total.plan_instance_s - total.shadow_instance_s).abs() < 1e-9,
        "{total:?}"
    );
}

/// Two agents under one host id take turns: the host says so. One agent whose store was
/// made anew moves to its new epoch for good, and says nothing.
#[test]
fn two_agents_sending_as_one_host_are_told_apart_from_a_reinstall() {
    let with_epoch = |epoch: &str, seq: u64, t: f64| Signal {
        epoch: epoch.into(),
        ..signal("a", seq, t, 1.0, "healthy")
    };
    let mut reinstalled = GroupState::new(config());
    for (e, seq, t) in [
        ("old", 7, 1.0),
        ("new", 1, 2.0),
        ("new", 2, 3.0),
        ("new", 3, 4.0),
    ] {
        reinstalled.ingest(with_epoch(e, seq, t), Outcome::Applied, t);
    }
    let v = reinstalled.view("g", "dry-run", 5.0);
    assert_eq!(v.hosts[0].shared_id_age_s, None);

    let mut cloned = GroupState::new(config());
    for (e, seq, t) in [
        ("one", 1, 1.0),
        ("two", 1, 2.0),
        ("one", 2, 3.0),
        ("two", 2, 4.0),
    ] {
        cloned.ingest(with_epoch(e, seq, t), Outcome::Applied, t);
    }
    // Two returns could still be a reinstall's signals in flight arriving late.
    assert_eq!(
        cloned.view("g", "dry-run", 4.5).hosts[0].shared_id_age_s,
        None
    );
    cloned.ingest(with_epoch("one", 3, 5.0), Outcome::Applied, 5.0);
    let v = cloned.view("g", "dry-run", 6.0);
    assert_eq!(v.hosts[0].shared_id_age_s, Some(1.0));
    assert!(crate::client::render(&[v]).contains("two agents send as a"));
    // A host TTL after they stopped taking turns, it is no longer shown.
    let ttl = cloned.config.host_ttl.as_secs_f64();
    assert_eq!(
        cloned.view("g", "dry-run", 6.0 + ttl).hosts[0].shared_id_age_s,
        None
    );

    // The old store's last signal arriving late, after the new one's first, whatever the
    // clocks say: the host is back on its new epoch at the next signal, and no second agent.
    let mut late = GroupState::new(config());
    late.ingest(with_epoch("old", 7, 1.0), Outcome::Applied, 1.0);
    late.ingest(with_epoch("new", 1, 3.0), Outcome::Applied, 3.0);
    late.ingest(with_epoch("old", 8, 9.0), Outcome::Applied, 4.0);
    late.ingest(with_epoch("new", 2, 5.0), Outcome::Applied, 5.0);
    late.ingest(with_epoch("new", 3, 6.0), Outcome::Applied, 6.0);
    let v = late.view("g", "dry-run", 6.5);
    assert_eq!(
        (v.hosts[0].epoch.as_str(), v.hosts[0].shared_id_age_s),
        ("new", None)
    );
}

/// A restart (or a late replica's rebuild) starts the forecaster again on the stored series: a
/// forecaster that was warm live is warm again at the first evaluation after it.
#[test]
fn a_forecaster_warm_before_a_restart_is_warm_at_the_first_evaluation_after_it() {
    let c = GroupConfig {
        warmup: Duration::from_secs(20),
        decision_interval: Duration::from_secs(1),
        ..config()
    };
    let level = |t: f64| 5.0 + (t * 0.7).sin() + if t > 150.0 { (t - 150.0) * 0.05 } else { 0.0 };
    let mut live = GroupState::new(c.clone());
    let mut series = Vec::new();
    let mut signals = Vec::new();
    for i in 1..=200u64 {
        let t = i as f64;
        let s = signal("a", i, t - 0.4, level(t - 0.4), "healthy");
        live.ingest(s.clone(), Outcome::Applied, t - 0.3);
        signals.push((t - 0.3, s));
        live.evaluate(t, Some(5));
        let e = live.evaluation().unwrap();
        series.push((t, e.demand));
    }
    let fallback = |g: &GroupState| {
        g.evaluation()
            .and_then(|e| e.forecast.as_ref())
            .map(|f| f.fallback.clone())
    };
    assert_eq!(fallback(&live), Some(None), "warm live");
    let mut restarted = GroupState::new(c.clone());
    restarted.restore(
        &series,
        signals.split_off(signals.len() - 5),
        Some(5),
        Vec::new(),
        &[],
        SignalCounts::default(),
    );
    restarted.ingest(
        signal("a", 201, 200.6, level(200.6), "healthy"),
        Outcome::Applied,
        200.7,
    );
    restarted.evaluate(201.0, Some(5));
    assert_eq!(fallback(&restarted), Some(None), "warm after the restart");
    // A rebuild prepends points to the same series and starts again on the whole.
    let mut rebuilt = vec![(-1.0, 5.0), (0.0, 5.0), (0.5, 5.0)];
    rebuilt.extend(series.iter().copied());
    restarted.refill(&rebuilt);
    restarted.ingest(
        signal("a", 202, 201.6, level(201.6), "healthy"),
        Outcome::Applied,
        201.7,
    );
    restarted.evaluate(202.0, Some(5));
    assert_eq!(fallback(&restarted), Some(None), "warm after a rebuild");
}
