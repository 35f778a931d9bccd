//! Forecasters over a recent window with P50/P90/P99 per horizon.
//!
//! Several models compete on every observation (`model`: naive, naive plus damped
//! short-term trend, seasonal naive, the last level put back on a seasonal profile,
//! damped-trend exponential smoothing, theta, a ridge autoregression and a robust recent
//! level; the smoothers and the autoregression on the deseasonalised series when the data
//! shows a season, that is when the autocorrelation finds a period (`seasonality`) and its
//! profile, fitted without the last cycle, does not make that cycle clearly harder to forecast
//! (`decompose`)). Each makes a forecast for horizons 1..K at every observation, and each is
//! scored out of sample when the target arrives, per horizon, with an exponentially weighted
//! absolute error (`scoring`). The horizons scored are every step up to `horizon_s`, a few
//! farther ones (`extra_horizons_s`) and any other asked for, from when it is first asked.
//! The P50 combines the models per horizon with weights that favour the recent leaders (the
//! last value at a horizon until they are scored there: near horizons are scored first, so a
//! cold start's near forecast may already move while its far one is still flat); P90
//! and P99 come from the combination's own recent residuals per horizon (conformal, with
//! adaptive levels). Refits run on a schedule of observations, so `observe` is amortised O(K)
//! and `forecast` is a lookup. Time is always passed in. History past the last 30 hours is
//! kept as 1-minute means, so a forecaster fed 10-second points for weeks holds a bounded
//! window (about 30,000 rows for 14 days).

mod ar;
mod conformal;
mod decompose;
mod ets;
mod history;
mod model;
mod naive;
mod scoring;
mod seasonal_naive;
mod seasonality;

use serde::Serialize;

use self::ar::Ar;
use self::conformal::Conformal;
use self::decompose::Profile;
use self::ets::Ets;
pub(crate) use self::history::recent_step;
use self::history::{History, Retention};
use self::model::{Fitted, Model};
use self::scoring::{Issued, Score};

/// How a [`Forecaster`] keeps history and refits.
#[derive(Debug, Clone, PartialEq)]
pub struct ForecastConfig {
    /// Longest history kept, seconds (default 14 days)...
    pub max_history_s: f64,
    /// ...unless that leaves fewer rows than this (default 1,000: an hourly series keeps six
    /// weeks, enough to show a weekly cycle).
    pub min_history_rows: usize,
    /// History younger than this, seconds, keeps full resolution; older observations of a
    /// series finer than `bucket_s` are merged into `bucket_s` means (default 30 hours: a
    /// day-ago lookup across the training windows stays at full resolution).
    pub fine_history_s: f64,
    /// Width of the buckets older history is merged into, seconds (default 60, the agent's
    /// coarse rollup).
    pub bucket_s: f64,
    /// Observations between refits of the models (default 32).
    pub refit_every: usize,
    /// Horizons kept ready and scored, in steps of the series' cadence (grown on demand).
    pub min_horizon_steps: usize,
    /// Horizons kept ready and scored, seconds: every step up to this (default 900; grown on
    /// demand).
    pub horizon_s: f64,
    /// Horizons beyond `horizon_s` also kept ready and scored, seconds: these steps only, not
    /// every step up to them (default none). A forecaster's memory grows with the horizons it
    /// scores times the farthest one, so a caller that plans over every step up to a lead and
    /// shows a few farther horizons keeps just those few.
    pub extra_horizons_s: Vec<f64>,
}

impl Default for ForecastConfig {
    fn default() -> Self {
        ForecastConfig {
            max_history_s: 14.0 * 86_400.0,
            min_history_rows: 1_000,
            fine_history_s: 30.0 * 3_600.0,
            bucket_s: 60.0,
            refit_every: 32,
            min_horizon_steps: 1,
            horizon_s: 900.0,
            extra_horizons_s: Vec::new(),
        }
    }
}

/// One horizon of a forecast.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct ForecastPoint {
    /// Seconds after the origin.
    pub horizon_s: f64,
    /// Median forecast.
    pub p50: f64,
    /// 90th percentile: the value is expected at or below it 90% of the time.
    pub p90: f64,
    /// 99th percentile.
    pub p99: f64,
}

