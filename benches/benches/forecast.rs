//! Refit + forecast on 7 days of 1-minute data (10,080 points), headroom's forecaster next to
//! augurs (MSTL with an AutoETS trend, daily season) on the same series in the same run.
//! `headroom` is the scheduled refit (seasonality re-detected on every 16th, as live);
//! `headroom_with_season_detection` re-detects on every call.
//!
//! The series is a deterministic synthetic one with a daily cycle, trend and noise; set
//! `HEADROOM_BENCH_TRACE=path.csv` (`timestamp,value`) to bench on the first 10,080 rows of a
//! real trace instead.

use std::hint::black_box;

use augurs::ets::AutoETS;
use augurs::mstl::MSTLModel;
use augurs::prelude::*;
use criterion::{Criterion, criterion_group, criterion_main};
use headroom_model::{ForecastConfig, Forecaster};

const POINTS: usize = 7 * 1440;
const HORIZON: usize = 30;

fn series() -> (Vec<f64>, Vec<f64>) {
    if let Ok(path) = std::env::var("HEADROOM_BENCH_TRACE")
        && let Ok(text) = std::fs::read_to_string(&path)
    {
        let rows: Vec<(f64, f64)> = text
            .lines()
            .skip(1)
            .filter_map(|l| {
                let (t, v) = l.split_once(',')?;
                Some((t.trim().parse().ok()?, v.trim().parse().ok()?))
            })
            .take(POINTS)
            .collect();
        if rows.len() == POINTS {
            return rows.into_iter().unzip();
        }
    }
    let mut s = 0x9e37_79b9_7f4a_7c15u64;
    (0..POINTS)
        .map(|i| {
            s ^= s << 13;
            s ^= s >> 7;
            s ^= s << 17;
            let noise = (s >> 11) as f64 / (1u64 << 53) as f64 - 0.5;
            let day = (2.0 * std::f64::consts::PI * i as f64 / 1440.0).sin();
            (
                1_700_000_000.0 + 60.0 * i as f64,
                100.0 + 40.0 * day + 0.002 * i as f64 + 15.0 * noise,
            )
        })
        .unzip()
}

fn refit_forecast(c: &mut Criterion) {
    let (t, y) = series();
    let mut f = Forecaster::new(ForecastConfig {
        min_horizon_steps: HORIZON,
        ..ForecastConfig::default()
    });
    for (&t, &v) in t.iter().zip(&y) {
        f.observe(t, v);
    }
    let mut g = c.benchmark_group("refit_forecast_7d_1min");
    g.sample_size(30);
    g.bench_function("headroom", |b| {
        b.iter(|| {
            f.refit();
            black_box(f.forecast_steps(HORIZON))
        })
    });
    g.bench_function("headroom_with_season_detection", |b| {
        b.iter(|| {
            f.refit_with_detection();
            black_box(f.forecast_steps(HORIZON))
        })
    });
    g.bench_function("augurs_mstl_autoets", |b| {
        b.iter(|| {
            let model = MSTLModel::new(vec![1440], AutoETS::non_seasonal().into_trend_model());
            let fit = model.fit(black_box(&y)).expect("augurs fit");
            black_box(fit.predict(HORIZON, 0.8).expect("augurs predict"))
        })
    });
    g.finish();
}

criterion_group!(benches, refit_forecast);
criterion_main!(benches);
