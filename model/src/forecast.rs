//! Forecasters over a recent window with P50/P90/P99 per horizon.

use serde::Serialize;

/// How a [`Forecaster`] keeps history and refits.
#[derive(Debug, Clone, PartialEq)]
pub struct ForecastConfig {
    /// Longest history kept, seconds (default 14 days).
    pub max_history_s: f64,
}

impl Default for ForecastConfig {
    fn default() -> Self {
        ForecastConfig { max_history_s: 14.0 * 86_400.0 }
    }
}

/// One horizon of a forecast.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct ForecastPoint {
    /// Seconds after the origin.
    pub horizon_s: f64,
    pub p50: f64,
    pub p90: f64,
    pub p99: f64,
}

/// A forecast made at `origin` from data at or before it.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Forecast {
    /// Unix seconds of the last observation used.
    pub origin: f64,
    pub points: Vec<ForecastPoint>,
    /// Which model leads (e.g. `naive`, `ets`, `ar`, `seasonal_naive`).
    pub model: &'static str,
    /// Set while the forecaster is in cold start or distrusts itself: why.
    pub fallback: Option<String>,
}

impl Forecast {
    /// The point at or just after `horizon_s`, else the last one.
    pub fn at(&self, horizon_s: f64) -> Option<&ForecastPoint> {
        self.points
            .iter()
            .find(|p| p.horizon_s >= horizon_s - 1e-9)
            .or(self.points.last())
    }
}

/// A stateful forecaster fed one observation at a time.
#[derive(Debug, Clone)]
pub struct Forecaster {
    config: ForecastConfig,
    times: Vec<f64>,
    values: Vec<f64>,
}

impl Forecaster {
    /// A forecaster with no history.
    pub fn new(config: ForecastConfig) -> Self {
        Forecaster { config, times: Vec::new(), values: Vec::new() }
    }

    /// Adds an observation; times must increase (older or equal times are ignored).
    pub fn observe(&mut self, t: f64, v: f64) {
        if !v.is_finite() || self.times.last().is_some_and(|&last| t <= last) {
            return;
        }
        self.times.push(t);
        self.values.push(v);
        let cutoff = t - self.config.max_history_s;
        let keep_from = self.times.partition_point(|&x| x < cutoff);
        if keep_from > 0 {
            self.times.drain(..keep_from);
            self.values.drain(..keep_from);
        }
    }

    /// Number of observations held.
    pub fn len(&self) -> usize {
        self.values.len()
    }

    /// Whether no observation is held.
    pub fn is_empty(&self) -> bool {
        self.values.is_empty()
    }

    /// Forecasts each horizon (seconds after the last observation).
    pub fn forecast(&mut self, horizons_s: &[f64]) -> Option<Forecast> {
        let (&origin, &last) = (self.times.last()?, self.values.last()?);
        let points = horizons_s
            .iter()
            .map(|&h| ForecastPoint { horizon_s: h, p50: last, p90: last, p99: last })
            .collect();
        Some(Forecast {
            origin,
            points,
            model: "naive",
            fallback: Some("skeleton forecaster: last value".into()),
        })
    }
}
