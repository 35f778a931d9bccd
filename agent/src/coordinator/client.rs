//! `headroom groups`: asks a coordinator for its groups.

use crate::cli::GroupsArgs;

/// Runs `headroom groups`.
pub fn groups(_args: &GroupsArgs) -> anyhow::Result<()> {
    anyhow::bail!("groups: not built yet")
}
