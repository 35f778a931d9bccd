//! Why the forecaster's autoregression is fitted by hand rather than with `linfa`: the problem
//! it solves (a ridge regression of 31 horizons' targets on 9 lag differences plus an
//! intercept, over a 1,500-row window, as `model/src/forecast/ar.rs` builds it) fitted three ways:
//! - `closed_form`: one Gram matrix and one Cholesky solve with every horizon as a right-hand
//!   side, the model's approach (the solve is linfa-linalg's, so nothing here is hand-written);
//! - `linfa_per_horizon`: linfa's `ElasticNet` with no L1 term, once per horizon;
//! - `linfa_multi_task`: linfa's `MultiTaskElasticNet` with no L1 term, all horizons at once.
//!
//! Before the timings it prints how far each linfa fit's coefficients are from the exact
//! solution, and how many coordinate-descent sweeps it took: lag differences are strongly
//! correlated, which is what coordinate descent converges slowest on.

use std::hint::black_box;

use criterion::{Criterion, criterion_group, criterion_main};
use linfa::prelude::*;
use linfa_elasticnet::{ElasticNet, MultiTaskElasticNet};
use linfa_linalg::cholesky::SolveC;
use ndarray::{Array1, Array2, Axis};

/// The forecaster's recent lags, in rows.
const LAGS: [usize; 9] = [1, 2, 3, 5, 8, 13, 21, 34, 55];
/// Its training window, rows.
const ROWS: usize = 1500;
/// Horizons of a 310-second lead at a 10-second cadence.
const HORIZONS: usize = 31;
/// Ridge penalty per row (linfa's `penalty` with `l1_ratio` 0).
const PENALTY: f64 = 0.01;

/// A noisy AR(2) series with a slow swing, like a deseasonalised demand.
fn series(n: usize) -> Vec<f64> {
    let mut state = 0x9e37_79b9_7f4a_7c15_u64;
    let mut noise = move || {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        (state >> 11) as f64 / (1u64 << 53) as f64 - 0.5
    };
    let mut x = vec![0.0; n];
    for i in 2..n {
        x[i] = 1.2 * x[i - 1] - 0.3 * x[i - 2] + 0.1 * (i as f64 / 300.0).sin() + noise();
    }
    x
}

/// Features (lag differences, no intercept: both sides centre) and targets (changes 1..=H
/// rows ahead), as the forecaster's autoregression builds them.
fn problem() -> (Array2<f64>, Array2<f64>) {
    let max_lag = LAGS[LAGS.len() - 1];
    let xs = series(max_lag + ROWS + HORIZONS);
    let x = Array2::from_shape_fn((ROWS, LAGS.len()), |(r, c)| {
        let i = max_lag + r;
        xs[i] - xs[i - LAGS[c]]
    });
    let y = Array2::from_shape_fn((ROWS, HORIZONS), |(r, h)| {
        let i = max_lag + r;
        xs[i + h + 1] - xs[i]
    });
    (x, y)
}

/// The exact ridge solution for every horizon at once: centre, one Gram matrix plus the
/// penalty, one Cholesky solve with a right-hand side per horizon.
fn closed_form(x: &Array2<f64>, y: &Array2<f64>) -> Array2<f64> {
    let mx: Array1<f64> = x.mean_axis(Axis(0)).expect("rows");
    let my: Array1<f64> = y.mean_axis(Axis(0)).expect("rows");
    let xc = x - &mx;
    let yc = y - &my;
    let mut g = xc.t().dot(&xc);
    let n = x.nrows() as f64;
    for j in 0..g.nrows() {
        g[[j, j]] += n * PENALTY;
    }
    g.solvec(&xc.t().dot(&yc)).expect("positive definite")
}

fn per_horizon(x: &Array2<f64>, y: &Array2<f64>) -> (Array2<f64>, u32) {
    let mut coef = Array2::zeros((x.ncols(), y.ncols()));
    let mut sweeps = 0;
    for h in 0..y.ncols() {
        let data = Dataset::new(x.clone(), y.column(h).to_owned());
        let fit = ElasticNet::params()
            .penalty(PENALTY)
            .l1_ratio(0.0)
            .fit(&data)
            .expect("elastic net");
        coef.column_mut(h).assign(fit.hyperplane());
        sweeps = sweeps.max(fit.n_steps());
    }
    (coef, sweeps)
}

fn multi_task(x: &Array2<f64>, y: &Array2<f64>) -> (Array2<f64>, u32) {
    let data = Dataset::new(x.clone(), y.clone());
    let fit = MultiTaskElasticNet::params()
        .penalty(PENALTY)
        .l1_ratio(0.0)
        .fit(&data)
        .expect("multi-task elastic net");
    (fit.hyperplane().to_owned(), fit.n_steps())
}

/// Largest coefficient error relative to the largest exact coefficient.
fn relative_error(got: &Array2<f64>, exact: &Array2<f64>) -> f64 {
    let scale = exact.iter().fold(0.0_f64, |m, v| m.max(v.abs()));
    let worst = (got - exact).iter().fold(0.0_f64, |m, v| m.max(v.abs()));
    worst / scale
}

fn bench(c: &mut Criterion) {
    let (x, y) = problem();
    let exact = closed_form(&x, &y);
    let (one, one_sweeps) = per_horizon(&x, &y);
    let (all, all_sweeps) = multi_task(&x, &y);
    println!(
        "coefficients vs the exact solution: linfa per horizon {:.1e} (at most {one_sweeps} sweeps), \
         linfa multi-task {:.1e} ({all_sweeps} sweeps; at most 1000)",
        relative_error(&one, &exact),
        relative_error(&all, &exact),
    );
    let mut g = c.benchmark_group("ridge");
    g.bench_function("closed_form", |b| b.iter(|| black_box(closed_form(&x, &y))));
    g.bench_function("linfa_per_horizon", |b| {
        b.iter(|| black_box(per_horizon(&x, &y)))
    });
    g.bench_function("linfa_multi_task", |b| {
        b.iter(|| black_box(multi_task(&x, &y)))
    });
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
