//! What the HTTP handlers and the decision loops share: the groups, their tokens, the state
//! file, the metrics and the signal writer.
//!
//! Agents POST [`Signal`](headroom_common::signal::Signal)s; each (host, epoch, seq) is
//! recorded once in the SQLite state file (an append-only log, with a dedup window per sender
//! to tell resends apart, see [`crate::dedup`]), so resends (at-least-once delivery) and
//! coordinator restarts never apply a signal twice. Every `decision_interval` each group sums
//! its live hosts' current demand, forecasts and decides with the model crate, and asks its
//! actuator for the capacity (rate-limited, logged with its reason; see [`crate::decision`]).
//! The wiring is in [`crate::daemon`].

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

use crate::actuator::Actuator;
use crate::auth::Tokens;
use crate::config::GroupConfig;
use crate::group::GroupState;
use crate::lease::Lease;
use crate::lock::locked;
use crate::metrics::Metrics;
use crate::state::State;
use crate::view::GroupView;
use crate::writer;

/// One group at run time.
pub struct Group {
    /// Its configuration.
    pub config: GroupConfig,
    /// Hosts, forecaster, policy, last evaluation.
    pub state: Mutex<GroupState>,
    /// What applies its capacity.
    pub actuator: Actuator,
    /// The election that decides whether this replica actuates it; `None` when it does alone
    /// (no `[lease]`, or a `keda` group, which every replica serves).
    pub lease: Option<Arc<Lease>>,
}

impl Group {
    /// The API view.
    pub fn view(&self, name: &str, now: f64) -> GroupView {
        let mut v = locked(&self.state).view(name, self.actuator.kind(), now);
        v.lease = self.lease.as_ref().and_then(|l| l.view(name));
        v
    }
}

/// Everything the HTTP handlers and the decision loops share.
pub struct App {
    /// Groups by name.
    pub groups: BTreeMap<String, Arc<Group>>,
    /// Accepted tokens.
    pub tokens: Tokens,
    /// The state file.
    pub state: Arc<Mutex<State>>,
    /// Prometheus metrics.
    pub metrics: Metrics,
    /// Largest accepted body.
    pub max_body_bytes: usize,
    /// Records received signals in group commits.
    pub writer: writer::Writer,
}
