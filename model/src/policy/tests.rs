//! The policy's tests: decisions on hand-made forecasts.

use super::*;
use crate::forecast::{Forecast, ForecastPoint};

fn cfg() -> PolicyConfig {
    PolicyConfig {
        capacity_per_instance: 10.0,
        target_utilization: 0.5,
        warmup_s: 60.0,
        decision_interval_s: 10.0,
        min_instances: 2,
        max_instances: 20,
        max_scale_in_step: 1,
        max_scale_in_fraction: 0.0,
        scale_in_stabilization_s: 300.0,
        ..PolicyConfig::default()
    }
}

#[test]
fn lead_horizons_step_to_the_lead_and_are_bounded() {
    let mut h = Vec::new();
    lead_horizons(10.0, 35.0, &mut h);
    assert_eq!(h, [10.0, 20.0, 30.0, 35.0]);
    for lead in [1.0e7, 1.0e13, f64::INFINITY] {
        h.clear();
        lead_horizons(10.0, lead, &mut h);
        assert_eq!(h.len(), MAX_LEAD_HORIZONS, "{lead}");
        assert_eq!(h.last(), Some(&lead));
    }
}

fn fc(p50: f64, p90: f64) -> Forecast {
    Forecast {
        origin: 0.0,
        points: vec![ForecastPoint {
            horizon_s: 70.0,
            p50,
            p90,
            p99: p90 * 1.2,
        }],
        model: "ets",
        fallback: None,
        filling: None,
        error_ratio: Some(0.8),
        season_s: None,
    }
}

/// A forecast a tenth of an instance wide around `p50`, at the lead.
fn narrow(p50: f64) -> Forecast {
    let mut f = fc(p50, p50 + 0.1);
    f.points[0].p99 = p50 + 0.2;
    f
}

fn obs(t: f64, demand: f64, current: u32) -> Observation {
    Observation {
        t,
        demand,
        saturated: false,
        current_instances: current,
    }
}

#[test]
fn plans_at_full_capacity_as_far_as_the_budget_prices_it() {
    // P50 40, P90 90, P99 108: about 4 instances wide per unit of z, so a 2% budget covers
    // less than P90 and a 0.1% one more, all at full capacity (no target utilisation).
    let f = fc(40.0, 90.0);
    let at = |budget: f64| {
        Policy::new(PolicyConfig {
            shortfall_budget: budget,
            ..cfg()
        })
        .decide(&obs(0.0, 10.0, 2), Some(&f))
    };
    let (loose, tight) = (at(0.2), at(0.001));
    assert!(
        loose.desired < 9 && tight.desired > 9,
        "{loose:?} {tight:?}"
    );
    assert!(
        loose.reason.contains("at full capacity"),
        "{}",
        loose.reason
    );
    assert!(!loose.fallback);
    assert_eq!(loose.p90_at_lead, Some(90.0));
    // A narrow forecast is covered far up its tail.
    let d = at(0.02);
    let tight = Policy::new(cfg()).decide(&obs(0.0, 10.0, 2), Some(&narrow(40.0)));
    assert!(tight.desired == 5 && d.desired >= 5, "{tight:?}");
}

#[test]
fn demand_now_and_horizons_before_the_warm_up_hold_a_scale_in_but_ask_for_nothing() {
    // Demand now needs 8 at full capacity; the forecast past the warm-up needs 3.
    let mut f = narrow(25.0);
    f.points.insert(
        0,
        ForecastPoint {
            horizon_s: 30.0,
            p50: 75.0,
            p90: 76.0,
            p99: 77.0,
        },
    );
    let d = Policy::new(cfg()).decide(&obs(0.0, 71.0, 2), Some(&f));
    assert_eq!(
        d.desired, 3,
        "instances asked now arrive too late: {}",
        d.reason
    );
    let d = Policy::new(cfg()).decide(&obs(0.0, 71.0, 9), Some(&f));
    assert_eq!(d.desired, 8, "but no scale-in below what serves until then");
}

