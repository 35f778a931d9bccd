//! What a policy learned from the demand it decided on, as a value a binary stores and gives
//! back after a restart, so that restarting the agent or the coordinator does not reset it:
//!
//! - the price's surcharge (how far the group ran over its shortfall budget) and the spend
//!   compared with target tracking's (six hours' worth, which would otherwise take an hour to
//!   be trusted again, and during that hour a plan over its spend ceiling would decide);
//! - whether demand comes in whole units, and which;
//! - the last scale-out step saturation asked for, so a restart does not step again while it
//!   warms;
//! - the stabilisation window, the counts asked for over the last warm-up (what is ready) and
//!   target tracking's hold (kept only if its rule, capacity, utilisation and bounds, is the
//!   restoring policy's: as [`super::Policy::reconfigure`] keeps it). Like `reconfigure`, a
//!   restore keeps the stabilisation window whatever the configuration, so a restart never
//!   makes room for a scale-in that was held back.
//!
//! Invariants: restoring a memory taken after a decision and deciding on gives exactly the
//! decisions of a policy that never stopped (tested in `tests.rs`). The time between the memory
//! and the restore is nobody's: it is not counted as spend, only ages what was, the surcharge
//! with the spend (see [`super::price::Price::resume`]). A memory of another layout is
//! refused, never guessed at; the policy then starts afresh, as it did before memories were
//! kept.

use serde::{Deserialize, Serialize};

use super::lattice::Lattice;
use super::price::Price;
use super::reactive::Reactive;
use crate::window::{Largest, LeastInForce};

/// The layout of [`PolicyMemory`]; a stored memory of another layout is not restored. 2: the
/// counts asked for keep the one in force when the warm-up opened.
pub const MEMORY_LAYOUT: u32 = 2;

/// A policy's learned state, serialisable (the binaries store it as JSON).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PolicyMemory {
    /// [`MEMORY_LAYOUT`] when it was taken.
    pub layout: u32,
    /// Unix seconds of the last decision it holds.
    pub at: f64,
    pub(super) window: Largest,
    pub(super) asked: LeastInForce,
    /// Target tracking with its rule: its hold is restored only under the same rule.
    pub(super) tracking: Reactive,
    pub(super) price: Price,
    pub(super) lattice: Lattice,
    /// The last saturation step (when, and the count asked); absent in a memory written
    /// before it was kept, which then steps once more at most.
    #[serde(default)]
    pub(super) stepped: Option<(f64, u32)>,
}

/// What the policy learned, as the figures an operator reads (`headroom status`, a group's
/// view, `/metrics`): why the plan is priced up, or handed to target tracking.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Learned {
    /// What a short sample is priced at over the shortfall budget's own price: above 1 while
    /// the group runs short more often than its budget.
    pub price_factor: f64,
    /// The plan's recent spend per instance target tracking would run (1 until an hour of
    /// decisions is seen).
    pub spend_ratio: f64,
    /// The spend ceiling in force: past it, target tracking decides.
    pub spend_ceiling: f64,
    /// The unit demand comes in, once trusted: the plan covers whole counts of it.
    pub demand_unit: Option<u64>,
}

impl std::fmt::Display for Learned {
    /// One line: `a short sample priced 1.0x the budget's; spend 0.92x target tracking's
    /// (ceiling 1.40x); demand in whole counts of 1`.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "a short sample priced {:.1}x the budget's; spend {:.2}x target tracking's \
             (ceiling {:.2}x)",
            self.price_factor, self.spend_ratio, self.spend_ceiling
        )?;
        match self.demand_unit {
            Some(u) => write!(f, "; demand in whole counts of {u}"),
            None => Ok(()),
        }
    }
}

/// Why a stored memory was not restored.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum MemoryError {
    /// Written by a headroom whose memory had another layout.
    #[error("policy memory of layout {found}, this headroom reads layout {known}")]
    Layout {
        /// The stored memory's layout.
        found: u32,
        /// This build's ([`MEMORY_LAYOUT`]).
        known: u32,
    },
    /// Taken after the time it is restored at: a clock went back, or the memory is not this
    /// policy's.
    #[error("policy memory taken at {at:.0}, after the restore at {now:.0}")]
    FromTheFuture {
        /// When the memory was taken.
        at: f64,
        /// When it was to be restored.
        now: f64,
    },
}
