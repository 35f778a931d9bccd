//! The wall clock, read in one place. Only the edges read it: the model takes time as an
//! argument, and the agent's cadence runs on the monotonic clock.

use std::time::{SystemTime, UNIX_EPOCH};

/// Unix seconds now (0 for a clock set before 1970).
pub fn unix_now() -> f64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0.0, |d| d.as_secs_f64())
}
