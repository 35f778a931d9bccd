//! Which replica actuates a group: the one that holds the group's election in etcd.
//!
//! Every replica receives every signal, forecasts and decides for every group (they are all
//! warm); only the leader of a group actuates it. Each replica keeps one etcd lease, renewed
//! every third of its TTL by `session.rs`, and campaigns under it for each group whose actuator
//! changes the world (`aws`, `command`, `dry-run`; KEDA pulls the same value from every
//! replica, so `keda` groups need no leader). etcd's v3 election API decides: the campaign key
//! with the lowest create revision leads, and it is deleted with its lease.
//!
//! **Fencing**, two checks before every actuation ([`Lease::fence`]):
//! - a local deadline, the last renewal's request time + the TTL etcd granted − a margin, on
//!   `CLOCK_BOOTTIME`, which keeps counting while the host sleeps or the VM is paused: a leader
//!   never starts an actuation past it;
//! - one etcd transaction comparing the leader key's create revision with the one it won: a
//!   replica whose key expired (and was won by another since) learns it there. The transaction
//!   carries a linearizable read of the key: etcd serves a transaction whose operations are all
//!   serializable reads (a compare alone counts as one) from the local member's store, without
//!   the quorum, so a member cut off from its peers would confirm a leadership the cluster may
//!   no longer grant. With the read, the answer needs a quorum (a read index), as it must.
//!
//! The caller checks the deadline once more just before the call, holds every call of the
//! actuation to the term the fence confirmed, and fences again through etcd before every
//! further call of the same actuation (raising a maximum, then setting the count), so neither a
//! slow call nor a key taken meanwhile carries the next past the leadership;
//! a call still running at the deadline (a throttled API, a slow hook) is abandoned there, its
//! request cancelled and a hook's process group killed. A replica that lost its lease,
//! or cannot reach etcd, fails both within the TTL and stops actuating: the group keeps its
//! capacity (fail-static), and `headroom groups` says why. A replica that wins wakes the group's
//! decision loop at once, and holds the engine's current capacity through a stabilisation
//! window before any scale-in (so a takeover causes no jump).

mod config;
mod session;

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use etcd_client::{Compare, CompareOp, Txn, TxnOp};
use serde::Serialize;
use tokio::sync::Notify;

pub use config::{DEFAULT_PREFIX, DEFAULT_TTL, LeaseConfig};
pub use session::run;

use crate::lock::locked;

/// The longest a decision waits for etcd's answer on the count applied.
const APPLIED_READ: Duration = Duration::from_secs(2);

/// A point on `CLOCK_BOOTTIME`. std's `Instant` is `CLOCK_MONOTONIC`, which stops while the
/// host is suspended: a leader woken from a suspension longer than its TTL would think its
/// lease still good.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct BootInstant(Duration);

impl BootInstant {
    /// Now.
    pub fn now() -> BootInstant {
        let t = rustix::time::clock_gettime(rustix::time::ClockId::Boottime);
        BootInstant(Duration::new(
            u64::try_from(t.tv_sec).unwrap_or(0),
            u32::try_from(t.tv_nsec).unwrap_or(0),
        ))
    }

    /// `d` later.
    pub fn after(self, d: Duration) -> BootInstant {
        BootInstant(self.0 + d)
    }

    /// How long from now until this point (zero once passed).
    pub fn left(self) -> Duration {
        self.0.saturating_sub(BootInstant::now().0)
    }
}

/// Why a replica may not actuate a group now.
#[derive(Debug, Clone, thiserror::Error)]
pub enum Refused {
    /// Another replica leads, or none does yet.
    #[error("not the leader")]
    NotLeader,
    /// The lease may have expired: no renewal came back in time.
    #[error("past the lease's deadline (no renewal from etcd in time)")]
    PastDeadline,
    /// The key this replica won is gone or was won again: another replica may lead.
    #[error("the leader key changed in etcd: leadership lost")]
    KeyLost,
    /// etcd did not answer the check.
    #[error("etcd did not confirm the leadership: {0}")]
    Unconfirmed(String),
}

/// The leadership this replica won for a group.
#[derive(Debug, Clone)]
struct Held {
    /// The campaign key that leads.
    key: Vec<u8>,
    /// Its create revision, compared before each actuation.
    rev: i64,
    /// When it was won, unix seconds.
    since: f64,
}

/// One group's election, as this replica sees it.
#[derive(Debug, Default)]
struct Seat {
    held: Option<Held>,
    /// The leading replica's name, from etcd.
    leader: Option<String>,
    /// Every replica campaigning, by name.
    replicas: Vec<String>,
    /// How long ago the leader's lease was last renewed, seconds.
    lease_age_s: Option<f64>,
    /// Why this replica does not act, when it does not.
    why: Option<String>,
    /// Another replica may have led since this was last taken ([`Lease::take_led_elsewhere`]):
    /// at a start (nothing is known of the time before), when another was seen leading or
    /// nobody could be seen while this one did not hold the seat, when a term ended, at a win.
    maybe_led_elsewhere: bool,
}