#[test]
fn scale_out_at_once_scale_in_after_the_window_by_steps() {
    let mut p = Policy::new(cfg());
    let d = p.decide(&obs(0.0, 100.0, 2), Some(&fc(190.0, 195.0)));
    assert_eq!(d.desired, 20);
    let mut cur = d.desired;
    let mut t = 10.0;
    while t < 300.0 {
        let d = p.decide(&obs(t, 10.0, cur), Some(&fc(10.0, 12.0)));
        assert_eq!(d.desired, 20, "at {t}: {}", d.reason);
        cur = d.desired;
        t += 10.0;
    }
    let d = p.decide(&obs(310.0, 10.0, cur), Some(&fc(10.0, 12.0)));
    assert_eq!((d.desired, d.action), (19, Action::ScaleIn), "{}", d.reason);
    assert!(d.reason.contains("limited"));
}

#[test]
fn min_max_and_saturation() {
    let mut p = Policy::new(cfg());
    let d = p.decide(&obs(0.0, 0.0, 2), Some(&fc(0.0, 0.0)));
    assert_eq!(d.desired, 2);
    let d = p.decide(&obs(1.0, 1e6, 2), Some(&fc(1e6, 1e6)));
    assert_eq!(d.desired, 20);
    assert!(d.reason.contains("max"));
    let mut p = Policy::new(cfg());
    let sat = Observation {
        t: 0.0,
        demand: 5.0,
        saturated: true,
        current_instances: 4,
    };
    let d = p.decide(&sat, Some(&fc(5.0, 6.0)));
    assert_eq!(d.desired, 5);
    assert!(d.reason.contains("saturated"));
}

/// A host still saturated while the step's instances warm asks for no more: one step per
/// warm-up, not one per decision (which took a group to its maximum within two minutes).
#[test]
fn saturation_steps_once_per_warm_up() {
    let config = cfg();
    let warmup = config.warmup_s;
    let mut p = Policy::new(config);
    let sat = |t: f64, current: u32| Observation {
        t,
        demand: 1.9,
        saturated: true,
        current_instances: current,
    };
    let first = p.decide(&sat(0.0, 6), Some(&fc(1.9, 2.4)));
    assert_eq!(first.desired, 7);
    // Every decision of the warm-up, with the count raised to 7 meanwhile.
    for k in 1..30 {
        let t = f64::from(k) * warmup / 30.0;
        let d = p.decide(&sat(t, 7), Some(&fc(1.9, 2.4)));
        assert_eq!(d.desired, 7, "at {t}: {}", d.reason);
    }
    // Warmed and still saturated: the next step.
    let d = p.decide(&sat(warmup + 1.0, 7), Some(&fc(1.9, 2.4)));
    assert_eq!(d.desired, 8, "{}", d.reason);
    // The clock stepped back behind that step: no warm-up is running, the next step is taken.
    let d = p.decide(&sat(warmup - 100.0, 8), Some(&fc(1.9, 2.4)));
    assert_eq!(d.desired, 9, "{}", d.reason);
}

#[test]
fn falls_back_to_reactive_when_the_forecast_is_distrusted() {
    let mut p = Policy::new(cfg());
    let mut bad = fc(1000.0, 1000.0);
    bad.error_ratio = Some(3.0);
    let d = p.decide(&obs(0.0, 30.0, 2), Some(&bad));
    assert!(
        d.fallback && d.reason.contains("reactive fallback"),
        "{}",
        d.reason
    );
    assert_eq!(d.desired, 6);
    let mut cold = fc(1000.0, 1000.0);
    cold.fallback = Some("cold start".into());
    let d = Policy::new(cfg()).decide(&obs(0.0, 30.0, 2), Some(&cold));
    assert!(d.fallback && d.desired == 6);
    let d = Policy::new(cfg()).decide(&obs(0.0, 30.0, 2), None);
    assert!(d.fallback && d.desired == 6);
}

/// The count the predictive plan sets for `fc(40, 90)` at `budget`, from 2 instances.
fn at_budget(budget: f64) -> u32 {
    Policy::new(PolicyConfig {
        shortfall_budget: budget,
        ..cfg()
    })
    .decide(&obs(0.0, 10.0, 2), Some(&fc(40.0, 90.0)))
    .desired
}

