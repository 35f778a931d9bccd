//! headroom's pure core: no I/O, no clock. Values and timestamps (unix seconds) go in,
//! forecasts and decisions come out, so the daemon, the coordinator, `backtest` and `simulate`
//! all run exactly the same code.
//!
//! - [`Forecaster`]: `observe(t, v)` once per rollup (amortised O(K), refits on a schedule of
//!   `refit_every` observations), `forecast(&[horizon_s])` (a lookup between refits) →
//!   [`Forecast`] with P50/P90/P99 per horizon, the leading model, a cold-start `fallback`
//!   reason, the recent error against the naive forecast and the detected season.
//! - [`Policy`]: `decide(&Observation, Option<&Forecast>)` → [`Decision`] with its reason and
//!   inputs; keeps its stabilisation window.
//! - [`replay`]: strictly causal `backtest` and `simulate` over in-memory series, plus
//!   `summarize` and `median_step`.
//! - [`Ledger`]: what a plan spent and how often it fell short next to target tracking on the
//!   same demand, and the forecast's error at the lead, per hour.
//!
//! The names and fields above are a stable contract for the agent and the coordinator.

pub mod forecast;
pub mod ledger;
pub mod policy;
pub mod replay;
pub mod schedule;
mod window;

pub use forecast::{Forecast, ForecastConfig, ForecastPoint, Forecaster};
pub use ledger::Ledger;
pub use policy::{
    Action, Decision, Learned, MemoryError, Observation, Policy, PolicyConfig, PolicyMemory,
    PolicyMode, ScaleIn, lead_horizons,
};
