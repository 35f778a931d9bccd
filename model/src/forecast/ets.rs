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
                    let mut m = Ets { alpha, beta, phi, level: x[0], trend: 0.0 };
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
        assert!(out[0] > 149.0 && out[0] < 151.0, "{out:?}");
        assert!(out[4] > out[0]);
    }

    #[test]
    fn smooths_noise() {
        let x: Vec<f64> = (0..400).map(|i| if i % 2 == 0 { 9.0 } else { 11.0 }).collect();
        let m = Ets::fit(&x, 5).expect("fit");
        let mut out = [0.0; 3];
        m.predict(&mut out);
        assert!((out[2] - 10.0).abs() < 0.6, "{out:?}");
    }
}