#[test]
fn forecast_only_and_reactive_modes() {
    let mut p = Policy::new(PolicyConfig {
        mode: PolicyMode::ForecastOnly,
        ..cfg()
    });
    let d = p.decide(&obs(0.0, 10.0, 3), Some(&fc(40.0, 90.0)));
    assert_eq!((d.desired, d.action), (3, Action::Hold));
    assert_eq!(
        d.planned,
        at_budget(DEFAULT_SHORTFALL_BUDGET),
        "what the plan would have set"
    );
    assert!(d.reason.contains("forecast-only"));
    let mut p = Policy::new(PolicyConfig {
        mode: PolicyMode::Reactive,
        ..cfg()
    });
    let d = p.decide(&obs(0.0, 30.0, 3), Some(&fc(400.0, 900.0)));
    assert_eq!(d.desired, 6);
    assert!(!d.fallback && d.reason.starts_with("reactive"));
}

#[test]
fn cost_falls_as_the_budget_rises() {
    let f = fc(40.0, 90.0);
    let counts: Vec<u32> = [0.001, 0.01, 0.05, 0.2]
        .iter()
        .map(|&b| {
            Policy::new(PolicyConfig {
                shortfall_budget: b,
                ..cfg()
            })
            .decide(&obs(0.0, 1.0, 2), Some(&f))
            .desired
        })
        .collect();
    assert!(counts.windows(2).all(|w| w[0] >= w[1]), "{counts:?}");
    assert!(counts[0] > counts[3], "{counts:?}");
}

#[test]
fn with_reactive_scale_in_the_plan_only_adds_to_target_tracking() {
    let mut p = Policy::new(PolicyConfig {
        scale_in: ScaleIn::Reactive,
        scale_in_stabilization_s: 0.0,
        max_scale_in_step: 20,
        ..cfg()
    });
    // Demand 60 at 50% of 10 needs 12 by target tracking; the forecast says 3.
    let d = p.decide(&obs(0.0, 60.0, 15), Some(&narrow(25.0)));
    assert_eq!(d.desired, 12, "{}", d.reason);
    assert!(d.reason.contains("target tracking"), "{}", d.reason);
    // Target tracking holds its count five minutes after it was last in force (until the next
    // decision, at 200 s), then lets go.
    let d = p.decide(&obs(200.0, 5.0, 12), Some(&narrow(25.0)));
    assert_eq!(d.desired, 12);
    let d = p.decide(&obs(499.0, 5.0, 12), Some(&narrow(25.0)));
    assert_eq!(d.desired, 12, "{}", d.reason);
    let d = p.decide(&obs(501.0, 5.0, 12), Some(&narrow(25.0)));
    assert_eq!(d.desired, 3, "{}", d.reason);
    // It never holds back a scale-out.
    let d = p.decide(&obs(502.0, 5.0, 3), Some(&narrow(195.0)));
    assert_eq!(d.desired, 20);
}

#[test]
fn with_reactive_scale_in_target_tracking_scales_out_and_only_its_hold_keeps_a_count() {
    let mut p = Policy::new(PolicyConfig {
        scale_in: ScaleIn::Reactive,
        // The plan's own window would keep 15 for an hour.
        scale_in_stabilization_s: 3600.0,
        max_scale_in_step: 20,
        ..cfg()
    });
    // Demand jumps to 60 while the forecast still says 25: the plan asks 3, target tracking 12.
    let d = p.decide(&obs(0.0, 60.0, 3), Some(&narrow(25.0)));
    assert_eq!(d.desired, 12, "{}", d.reason);
    // The plan asks 16, then 3 again; target tracking's hold ends five minutes on.
    let d = p.decide(&obs(10.0, 5.0, 12), Some(&narrow(150.0)));
    assert_eq!(d.desired, 16, "{}", d.reason);
    let d = p.decide(&obs(20.0, 5.0, 16), Some(&narrow(25.0)));
    assert_eq!(d.desired, 12, "target tracking's hold: {}", d.reason);
    assert!(d.reason.contains("target tracking"), "{}", d.reason);
    let d = p.decide(&obs(320.0, 5.0, 12), Some(&narrow(25.0)));
    assert_eq!(d.desired, 3, "not the plan's hour: {}", d.reason);
}