/// A forecast made at `origin` from data at or before it.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Forecast {
    /// Unix seconds of the last observation used.
    pub origin: f64,
    /// One point per requested horizon, in request order.
    pub points: Vec<ForecastPoint>,
    /// Which model leads (e.g. `naive`, `ets`, `ar`, `seasonal_naive`).
    pub model: &'static str,
    /// Set while the forecaster is in cold start or distrusts itself: why.
    pub fallback: Option<String>,
    /// Set while the cold start is only the history filling up: the models cannot be scored
    /// before then, so this is expected, not a fault. After it a cold start that lasts is one.
    pub filling: Option<Filling>,
    /// Recent absolute error of the P50 over that of the naive forecast at the longest
    /// requested horizon (< 1: the forecast beats "no change"); `None` until scored.
    pub error_ratio: Option<f64>,
    /// Detected seasonal period, seconds.
    pub season_s: Option<f64>,
}

/// How far a new forecaster's history has filled.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct Filling {
    /// History seen, seconds.
    pub seen_s: f64,
    /// History the models need before they are scored, seconds, with room for a slow start
    /// ([`FILLING_ROOM`]); `None` until the cadence is known (a single observation).
    pub needed_s: Option<f64>,
}

/// How much longer than the rows strictly needed a filling history may take before its cold
/// start counts as a fault (refits fall on a schedule, gaps happen).
pub const FILLING_ROOM: f64 = 1.5;

impl Forecast {
    /// The point at or just after `horizon_s`, else the last one.
    pub fn at(&self, horizon_s: f64) -> Option<&ForecastPoint> {
        self.points
            .iter()
            .find(|p| p.horizon_s >= horizon_s - 1e-9)
            .or(self.points.last())
    }
}

/// A read-only view of the history for the models: values, and the deseasonalised series.
pub(crate) struct View<'a> {
    pub(crate) times: &'a [f64],
    pub(crate) values: &'a [f64],
    pub(crate) step: f64,
    /// Width of the buckets older rows were merged into (seconds; 0 when none).
    pub(crate) bucket_s: f64,
    pub(crate) profile: Option<&'a Profile>,
}

impl View<'_> {
    pub(crate) fn len(&self) -> usize {
        self.values.len()
    }

    /// Deseasonalised value of row `i`.
    pub(crate) fn x(&self, i: usize) -> f64 {
        match self.profile {
            Some(p) => self.values[i] - p.at(self.times[i]),
            None => self.values[i],
        }
    }

    /// Deseasonalised value of the row nearest `t`, if one lies within half its spacing.
    pub(crate) fn x_near(&self, t: f64) -> Option<f64> {
        history::nearest(self.times, t, self.step, self.bucket_s).map(|i| self.x(i))
    }
}

/// Score slot of the combined forecast, after every model's.
const COMBINED: usize = Model::COUNT;
/// Observations before the first refit.
const MIN_FIT: usize = 16;
/// Scored forecasts a model needs at a horizon before it may lead.
const MIN_SCORED: f64 = 12.0;
/// Exponential decay of the error scores per observation.
const ERROR_DECAY: f64 = 0.01;
/// Exponent of the relative error in the combination weights (high: the leader dominates,
/// close runners-up still share).
const WEIGHT_POWER: i32 = 10;
/// Models worse than this multiple of the best get no weight.
const WEIGHT_CUTOFF: f64 = 1.6;
/// Refits between seasonality checks.
const DETECT_EVERY: usize = 16;
/// Growth of the history's span that triggers a seasonality check before the schedule does.
const DETECT_GROWTH: f64 = 1.5;
/// Largest step folded into the volatility, in multiples of the current volatility.
const SCALE_CLIP: f64 = 4.0;
/// Floor of the residual scale, as a fraction of the long-run volatility.
const SCALE_FLOOR: f64 = 0.5;
/// Largest horizon, in steps: the forecaster looks no further ahead (a longer horizon is
/// forecast at this many steps).
pub const MAX_STEPS: usize = 1024;
/// Largest error counted in a score, in residual scales × √horizon.
const ERR_CLIP: f64 = 25.0;
/// Winsorising bound for the smoothers' input, in median absolute deviations.
const X_CLIP: f64 = 12.0;
/// Rows of the recent window the exponential smoother is fitted on.
const ETS_ROWS: usize = 1200;

