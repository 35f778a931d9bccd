//! The replica's etcd session: connect, grant a lease, renew it every third of its TTL,
//! campaign under it for every group, and look at who leads. One lease is one *term*: it ends
//! when etcd says the lease is gone (a renewal answered with TTL 0, or, when the keep-alive
//! stream is reopened after a failure, a lease etcd no longer knows), and a new one is granted.
//!
//! A renewal that fails (etcd unreachable, no quorum) ends nothing by itself: the renewals go
//! on, the local deadline runs out, and the replica stops actuating ([`super::Lease::fence`]).
//! When etcd answers again, the same lease is renewed if it still lives (etcd extends leases
//! across a change of its own leader), so a short quorum loss costs no election.

use std::sync::Arc;
use std::time::Duration;

use etcd_client::{Client, ConnectOptions, GetOptions, LeaseKeepAliveStream, LeaseKeeper};
use tokio::sync::watch;
use tokio::task::JoinSet;

use super::{BootInstant, Lease};
use crate::lock::locked;

/// How often a connection pings etcd while a call is open. etcd answers a client that pings
/// more often than its `--grpc-keepalive-min-time` (5 s by default) with a GOAWAY that breaks
/// every call on the connection: a waiting campaign, the lease's keep-alive stream.
const KEEPALIVE_EVERY: Duration = Duration::from_secs(6);

/// Why a term ended.
#[derive(Debug, thiserror::Error)]
enum TermError {
    #[error("etcd: {0}")]
    Etcd(#[from] etcd_client::Error),
    #[error("etcd did not answer within {0:?}")]
    Timeout(Duration),
    #[error("the lease expired at etcd")]
    Expired,
}

/// Runs the replica's sessions until `stop`: a new term whenever one ends.
pub async fn run(lease: Arc<Lease>, mut stop: watch::Receiver<bool>) {
    loop {
        match term(&lease, &mut stop).await {
            Ok(()) => return,
            Err(e) => {
                tracing::warn!(replica = %lease.config.replica, "lease: {e}; not actuating until a new lease wins");
                lease.lost(&format!("no lease: {e}"));
            }
        }
        tokio::select! {
            _ = tokio::time::sleep(Duration::from_secs(1)) => {}
            _ = stop.changed() => return,
        }
    }
}

/// Bounds an etcd call by `limit`.
async fn within<T>(
    limit: Duration,
    f: impl Future<Output = Result<T, etcd_client::Error>>,
) -> Result<T, TermError> {
    tokio::time::timeout(limit, f)
        .await
        .map_err(|_| TermError::Timeout(limit))?
        .map_err(TermError::from)
}

/// One lease, from its grant to its end; `Ok` when asked to stop.
async fn term(lease: &Arc<Lease>, stop: &mut watch::Receiver<bool>) -> Result<(), TermError> {
    let c = &lease.config;
    let beat = c.ttl / 3;
    // Campaigns wait as long as another replica leads, so their connection has no request
    // timeout: etcd resigns a campaign whose request is cancelled, and a standby would write
    // its key again at every retry. Its keep-alive still finds an etcd that went away. Every
    // other call is bounded by a third of the TTL.
    let waiting = ConnectOptions::new()
        .with_connect_timeout(beat)
        .with_keep_alive(KEEPALIVE_EVERY.max(beat), beat)
        .with_keep_alive_while_idle(false);
    let bounded = waiting.clone().with_timeout(beat);
    let mut client = within(beat, Client::connect(&c.endpoints, Some(bounded))).await?;
    let sent = BootInstant::now();
    let ttl_s = i64::try_from(c.ttl.as_secs()).unwrap_or(i64::MAX);
    let grant = within(beat, client.lease_grant(ttl_s, None)).await?;
    let id = grant.id();
    lease.renewed(sent, grant.ttl());
    *locked(&lease.client) = Some(client.clone());
    tracing::info!(replica = %c.replica, lease = format!("{id:x}"), ttl_s = grant.ttl(), "lease granted: campaigning");
    for g in lease.groups() {
        locked(&lease.elections[g].seat).why = Some("standby: campaigning".into());
    }

    let campaigner = within(beat, Client::connect(&c.endpoints, Some(waiting))).await?;
    // Campaigns and the view of who leads run beside the renewals, never in their way: a slow
    // etcd answer to one of them must not push a renewal past the deadline.
    let mut campaigns = JoinSet::new();
    let term = lease.term_now();
    for g in lease.groups() {
        campaigns.spawn(campaign(
            lease.clone(),
            campaigner.clone(),
            g.clone(),
            id,
            term,
        ));
    }
    campaigns.spawn(watch_leaders(lease.clone(), client.clone(), beat, id));
    let mut keeper: Option<(LeaseKeeper, LeaseKeepAliveStream)> = None;
    let mut tick = tokio::time::interval(beat);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = tick.tick() => {}
            _ = stop.changed() => {
                campaigns.abort_all();
                // Hands the groups over now rather than at the TTL.
                let _ = within(beat, client.lease_revoke(id)).await;
                lease.lost("stopping");
                return Ok(());
            }
        }
        match renew(lease, &mut client, &mut keeper, id, beat).await {
            Ok(()) => {}
            Err(TermError::Expired) => {
                campaigns.abort_all();
                return Err(TermError::Expired);
            }
            Err(e) => {
                keeper = None;
                let why = format!("etcd unreachable: {e}");
                if !lease.before_deadline() {
                    for g in lease.groups() {
                        locked(&lease.elections[g].seat).why = Some(why.clone());
                    }
                }
                tracing::warn!(replica = %c.replica, "lease renewal failed: {e}");
                continue;
            }
        }
    }
}

