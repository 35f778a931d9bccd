//! `headroom coordinator`: receives signals from a group's agents and drives its actuator.

pub mod client;

use crate::cli::CoordinatorArgs;

/// Runs the coordinator until SIGTERM.
pub fn run(_args: CoordinatorArgs) -> anyhow::Result<()> {
    anyhow::bail!("coordinator: not built yet")
}