/// A stateful forecaster fed one observation at a time.
#[derive(Debug, Clone)]
pub struct Forecaster {
    config: ForecastConfig,
    hist: History,
    rows: u64,
    step: f64,
    scale: f64,
    long_scale: f64,
    /// The lowest value observed: no median goes below it (a trend extrapolated past anything
    /// the series has shown is the extrapolation's error, not a forecast).
    lowest: f64,
    /// Span of the history at the last seasonality check, seconds.
    detected_span_s: f64,
    since_refit: usize,
    refits: usize,
    /// The season and the models fitted at the latest refit.
    fitted: Fitted,
    /// Every step up to this is scored.
    dense: usize,
    /// Horizons scored beyond `dense` steps, seconds.
    extra_s: Vec<f64>,
    /// The steps scored, ascending and never empty: index `j` of the score, residual and
    /// issued tables is `steps[j]` rows ahead.
    steps: Vec<usize>,
    issued: Vec<Issued>,
    scores: Vec<Score>,
    conformal: Conformal,
    /// Every model's forecast for steps 1..=kmax at the latest observation.
    path: Vec<f64>,
    /// Every model's forecast at the scored steps, full precision, for combining.
    scratch: Vec<f64>,
    /// Whether a forecast out of cold start was given: from then on a step asked for that is
    /// not scored yet is judged by a scored one next to it ([`Forecaster::judged_at`]).
    warm: bool,
}

impl Forecaster {
    /// A forecaster with no history.
    pub fn new(config: ForecastConfig) -> Self {
        let dense = config.min_horizon_steps.clamp(1, MAX_STEPS);
        let extra_s = config.extra_horizons_s.clone();
        let hist = History::new(Retention {
            max_age_s: config.max_history_s,
            min_rows: config.min_history_rows,
            fine_age_s: config.fine_history_s,
            bucket_s: config.bucket_s,
        });
        let mut f = Forecaster {
            config,
            hist,
            rows: 0,
            step: 0.0,
            scale: 0.0,
            long_scale: 0.0,
            lowest: f64::INFINITY,
            detected_span_s: 0.0,
            since_refit: 0,
            refits: 0,
            warm: false,
            fitted: Fitted::default(),
            dense,
            extra_s,
            steps: Vec::new(),
            issued: Vec::new(),
            scores: Vec::new(),
            conformal: Conformal::new(0),
            path: Vec::new(),
            scratch: Vec::new(),
        };
        f.retrack();
        f
    }

    /// Adds an observation; times must increase (older or equal times and non-finite values
    /// are ignored).
    pub fn observe(&mut self, t: f64, v: f64) {
        if !v.is_finite() || !t.is_finite() || self.hist.times().last().is_some_and(|&l| t <= l) {
            return;
        }
        if let Some(&prev) = self.hist.values().last() {
            let d = (v - prev).abs();
            if self.rows == 1 {
                self.scale = d;
                self.long_scale = d;
            } else {
                // Winsorised so that one spike does not widen the bands for long; relative to
                // the scale the bands use (floored by the long-run one), so that after a quiet
                // spell, when the recent scale has decayed to nothing, the series moving again
                // is taken in within tens of observations rather than hundreds.
                let base = self.scale.max(SCALE_FLOOR * self.long_scale);
                let d = if base > 0.0 {
                    d.min(SCALE_CLIP * base)
                } else {
                    d
                };
                self.scale = 0.95 * self.scale + 0.05 * d;
                self.long_scale = 0.998 * self.long_scale + 0.002 * d;
            }
        }
        // A series no finer than the buckets has nothing to merge.
        let merge = self.step > 0.0 && self.step * 2.0 <= self.config.bucket_s;
        self.hist.push(t, v, merge);
        self.rows += 1;
        self.lowest = self.lowest.min(v);
        self.since_refit += 1;
        if self.step <= 0.0 || self.refits == 0 {
            self.step = recent_step(self.hist.times(), 64).unwrap_or(0.0);
        }
        if self.since_refit >= self.config.refit_every
            || (self.refits == 0 && self.len() >= MIN_FIT)
        {
            self.refit_models(false);
        } else {
            let x = v - self.fitted.profile.as_ref().map_or(0.0, |p| p.at(t));
            if let Some(ets) = self.fitted.ets.as_mut() {
                ets.update(x);
            }
            if let Some(theta) = self.fitted.theta.as_mut() {
                theta.update_theta(x);
            }
        }
        self.score(v);
        self.issue();
    }

    /// Number of observations held.
    pub fn len(&self) -> usize {
        self.hist.len()
    }

    /// Whether no observation is held.
    pub fn is_empty(&self) -> bool {
        self.hist.len() == 0
    }

    /// Cadence of the series, seconds (median recent step; 0 before two observations).
    pub fn step_s(&self) -> f64 {
        self.step
    }

    /// The seasonal period in use, seconds.
    pub fn season_s(&self) -> Option<f64> {
        self.fitted.period
    }