/// Looks at who leads every group, once per `beat`, until the term ends (aborted); `id` is
/// this replica's lease. Says once a term, as an error, that another replica campaigns under
/// this one's name: when a key of this name is held under another lease for longer than twice
/// the TTL. The lease of this replica's previous process, killed before it could revoke it,
/// ends within the TTL, or within two if a change of etcd's leader extended it meanwhile.
async fn watch_leaders(lease: Arc<Lease>, mut client: Client, beat: Duration, id: i64) {
    let mut said = false;
    let mut namesake: Option<(i64, BootInstant)> = None;
    loop {
        match observe(&lease, &mut client, beat, id).await {
            Some((group, other)) => {
                let since = match namesake {
                    Some((l, since)) if l == other => since,
                    _ => namesake.insert((other, BootInstant::now())).1,
                };
                let outlived = since.after(2 * lease.config.ttl + beat).left().is_zero();
                if !said && outlived {
                    said = true;
                    tracing::error!(replica = %lease.config.replica, %group, lease = format!("{other:x}"), "another replica campaigns under this replica's name: give each its own lease.replica (the groups' views cannot tell them apart)");
                }
            }
            None => namesake = None,
        }
        tokio::time::sleep(beat).await;
    }
}

/// Renews lease `id` once, opening the keep-alive stream when there is none.
async fn renew(
    lease: &Lease,
    client: &mut Client,
    keeper: &mut Option<(LeaseKeeper, LeaseKeepAliveStream)>,
    id: i64,
    beat: Duration,
) -> Result<(), TermError> {
    if keeper.is_none() {
        match within(beat, client.lease_keep_alive(id)).await {
            Ok(k) => *keeper = Some(k),
            Err(e) => {
                // Reopening fails alike whether etcd is away or the lease is gone (the client
                // reads the first answer itself): etcd says which. A lease it no longer knows
                // ends the term, or the replica would renew a dead lease forever and never
                // campaign again.
                let left = within(beat, client.lease_time_to_live(id, None)).await?;
                if left.ttl() <= 0 {
                    return Err(TermError::Expired);
                }
                return Err(e);
            }
        }
    }
    let Some((k, stream)) = keeper.as_mut() else {
        return Ok(());
    };
    let sent = BootInstant::now();
    within(beat, k.keep_alive()).await?;
    match within(beat, stream.message()).await? {
        Some(r) if r.ttl() > 0 => {
            lease.renewed(sent, r.ttl());
            Ok(())
        }
        Some(_) => Err(TermError::Expired),
        None => Err(TermError::Timeout(beat)),
    }
}

