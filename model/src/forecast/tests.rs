//! The forecaster's tests: synthetic series with known structure.

use super::*;

fn rng(seed: u64) -> impl FnMut() -> f64 {
    let mut s = seed.max(1);
    move || {
        s ^= s << 13;
        s ^= s >> 7;
        s ^= s << 17;
        (s >> 11) as f64 / (1u64 << 53) as f64
    }
}

/// Daily sine plus noise at 5-minute cadence.
fn daily(days: usize, noise: f64, seed: u64) -> (Vec<f64>, Vec<f64>) {
    let mut r = rng(seed);
    (0..days * 288)
        .map(|i| {
            let t = 1_700_000_000.0 + i as f64 * 300.0;
            let s = (2.0 * std::f64::consts::PI * t / 86_400.0).sin();
            (t, 100.0 + 40.0 * s + noise * (r() - 0.5))
        })
        .unzip()
}

#[test]
fn detects_the_daily_season_and_beats_naive() {
    let (t, y) = daily(8, 10.0, 1);
    let mut f = Forecaster::new(ForecastConfig {
        min_horizon_steps: 6,
        ..Default::default()
    });
    let (mut err, mut naive) = (0.0, 0.0);
    for i in 0..t.len() {
        f.observe(t[i], y[i]);
        if i >= 6 * 288 && i + 6 < t.len() {
            let fc = f.forecast_steps(6).expect("forecast");
            err += (fc.points[5].p50 - y[i + 6]).abs();
            naive += (y[i] - y[i + 6]).abs();
        }
    }
    assert_eq!(f.season_s(), Some(86_400.0));
    assert!(err < 0.7 * naive, "model {err} vs naive {naive}");
}

#[test]
fn a_daily_cycle_that_stopped_is_no_longer_taken_out() {
    // Seven days of a daily cycle, then two flat days: the autocorrelation still shows the
    // cycle, but a profile taken out of the flat days would put it back in upside down.
    let (t, mut y) = daily(9, 2.0, 3);
    for v in &mut y[7 * 288..] {
        *v = 100.0;
    }
    let mut f = Forecaster::new(ForecastConfig::default());
    for i in 0..t.len() {
        f.observe(t[i], y[i]);
    }
    f.refit_with_detection();
    assert_eq!(
        seasonality::detect(f.hist.times(), f.hist.values(), f.step_s()),
        Some(86_400.0),
        "the autocorrelation alone keeps the cycle"
    );
    assert_eq!(f.season_s(), None);
    let fc = f.forecast_steps(6).expect("forecast");
    assert!(
        fc.points.iter().all(|p| (p.p50 - 100.0).abs() < 5.0),
        "{:?}",
        fc.points.iter().map(|p| p.p50).collect::<Vec<_>>()
    );
}

#[test]
fn p90_covers_about_ninety_percent() {
    let mut r = rng(9);
    let mut f = Forecaster::new(ForecastConfig {
        min_horizon_steps: 5,
        ..Default::default()
    });
    let (mut hit, mut n) = (0, 0);
    let mut pending: Vec<(usize, f64)> = Vec::new();
    for i in 0..6000 {
        let v = 50.0 + 10.0 * r() + 5.0 * (i as f64 / 500.0).sin();
        for &(due, p90) in pending.iter().filter(|p| p.0 == i) {
            let _ = due;
            hit += usize::from(v <= p90);
            n += 1;
        }
        pending.retain(|p| p.0 > i);
        f.observe(i as f64 * 60.0, v);
        if i > 1500 {
            let fc = f.forecast_steps(5).expect("forecast");
            pending.push((i + 5, fc.points[4].p90));
        }
    }
    let cov = hit as f64 / n as f64;
    assert!((0.85..=0.95).contains(&cov), "coverage {cov}");
}

#[test]
fn a_past_forecast_does_not_depend_on_future_data() {
    let (t, y) = daily(4, 20.0, 5);
    let cut = 700;
    let mut other = y.clone();
    other[cut + 1..]
        .iter_mut()
        .for_each(|v| *v = *v * 5.0 + 1000.0);
    let run = |vals: &[f64]| {
        let mut f = Forecaster::new(ForecastConfig::default());
        let mut out = Vec::new();
        for i in 0..=cut + 50 {
            f.observe(t[i], vals[i]);
            if i <= cut {
                out.push(f.forecast(&[300.0, 900.0]));
            }
        }
        out
    };
    assert_eq!(run(&y), run(&other));
}

