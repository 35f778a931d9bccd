//! Naive forecasts: the last value, and (for cold start) the last value plus a damped
//! short-term trend.

/// The last value at every horizon.
pub(crate) fn naive(values: &[f64], out: &mut [f64]) {
    let last = values.last().copied().unwrap_or(0.0);
    out.iter_mut().for_each(|o| *o = last);
}

/// The mean of the last few values plus a damped slope fitted to the last `window` values:
/// the reactive forecast used while there is too little history to trust a model.
pub(crate) fn drift(times: &[f64], values: &[f64], step: f64, window: usize, out: &mut [f64]) {
    let n = values.len();
    let w = window.min(n);
    if w < 3 || step <= 0.0 {
        naive(values, out);
        return;
    }
    let (t, y) = (&times[n - w..], &values[n - w..]);
    let mt = t.iter().sum::<f64>() / w as f64;
    let my = y.iter().sum::<f64>() / w as f64;
    let (mut sxy, mut sxx) = (0.0, 0.0);
    for (a, b) in t.iter().zip(y) {
        sxy += (a - mt) * (b - my);
        sxx += (a - mt) * (a - mt);
    }
    let slope = if sxx > 0.0 { sxy / sxx } else { 0.0 } * step;
    let last = values[n - 1];
    let phi: f64 = 0.9;
    let mut acc = 0.0;
    let mut damp = 1.0;
    for o in out.iter_mut() {
        damp *= phi;
        acc += damp;
        *o = last + slope * acc;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn drift_follows_a_ramp_but_damps() {
        let t: Vec<f64> = (0..10).map(|i| i as f64 * 10.0).collect();
        let y: Vec<f64> = (0..10).map(|i| i as f64).collect();
        let mut out = [0.0; 50];
        drift(&t, &y, 10.0, 6, &mut out);
        assert!((out[0] - 9.9).abs() < 1e-9);
        assert!(out[49] > out[0] && out[49] < 9.0 + 10.0);
    }
}
