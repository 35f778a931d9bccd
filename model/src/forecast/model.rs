//! The competing models, as one enum the compiler checks: each has a name ([`Model::name`])
//! and a way to forecast ([`Model::predict`]), both exhaustive matches, so a model added to
//! the enum is a compile error until it can be named and run. [`Model::ALL`] is the order of
//! the score tables (a test keeps it equal to the variants' order).

use super::View;
use super::ar::Ar;
use super::decompose::Profile;
use super::ets::Ets;
use super::naive;
use super::seasonal_naive;

/// Rows in the robust recent level (median).
const MEDIAN_ROWS: usize = 5;

/// Rows the short-term trend of the drift forecast is fitted on.
const DRIFT_ROWS: usize = 6;

/// A forecasting model of the ensemble.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Model {
    /// The last value.
    Naive,
    /// The recent level plus a damped short-term trend.
    Drift,
    /// The value one season before the target time.
    SeasonalNaive,
    /// The last deseasonalised value put back on the seasonal profile.
    SeasonalLevel,
    /// Damped-trend exponential smoothing on the deseasonalised series.
    Ets,
    /// Ridge autoregression on recent and seasonal lags.
    Ar,
    /// The theta method (exponential smoothing with half the trend).
    Theta,
    /// The median of the last few deseasonalised values, reseasoned.
    Median,
}

impl Model {
    /// Every model, in score-table order.
    pub(crate) const ALL: [Model; 8] = [
        Model::Naive,
        Model::Drift,
        Model::SeasonalNaive,
        Model::SeasonalLevel,
        Model::Ets,
        Model::Ar,
        Model::Theta,
        Model::Median,
    ];

    /// How many models there are.
    pub(crate) const COUNT: usize = Model::ALL.len();

    /// The model's row in the score tables.
    pub(crate) fn index(self) -> usize {
        self as usize
    }

    /// The name reported as a forecast's leading model.
    pub(crate) fn name(self) -> &'static str {
        match self {
            Model::Naive => "naive",
            Model::Drift => "drift",
            Model::SeasonalNaive => "seasonal_naive",
            Model::SeasonalLevel => "seasonal_level",
            Model::Ets => "ets",
            Model::Ar => "ar",
            Model::Theta => "theta",
            Model::Median => "median",
        }
    }

    /// Writes this model's forecast for steps 1..=`out.len()` after the latest row of `view`
    /// into `out`; NaN where the model has nothing to say (not fitted, no season).
    pub(crate) fn predict(self, fitted: &Fitted, view: &View, out: &mut [f64]) {
        let t_last = *view.times.last().unwrap_or(&0.0);
        let nothing = |out: &mut [f64]| out.iter_mut().for_each(|o| *o = f64::NAN);
        match self {
            Model::Naive => naive::naive(view.values, out),
            Model::Drift => naive::drift(view.times, view.values, view.step, DRIFT_ROWS, out),
            Model::SeasonalNaive => match (fitted.period, view.step > 0.0) {
                (Some(p), true) => seasonal_naive::seasonal_naive(view, p, out),
                _ => nothing(out),
            },
            Model::SeasonalLevel => match &fitted.profile {
                Some(p) => {
                    seasonal_naive::seasonal_level(view.times, view.values, view.step, p, out)
                }
                None => nothing(out),
            },
            Model::Ets => match &fitted.ets {
                Some(ets) => {
                    ets.predict(out);
                    reseason(view, t_last, out);
                }
                None => nothing(out),
            },
            Model::Theta => match &fitted.theta {
                Some(m) => {
                    m.predict_theta(out);
                    reseason(view, t_last, out);
                }
                None => nothing(out),
            },
            Model::Median => {
                let n = view.len();
                let w = n.min(MEDIAN_ROWS);
                let mut last: [f64; MEDIAN_ROWS] = [0.0; MEDIAN_ROWS];
                for (j, l) in last[..w].iter_mut().enumerate() {
                    *l = view.x(n - 1 - j);
                }
                let (_, m, _) = last[..w].select_nth_unstable_by(w / 2, f64::total_cmp);
                out.iter_mut().for_each(|o| *o = *m);
                reseason(view, t_last, out);
            }
            Model::Ar => match &fitted.ar {
                Some(ar) => {
                    ar.predict(view, out);
                    reseason(view, t_last, out);
                }
                None => nothing(out),
            },
        }
    }
}

/// What the models were fitted to at the latest refit: the season and its profile, and the
/// fitted smoothers and autoregression (each absent until it could be fitted).
#[derive(Debug, Clone, Default)]
pub(crate) struct Fitted {
    /// The detected seasonal period, seconds.
    pub(crate) period: Option<f64>,
    /// The seasonal profile of that period.
    pub(crate) profile: Option<Profile>,
    /// Damped-trend exponential smoothing.
    pub(crate) ets: Option<Ets>,
    /// The theta method.
    pub(crate) theta: Option<Ets>,
    /// Ridge autoregression.
    pub(crate) ar: Option<Ar>,
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

    #[test]
    fn the_score_order_is_the_variants_order_and_names_are_distinct() {
        for (i, m) in Model::ALL.iter().enumerate() {
            assert_eq!(m.index(), i, "{m:?}");
        }
        let mut names: Vec<&str> = Model::ALL.iter().map(|m| m.name()).collect();
        names.sort_unstable();
        names.dedup();
        assert_eq!(names.len(), Model::COUNT);
    }
}
