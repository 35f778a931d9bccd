//! Ridge autoregression, one direct model per horizon, on recent lags and seasonal lags of the
//! deseasonalised series. All horizons share one Gram matrix, so the fit is a single
//! `XᵀX` plus a small Cholesky solve with `K` right-hand sides (closed-form ridge with ndarray:
//! linfa's estimators fit one target at a time and elastic net does not converge on raw lags).
//! Features and targets are winsorised so that spikes do not steer the fit.

use ndarray::{Array2, Axis, Slice};

use super::View;

/// Recent lags, in rows.
const LAGS: [usize; 9] = [1, 2, 3, 5, 8, 13, 21, 34, 55];
/// Rows of the recent window used for training.
const TRAIN_ROWS: usize = 1500;
/// Horizons whose targets are built and multiplied together in a fit.
const HORIZON_BLOCK: usize = 8;
/// Winsorising bound, in medians of the absolute column.
const CLIP: f64 = 6.0;
/// Ridge penalty relative to each feature's own sum of squares.
const RIDGE: f64 = 0.02;

/// A fitted direct multi-horizon autoregression.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Ar {
    seasonal: Option<[f64; 2]>,
    period: f64,
    clip: Vec<f64>,
    /// The horizons fitted, in rows ahead.
    steps: Vec<usize>,
    /// Coefficients, features × horizons.
    coef: Array2<f64>,
}

impl Ar {
    /// Number of features for a (non-)seasonal model.
    fn width(seasonal: bool) -> usize {
        1 + LAGS.len() + if seasonal { 2 } else { 0 }
    }

    /// Fits the horizons `steps` (rows ahead, none beyond `k`) on the recent window of
    /// `view`. The training window leaves room for horizon `k`, so a horizon's coefficients
    /// do not depend on which others are fitted with it.
    pub(crate) fn fit(view: &View, k: usize, steps: &[usize]) -> Option<Ar> {
        let steps: Vec<usize> = steps.iter().copied().filter(|&s| s <= k).collect();
        let n = view.len();
        let max_lag = LAGS[LAGS.len() - 1];
        let hi = n.checked_sub(k + 1)?;
        let (seasonal, period) = match view.profile {
            Some(p) => (
                Some([view.step, (k / 2).max(1) as f64 * view.step]),
                p.period,
            ),
            None => (None, 0.0),
        };
        let mut lo = max_lag.max(hi.saturating_sub(TRAIN_ROWS - 1));
        if period > 0.0 {
            lo = lo.max(view.times.partition_point(|&t| t < view.times[0] + period));
        }
        let p = Self::width(seasonal.is_some());
        if hi < lo || hi - lo + 1 < 4 * p {
            return None;
        }
        let rows = hi - lo + 1;
        let fitted = steps.len();
        let mut model = Ar {
            seasonal,
            period,
            clip: vec![f64::INFINITY; p],
            steps,
            coef: Array2::zeros((p, fitted)),
        };
        let base = lo - max_lag;
        let xs: Vec<f64> = (base..=hi + k).map(|i| view.x(i)).collect();
        let mut x = Array2::zeros((rows, p));
        for (r, i) in (lo..=hi).enumerate() {
            let xi = xs[i - base];
            let row = x.row_mut(r).into_slice()?;
            row[0] = 1.0;
            for (o, &l) in row[1..].iter_mut().zip(&LAGS) {
                *o = xi - xs[i - l - base];
            }
            model.seasonal_features(view, i, xi, &mut row[1 + LAGS.len()..]);
        }
        let mut scratch = Vec::with_capacity(rows);
        let mut clip = Vec::with_capacity(p);
        for mut col in x.axis_iter_mut(Axis(1)) {
            let b = bound(col.iter().copied(), &mut scratch);
            col.mapv_inplace(|v| v.clamp(-b, b));
            clip.push(b);
        }
        clip[0] = f64::INFINITY;
        let mut g = x.t().dot(&x);
        for j in 1..p {
            g[[j, j]] *= 1.0 + RIDGE;
            g[[j, j]] += 1e-12;
        }
        g[[0, 0]] += 1e-9;
        // Xᵀy a block of horizons at a time: the targets of every horizon at once would be
        // the largest allocation of a refit (rows × horizons); a block keeps the product a
        // matrix multiplication.
        let mut b = Array2::zeros((p, fitted));
        let mut block = Array2::zeros((rows, HORIZON_BLOCK.min(fitted)));
        for first in (0..fitted).step_by(HORIZON_BLOCK) {
            let width = HORIZON_BLOCK.min(fitted - first);
            let mut targets = block.slice_axis_mut(Axis(1), Slice::from(..width));
            for (c, mut col) in targets.axis_iter_mut(Axis(1)).enumerate() {
                let ahead = model.steps[first + c];
                for (o, i) in col.iter_mut().zip(lo..=hi) {
                    *o = xs[i + ahead - base] - xs[i - base];
                }
                let bj = bound(col.iter().copied(), &mut scratch);
                col.mapv_inplace(|v| v.clamp(-bj, bj));
            }
            b.slice_axis_mut(Axis(1), Slice::from(first..first + width))
                .assign(&x.t().dot(&targets));
        }
        model.coef = cholesky_solve(g, b)?;
        model.clip = clip;
        Some(model)
    }