    /// Refits every model now and re-issues the forecasts at the latest observation (normally
    /// done on the `refit_every` schedule). Seasonality is re-detected on every 16th refit.
    pub fn refit(&mut self) {
        self.refit_models(false);
        self.issue();
    }

    /// Like [`Forecaster::refit`], re-detecting seasonality now.
    pub fn refit_with_detection(&mut self) {
        self.refit_models(true);
        self.issue();
    }

    fn refit_models(&mut self, detect: bool) {
        self.since_refit = 0;
        self.refits += 1;
        if let Some(s) = recent_step(self.hist.times(), 512) {
            self.step = s;
        }
        if self.step > 0.0 {
            let want = ((self.config.horizon_s / self.step).ceil() as usize)
                .max(self.config.min_horizon_steps)
                .min(MAX_STEPS);
            self.dense = self.dense.max(want);
        }
        self.retrack();
        let times = self.hist.times();
        let span = times.last().zip(times.first()).map_or(0.0, |(l, f)| l - f);
        // On a schedule of refits, and whenever the history has grown by half since the last
        // check: at an hourly cadence the schedule alone would wait three weeks for a daily
        // season that three days show.
        if detect || self.refits % DETECT_EVERY == 1 || span >= DETECT_GROWTH * self.detected_span_s
        {
            let ahead = ((self.config.horizon_s / self.step).ceil() as usize).max(1);
            self.fitted.period =
                seasonality::detect(times, self.hist.values(), self.step).filter(|&p| {
                    decompose::holds_on_the_last_cycle(
                        times,
                        self.hist.values(),
                        p,
                        self.step,
                        ahead,
                    )
                });
            self.detected_span_s = span;
        }
        let values = self.hist.values();
        self.fitted.profile = self
            .fitted
            .period
            .and_then(|p| Profile::fit(times, values, p, self.step));
        let view = View {
            times,
            values,
            step: self.step,
            bucket_s: self.config.bucket_s,
            profile: self.fitted.profile.as_ref(),
        };
        let from = view.len().saturating_sub(ETS_ROWS);
        let mut x: Vec<f64> = (from..view.len()).map(|i| view.x(i)).collect();
        // Spikes are clipped for fitting only: later values are followed as they come.
        let (lo, hi) = robust_bounds(&x);
        x.iter_mut().for_each(|v| *v = v.clamp(lo, hi));
        self.fitted.ets = Ets::fit(&x, self.kmax().div_ceil(2));
        self.fitted.theta = Ets::fit_theta(&x, self.kmax().div_ceil(2));
        self.fitted.ar = Ar::fit(&view, self.kmax(), &self.steps);
    }

    /// Forecasts each horizon (seconds after the last observation).
    pub fn forecast(&mut self, horizons_s: &[f64]) -> Option<Forecast> {
        if self.step <= 0.0 {
            return self.cold(horizons_s);
        }
        let steps: Vec<usize> = horizons_s.iter().map(|&h| self.step_of(h)).collect();
        let mut missing = false;
        for (&h, s) in horizons_s.iter().zip(&steps) {
            if self.steps.binary_search(s).is_err() {
                self.extra_s.push(h);
                missing = true;
            }
        }
        if missing {
            self.retrack();
            self.issue();
        }
        let forecast = self.build(horizons_s, &steps);
        self.warm |= forecast.as_ref().is_some_and(|f| f.fallback.is_none());
        forecast
    }

    /// Forecasts 1..=`k` rows ahead (the backtest's horizons); `horizon_s` = k × cadence.
    pub fn forecast_steps(&mut self, k: usize) -> Option<Forecast> {
        let k = k.clamp(1, MAX_STEPS);
        if k > self.dense {
            self.dense = k;
            self.retrack();
            self.issue();
        }
        let steps: Vec<usize> = (1..=k).collect();
        let hs: Vec<f64> = steps
            .iter()
            .map(|&s| s as f64 * self.step.max(0.0))
            .collect();
        if self.step <= 0.0 {
            return self.cold(&hs);
        }
        self.build(&hs, &steps)
    }

    /// One observation only: the last value, bands unknown (equal to it).
    fn cold(&self, horizons_s: &[f64]) -> Option<Forecast> {
        let (&origin, &last) = (self.hist.times().last()?, self.hist.values().last()?);
        Some(Forecast {
            origin,
            points: horizons_s
                .iter()
                .map(|&h| ForecastPoint {
                    horizon_s: h,
                    p50: last,
                    p90: last,
                    p99: last,
                })
                .collect(),
            model: Model::Naive.name(),
            fallback: Some("cold start: a single observation; reactive (last value)".into()),
            filling: Some(Filling {
                seen_s: 0.0,
                needed_s: None,
            }),
            error_ratio: None,
            season_s: None,
        })
    }