/// One group's election: what this replica knows of it, and the wake its decision loop waits on.
struct Election {
    seat: Mutex<Seat>,
    /// Notified when this replica wins, so the group's loop decides at once.
    won: Arc<Notify>,
    /// Notified when the fence finds the key this replica won gone, so it campaigns again.
    key_lost: Notify,
}

/// What `headroom groups` and `/v1/groups` show of a group's election.
#[derive(Debug, Clone, Serialize, serde::Deserialize, PartialEq)]
pub struct LeaseView {
    /// This replica's name.
    pub replica: String,
    /// Whether this replica may actuate the group now.
    pub leader_here: bool,
    /// The leading replica, as etcd has it.
    pub leader: Option<String>,
    /// Replicas campaigning for the group.
    pub replicas: Vec<String>,
    /// How long ago the leader's lease was last renewed, seconds.
    pub lease_age_s: Option<f64>,
    /// The TTL, seconds.
    pub ttl_s: f64,
    /// When this replica won, unix seconds.
    pub leader_since: Option<f64>,
    /// Why this replica does not act (standby, etcd unreachable, ...).
    pub why: Option<String>,
}

/// This replica's side of every group's election.
pub struct Lease {
    config: LeaseConfig,
    /// Until when this replica's lease is surely alive at etcd; `None` without one.
    deadline: Mutex<Option<BootInstant>>,
    /// The client of the current lease, for the fencing transaction.
    client: Mutex<Option<etcd_client::Client>>,
    elections: BTreeMap<String, Election>,
    /// Terms ended so far ([`Lease::lost`]): the current term's number.
    terms_ended: AtomicU64,
}

impl Lease {
    /// Campaigns for `groups` under `config`.
    pub fn new(config: LeaseConfig, groups: impl IntoIterator<Item = String>) -> Arc<Lease> {
        let elections = groups
            .into_iter()
            .map(|g| {
                let seat = Mutex::new(Seat {
                    why: Some("campaigning: not connected to etcd yet".into()),
                    maybe_led_elsewhere: true,
                    ..Seat::default()
                });
                let won = Arc::new(Notify::new());
                let key_lost = Notify::new();
                (
                    g,
                    Election {
                        seat,
                        won,
                        key_lost,
                    },
                )
            })
            .collect();
        Arc::new(Lease {
            config,
            deadline: Mutex::new(None),
            client: Mutex::new(None),
            elections,
            terms_ended: AtomicU64::new(0),
        })
    }

    /// Whether `group` is under this lease (the `keda` groups are not).
    pub fn governs(&self, group: &str) -> bool {
        self.elections.contains_key(group)
    }

    /// Notified when this replica wins `group`, so its loop decides at once.
    pub fn wake(&self, group: &str) -> Option<Arc<Notify>> {
        self.elections.get(group).map(|e| e.won.clone())
    }

    /// The seat of `group`, if it is under this lease.
    fn seat(&self, group: &str) -> Option<&Mutex<Seat>> {
        self.elections.get(group).map(|e| &e.seat)
    }

    /// Whether this replica holds `group`'s election (cleared when the fence finds the key
    /// lost, or the term ends).
    fn holds(&self, group: &str) -> bool {
        self.seat(group).is_some_and(|s| locked(s).held.is_some())
    }

    /// Returns once this replica no longer holds `group`'s election (at once if it does not).
    /// A term that ends aborts the campaign waiting here; within a term only the fence lets go.
    async fn while_held(&self, group: &str) {
        let Some(e) = self.elections.get(group) else {
            return;
        };
        // A loss between the check and the wait leaves a permit: the wait then returns at once.
        while self.holds(group) {
            e.key_lost.notified().await;
        }
    }

    /// Whether this replica may actuate `group` now, as far as it knows without asking etcd.
    pub fn acting(&self, group: &str) -> bool {
        let Some(seat) = self.seat(group) else {
            return true;
        };
        locked(seat).held.is_some() && self.before_deadline()
    }

    /// Whether another replica may have led `group` since the last call (at the first call, since
    /// the start): what this replica set itself before then may have been changed since.
    pub fn take_led_elsewhere(&self, group: &str) -> bool {
        self.seat(group)
            .is_some_and(|s| std::mem::take(&mut locked(s).maybe_led_elsewhere))
    }

    /// Why this replica may not actuate `group` now (a standby, etcd unreachable, ...); `None`
    /// when it may, or when the group is not under this lease.
    pub fn standby(&self, group: &str) -> Option<String> {
        let seat = self.seat(group)?;
        if self.acting(group) {
            return None;
        }
        Some(locked(seat).why.clone().unwrap_or_else(|| "standby".into()))
    }

