//! One actuation's hold on its group under a lease ([`Leading`]): the fence before the first
//! call, the term it confirmed held to by every call, etcd asked again before each call after
//! the first, and each call abandoned at the lease's deadline ([`while_leading`]).
//!
//! Invariant: no call of an actuation starts unless this replica leads the group in the term
//! the fence confirmed, as etcd confirmed it just before (a deadline alone cannot tell that the
//! key this replica won was taken during an earlier call), and none runs past the deadline.

use crate::actuator::ActuatorError;
use crate::app::{App, Group};
use crate::fault;
use crate::metrics::GroupLabel;

/// One actuation's hold on its group: the lease's term the fence confirmed, held to by every
/// call of the actuation, and fenced again through etcd before each call after the first. A
/// deadline alone cannot tell that the key this replica won was taken (deleted, or its lease
/// revoked and a new one granted) during an earlier call: another replica may lead by then.
pub(crate) struct Leading<'a> {
    pub(crate) app: &'a App,
    pub(crate) group: &'a Group,
    pub(crate) name: &'a str,
    label: &'a GroupLabel,
    /// The term the fence confirmed; `None` for a group under no lease.
    term: Option<u64>,
    /// Calls made so far.
    pub(crate) calls: usize,
    /// Whether the last call was sent (a refused one was not; one abandoned at the deadline
    /// was, and may have been applied).
    pub(crate) sent: bool,
}

impl<'a> Leading<'a> {
    /// Whether this replica may actuate the group now: without a lease always; with one, the
    /// lease's deadline, then etcd (the leader key still has the revision won), then the
    /// deadline again just before the call. A refusal is counted and logged; the group keeps
    /// its capacity.
    pub(crate) async fn fence(
        app: &'a App,
        group: &'a Group,
        name: &'a str,
        label: &'a GroupLabel,
    ) -> Option<Leading<'a>> {
        let mut lead = Leading {
            app,
            group,
            name,
            label,
            term: None,
            calls: 0,
            sent: false,
        };
        let Some(lease) = &group.lease else {
            return Some(lead);
        };
        let fenced = match lease.fence(name).await {
            Ok(term) => {
                fault::stop_after_fence();
                // The last check, just before the call: a pause since the fence (a stopped
                // process, a paused VM) that outlasted the lease sends nothing.
                if lease.time_left_in(term).is_zero() {
                    Err("past the lease's deadline after the check".to_string())
                } else {
                    Ok(term)
                }
            }
            Err(why) => Err(why.to_string()),
        };
        match fenced {
            Ok(term) => {
                lead.term = Some(term);
                Some(lead)
            }
            Err(why) => {
                lead.refused(&why);
                None
            }
        }
    }

    /// Clears the count the group's leaders applied in etcd before a call that changes it
    /// ([`crate::lease::Lease::record_applied`]): a call whose outcome stays unknown (abandoned
    /// at the deadline, a crash) must leave no count for a successor to trust. The clear checks
    /// the leadership as a fence does, and a refusal is one, `during` saying what the actuation
    /// had done by then: the call is not made.
    pub(crate) async fn clear_applied(&mut self, during: &str) -> Result<(), ActuatorError> {
        let (Some(lease), Some(term)) = (&self.group.lease, self.term) else {
            return Ok(());
        };
        if let Err(why) = lease.record_applied(self.name, term, None).await {
            self.refused(&why.to_string());
            self.sent = false;
            return Err(ActuatorError::Fenced(format!(
                "leadership not confirmed again {during}: {why}"
            )));
        }
        Ok(())
    }

    /// Records in etcd the count this actuation applied, for whoever leads the group next;
    /// nothing for a group under no lease. A failure is logged: a successor then does without
    /// it (the count stays cleared).
    pub(crate) async fn record_applied(&self, count: u32) {
        let (Some(lease), Some(term)) = (&self.group.lease, self.term) else {
            return;
        };
        if let Err(why) = lease.record_applied(self.name, term, Some(count)).await {
            tracing::warn!(group = %self.name, count, "recording the applied count in etcd: {why}");
        }
    }

    /// Counts and logs a refusal.
    fn refused(&self, why: &str) {
        self.app.metrics.fenced.get_or_create(self.label).inc();
        tracing::warn!(group = %self.name, "actuation refused by fencing: {why}; the group keeps its capacity");
    }

    /// Runs one call of the actuation while this replica leads in the fenced term (see
    /// [`while_leading`]); a call after the first is fenced again first, `during` saying what
    /// the actuation had done by then when it is refused.
    pub(crate) async fn call<T>(
        &mut self,
        during: &str,
        call: impl Future<Output = Result<T, ActuatorError>>,
    ) -> Result<T, ActuatorError> {
        if let (Some(lease), Some(term)) = (&self.group.lease, self.term) {
            if self.calls > 0 {
                let again = match lease.fence(self.name).await {
                    Ok(t) if t == term => Ok(()),
                    Ok(_) => Err("the lease's term ended".to_string()),
                    Err(why) => Err(why.to_string()),
                };
                if let Err(why) = again {
                    self.refused(&why);
                    self.sent = false;
                    return Err(ActuatorError::Fenced(format!(
                        "leadership not confirmed again {during}: {why}"
                    )));
                }
            }
            self.calls += 1;
            return while_leading(lease, term, call, &mut self.sent).await;
        }
        self.calls += 1;
        self.sent = true;
        call.await
    }
}

/// How often a call under a lease looks at the lease's deadline at the most.
const LEASE_LOOK: std::time::Duration = std::time::Duration::from_secs(1);

/// Runs one call that changes the world only while this replica leads in `term` (the one the
/// fence confirmed): not started past the lease's deadline, and abandoned at it if still
/// running (its future dropped, which cancels the request and kills a hook's process group), so
/// a call slowed by throttling or retries cannot land after another replica took the group
/// over. A renewal during the call moves the deadline on, and the call with it; a new lease
/// (the term ended, say by a revoke) does not: it has a deadline of its own, and another
/// replica may lead the group by then. `started` says whether the call was sent.
async fn while_leading<T>(
    lease: &crate::lease::Lease,
    term: u64,
    call: impl Future<Output = Result<T, ActuatorError>>,
    started: &mut bool,
) -> Result<T, ActuatorError> {
    let mut call = std::pin::pin!(call);
    *started = false;
    loop {
        let left = lease.time_left_in(term);
        if left.is_zero() {
            return Err(ActuatorError::Fenced(
                if *started {
                    "the lease's deadline came during the call, so it was abandoned"
                } else {
                    "past the lease's deadline before the call"
                }
                .into(),
            ));
        }
        *started = true;
        // Looked at again every second at least: tokio's timers do not count a suspended host
        // (CLOCK_MONOTONIC), the deadline does (CLOCK_BOOTTIME).
        if let Ok(done) = tokio::time::timeout(left.min(LEASE_LOOK), &mut call).await {
            return done;
        }
    }
}