/// Campaigns for `group` under lease `id`, retrying after errors, until it wins; holds while
/// it leads; and campaigns again if the fence finds its key lost (deleted by hand, or won by
/// another while this lease lived), until the term ends (the task is aborted).
async fn campaign(lease: Arc<Lease>, mut client: Client, group: String, id: i64, term: u64) {
    let name = lease.config.election(&group);
    loop {
        match client
            .campaign(name.clone(), lease.config.replica.clone(), id)
            .await
        {
            Ok(r) => {
                if let Some(k) = r.leader() {
                    tracing::info!(group = %group, replica = %lease.config.replica, rev = k.rev(), "leader: this replica actuates the group");
                    lease.won(&group, k.key().to_vec(), k.rev(), term);
                    lease.while_held(&group).await;
                    tracing::warn!(group = %group, replica = %lease.config.replica, "the group's election key is lost: campaigning again");
                    continue;
                }
            }
            Err(e) => tracing::debug!(group = %group, "campaign: {e}"),
        }
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
}

/// Reads who leads each group, who campaigns, and the leader's lease age (best effort: the
/// view only). Another leads when the leader's key is held under another lease than `id`,
/// whatever its name. Gives a group where a key of this replica's name is held under another
/// lease, and that lease.
async fn observe(
    lease: &Lease,
    client: &mut Client,
    beat: Duration,
    id: i64,
) -> Option<(String, i64)> {
    let mut namesake = None;
    for g in lease.groups() {
        let name = lease.config.election(g);
        // What this replica held before the reads: a win during them makes them stale.
        let held_before = locked(&lease.elections[g].seat)
            .held
            .as_ref()
            .map(|h| h.rev);
        let leader = within(beat, client.leader(name.clone())).await.ok();
        let kv = leader.as_ref().and_then(|l| l.kv());
        let leader_name = kv.and_then(|kv| kv.value_str().ok()).map(str::to_string);
        let age = match kv.map(|kv| kv.lease()) {
            Some(l) if l != 0 => within(beat, client.lease_time_to_live(l, None))
                .await
                .ok()
                .filter(|t| t.ttl() >= 0)
                .map(|t| (t.granted_ttl() - t.ttl()) as f64),
            _ => None,
        };
        let replicas = within(
            beat,
            client.get(format!("{name}/"), Some(GetOptions::new().with_prefix())),
        )
        .await
        .map(|r| {
            if let Some(kv) = r.kvs().iter().find(|kv| {
                kv.lease() != id && kv.value_str().is_ok_and(|v| *v == lease.config.replica)
            }) {
                namesake = Some((g.clone(), kv.lease()));
            }
            let mut v: Vec<String> = r
                .kvs()
                .iter()
                .filter_map(|kv| kv.value_str().ok().map(str::to_string))
                .collect();
            v.sort();
            v.dedup();
            v
        })
        .ok();
        let mut s = locked(&lease.elections[g].seat);
        if s.held.as_ref().map(|h| h.rev) != held_before {
            continue;
        }
        if s.held.is_none()
            && let Some(l) = &leader_name
        {
            s.why = Some(format!("standby: {l} leads"));
        }
        // Another seen leading, or nobody seen while this one does not lead: what this one set
        // may be changed by whoever leads meanwhile.
        let other = match kv {
            Some(kv) => kv.lease() != id,
            None => s.held.is_none(),
        };
        s.maybe_led_elsewhere |= other;
        s.leader = leader_name;
        s.lease_age_s = age;
        if let Some(r) = replicas {
            s.replicas = r;
        }
    }
    namesake
}