    /// Whether the lease's deadline is still ahead.
    pub fn before_deadline(&self) -> bool {
        !self.time_left().is_zero()
    }

    /// How long until the lease's deadline (zero once passed, or with no lease held).
    pub fn time_left(&self) -> Duration {
        locked(&self.deadline).map_or(Duration::ZERO, BootInstant::left)
    }

    /// How long until the deadline of term `term`: zero once it passed, or once that term
    /// ended (a lease granted since has a deadline of its own, and this replica may no
    /// longer lead what it led in `term`).
    pub fn time_left_in(&self, term: u64) -> Duration {
        // The deadline first: a term ending after this read is still seen below.
        let left = self.time_left();
        if self.term_now() == term {
            left
        } else {
            Duration::ZERO
        }
    }

    /// Checks, just before an actuation of `group`, that this replica still leads it: the local
    /// deadline, then etcd (the leader key still has the revision it won), then the deadline
    /// again, all in one term. Returns that term, for every call of the actuation to be held
    /// to ([`Lease::time_left_in`]). A group not under the lease passes.
    pub async fn fence(&self, group: &str) -> Result<u64, Refused> {
        let term = self.term_now();
        let Some((election, held)) = self.held(group)? else {
            return Ok(term);
        };
        let deadline = (*locked(&self.deadline)).ok_or(Refused::PastDeadline)?;
        let left = deadline.left();
        if left.is_zero() {
            return Err(Refused::PastDeadline);
        }
        // The read makes the transaction linearizable (see the module's note on fencing).
        let read = TxnOp::get(held.key.clone(), None);
        self.if_held(election, &held, left, read).await?;
        // A term that ended during the check (a revoke, a new grant) leads nothing it led.
        if self.time_left_in(term).is_zero() {
            Err(Refused::PastDeadline)
        } else {
            Ok(term)
        }
    }

    /// Records in etcd, for whoever leads `group` next, the count this replica applied leading
    /// it in `term`; `None` clears it, before a call whose outcome may stay unknown (one
    /// abandoned at the deadline, a crash): a successor then does without it. In one
    /// transaction with the check that this replica still holds the key it won, so a replica
    /// that lost the group never overwrites what its successor applied.
    pub async fn record_applied(
        &self,
        group: &str,
        term: u64,
        count: Option<u32>,
    ) -> Result<(), Refused> {
        let Some((election, held)) = self.held(group)? else {
            return Ok(());
        };
        let left = self.time_left_in(term);
        if left.is_zero() {
            return Err(Refused::PastDeadline);
        }
        let key = self.config.applied(group);
        let op = match count {
            Some(n) => TxnOp::put(key, n.to_string(), None),
            None => TxnOp::delete(key, None),
        };
        self.if_held(election, &held, left, op).await
    }

    /// The election of `group` and the key this replica holds in it: `None` for a group not
    /// under the lease, refused when this replica does not lead it.
    fn held(&self, group: &str) -> Result<Option<(&Election, Held)>, Refused> {
        let Some(election) = self.elections.get(group) else {
            return Ok(None);
        };
        let held = locked(&election.seat)
            .held
            .clone()
            .ok_or(Refused::NotLeader)?;
        Ok(Some((election, held)))
    }

    /// Runs `op` in one etcd transaction with the check that this replica still holds the
    /// key it won (`held`), waiting at most `left`. A key found lost is given up at once, and
    /// its campaign woken to run again.
    async fn if_held(
        &self,
        election: &Election,
        held: &Held,
        left: Duration,
        op: TxnOp,
    ) -> Result<(), Refused> {
        let mut client = locked(&self.client)
            .clone()
            .ok_or_else(|| Refused::Unconfirmed("no etcd connection".into()))?;
        let txn = Txn::new()
            .when([Compare::create_revision(
                held.key.clone(),
                CompareOp::Equal,
                held.rev,
            )])
            .and_then([op]);
        match tokio::time::timeout(left, client.txn(txn)).await {
            Ok(Ok(r)) if r.succeeded() => Ok(()),
            Ok(Ok(_)) => {
                let mut s = locked(&election.seat);
                if s.held.as_ref().is_some_and(|h| h.rev == held.rev) {
                    s.held = None;
                    s.maybe_led_elsewhere = true;
                    s.why = Some(Refused::KeyLost.to_string());
                    drop(s);
                    election.key_lost.notify_one();
                }
                Err(Refused::KeyLost)
            }
            Ok(Err(e)) => Err(Refused::Unconfirmed(e.to_string())),
            Err(_) => Err(Refused::PastDeadline),
        }
    }