#[test]
fn with_no_warm_up_demand_now_is_asked_for() {
    let mut p = Policy::new(PolicyConfig {
        warmup_s: 0.0,
        ..cfg()
    });
    // Demand 195 needs 20 at full capacity now; the forecast says 25.
    let d = p.decide(&obs(0.0, 195.0, 3), Some(&narrow(25.0)));
    assert_eq!(d.desired, 20, "{}", d.reason);
}

#[test]
fn more_demand_than_can_be_counted_asks_for_the_most() {
    let mut p = Policy::new(PolicyConfig {
        capacity_per_instance: 1e-300,
        max_instances: 10_000,
        ..cfg()
    });
    let d = p.decide(&obs(0.0, 1e10, 3), Some(&narrow(1e10)));
    assert_eq!(d.desired, 10_000, "{}", d.reason);
}

#[test]
fn a_held_count_or_a_new_configuration_keeps_the_window() {
    let mut p = Policy::new(cfg());
    p.hold(0.0, 12);
    let d = p.decide(&obs(10.0, 1.0, 12), Some(&narrow(1.0)));
    assert_eq!(d.desired, 12, "held since start: {}", d.reason);
    p.reconfigure(PolicyConfig {
        capacity_per_instance: 20.0,
        ..cfg()
    });
    let d = p.decide(&obs(20.0, 1.0, 12), Some(&narrow(1.0)));
    assert_eq!(
        d.desired, 12,
        "still held after a new capacity: {}",
        d.reason
    );
    let d = p.decide(&obs(301.0, 1.0, 12), Some(&narrow(1.0)));
    assert_eq!(d.desired, 11, "then by steps: {}", d.reason);
}

#[test]
fn running_short_more_often_than_the_budget_raises_the_plan() {
    let f = fc(40.0, 90.0);
    let mut p = Policy::new(cfg());
    let first = p.decide(&obs(0.0, 10.0, 2), Some(&f));
    // Demand keeps finding too little ready capacity.
    let mut d = first.clone();
    for i in 1..=100 {
        d = p.decide(&obs(f64::from(i) * 10.0, 150.0, d.desired), Some(&f));
    }
    assert!(
        d.desired > first.desired,
        "{} then {}",
        first.desired,
        d.desired
    );
    assert!(
        d.reason.contains("short more often than it"),
        "{}",
        d.reason
    );
    // Within its budget a plan is never priced below it.
    let mut p = Policy::new(cfg());
    let mut d = p.decide(&obs(0.0, 10.0, 2), Some(&f));
    for i in 1..=100 {
        d = p.decide(&obs(f64::from(i) * 10.0, 1.0, d.desired), Some(&f));
    }
    assert_eq!(d.desired, first.desired, "{}", d.reason);
    assert!(!d.reason.contains("short more often"), "{}", d.reason);
}

#[test]
fn a_plan_dearer_than_the_spend_ceiling_hands_over_to_target_tracking() {
    // Demand stays at 10 (at 50% of 10 per instance, target tracking holds 2), but the
    // forecast keeps promising 150 that never comes: the plan holds 15.
    let f = narrow(150.0);
    let run = |ceiling: f64| {
        let mut p = Policy::new(PolicyConfig {
            spend_ceiling: ceiling,
            decision_interval_s: 60.0,
            ..cfg()
        });
        let mut d = p.decide(&obs(0.0, 10.0, 2), Some(&f));
        for i in 1..=400 {
            d = p.decide(&obs(f64::from(i) * 60.0, 10.0, d.desired), Some(&f));
        }
        d
    };
    let free = run(1000.0);
    assert!(free.desired > 10, "{}", free.reason);
    let capped = run(1.4);
    assert!(capped.desired < free.desired, "{}", capped.reason);
    assert!(
        capped.reason.contains("following target tracking"),
        "{}",
        capped.reason
    );
}

