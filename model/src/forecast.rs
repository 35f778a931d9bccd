//! Forecasters over a recent window with P50/P90/P99 per horizon.
//!
//! Several models compete on every observation: naive, naive plus damped short-term trend,
//! seasonal naive, the last level put back on a seasonal profile, damped-trend exponential
//! smoothing and a ridge autoregression (the last two on the deseasonalised series when the
//! data shows a season). Each makes a forecast for horizons 1..K at every observation, and
//! each is scored out of sample when the target arrives, per horizon, with an exponentially
//! weighted absolute error. The horizons scored are every step up to `horizon_s`, a few
//! farther ones (`extra_horizons_s`) and any other asked for, from when it is first asked.
//! The P50 combines the models per horizon with weights that favour the recent leaders; P90
//! and P99 come from the combination's own recent residuals per horizon (conformal, with
//! adaptive levels). Refits run on a schedule of observations, so
//! `observe` is amortised O(K) and `forecast` is a lookup. Time is always passed in.
//! History past the last 30 hours is kept as 1-minute means, so a forecaster fed 10-second
//! points for weeks holds a bounded window (about 30,000 rows for 14 days).

mod ar;
mod conformal;
mod decompose;
mod ets;
mod history;
mod naive;
mod seasonal_naive;
mod seasonality;

use serde::Serialize;

use self::ar::Ar;
use self::conformal::Conformal;
use self::decompose::Profile;
use self::ets::Ets;
use self::history::{History, Retention, recent_step};

