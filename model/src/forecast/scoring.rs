//! Scoring: every model's forecast issued at each observation is kept until its target
//! arrives, then scored per horizon; the P50 combines the models by their scores, and the
//! bands come from the combination's own residuals ([`super::conformal`]). The tables are flat
//! vectors indexed `row * k + j` (row: a [`Model`] or the combination; `j`: the `j`-th scored
//! step), sized by [`Forecaster::resize`] when the steps scored change.

use super::conformal;
use super::model::Model;
use super::{
    COMBINED, ERR_CLIP, ERROR_DECAY, Forecaster, MAX_STEPS, MIN_SCORED, SCALE_FLOOR, View,
    WEIGHT_CUTOFF, WEIGHT_POWER,
};

/// Exponentially weighted mean absolute error.
#[derive(Debug, Clone, Copy, Default)]
pub(super) struct Score {
    sum: f64,
    weight: f64,
    count: f64,
}

impl Score {
    pub(super) fn add(&mut self, e: f64) {
        self.sum = self.sum * (1.0 - ERROR_DECAY) + e;
        self.weight = self.weight * (1.0 - ERROR_DECAY) + 1.0;
        self.count += 1.0;
    }

    pub(super) fn mae(&self) -> Option<f64> {
        (self.count >= MIN_SCORED).then(|| self.sum / self.weight)
    }
}

/// The forecasts made at one observation, kept until their targets arrive.
#[derive(Debug, Clone)]
pub(super) struct Issued {
    /// The observation it was issued at (`u64::MAX`: none yet).
    pub(super) row: u64,
    /// Every model's forecast, kept only to be scored, as its distance from `base`: `f32`
    /// halves the largest buffer of a warm forecaster (it grows with the square of the
    /// horizons), and a distance keeps its precision whatever the series' magnitude (a value
    /// of 1e12 as `f32` is rounded to 65,536, which swamped the errors being scored).
    preds: Vec<f32>,
    /// The value the forecasts are kept as distances from: the last observation at issue.
    base: f64,
    /// The combined P50 per scored step.
    combined: Vec<f64>,
    /// The P90 per scored step, to count its misses.
    p90: Vec<f64>,
    /// The residual scale when it was issued.
    scale: f64,
}

impl Forecaster {
    /// P50, P90, P99 at horizon index `k` of an issued forecast.
    pub(super) fn band(&self, e: &Issued, k: usize) -> (f64, f64, f64) {
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
        let p50 = p50.max(self.lowest);
        let p90 = (p50 + o90).max(p50);
        let p99 = (p50 + o99).max(p90);
        (p50, p90, p99)
    }

    /// The model with the lowest error at horizon index `k` (naive until one is scored).
    pub(super) fn leader(&self, k: usize) -> Model {
        Model::ALL
            .into_iter()
            .filter_map(|m| self.score_of(m.index(), k).mae().map(|e| (m, e)))
            .min_by(|a, b| a.1.total_cmp(&b.1))
            .map_or(Model::Naive, |(m, _)| m)
    }

    /// The score of model (or combination) row `row` at horizon index `k`.
    pub(super) fn score_of(&self, row: usize, k: usize) -> &Score {
        &self.scores[row * self.k() + k]
    }

    /// The slot of the issued table that holds observation `row`'s forecasts.
    pub(super) fn slot(&self, row: u64) -> usize {
        (row % (self.kmax() as u64 + 1)) as usize
    }

    /// Horizons scored: the stride of the score, residual and issued tables.
    pub(super) fn k(&self) -> usize {
        self.steps.len()
    }

    /// The farthest step scored.
    pub(super) fn kmax(&self) -> usize {
        self.steps.last().copied().unwrap_or(1)
    }

    /// The step of a horizon in seconds at the current cadence.
    pub(super) fn step_of(&self, horizon_s: f64) -> usize {
        ((horizon_s / self.step).round().max(1.0) as usize).min(MAX_STEPS)
    }

    /// Scores the steps asked for: every step up to `dense`, and the extra horizons at the
    /// current cadence.
    pub(super) fn retrack(&mut self) {
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
    pub(super) fn resize(&mut self, steps: Vec<usize>) {
        let m = Model::COUNT;
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
                base: 0.0,
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
    pub(super) fn score(&mut self, v: f64) {
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
            for m in 0..Model::COUNT {
                let p = e.base + f64::from(e.preds[m * k + j]);
                if p.is_finite() {
                    self.scores[m * k + j].add((v - p).abs().min(cap));
                }
            }
            let c = e.combined[j];
            if c.is_finite() {
                self.scores[COMBINED * k + j].add((v - c).abs().min(cap));
                let p90 = e.p90[j];
                // Hit exactly: an idle stretch (the P50 sits on the series' floor) or a constant
                // one whose models' weighted P50 comes out exact, which says nothing of the
                // errors to come. (A series mostly at its floor then has its band set on its
                // busy rows: wider, on the side of capacity.) Counted, it
                // would fill the windows with zeros and push the P90's level down for each, so
                // the band stayed shut for hours once the series moved again.
                let idle = v == c;
                if e.scale > 0.0 && !idle {
                    self.conformal.push(j, (v - c) / e.scale, v - c);
                }
                if p90.is_finite() && !idle && self.conformal.count(j) >= conformal::MIN_RESIDUALS {
                    self.conformal.covered(j, v <= p90 + 1e-12);
                }
            }
        }
    }

    /// Makes and stores every model's forecast at the latest observation.
    pub(super) fn issue(&mut self) {
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
                base: 0.0,
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
            profile: self.fitted.profile.as_ref(),
        };
        let kmax = self.kmax();
        let mut path = std::mem::take(&mut self.path);
        let mut scratch = std::mem::take(&mut self.scratch);
        for model in Model::ALL {
            let m = model.index();
            model.predict(&self.fitted, &view, &mut path[m * kmax..(m + 1) * kmax]);
            for (j, &s) in self.steps.iter().enumerate() {
                scratch[m * k + j] = path[m * kmax + s - 1];
            }
        }
        e.base = self.hist.values().last().copied().unwrap_or(0.0);
        for (kept, &p) in e.preds.iter_mut().zip(&scratch) {
            *kept = (p - e.base) as f32;
        }
        for h in 0..k {
            e.combined[h] = self.combine(&scratch, h).max(self.lowest);
            let (_, p90, _) = self.band(&e, h);
            e.p90[h] = p90;
        }
        self.issued[slot] = e;
        self.path = path;
        self.scratch = scratch;
    }

    /// Weighted combination at horizon index `h` of the models scored well enough; the last
    /// value until the models are scored (a member not yet scored is not trusted, and the last
    /// value is the member that needs no history).
    pub(super) fn combine(&self, preds: &[f64], h: usize) -> f64 {
        let k = self.k();
        let drift = Model::Drift.index();
        let maes: Vec<Option<f64>> = (0..Model::COUNT)
            .map(|m| {
                let p = preds[m * k + h];
                if p.is_finite() {
                    self.scores[m * k + h].mae()
                } else {
                    None
                }
            })
            .collect();
        let naive = preds[Model::Naive.index() * k + h];
        let Some(best) = maes.iter().flatten().copied().min_by(f64::total_cmp) else {
            return naive;
        };
        if self.fitted.ets.is_none() || maes[drift].is_none() {
            return naive;
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
            preds[Model::Naive.index() * k + h]
        }
    }
}
