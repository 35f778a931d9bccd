//! The versioned Signal an agent sends its coordinator after every decision.

use serde::{Deserialize, Serialize};

/// Current Signal schema version.
pub const SIGNAL_VERSION: u32 = 1;

/// One decision, with health and a forecast summary, as sent to `POST /v1/signals`.
/// Applied exactly once per (host, epoch, seq).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Signal {
    /// Schema version ([`SIGNAL_VERSION`]).
    pub version: u32,
    /// Stable host id (config `host_id`, else the machine id or hostname).
    pub host: String,
    /// The scaling group this host belongs to.
    pub group: String,
    /// Random id of the host's store, new when the store is recreated (reinstall).
    pub epoch: String,
    /// Sequence number within the epoch, contiguous from 1.
    pub seq: u64,
    /// When the decision was made, unix seconds.
    pub decided_at: f64,
    /// When the signal was (last) sent, unix seconds.
    pub sent_at: f64,
    /// Demand signal name (e.g. `cpu.busy_cores`) and its value now.
    pub metric: String,
    pub demand_now: f64,
    /// This host's capacity in the demand unit.
    pub capacity: f64,
    /// Forecast at the lead time.
    pub lead_s: f64,
    pub p50_at_lead: Option<f64>,
    pub p90_at_lead: Option<f64>,
    /// Demand is censored (saturated CPU, overflowing accept queue).
    pub saturated: bool,
    /// `scale_out`, `hold` or `scale_in`.
    pub action: String,
    /// Desired change for this host's share, in instances.
    pub desired_change: i32,
    pub reason: String,
    /// `healthy`, `degraded` or `unhealthy`.
    pub health: String,
    pub health_reasons: Vec<String>,
}