#[test]
fn cold_start_says_so_then_stops() {
    let mut f = Forecaster::new(ForecastConfig::default());
    assert!(f.forecast(&[60.0]).is_none());
    f.observe(0.0, 1.0);
    assert!(f.forecast(&[60.0]).expect("some").fallback.is_some());
    for i in 1..10 {
        f.observe(i as f64 * 10.0, 1.0 + i as f64);
    }
    let fc = f.forecast(&[60.0]).expect("some");
    assert!(
        fc.fallback
            .as_deref()
            .is_some_and(|w| w.contains("cold start"))
    );
    // The last value until the models are scored: no member is trusted before it is scored,
    // and a trend extrapolated from a few rows loses to the last value more often than not.
    assert_eq!(fc.points[0].p50, 10.0, "{fc:?}");
    assert_eq!(fc.model, "naive");
    let mut r = rng(3);
    for i in 10..400 {
        f.observe(i as f64 * 10.0, 5.0 + r());
    }
    let fc = f.forecast(&[60.0]).expect("some");
    assert!(fc.fallback.is_none(), "{fc:?}");
    assert!(fc.error_ratio.is_some());
}

#[test]
fn survives_gaps_irregular_cadence_and_bad_values() {
    let mut r = rng(11);
    let mut f = Forecaster::new(ForecastConfig::default());
    let mut t = 0.0;
    for i in 0..3000 {
        t += if i % 700 == 0 {
            3600.0
        } else {
            5.0 + 10.0 * r()
        };
        f.observe(t, if i % 97 == 0 { f64::NAN } else { 10.0 + r() });
        // Out of order: ignored.
        f.observe(t - 1e6, 1e9);
    }
    let fc = f.forecast(&[10.0, 300.0, 600.0]).expect("forecast");
    for p in &fc.points {
        assert!(
            p.p50.is_finite() && p.p50 <= p.p90 && p.p90 <= p.p99,
            "{p:?}"
        );
        assert!(p.p50 > 5.0 && p.p50 < 15.0, "{p:?}");
    }
    assert_eq!(fc.points.len(), 3);
}

#[test]
fn beats_naive_after_thirty_minutes_of_ten_second_data() {
    // A morning ramp with noise: after 30 minutes (180 points) the forecast for 5 minutes
    // ahead must beat "no change" over the next 30 minutes.
    let mut r = rng(21);
    let y: Vec<f64> = (0..400)
        .map(|i| 20.0 + 0.05 * i as f64 + 2.0 * (r() - 0.5))
        .collect();
    let mut f = Forecaster::new(ForecastConfig::default());
    let (mut err, mut naive) = (0.0, 0.0);
    for i in 0..y.len() - 30 {
        f.observe(i as f64 * 10.0, y[i]);
        if (180..360).contains(&i) {
            let fc = f.forecast(&[300.0]).expect("forecast");
            assert!(fc.fallback.is_none(), "{i}: {fc:?}");
            err += (fc.points[0].p50 - y[i + 30]).abs();
            naive += (y[i] - y[i + 30]).abs();
        }
    }
    assert!(err < 0.8 * naive, "model {err} vs naive {naive}");
}