/// How a [`Forecaster`] keeps history and refits.
#[derive(Debug, Clone, PartialEq)]
pub struct ForecastConfig {
    /// Longest history kept, seconds (default 14 days).
    pub max_history_s: f64,
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
    /// Recent absolute error of the P50 over that of the naive forecast at the longest
    /// requested horizon (< 1: the forecast beats "no change"); `None` until scored.
    pub error_ratio: Option<f64>,
    /// Detected seasonal period, seconds.
    pub season_s: Option<f64>,
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
    fn len(&self) -> usize {
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

/// The competing models, in score-table order.
const MODELS: [&str; 8] = [
    "naive",
    "drift",
    "seasonal_naive",
    "seasonal_level",
    "ets",
    "ar",
    "theta",
    "median",
];
const NAIVE: usize = 0;
const DRIFT: usize = 1;
const SNAIVE: usize = 2;
const SLEVEL: usize = 3;
const ETS: usize = 4;
const AR: usize = 5;
const THETA: usize = 6;
const MEDIAN: usize = 7;
/// Score slot of the combined forecast.
const COMBINED: usize = MODELS.len();
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
/// Largest step folded into the volatility, in multiples of the current volatility.
const SCALE_CLIP: f64 = 4.0;
/// Floor of the residual scale, as a fraction of the long-run volatility.
const SCALE_FLOOR: f64 = 0.5;
/// Largest horizon, in steps.
const MAX_STEPS: usize = 1024;
/// Largest error counted in a score, in residual scales × √horizon.
const ERR_CLIP: f64 = 25.0;
/// Winsorising bound for the smoothers' input, in median absolute deviations.
const X_CLIP: f64 = 12.0;
/// Rows in the robust recent level (median).
const MEDIAN_ROWS: usize = 5;
/// Rows of the recent window the exponential smoother is fitted on.
const ETS_ROWS: usize = 1200;

/// Exponentially weighted mean absolute error.
#[derive(Debug, Clone, Copy, Default)]
struct Score {
    sum: f64,
    weight: f64,
    count: f64,
}

impl Score {
    fn add(&mut self, e: f64) {
        self.sum = self.sum * (1.0 - ERROR_DECAY) + e;
        self.weight = self.weight * (1.0 - ERROR_DECAY) + 1.0;
        self.count += 1.0;
    }

    fn mae(&self) -> Option<f64> {
        (self.count >= MIN_SCORED).then(|| self.sum / self.weight)
    }
}

/// The forecasts made at one observation, kept until their targets arrive.
#[derive(Debug, Clone)]
struct Issued {
    row: u64,
    /// Every model's forecast, kept only to be scored: `f32` halves the largest buffer of a
    /// warm forecaster (it grows with the square of the horizons), and errors need no more.
    preds: Vec<f32>,
    combined: Vec<f64>,
    p90: Vec<f64>,
    scale: f64,
}

/// A stateful forecaster fed one observation at a time.
#[derive(Debug, Clone)]
pub struct Forecaster {
    config: ForecastConfig,
    hist: History,
    rows: u64,
    step: f64,
    scale: f64,
    long_scale: f64,
    nonneg: bool,
    since_refit: usize,
    refits: usize,
    period: Option<f64>,
    profile: Option<Profile>,
    ets: Option<Ets>,
    theta: Option<Ets>,
    ar: Option<Ar>,
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
}

impl Forecaster {
    /// A forecaster with no history.
    pub fn new(config: ForecastConfig) -> Self {
        let dense = config.min_horizon_steps.clamp(1, MAX_STEPS);
        let extra_s = config.extra_horizons_s.clone();
        let hist = History::new(Retention {
            max_age_s: config.max_history_s,
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
            nonneg: true,
            since_refit: 0,
            refits: 0,
            period: None,
            profile: None,
            ets: None,
            theta: None,
            ar: None,
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
                // Winsorised so that one spike does not widen the bands for long.
                let d = if self.scale > 0.0 {
                    d.min(SCALE_CLIP * self.scale)
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
        self.nonneg &= v >= 0.0;
        self.since_refit += 1;
        if self.step <= 0.0 || self.refits == 0 {
            self.step = recent_step(self.hist.times(), 64).unwrap_or(0.0);
        }
        if self.since_refit >= self.config.refit_every
            || (self.refits == 0 && self.len() >= MIN_FIT)
        {
            self.refit_models(false);
        } else {
            let x = v - self.profile.as_ref().map_or(0.0, |p| p.at(t));
            if let Some(ets) = self.ets.as_mut() {
                ets.update(x);
            }
            if let Some(theta) = self.theta.as_mut() {
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
        self.period
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
        if detect || self.refits % DETECT_EVERY == 1 {
            self.period = seasonality::detect(times, self.hist.values(), self.step);
        }
        let values = self.hist.values();
        self.profile = self
            .period
            .and_then(|p| Profile::fit(times, values, p, self.step));
        let view = View {
            times,
            values,
            step: self.step,
            bucket_s: self.config.bucket_s,
            profile: self.profile.as_ref(),
        };
        let from = view.len().saturating_sub(ETS_ROWS);
        let mut x: Vec<f64> = (from..view.len()).map(|i| view.x(i)).collect();
        // Spikes are clipped for fitting only: later values are followed as they come.
        let (lo, hi) = robust_bounds(&x);
        x.iter_mut().for_each(|v| *v = v.clamp(lo, hi));
        self.ets = Ets::fit(&x, self.kmax().div_ceil(2));
        self.theta = Ets::fit_theta(&x, self.kmax().div_ceil(2));
        self.ar = Ar::fit(&view, self.kmax(), &self.steps);
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
        self.build(horizons_s, &steps)
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
            model: MODELS[NAIVE],
            fallback: Some("cold start: a single observation; reactive (last value)".into()),
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
        let k = self.k();
        let cold = self.scores[DRIFT * k + jmax].mae().is_none() || self.ets.is_none();
        let fallback = cold.then(|| {
            format!(
                "cold start: {} observations ({:.0} s) of history; reactive forecast (last \
                 value plus short-term trend)",
                self.len(),
                origin - self.hist.times()[0]
            )
        });
        let error_ratio = match (
            self.scores[COMBINED * k + jmax].mae(),
            self.scores[NAIVE * k + jmax].mae(),
        ) {
            (Some(c), Some(n)) if n > 0.0 => Some(c / n),
            (Some(c), Some(_)) => Some(if c > 0.0 { f64::INFINITY } else { 1.0 }),
            _ => None,
        };
        let model = if cold {
            MODELS[DRIFT]
        } else {
            MODELS[self.leader(jmax)]
        };
        Some(Forecast {
            origin,
            points,
            model,
            fallback,
            error_ratio,
            season_s: self.period,
        })
    }

    /// P50, P90, P99 at horizon index `k` of an issued forecast.
    fn band(&self, e: &Issued, k: usize) -> (f64, f64, f64) {
        let step = self.steps[k] as f64;
        let p50 = e.combined[k];
        let (o90, o99) = match self.conformal.offsets(k) {
            Some((a, b)) => {
                let worst = self.conformal.worst(k).unwrap_or(f64::INFINITY).max(0.0);
                ((a * e.scale).min(worst), (b * e.scale).min(worst))
            }
            None => {
                let sigma = 1.25 * e.scale * step.sqrt();
                (1.2816 * sigma, 2.3263 * sigma)
            }
        };
        let lo = if self.nonneg { 0.0 } else { f64::NEG_INFINITY };
        let p50 = p50.max(lo);
        let p90 = (p50 + o90).max(p50);
        let p99 = (p50 + o99).max(p90);
        (p50, p90, p99)
    }

    fn leader(&self, k: usize) -> usize {
        (0..MODELS.len())
            .filter_map(|m| self.scores[m * self.k() + k].mae().map(|e| (m, e)))
            .min_by(|a, b| a.1.total_cmp(&b.1))
            .map_or(NAIVE, |(m, _)| m)
    }

    fn slot(&self, row: u64) -> usize {
        (row % (self.kmax() as u64 + 1)) as usize
    }

    /// Horizons scored: the stride of the score, residual and issued tables.
    fn k(&self) -> usize {
        self.steps.len()
    }

    /// The farthest step scored.
    fn kmax(&self) -> usize {
        self.steps.last().copied().unwrap_or(1)
    }

    /// The step of a horizon in seconds at the current cadence.
    fn step_of(&self, horizon_s: f64) -> usize {
        ((horizon_s / self.step).round().max(1.0) as usize).min(MAX_STEPS)
    }

    /// Scores the steps asked for: every step up to `dense`, and the extra horizons at the
    /// current cadence.
    fn retrack(&mut self) {
        let mut steps: Vec<usize> = (1..=self.dense).collect();
        if self.step > 0.0 {
            steps.extend(self.extra_s.iter().map(|&h| self.step_of(h)));
        }
        steps.sort_unstable();
        steps.dedup();
        if steps != self.steps {
            self.resize(steps);
        }
    }

    /// Changes the steps scored. Scores and residuals of the steps kept carry over, so a
    /// cadence that turns out finer than first measured (irregular arrivals, as at a
    /// coordinator) does not send a warm forecaster back into cold start.
    fn resize(&mut self, steps: Vec<usize>) {
        let m = MODELS.len();
        let (old_k, k) = (self.k(), steps.len());
        let kmax = steps.last().copied().unwrap_or(1);
        let from: Vec<Option<usize>> = steps
            .iter()
            .map(|s| self.steps.binary_search(s).ok())
            .collect();
        let mut scores = vec![Score::default(); (m + 1) * k];
        for model in 0..=m {
            for (j, i) in from.iter().enumerate() {
                if let Some(s) = i.and_then(|i| self.scores.get(model * old_k + i)) {
                    scores[model * k + j] = *s;
                }
            }
        }
        self.conformal.remap(&from);
        self.steps = steps;
        self.issued = (0..=kmax)
            .map(|_| Issued {
                row: u64::MAX,
                preds: vec![f32::NAN; m * k],
                combined: vec![f64::NAN; k],
                p90: vec![f64::NAN; k],
                scale: 0.0,
            })
            .collect();
        self.scores = scores;
        self.path = vec![f64::NAN; m * kmax];
        self.scratch = vec![f64::NAN; m * k];
    }

    /// Scores the forecasts whose target is the observation just added.
    fn score(&mut self, v: f64) {
        let row = self.rows - 1;
        let k = self.k();
        for j in 0..k {
            let h = self.steps[j];
            let Some(origin) = row.checked_sub(h as u64) else {
                break;
            };
            let slot = self.slot(origin);
            let e = &self.issued[slot];
            if e.row != origin {
                continue;
            }
            // One wild value must not dominate the scores for hundreds of observations.
            let cap = ERR_CLIP * e.scale * (h as f64).sqrt();
            for m in 0..MODELS.len() {
                let p = f64::from(e.preds[m * k + j]);
                if p.is_finite() {
                    self.scores[m * k + j].add((v - p).abs().min(cap));
                }
            }
            let c = e.combined[j];
            if c.is_finite() {
                self.scores[COMBINED * k + j].add((v - c).abs().min(cap));
                if e.scale > 0.0 {
                    self.conformal.push(j, (v - c) / e.scale, v - c);
                }
                let p90 = e.p90[j];
                if p90.is_finite() && self.conformal.count(j) >= conformal::MIN_RESIDUALS {
                    self.conformal.covered(j, v <= p90 + 1e-12);
                }
            }
        }
    }

    /// Makes and stores every model's forecast at the latest observation.
    fn issue(&mut self) {
        let k = self.k();
        let Some(row) = self.rows.checked_sub(1) else {
            return;
        };
        let slot = self.slot(row);
        let mut e = std::mem::replace(
            &mut self.issued[slot],
            Issued {
                row,
                preds: Vec::new(),
                combined: Vec::new(),
                p90: Vec::new(),
                scale: 0.0,
            },
        );
        e.row = row;
        // Residuals are scaled by recent volatility, floored by the long-run one so that a
        // quiet spell cannot blow the scaled residuals up.
        e.scale = self
            .scale
            .max(SCALE_FLOOR * self.long_scale)
            .max(1e-9 * self.hist.values().last().map_or(1.0, |v| v.abs().max(1.0)));
        let view = View {
            times: self.hist.times(),
            values: self.hist.values(),
            step: self.step,
            bucket_s: self.config.bucket_s,
            profile: self.profile.as_ref(),
        };
        let t_last = *view.times.last().unwrap_or(&0.0);
        let kmax = self.kmax();
        let mut path = std::mem::take(&mut self.path);
        let mut scratch = std::mem::take(&mut self.scratch);
        for m in 0..MODELS.len() {
            let out = &mut path[m * kmax..(m + 1) * kmax];
            match m {
                NAIVE => naive::naive(view.values, out),
                DRIFT => naive::drift(view.times, view.values, self.step, 6, out),
                SNAIVE => match (self.period, self.step > 0.0) {
                    (Some(p), true) => seasonal_naive::seasonal_naive(&view, p, out),
                    _ => out.iter_mut().for_each(|o| *o = f64::NAN),
                },
                SLEVEL => match &self.profile {
                    Some(p) => {
                        seasonal_naive::seasonal_level(view.times, view.values, self.step, p, out)
                    }
                    None => out.iter_mut().for_each(|o| *o = f64::NAN),
                },
                ETS => match &self.ets {
                    Some(ets) => {
                        ets.predict(out);
                        reseason(&view, t_last, out);
                    }
                    None => out.iter_mut().for_each(|o| *o = f64::NAN),
                },
                THETA => match &self.theta {
                    Some(m) => {
                        m.predict_theta(out);
                        reseason(&view, t_last, out);
                    }
                    None => out.iter_mut().for_each(|o| *o = f64::NAN),
                },
                MEDIAN => {
                    let n = view.len();
                    let w = n.min(MEDIAN_ROWS);
                    let mut last: [f64; MEDIAN_ROWS] = [0.0; MEDIAN_ROWS];
                    for (j, l) in last[..w].iter_mut().enumerate() {
                        *l = view.x(n - 1 - j);
                    }
                    let (_, m, _) = last[..w].select_nth_unstable_by(w / 2, f64::total_cmp);
                    out.iter_mut().for_each(|o| *o = *m);
                    reseason(&view, t_last, out);
                }
                AR => match &self.ar {
                    Some(ar) => {
                        ar.predict(&view, out);
                        reseason(&view, t_last, out);
                    }
                    None => out.iter_mut().for_each(|o| *o = f64::NAN),
                },
                _ => {}
            }
            for (j, &s) in self.steps.iter().enumerate() {
                scratch[m * k + j] = path[m * kmax + s - 1];
            }
        }
        for (kept, &p) in e.preds.iter_mut().zip(&scratch) {
            *kept = p as f32;
        }
        for h in 0..k {
            e.combined[h] = self.combine(&scratch, h);
            let (_, p90, _) = self.band_of(&e, h);
            e.p90[h] = p90;
        }
        self.issued[slot] = e;
        self.path = path;
        self.scratch = scratch;
    }

    fn band_of(&self, e: &Issued, k: usize) -> (f64, f64, f64) {
        self.band(e, k)
    }

    /// Weighted combination at horizon index `h` of the models scored well enough.
    fn combine(&self, preds: &[f64], h: usize) -> f64 {
        let k = self.k();
        let maes: Vec<Option<f64>> = (0..MODELS.len())
            .map(|m| {
                let p = preds[m * k + h];
                if p.is_finite() {
                    self.scores[m * k + h].mae()
                } else {
                    None
                }
            })
            .collect();
        let Some(best) = maes.iter().flatten().copied().min_by(f64::total_cmp) else {
            return preds[DRIFT * k + h];
        };
        if self.ets.is_none() || maes[DRIFT].is_none() {
            return preds[DRIFT * k + h];
        }
        let (mut sw, mut s) = (0.0, 0.0);
        for (m, mae) in maes.iter().enumerate() {
            let Some(mae) = *mae else { continue };
            if mae > WEIGHT_CUTOFF * best {
                continue;
            }
            let w = if mae > 0.0 {
                (best / mae).powi(WEIGHT_POWER)
            } else {
                1.0
            };
            sw += w;
            s += w * preds[m * k + h];
        }
        if sw > 0.0 {
            s / sw
        } else {
            preds[NAIVE * k + h]
        }
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

/// Adds the seasonal profile back at each target time.
fn reseason(view: &View, t_last: f64, out: &mut [f64]) {
    if let Some(p) = view.profile {
        for (k, o) in out.iter_mut().enumerate() {
            *o += p.at(t_last + (k + 1) as f64 * view.step);
        }
    }
}

#[cfg(test)]
mod tests {
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
        // Reactive plus short-term trend: a ramp is extrapolated upwards.
        assert!(fc.points[0].p50 > 10.0, "{fc:?}");
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
}

#[cfg(test)]
mod cadence_tests {
    use super::*;

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
}
