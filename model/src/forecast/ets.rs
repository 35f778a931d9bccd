//! Damped-trend exponential smoothing (additive Holt with damping), run on the deseasonalised
//! series so the seasonal component is optional. Parameters are chosen by a grid search on the
//! absolute one-step and lead-horizon errors of the recent window: robust to spikes and tuned
//! for the horizons the policy needs rather than for the next step only.

const ALPHAS: [f64; 7] = [0.03, 0.08, 0.15, 0.25, 0.4, 0.6, 0.85];
const BETAS: [f64; 3] = [0.0, 0.02, 0.08];
const PHIS: [f64; 2] = [0.85, 0.97];

/// A fitted damped-trend smoother with its running state.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct Ets {
    alpha: f64,
    beta: f64,
    phi: f64,
    level: f64,
    trend: f64,
}

impl Ets {
    /// Fits on `x` (oldest first), scoring forecasts 1 and `lead` steps ahead; the state ends
    /// at the last value of `x`.
    pub(crate) fn fit(x: &[f64], lead: usize) -> Option<Ets> {
        if x.len() < 8 {
            return None;
        }
        let lead = lead.clamp(1, x.len() / 4);
        let burn = (x.len() / 10).max(2);
        let mut best: Option<(f64, Ets)> = None;
        for &alpha in &ALPHAS {
            for &beta in &BETAS {
                for &phi in &PHIS {
                    if beta == 0.0 && phi != PHIS[0] {
                        continue;
                    }
                    let mut m = Ets {
                        alpha,
                        beta,
                        phi,
                        level: x[0],
                        trend: 0.0,
                    };
                    let sum_lead = m.phi_sum(lead);
                    let mut loss = 0.0;
                    for i in 1..x.len() {
                        if i >= burn {
                            loss += (x[i] - (m.level + m.phi * m.trend)).abs();
                            if i + lead - 1 < x.len() {
                                loss += (x[i + lead - 1] - (m.level + sum_lead * m.trend)).abs();
                            }
                        }
                        m.update(x[i]);
                    }
                    if best.is_none_or(|(l, _)| loss < l) {
                        best = Some((loss, m));
                    }
                }
            }
        }
        best.map(|(_, m)| m)
    }

    /// The theta method (simple exponential smoothing plus half the slope of the window's
    /// least-squares line), fitted on the absolute one-step and lead errors.
    pub(crate) fn fit_theta(x: &[f64], lead: usize) -> Option<Ets> {
        let n = x.len();
        if n < 8 {
            return None;
        }
        let mx = (n as f64 - 1.0) / 2.0;
        let my = x.iter().sum::<f64>() / n as f64;
        let (mut sxy, mut sxx) = (0.0, 0.0);
        for (i, v) in x.iter().enumerate() {
            sxy += (i as f64 - mx) * (v - my);
            sxx += (i as f64 - mx) * (i as f64 - mx);
        }
        let slope = if sxx > 0.0 { 0.5 * sxy / sxx } else { 0.0 };
        let lead = lead.clamp(1, n / 4);
        let burn = (n / 10).max(2);
        let mut best: Option<(f64, Ets)> = None;
        for &alpha in &ALPHAS {
            let mut m = Ets {
                alpha,
                beta: 0.0,
                phi: 1.0,
                level: x[0],
                trend: 0.0,
            };
            let drift = |h: usize| slope * (h as f64 - 1.0 + 1.0 / alpha);
            let mut loss = 0.0;
            for i in 1..n {
                if i >= burn {
                    loss += (x[i] - (m.level + drift(1))).abs();
                    if i + lead - 1 < n {
                        loss += (x[i + lead - 1] - (m.level + drift(lead))).abs();
                    }
                }
                m.update(x[i]);
            }
            if best.is_none_or(|(l, _)| loss < l) {
                best = Some((loss, Ets { trend: slope, ..m }));
            }
        }
        best.map(|(_, m)| m)
    }

    /// Fills `out[k-1]` with the theta forecast k steps ahead (for a model from `fit_theta`).
    pub(crate) fn predict_theta(&self, out: &mut [f64]) {
        for (k, o) in out.iter_mut().enumerate() {
            *o = self.level + self.trend * ((k + 1) as f64 - 1.0 + 1.0 / self.alpha);
        }
    }

    /// Folds in the next value of a theta model (the drift stays fixed between refits).
    pub(crate) fn update_theta(&mut self, x: f64) {
        self.level += self.alpha * (x - self.level);
    }

    /// Folds in the next value.
    pub(crate) fn update(&mut self, x: f64) {
        let f = self.level + self.phi * self.trend;
        let e = x - f;
        self.level = f + self.alpha * e;
        self.trend = self.phi * self.trend + self.beta * e;
    }

    /// Fills `out[k-1]` with the forecast k steps ahead.
    pub(crate) fn predict(&self, out: &mut [f64]) {
        let mut acc = 0.0;
        let mut damp = 1.0;
        for o in out.iter_mut() {
            damp *= self.phi;
            acc += damp;
            *o = self.level + acc * self.trend;
        }
    }

    fn phi_sum(&self, k: usize) -> f64 {
        (1..=k).map(|i| self.phi.powi(i as i32)).sum()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn follows_a_trend() {
        let x: Vec<f64> = (0..300).map(|i| 5.0 + 0.5 * i as f64).collect();
        let m = Ets::fit(&x, 10).expect("fit");
        let mut out = [0.0; 5];
        m.predict(&mut out);
        assert!(out[0] > 154.5 && out[0] < 155.5, "{out:?}");
        assert!(out[4] > out[0]);
    }

    #[test]
    fn smooths_noise() {
        let x: Vec<f64> = (0..400)
            .map(|i| if i % 2 == 0 { 9.0 } else { 11.0 })
            .collect();
        let m = Ets::fit(&x, 5).expect("fit");
        let mut out = [0.0; 3];
        m.predict(&mut out);
        assert!((out[2] - 10.0).abs() < 0.6, "{out:?}");
    }
}
