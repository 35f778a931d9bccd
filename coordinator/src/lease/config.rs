//! The `[lease]` section: where etcd is, how long a leadership lasts without a renewal, under
//! which key prefix the groups' elections run, and this replica's name. Without the section a
//! coordinator actuates its groups alone, as a single replica.

use std::time::Duration;

use headroom_common::config::Problem;
use headroom_common::duration;
use headroom_common::id::check_id;
use serde::Deserialize;

/// Default lease TTL: a replica that stops renewing stops actuating within this, and a standby
/// takes over once etcd expires it.
pub const DEFAULT_TTL: Duration = Duration::from_secs(10);
/// Default key prefix of the elections.
pub const DEFAULT_PREFIX: &str = "/headroom/";

/// Shortest accepted TTL: etcd counts leases in whole seconds, and a renewal every third of it
/// must fit a loaded machine's scheduling delays.
const MIN_TTL: Duration = Duration::from_secs(3);
/// Longest accepted TTL: a failover waits for it.
const MAX_TTL: Duration = Duration::from_secs(300);

/// One election per group, in etcd, through its v3 election API.
#[derive(Debug, Clone, Deserialize)]
#[serde(default)]
pub struct LeaseConfig {
    /// etcd client URLs (`http://host:port`); the client balances over them.
    pub endpoints: Vec<String>,
    /// The lease's TTL, whole seconds.
    #[serde(with = "duration")]
    pub ttl: Duration,
    /// Key prefix: group `web` campaigns on `{prefix}web`.
    pub prefix: String,
    /// This replica's name, shown as the leader by every replica (default: the host name).
    pub replica: String,
}

impl Default for LeaseConfig {
    fn default() -> Self {
        LeaseConfig {
            endpoints: Vec::new(),
            ttl: DEFAULT_TTL,
            prefix: DEFAULT_PREFIX.into(),
            replica: host_name(),
        }
    }
}

impl LeaseConfig {
    /// How long before the TTL runs out, counted from the renewal's request, a leader stops
    /// starting actuations: room for the clocks of etcd's members and this host to disagree,
    /// and for the call in flight.
    pub fn margin(&self) -> Duration {
        (self.ttl / 5).max(Duration::from_millis(500))
    }

    /// The election key of `group`.
    pub fn election(&self, group: &str) -> String {
        format!("{}{group}", self.prefix)
    }

    /// The key of the count `group`'s leaders last applied: `{prefix}/applied/{group}`, under
    /// no election (an election's keys are `{prefix}{group}/...`, and a group's name is never
    /// empty nor holds a `/`).
    pub fn applied(&self, group: &str) -> String {
        format!("{}/applied/{group}", self.prefix)
    }

    /// Every problem of the section, keys under `lease.`.
    pub fn problems(&self) -> Vec<Problem> {
        let mut out = Vec::new();
        let mut bad =
            |key: &str, reason: String| out.push(Problem::new(format!("lease.{key}"), reason));
        if self.endpoints.is_empty() {
            bad("endpoints", "at least one etcd endpoint is needed".into());
        }
        for e in &self.endpoints {
            if let Some(why) = headroom_common::url::problem(e, true) {
                bad("endpoints", why);
            }
        }
        if self.ttl < MIN_TTL || self.ttl > MAX_TTL || self.ttl.subsec_nanos() != 0 {
            bad(
                "ttl",
                format!(
                    "{} must be whole seconds from {} to {}",
                    duration::format(self.ttl),
                    duration::format(MIN_TTL),
                    duration::format(MAX_TTL)
                ),
            );
        }
        if !self.prefix.starts_with('/') || self.prefix.len() < 2 {
            bad(
                "prefix",
                format!("{:?} must start with / and name something", self.prefix),
            );
        }
        if let Err(why) = check_id(&self.replica) {
            bad("replica", format!("{:?} {why}", self.replica));
        }
        out
    }
}

/// This host's name, the default replica name.
fn host_name() -> String {
    rustix::system::uname()
        .nodename()
        .to_string_lossy()
        .into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_problem_is_named_with_its_key() {
        let c = LeaseConfig {
            endpoints: vec!["127.0.0.1:2379".into(), "http://:1".into()],
            ttl: Duration::from_millis(1500),
            prefix: "headroom".into(),
            replica: "a b".into(),
        };
        let keys: Vec<String> = c.problems().into_iter().map(|p| p.key).collect();
        assert_eq!(
            keys,
            [
                "lease.endpoints",
                "lease.endpoints",
                "lease.ttl",
                "lease.prefix",
                "lease.replica"
            ]
        );
        let good = LeaseConfig {
            endpoints: vec!["http://127.0.0.1:2379".into()],
            ..LeaseConfig::default()
        };
        assert!(good.problems().is_empty(), "{:?}", good.problems());
        assert_eq!(good.margin(), Duration::from_secs(2));
        assert_eq!(good.election("web"), "/headroom/web");
    }
}