#[test]
fn the_spend_ceiling_follows_the_budget_unless_set() {
    let at = |shortfall_budget: f64, spend_ceiling: f64| {
        PolicyConfig {
            shortfall_budget,
            spend_ceiling,
            ..PolicyConfig::default()
        }
        .spend_ceiling_in_force()
    };
    assert!((at(DEFAULT_SHORTFALL_BUDGET, 0.0) - 1.4).abs() < 1e-9);
    let (c2, c1) = (at(0.02, 0.0), at(0.01, 0.0));
    assert!((2.9..3.1).contains(&c2), "{c2}");
    assert!((5.3..5.5).contains(&c1), "{c1}");
    assert_eq!(at(0.2, 0.0), 1.0, "never below target tracking's own spend");
    assert_eq!(at(0.01, 1.2), 1.2, "a ceiling set is the ceiling");
}

#[test]
fn the_lead_is_the_next_decisions_to_cover() {
    // Asked now, an instance serves from the warm-up (60 s) until what the next decision (10 s
    // on) asks is ready: the ramp at the lead (70 s) is that decision's, not this one's.
    let point = |horizon_s: f64, p50: f64| ForecastPoint {
        horizon_s,
        p50,
        p90: p50 + 0.1,
        p99: p50 + 0.2,
    };
    let mut f = narrow(25.0);
    f.points = vec![point(60.0, 25.0), point(70.0, 95.0)];
    let d = Policy::new(cfg()).decide(&obs(0.0, 20.0, 2), Some(&f));
    assert_eq!(d.desired, 3, "{}", d.reason);
    // With no horizon before the lead, the lead is what is asked.
    f.points = vec![point(70.0, 95.0)];
    let d = Policy::new(cfg()).decide(&obs(0.0, 20.0, 2), Some(&f));
    assert_eq!(d.desired, 10, "{}", d.reason);
}

#[test]
fn a_scheduled_entry_raises_the_plan_and_says_which() {
    use crate::schedule::{Entry, Firing, Raise, Schedule};
    let entry = |name: &str, raise| Entry {
        name: name.into(),
        firing: Firing::At(1000.0),
        duration_s: 600.0,
        raise,
    };
    let config = |raise| PolicyConfig {
        schedule: Schedule {
            entries: vec![entry("sale", raise)],
        },
        ..cfg()
    };
    // Lead 70 s: raised from t = 930 to 1600.
    let mut p = Policy::new(config(Raise::MinInstances(12)));
    let before = p.decide(&obs(920.0, 40.0, 4), Some(&narrow(40.0)));
    assert_eq!((before.desired, before.schedule.as_deref()), (5, None));
    let raised = p.decide(&obs(930.0, 40.0, 4), Some(&narrow(40.0)));
    assert_eq!(raised.desired, 12);
    assert_eq!(raised.schedule.as_deref(), Some("sale"));
    assert!(
        raised
            .reason
            .contains("scheduled: sale (at 1970-01-01T00:16:40Z, 10m)"),
        "{}",
        raised.reason
    );
    // A demand factor plans for that multiple of what the plan covers (just over 40 → just
    // over 60: 7 instances).
    let mut p = Policy::new(config(Raise::DemandFactor(1.5)));
    let raised = p.decide(&obs(1599.0, 40.0, 4), Some(&narrow(40.0)));
    assert_eq!(raised.desired, 7, "{}", raised.reason);
    let after = p.decide(&obs(1600.0, 40.0, 7), Some(&narrow(40.0)));
    assert_eq!(after.schedule, None);
    // In the fallback, target tracking on 1.5x demand: 60 at 50% of 10 = 12.
    let mut p = Policy::new(config(Raise::DemandFactor(1.5)));
    let fallback = p.decide(&obs(1000.0, 40.0, 4), None);
    assert_eq!((fallback.desired, fallback.fallback), (12, true));
    // An entry never lowers the plan.
    let mut p = Policy::new(config(Raise::MinInstances(3)));
    let kept = p.decide(&obs(1000.0, 40.0, 4), Some(&narrow(40.0)));
    assert_eq!((kept.desired, kept.schedule), (5, None));
}