/// Scoring every step up to the lead and two farther horizons gives, at those horizons,
/// the forecast that scoring every step up to the farthest gives.
#[test]
fn extra_horizons_forecast_as_every_step_would() {
    let mut dense = Forecaster::new(ForecastConfig::default());
    let mut sparse = Forecaster::new(ForecastConfig {
        horizon_s: 310.0,
        extra_horizons_s: vec![600.0, 900.0],
        ..Default::default()
    });
    let horizons = [60.0, 120.0, 300.0, 310.0, 600.0, 900.0];
    let mut next = rng(7);
    let mut compared = 0;
    for i in 0..3_000 {
        let t = 1.7e9 + i as f64 * 10.0;
        let y = 4.0 + 2.0 * (t * std::f64::consts::TAU / 1_800.0).sin() + 0.3 * next();
        dense.observe(t, y);
        sparse.observe(t, y);
        let (Some(a), Some(b)) = (dense.forecast(&horizons), sparse.forecast(&horizons)) else {
            continue;
        };
        assert_eq!(
            (a.model, &a.fallback, a.error_ratio),
            (b.model, &b.fallback, b.error_ratio),
            "at row {i}"
        );
        for (p, q) in a.points.iter().zip(&b.points) {
            for (x, y) in [(p.p50, q.p50), (p.p90, q.p90), (p.p99, q.p99)] {
                assert!(
                    (x - y).abs() <= 1e-9 * x.abs().max(1.0),
                    "row {i}, {} s: {x} vs {y}",
                    p.horizon_s
                );
            }
        }
        compared += 1;
    }
    assert!(compared > 2_900 && dense.season_s().is_some());
    assert_eq!((dense.k(), sparse.k()), (90, 33));
}

#[test]
fn history_is_bounded_by_age() {
    let mut f = Forecaster::new(ForecastConfig {
        max_history_s: 3600.0,
        horizon_s: 10.0,
        ..Default::default()
    });
    for i in 0..10_000 {
        f.observe(i as f64, 1.0);
    }
    assert_eq!(f.len(), 3601);
}

/// A coordinator observes on its own loop, so the measured cadence can shrink after the
/// first refits; a warm forecaster must not fall back into cold start when it does.
#[test]
fn finer_cadence_later_keeps_a_warm_forecaster_warm() {
    let mut f = Forecaster::new(ForecastConfig::default());
    let level = |t: f64| 20.0 + (t * 0.3).sin();
    let mut t = 0.0;
    let mut warm = false;
    for i in 0..400 {
        t += if i < 150 { 1.5 } else { 1.0 };
        f.observe(t, level(t));
        let fc = f.forecast(&[21.0]).expect("a forecast");
        let cold = fc
            .fallback
            .as_deref()
            .is_some_and(|r| r.starts_with("cold start"));
        if warm {
            assert!(
                !cold,
                "back in cold start at observation {i}: {:?}",
                fc.fallback
            );
        }
        warm |= i > 100 && !cold;
    }
    assert!(warm, "the forecaster never warmed up");
}

/// Hourly, a daily cycle from a floor of 10 to a peak of 90 in the afternoon, with noise.
fn hourly_daily(days: usize, seed: u64) -> (Vec<f64>, Vec<f64>) {
    let mut r = rng(seed);
    (0..days * 24)
        .map(|i| {
            let t = 1_699_920_000.0 + i as f64 * 3600.0;
            let h = (i % 24) as f64;
            let peak = 80.0 * (-((h - 14.0) / 2.5).powi(2)).exp();
            (t, (15.0 + peak + 6.0 * (r() - 0.5)).max(10.0))
        })
        .unzip()
}

/// Peak-to-trough of the P50 over steps `from..=to` of a forecast.
fn swing(fc: &Forecast, from: usize, to: usize) -> f64 {
    let p: Vec<f64> = fc.points[from - 1..to].iter().map(|p| p.p50).collect();
    p.iter().copied().fold(f64::MIN, f64::max) - p.iter().copied().fold(f64::MAX, f64::min)
}

#[test]
fn the_median_never_falls_below_what_the_series_has_shown() {
    // Evening ramps down, extrapolated by a short history's trend, went below zero and were
    // clamped there, on a series that never falls below 10.
    let (t, y) = hourly_daily(10, 3);
    let mut f = Forecaster::new(ForecastConfig::default());
    let mut lowest = f64::INFINITY;
    for i in 0..t.len() {
        f.observe(t[i], y[i]);
        let fc = f.forecast_steps(48).expect("forecast");
        for p in &fc.points {
            lowest = lowest.min(p.p50);
        }
    }
    assert!(lowest >= 10.0 - 1e-9, "P50 reached {lowest}");
}

