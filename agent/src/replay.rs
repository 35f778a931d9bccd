//! `headroom backtest` and `headroom simulate`: CSV in, CSV (and optional SVG) out.

use crate::cli::{BacktestArgs, SimulateArgs};

/// Runs `headroom backtest`.
pub fn backtest(_args: &BacktestArgs) -> anyhow::Result<()> {
    anyhow::bail!("backtest: not built yet")
}

/// Runs `headroom simulate`.
pub fn simulate(_args: &SimulateArgs) -> anyhow::Result<()> {
    anyhow::bail!("simulate: not built yet")
}