#[test]
fn a_reconfigured_warm_up_keeps_target_trackings_hold() {
    let config = PolicyConfig {
        scale_in: ScaleIn::Reactive,
        scale_in_stabilization_s: 0.0,
        ..cfg()
    };
    let mut p = Policy::new(config.clone());
    // 50 at 50% of 10 per instance: target tracking needs 10, and holds it five minutes.
    p.decide(&obs(0.0, 50.0, 2), Some(&narrow(50.0)));
    p.reconfigure(PolicyConfig {
        warmup_s: 90.0,
        ..config.clone()
    });
    let d = p.decide(&obs(10.0, 5.0, 10), Some(&narrow(5.0)));
    assert_eq!(d.desired, 10, "{}", d.reason);
    // A new capacity is a new rule, and the hold goes on under it.
    p.reconfigure(PolicyConfig {
        capacity_per_instance: 20.0,
        ..config
    });
    let d = p.decide(&obs(20.0, 5.0, 10), Some(&narrow(5.0)));
    assert_eq!(d.desired, 10, "{}", d.reason);
}

#[test]
fn counted_demand_is_covered_in_whole_counts() {
    // Demand comes in counts of 20 (two instances each). The forecast's smooth quantiles put
    // what is worth covering (33.9) between one count and the next, and capacity for a
    // fraction of a count serves exactly what capacity for none does: 20 is covered.
    let decide = |seen: &[f64]| {
        let mut p = Policy::new(cfg());
        let mut last = None;
        for (i, &v) in seen.iter().cycle().take(4 * 64).enumerate() {
            last = Some(p.decide(&obs(i as f64 * 10.0, v, 2), Some(&fc(22.0, 30.0))));
        }
        last.expect("a decision")
    };
    let counted = decide(&[0.0, 20.0, 0.0, 20.0]);
    assert_eq!(counted.desired, 2, "{}", counted.reason);
    assert!(
        counted
            .reason
            .contains("20.000 worth covering in whole counts of 20"),
        "{}",
        counted.reason
    );
    // The same forecast on demand that is not counted (some values are fractions) is covered
    // where it stands, 33.9: four instances.
    let measured = decide(&[0.0, 20.0, 0.5, 20.0]);
    assert_eq!(measured.desired, 4, "{}", measured.reason);
}

/// Whether row `i` of [`decide_rows`]'s series bursts: in about 3% of rows, at times no
/// forecast can place, so the plan runs over its budget.
fn burst(i: usize) -> bool {
    ((i as u64).wrapping_mul(2_654_435_761) >> 7) & 31 == 0
}

/// Decides on a bursty counted series (mostly 3 to 7 counts, bursts to 40) with a forecaster, from row `from` to `to`, feeding
/// `f` and keeping `current`; returns the decisions.
fn decide_rows(
    p: &mut Policy,
    f: &mut crate::Forecaster,
    current: &mut u32,
    rows: std::ops::Range<usize>,
) -> Vec<Decision> {
    let mut out = Vec::new();
    let mut horizons = Vec::new();
    for i in rows {
        let t = i as f64 * 10.0;
        let v = if burst(i) { 40.0 } else { 3.0 + (i % 5) as f64 };
        f.observe(t, v);
        horizons.clear();
        lead_horizons(10.0, p.config().lead_s(), &mut horizons);
        let fc = f.forecast(&horizons);
        let d = p.decide(&obs(t, v, *current), fc.as_ref());
        *current = d.desired;
        out.push(d);
    }
    out
}