    /// Fills `out[k-1]` with the forecast of the deseasonalised series k rows ahead, for
    /// the horizons fitted (NaN elsewhere).
    pub(crate) fn predict(&self, view: &View, out: &mut [f64]) {
        let n = view.len();
        let p = self.clip.len();
        let mut f = [0.0; 16];
        let f = &mut f[..p];
        out.iter_mut().for_each(|o| *o = f64::NAN);
        if n <= LAGS[LAGS.len() - 1] {
            return;
        }
        self.features(view, n - 1, f);
        for (v, b) in f.iter_mut().zip(&self.clip) {
            *v = v.clamp(-b, *b);
        }
        let base = view.x(n - 1);
        for (&ahead, coef) in self.steps.iter().zip(self.coef.columns()) {
            if let Some(o) = out.get_mut(ahead - 1) {
                *o = base + f.iter().zip(coef).map(|(a, b)| a * b).sum::<f64>();
            }
        }
    }

    fn features(&self, view: &View, i: usize, out: &mut [f64]) {
        let xi = view.x(i);
        out[0] = 1.0;
        for (o, &l) in out[1..].iter_mut().zip(&LAGS) {
            *o = xi - view.x(i - l);
        }
        self.seasonal_features(view, i, xi, &mut out[1 + LAGS.len()..]);
    }

    fn seasonal_features(&self, view: &View, i: usize, xi: f64, out: &mut [f64]) {
        if let Some(offsets) = self.seasonal {
            let t = view.times[i];
            for (o, off) in out.iter_mut().zip(offsets) {
                *o = view.x_near(t - self.period + off).map_or(0.0, |v| v - xi);
            }
        }
    }
}

/// Winsorising bound of a column: `CLIP` times its median absolute value.
fn bound(col: impl Iterator<Item = f64>, scratch: &mut Vec<f64>) -> f64 {
    scratch.clear();
    scratch.extend(col.map(f64::abs));
    if scratch.is_empty() {
        return f64::INFINITY;
    }
    let mid = scratch.len() / 2;
    let (_, m, _) = scratch.select_nth_unstable_by(mid, f64::total_cmp);
    let m = *m;
    if m > 0.0 { CLIP * m } else { f64::INFINITY }
}

/// Solves `g · w = b` for symmetric positive definite `g` by Cholesky decomposition.
fn cholesky_solve(g: Array2<f64>, b: Array2<f64>) -> Option<Array2<f64>> {
    let p = g.nrows();
    let mut l = Array2::<f64>::zeros((p, p));
    for i in 0..p {
        for j in 0..=i {
            let s: f64 = (0..j).map(|m| l[[i, m]] * l[[j, m]]).sum();
            if i == j {
                let d = g[[i, i]] - s;
                if d <= 0.0 || !d.is_finite() {
                    return None;
                }
                l[[i, i]] = d.sqrt();
            } else {
                l[[i, j]] = (g[[i, j]] - s) / l[[j, j]];
            }
        }
    }
    let mut w = b;
    for mut col in w.axis_iter_mut(Axis(1)) {
        for i in 0..p {
            let s: f64 = (0..i).map(|m| l[[i, m]] * col[m]).sum();
            col[i] = (col[i] - s) / l[[i, i]];
        }
        for i in (0..p).rev() {
            let s: f64 = (i + 1..p).map(|m| l[[m, i]] * col[m]).sum();
            col[i] = (col[i] - s) / l[[i, i]];
        }
    }
    w.iter().all(|v| v.is_finite()).then_some(w)
}

#[cfg(test)]
mod tests {
    use super::*;
    use ndarray::array;

    #[test]
    fn cholesky_solves() {
        let g = array![[4.0, 2.0], [2.0, 3.0]];
        let b = array![[2.0], [1.0]];
        let w = cholesky_solve(g, b).expect("spd");
        assert!((w[[0, 0]] - 0.5).abs() < 1e-12 && w[[1, 0]].abs() < 1e-12);
    }

    #[test]
    fn learns_an_ar1_mean_reversion() {
        // x_t = 0.8 x_{t-1} + noise around 0: the forecast decays toward 0.
        let mut s = 12345u64;
        let mut x = vec![0.0f64];
        for _ in 0..3000 {
            s ^= s << 13;
            s ^= s >> 7;
            s ^= s << 17;
            let e = (s >> 11) as f64 / (1u64 << 53) as f64 - 0.5;
            let last = *x.last().unwrap_or(&0.0);
            x.push(0.8 * last + e);
        }
        x.push(5.0);
        let t: Vec<f64> = (0..x.len()).map(|i| i as f64).collect();
        let view = View {
            times: &t,
            values: &x,
            step: 1.0,
            bucket_s: 0.0,
            profile: None,
        };
        let m = Ar::fit(&view, 5, &[1, 2, 3, 4, 5]).expect("fit");
        let mut out = [0.0; 5];
        m.predict(&view, &mut out);
        assert!(out[0] < 5.0 && out[4] < out[0], "{out:?}");
        // A horizon's model does not depend on the others fitted with it.
        let some = Ar::fit(&view, 5, &[2, 5]).expect("fit");
        let mut part = [0.0; 5];
        some.predict(&view, &mut part);
        for (s, (p, o)) in part.iter().zip(&out).enumerate() {
            if s == 1 || s == 4 {
                assert!(
                    (p - o).abs() <= 1e-9 * o.abs().max(1.0),
                    "step {}: {p} vs {o}",
                    s + 1
                );
            } else {
                assert!(p.is_nan(), "step {} was not fitted: {p}", s + 1);
            }
        }
    }
}
