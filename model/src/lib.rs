//! headroom's pure core: no I/O, no clock. Values and timestamps (unix seconds) go in,
//! forecasts and decisions come out, so the daemon, the coordinator, `backtest` and `simulate`
//! all run exactly the same code.
//!
//! CONTRACT (skeleton): `Forecaster`, `Forecast`, `Policy`, `Decision` and the `replay`
//! functions are what the agent and the coordinator call. Their names and existing fields are
//! stable; internals are free.

pub mod forecast;
pub mod policy;
pub mod replay;

pub use forecast::{Forecast, ForecastConfig, ForecastPoint, Forecaster};
pub use policy::{Action, Decision, Observation, Policy, PolicyConfig, PolicyMode};