#[test]
fn a_daily_shape_holds_on_the_second_day_ahead() {
    // Hourly data shows a daily season after three days: it must be found then, not 512
    // observations (three weeks) later, and the seasonal models must reach past one season,
    // so that the shape holds on the second day ahead as on the first.
    let (t, y) = hourly_daily(8, 4);
    let mut f = Forecaster::new(ForecastConfig::default());
    let mut fc = None;
    for i in 0..t.len() {
        f.observe(t[i], y[i]);
        fc = f.forecast_steps(48);
    }
    assert_eq!(f.season_s(), Some(86_400.0));
    let fc = fc.expect("forecast");
    let (first, second) = (swing(&fc, 1, 24), swing(&fc, 25, 48));
    assert!(first > 0.7 * 80.0, "first day's swing {first}");
    assert!(
        second > 0.9 * first,
        "second day's swing {second} vs {first}"
    );
}

#[test]
fn an_hourly_series_keeps_enough_history_to_show_a_weekly_cycle() {
    // Weekdays at 100, weekends at 40, hourly for eight weeks: fourteen days of history hold
    // two cycles (336 rows), too few to trust; 1,000 rows hold almost six.
    let mut r = rng(5);
    let mut f = Forecaster::new(ForecastConfig::default());
    for i in 0..8 * 7 * 24 {
        let day = (i / 24) % 7;
        let v = if day >= 5 { 40.0 } else { 100.0 } + 4.0 * (r() - 0.5);
        f.observe(1_699_920_000.0 + i as f64 * 3600.0, v);
    }
    f.refit_with_detection();
    assert_eq!(f.season_s(), Some(604_800.0));
}

#[test]
fn a_filling_history_is_told_apart_from_a_cold_start_that_lasts() {
    // Ten-second rows and the agent's horizons (the lead and a 15-minute report horizon):
    // while the models wait to be scored the forecast says how far the history has filled,
    // and they are scored before the time it gives.
    let horizons = [310.0, 900.0];
    let mut f = Forecaster::new(ForecastConfig::default());
    f.observe(0.0, 1.0);
    let first = f.forecast(&horizons).expect("some");
    assert_eq!(first.filling.map(|x| x.needed_s), Some(None), "{first:?}");
    let mut r = rng(5);
    let mut needed = None;
    let mut scored_at = None;
    for i in 1..600 {
        let t = f64::from(i) * 10.0;
        f.observe(t, 5.0 + r());
        let fc = f.forecast(&horizons).expect("some");
        match (&fc.fallback, fc.filling) {
            (Some(_), Some(fill)) => {
                assert!((fill.seen_s - t).abs() < 1e-9, "{fill:?} at {t}");
                needed = fill.needed_s.or(needed);
            }
            (Some(why), None) => panic!("cold start outlived its filling at {t}: {why}"),
            (None, filling) => {
                assert_eq!(filling, None);
                scored_at.get_or_insert(t);
            }
        }
    }
    let (needed, scored_at) = (needed.expect("a needed time"), scored_at.expect("scored"));
    assert!(
        scored_at < needed,
        "scored at {scored_at} s, filling said {needed} s"
    );
    assert!(needed < 3600.0, "{needed} s to fill");
}

#[test]
fn a_cold_start_moves_its_near_horizons_once_they_are_scored() {
    // A ramp: the near horizon is scored long before the far one, and there the models beat
    // the last value; the far horizon still forecasts the last value, and the reason says so.
    let mut f = Forecaster::new(ForecastConfig::default());
    let mut scored_near = None;
    for i in 0..400 {
        f.observe(i as f64 * 10.0, i as f64);
        let fc = f.forecast(&[10.0, 7200.0]).expect("some");
        let Some(why) = fc.fallback.as_deref() else {
            break;
        };
        assert!(
            i == 0 || why.contains("the last value at each horizon until"),
            "{why}"
        );
        assert_eq!(fc.points[1].p50, i as f64, "the far horizon waits: {fc:?}");
        if fc.points[0].p50 > i as f64 {
            scored_near.get_or_insert(i);
        }
    }
    assert!(
        scored_near.is_some(),
        "the near horizon never moved in cold start"
    );
}