#[test]
fn a_restored_memory_decides_as_if_the_policy_never_stopped() {
    // With target tracking scaling in (and a stabilisation window shorter than its hold), its
    // five-minute hold is part of the memory too.
    for (scale_in, stabilisation_s) in [(ScaleIn::Predictive, 300.0), (ScaleIn::Reactive, 60.0)] {
        let config = PolicyConfig {
            shortfall_budget: 0.01,
            scale_in,
            scale_in_stabilization_s: stabilisation_s,
            ..cfg()
        };
        let mut fc_config = crate::ForecastConfig::default();
        fc_config.horizon_s = fc_config.horizon_s.max(config.lead_s());
        let mut f = crate::Forecaster::new(fc_config);
        let mut p = Policy::new(config.clone());
        let mut current = config.min_instances;
        // Stopped just after a burst: every window then holds something to forget.
        let stop = (1500..).find(|&i| burst(i)).expect("bursts recur") + 1;
        decide_rows(&mut p, &mut f, &mut current, 0..stop);
        let t = (stop - 1) as f64 * 10.0;
        let memory = p.memory(t);
        assert!(
            memory.price.factor() > 1.01,
            "the series should run over its budget: {}",
            memory.price.factor()
        );
        assert!(memory.lattice.unit().is_some(), "{:?}", memory.lattice);

        // Through JSON, as the binaries store it.
        let json = serde_json::to_string(&memory).expect("serialises");
        let back: PolicyMemory = serde_json::from_str(&json).expect("deserialises");
        assert_eq!(back, memory);
        let mut restored = Policy::new(config.clone());
        restored.restore(back, t).expect("same layout");
        let mut fresh = Policy::new(config.clone());

        let (mut f2, mut f3) = (f.clone(), f.clone());
        let (mut c2, mut c3) = (current, current);
        let went_on = decide_rows(&mut p, &mut f, &mut current, stop..stop + 1000);
        let after_restore = decide_rows(&mut restored, &mut f2, &mut c2, stop..stop + 1000);
        let forgetful = decide_rows(&mut fresh, &mut f3, &mut c3, stop..stop + 1000);
        assert_eq!(after_restore, went_on, "{scale_in:?}");
        assert_ne!(
            forgetful, went_on,
            "{scale_in:?}: a policy without the memory must decide differently, or this \
             test shows nothing"
        );
    }
}

/// Under another target-tracking rule its hold means other counts, and is left, as
/// `reconfigure` leaves it; the stabilisation window is kept whatever the rule.
#[test]
fn target_tracking_is_restored_only_under_its_own_rule() {
    let mut p = Policy::new(cfg());
    p.decide(&obs(0.0, 80.0, 2), None);
    let memory = p.memory(0.0);
    assert!(memory.tracking.need(80.0) > 2);
    let mut same = Policy::new(cfg());
    same.restore(memory.clone(), 5.0).expect("restores");
    assert_eq!(same.tracking, p.tracking);
    let other = PolicyConfig {
        target_utilization: 0.9,
        ..cfg()
    };
    let mut q = Policy::new(other.clone());
    q.restore(memory, 5.0).expect("restores");
    assert_eq!(q.tracking, other.target_tracking(), "a fresh hold");
    assert_eq!(q.window, p.window, "the stabilisation window is kept");
}

#[test]
fn a_memory_of_another_layout_or_from_the_future_is_refused() {
    let p = Policy::new(cfg());
    let mut other = p.memory(100.0);
    other.layout = MEMORY_LAYOUT + 1;
    let mut q = Policy::new(cfg());
    assert_eq!(
        q.restore(other, 200.0),
        Err(MemoryError::Layout {
            found: MEMORY_LAYOUT + 1,
            known: MEMORY_LAYOUT
        })
    );
    assert!(matches!(
        q.restore(p.memory(300.0), 200.0),
        Err(MemoryError::FromTheFuture { .. })
    ));
    assert_eq!(q.restore(p.memory(100.0), 200.0), Ok(()));
}

#[test]
fn what_was_learned_reads_in_one_line() {
    let mut p = Policy::new(cfg());
    let fresh = p.learned();
    assert_eq!(fresh.price_factor, 1.0);
    assert_eq!(fresh.spend_ratio, 1.0);
    assert_eq!(fresh.spend_ceiling, cfg().spend_ceiling_in_force());
    assert_eq!(
        fresh.to_string(),
        "a short sample priced 1.0x the budget's; spend 1.00x target tracking's (ceiling 1.40x)"
    );
    // Counted demand, once trusted, is named.
    for i in 0..lattice::EVIDENCE {
        p.decide(&obs(f64::from(i), 3.0, 2), None);
    }
    assert!(
        p.learned()
            .to_string()
            .ends_with("; demand in whole counts of 3")
    );
}