    fn build(&self, horizons_s: &[f64], steps: &[usize]) -> Option<Forecast> {
        let origin = *self.hist.times().last()?;
        let slot = self.slot(self.rows.checked_sub(1)?);
        let e = &self.issued[slot];
        if e.row + 1 != self.rows {
            return None;
        }
        let mut points = Vec::with_capacity(steps.len());
        let mut jmax = 0;
        for (&h, s) in horizons_s.iter().zip(steps) {
            let j = self.steps.binary_search(s).ok()?;
            jmax = jmax.max(j);
            let (p50, p90, p99) = self.band(e, j);
            points.push(ForecastPoint {
                horizon_s: h,
                p50,
                p90,
                p99,
            });
        }
        let jref = self.judged_at(jmax);
        let cold =
            self.score_of(Model::Drift.index(), jref).mae().is_none() || self.fitted.ets.is_none();
        let fallback = cold.then(|| {
            format!(
                "cold start: {} observations ({:.0} s) of history; the last value at each \
                 horizon until the models are scored there",
                self.len(),
                origin - self.hist.times()[0]
            )
        });
        // The first refit, then a forecast at the longest horizon must reach its target and
        // be scored MIN_SCORED times: the rows a cold start takes when nothing goes wrong.
        let seen_s = origin - self.hist.times()[0];
        let needed_s = (MIN_FIT + self.steps[jmax] + MIN_SCORED as usize) as f64
            * self.step.max(0.0)
            * FILLING_ROOM;
        let filling = (cold && seen_s < needed_s).then_some(Filling {
            seen_s,
            needed_s: Some(needed_s),
        });
        let error_ratio = match (
            self.score_of(COMBINED, jref).mae(),
            self.score_of(Model::Naive.index(), jref).mae(),
        ) {
            (Some(c), Some(n)) if n > 0.0 => Some(c / n),
            (Some(c), Some(_)) => Some(if c > 0.0 { f64::INFINITY } else { 1.0 }),
            _ => None,
        };
        let model = if cold {
            Model::Naive
        } else {
            self.leader(jref)
        };
        Some(Forecast {
            origin,
            points,
            model: model.name(),
            fallback,
            filling,
            error_ratio,
            season_s: self.fitted.period,
        })
    }
}

impl Forecaster {
    /// The step index a forecast reaching index `jmax` is judged at (cold start, the error
    /// ratio, the leading model): `jmax` itself, or, once the forecaster was warm, the longest
    /// scored step within a tenth (at least two steps) below it when `jmax` is not scored yet.
    /// A cadence measured anew (a coordinator's loop under load, 1 s becoming 0.9 s) maps the
    /// same lead to more steps; the new step is scored only after as many rows, and judging it
    /// alone sent a warm forecaster back to cold start for that long, mid-ramp. A first cold
    /// start is judged at `jmax` as before: nothing was scored there yet.
    fn judged_at(&self, jmax: usize) -> usize {
        let scored = |j: usize| self.score_of(Model::Drift.index(), j).mae().is_some();
        if !self.warm || scored(jmax) {
            return jmax;
        }
        let reach = (self.steps[jmax] / 10).max(2);
        (0..jmax)
            .rev()
            .take_while(|&j| self.steps[jmax] - self.steps[j] <= reach)
            .find(|&j| scored(j))
            .unwrap_or(jmax)
    }
}

/// Median ± `X_CLIP` median absolute deviations (unbounded when the deviation is zero).
fn robust_bounds(x: &[f64]) -> (f64, f64) {
    if x.len() < 8 {
        return (f64::NEG_INFINITY, f64::INFINITY);
    }
    let mut a = x.to_vec();
    let mid = a.len() / 2;
    let med = *a.select_nth_unstable_by(mid, f64::total_cmp).1;
    a.iter_mut().for_each(|v| *v = (*v - med).abs());
    let mad = *a.select_nth_unstable_by(mid, f64::total_cmp).1;
    if mad > 0.0 {
        (med - X_CLIP * mad, med + X_CLIP * mad)
    } else {
        (f64::NEG_INFINITY, f64::INFINITY)
    }
}

#[cfg(test)]
mod tests;