    /// The count `group`'s leaders last applied, as recorded in etcd ([`Lease::record_applied`]),
    /// if one is; an error when etcd does not answer within [`APPLIED_READ`] (the group's
    /// decision waits on it), or holds what is no count.
    pub async fn applied(&self, group: &str) -> Result<Option<u32>, String> {
        let mut client = locked(&self.client)
            .clone()
            .ok_or_else(|| "no etcd connection".to_string())?;
        let key = self.config.applied(group);
        let read = client.get(key.clone(), None);
        let r = tokio::time::timeout(APPLIED_READ.min(self.config.ttl / 3), read)
            .await
            .map_err(|_| "etcd did not answer in time".to_string())?
            .map_err(|e| e.to_string())?;
        let Some(kv) = r.kvs().first() else {
            return Ok(None);
        };
        kv.value_str()
            .ok()
            .and_then(|v| v.parse().ok())
            .map(Some)
            .ok_or_else(|| format!("{key} holds no count: {:?}", kv.value_str()))
    }

    /// What the API shows of `group`'s election; `None` for a group not under the lease.
    pub fn view(&self, group: &str) -> Option<LeaseView> {
        let seat = self.seat(group)?;
        let why = self.standby(group);
        let s = locked(seat);
        Some(LeaseView {
            replica: self.config.replica.clone(),
            leader_here: why.is_none(),
            leader: s.leader.clone(),
            replicas: s.replicas.clone(),
            lease_age_s: s.lease_age_s,
            ttl_s: self.config.ttl.as_secs_f64(),
            leader_since: s.held.as_ref().map(|h| h.since),
            why,
        })
    }

    /// The groups this replica campaigns for.
    fn groups(&self) -> impl Iterator<Item = &String> {
        self.elections.keys()
    }

    /// A renewal sent at `sent` came back with `ttl_s` seconds granted.
    fn renewed(&self, sent: BootInstant, ttl_s: i64) {
        let ttl = Duration::from_secs(u64::try_from(ttl_s).unwrap_or(0));
        let until = sent.after(ttl.saturating_sub(self.config.margin()));
        let mut d = locked(&self.deadline);
        *d = Some(d.map_or(until, |old| old.max(until)));
    }

    /// The term now: how many have ended. A campaign carries the one it was started in.
    fn term_now(&self) -> u64 {
        self.terms_ended.load(Ordering::SeqCst)
    }

    /// This replica won `group` in term `term`; a win from a term that has ended since (its
    /// campaign finished just as the term did) is ignored, so no stale hold outlives it.
    fn won(&self, group: &str, key: Vec<u8>, rev: i64, term: u64) {
        let Some(e) = self.elections.get(group) else {
            return;
        };
        {
            let mut s = locked(&e.seat);
            // Checked under the seat's lock, which `lost` takes after ending the term.
            if self.term_now() != term {
                return;
            }
            s.held = Some(Held {
                key,
                rev,
                since: headroom_common::clock::unix_now(),
            });
            s.leader = Some(self.config.replica.clone());
            s.why = None;
            // Whoever led before may have changed the count since this replica last read
            // it: the group reads it again before its first decision as leader.
            s.maybe_led_elsewhere = true;
        }
        e.won.notify_one();
    }

    /// The lease is gone or unusable: nothing is held until a new one wins again.
    fn lost(&self, why: &str) {
        self.terms_ended.fetch_add(1, Ordering::SeqCst);
        *locked(&self.deadline) = None;
        *locked(&self.client) = None;
        for e in self.elections.values() {
            let mut s = locked(&e.seat);
            s.held = None;
            s.why = Some(why.to_string());
            s.maybe_led_elsewhere = true;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn another_leader_is_assumed_at_a_start_and_after_a_term() {
        let lease = Lease::new(LeaseConfig::default(), ["web".to_string()]);
        assert!(
            lease.take_led_elsewhere("web"),
            "nothing known before the start"
        );
        assert!(!lease.take_led_elsewhere("web"), "taken");
        lease.won("web", b"/headroom/web/1".to_vec(), 7, lease.term_now());
        assert!(
            lease.take_led_elsewhere("web"),
            "a win follows whoever led before"
        );
        assert!(!lease.take_led_elsewhere("web"));
        lease.lost("no lease: the lease expired at etcd");
        assert!(lease.take_led_elsewhere("web"), "a term that ended");
        assert!(!lease.take_led_elsewhere("other-group"));
    }

    #[test]
    fn a_win_from_a_term_that_has_ended_is_ignored() {
        let lease = Lease::new(LeaseConfig::default(), ["web".to_string()]);
        let started_in = lease.term_now();
        lease.lost("no lease: the lease expired at etcd");
        lease.won("web", b"/headroom/web/1".to_vec(), 7, started_in);
        assert!(!lease.holds("web"), "a stale win holds nothing");
        lease.won("web", b"/headroom/web/2".to_vec(), 9, lease.term_now());
        assert!(lease.holds("web"));
    }
}