/// An idle stretch (ten hours of zeros at 1-minute steps) between busy ones: once the series
/// moves again, the P90 band covers it within tens of observations, not hours. The flat
/// stretch's exact hits used to fill the residual windows with zeros and push the P90's level
/// down, and the recent volatility, decayed to nothing, was let back up a few percent a row:
/// half the forecasts 50 to 100 rows after were short of their P90.
#[test]
fn the_band_opens_again_soon_after_an_idle_stretch() {
    let mut r = rng(11);
    let mut f = Forecaster::new(ForecastConfig {
        min_horizon_steps: 6,
        ..Default::default()
    });
    let busy = |r: &mut dyn FnMut() -> f64| 20.0 + 8.0 * (r() - 0.5);
    let mut t = 1_700_000_000.0;
    for i in 0..1600 {
        let v = if i < 1000 { busy(&mut r) } else { 0.0 };
        f.observe(t, v);
        t += 60.0;
    }
    // The 50 forecasts issued from the 50th to the 100th busy row after the stretch.
    let mut issued = Vec::new();
    let mut values = Vec::new();
    for i in 0..110 {
        let v = busy(&mut r);
        f.observe(t, v);
        values.push(v);
        if (50..100).contains(&i) {
            issued.push((i + 6, f.forecast_steps(6).expect("forecast").points[5].p90));
        }
        t += 60.0;
    }
    let covered = issued
        .iter()
        .filter(|&&(target, p90)| values[target] <= p90)
        .count();
    assert!(covered >= 40, "{covered} of 50 covered");
}

/// The same series a trillion higher is forecast as well: the forecasts kept to be scored keep
/// their precision (as `f32` values, rounded to 65,536 at 1e12, they swamped the errors the
/// models are weighed by).
#[test]
fn a_series_far_from_zero_is_forecast_as_well_as_near_it() {
    let mae = |offset: f64| {
        let mut r = rng(5);
        let mut f = Forecaster::new(ForecastConfig {
            min_horizon_steps: 15,
            ..Default::default()
        });
        let y: Vec<f64> = (0..3000)
            .map(|i| offset + 300.0 * (i as f64 / 90.0).sin() + 10.0 * (r() - 0.5))
            .collect();
        let mut err = 0.0;
        for i in 0..y.len() {
            f.observe(1_700_000_000.0 + 60.0 * i as f64, y[i]);
            if i >= 1000 && i + 15 < y.len() {
                err += (f.forecast_steps(15).expect("forecast").points[14].p50 - y[i + 15]).abs();
            }
        }
        err
    };
    let (near, far) = (mae(1e4), mae(1e12));
    assert!(far < 1.1 * near, "MAE {far} at 1e12 vs {near} at 1e4");
}

/// A forecaster out of cold start stays out when the cadence it measures shifts and the lead
/// it is asked for maps to a step it has not scored yet (a coordinator's loop under load): that
/// step is judged by the longest scored one next to it, not sent back to cold start mid-ramp.
#[test]
fn a_shift_in_cadence_does_not_send_a_warm_forecaster_back_to_cold_start() {
    let mut r = rng(7);
    let lead = 21.0;
    let mut f = Forecaster::new(ForecastConfig {
        horizon_s: lead,
        ..ForecastConfig::default()
    });
    let mut t = 1_700_000_000.0;
    let mut warm_at = None;
    let mut relapses = Vec::new();
    for i in 0..400 {
        // 1 s apart, then 0.9 s apart from observation 150 on.
        t += if i < 150 { 1.0 } else { 0.9 };
        let level = if i < 200 {
            20.0
        } else {
            20.0 + 0.2 * (i - 200) as f64
        };
        f.observe(t, level + r());
        let mut horizons = Vec::new();
        crate::policy::lead_horizons(f.step_s(), lead, &mut horizons);
        let cold = f.forecast(&horizons).is_none_or(|fc| fc.fallback.is_some());
        match (warm_at, cold) {
            (None, false) => warm_at = Some(i),
            (Some(_), true) => relapses.push(i),
            _ => {}
        }
    }
    assert!(
        warm_at.is_some_and(|w| w < 150),
        "never warm before the shift: {warm_at:?}"
    );
    assert!(
        relapses.is_empty(),
        "back in cold start at observations {relapses:?}"
    );
}
