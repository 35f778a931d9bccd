//! A real etcd cluster on loopback: Debian's `etcd-server`, three members on free client and
//! peer ports (never 2379/2380), data in a temporary directory; every member is killed on drop.
//!
//! Heartbeat 250 ms and election timeout 2.5 s: ten heartbeats per election, so a member the
//! loaded 2-core machine schedules late does not start elections that churn the leader.

use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use base64::Engine;
use base64::engine::general_purpose::STANDARD as BASE64;

use super::{free_port, http_within, wait_for};

/// Why a test cannot run without etcd.
const NEEDS_ETCD: &str =
    "this test needs etcd: apt-get install etcd-server (see .ci/apt-packages.txt)";

/// One member: its ports, its data and its process while it runs.
struct Member {
    name: String,
    client: u16,
    peer: u16,
    data: PathBuf,
    log: PathBuf,
    child: Option<Child>,
}

/// A running cluster.
pub(crate) struct Etcd {
    members: Vec<Member>,
    cluster: String,
    _dir: tempfile::TempDir,
}

impl Etcd {
    /// Starts `n` members and waits for each one's `/health`. Without etcd it fails in CI
    /// (`CI` set) and elsewhere returns None after printing why the test is SKIPPED.
    pub(crate) fn start(n: usize) -> Option<Etcd> {
        if Command::new("etcd").arg("--version").output().is_err() {
            assert!(std::env::var_os("CI").is_none(), "{NEEDS_ETCD}");
            println!("SKIPPED: {NEEDS_ETCD}");
            return None;
        }
        let dir = tempfile::tempdir().unwrap();
        let members: Vec<Member> = (0..n)
            .map(|i| Member {
                name: format!("m{i}"),
                client: free_port(),
                peer: free_port(),
                data: dir.path().join(format!("m{i}.etcd")),
                log: dir.path().join(format!("m{i}.log")),
                child: None,
            })
            .collect();
        let cluster = members
            .iter()
            .map(|m| format!("{}=http://127.0.0.1:{}", m.name, m.peer))
            .collect::<Vec<_>>()
            .join(",");
        let mut etcd = Etcd {
            members,
            cluster,
            _dir: dir,
        };
        for i in 0..n {
            etcd.spawn(i);
        }
        for i in 0..n {
            etcd.wait_healthy(i);
        }
        Some(etcd)
    }

    /// The client URLs, for `[lease] endpoints`.
    pub(crate) fn endpoints(&self) -> Vec<String> {
        self.members
            .iter()
            .map(|m| format!("http://127.0.0.1:{}", m.client))
            .collect()
    }

    /// The client ports, in member order.
    pub(crate) fn client_ports(&self) -> Vec<u16> {
        self.members.iter().map(|m| m.client).collect()
    }

    /// The client URLs as a TOML array's items, for a config file.
    pub(crate) fn endpoints_toml(&self) -> String {
        self.endpoints()
            .iter()
            .map(|e| format!("\"{e}\""))
            .collect::<Vec<_>>()
            .join(", ")
    }

    /// The member that leads the raft group now, by each member's own status (etcd's JSON
    /// gateway, `/v3/maintenance/status`): the one whose id is the leader it reports.
    pub(crate) fn raft_leader(&self) -> Option<usize> {
        let agent = http_within(Duration::from_secs(2));
        self.members.iter().position(|m| {
            let url = format!("http://127.0.0.1:{}/v3/maintenance/status", m.client);
            let status: Option<serde_json::Value> = agent
                .post(&url)
                .send("{}")
                .ok()
                .and_then(|mut r| r.body_mut().read_to_string().ok())
                .and_then(|b| serde_json::from_str(&b).ok());
            status.is_some_and(|v| {
                let me = &v["header"]["member_id"];
                !me.is_null() && *me == v["leader"]
            })
        })
    }

    /// Every key under `prefix` with its create revision, through member 0's JSON gateway.
    pub(crate) fn create_revisions(&self, prefix: &str) -> Vec<(String, String)> {
        let answer = self.on_prefix("range", prefix);
        let mut out: Vec<(String, String)> = answer["kvs"]
            .as_array()
            .map(|kvs| {
                kvs.iter()
                    .map(|kv| {
                        let key = BASE64
                            .decode(kv["key"].as_str().unwrap_or(""))
                            .map(|k| String::from_utf8_lossy(&k).into_owned())
                            .unwrap_or_default();
                        (
                            key,
                            kv["create_revision"].as_str().unwrap_or("").to_string(),
                        )
                    })
                    .collect()
            })
            .unwrap_or_default();
        out.sort();
        out
    }

    /// The value of `key`, through member 0's JSON gateway.
    pub(crate) fn get(&self, key: &str) -> Option<String> {
        let answer = self.on_prefix("range", key);
        let decode = |v: &serde_json::Value| {
            BASE64
                .decode(v.as_str().unwrap_or(""))
                .map(|b| String::from_utf8_lossy(&b).into_owned())
                .ok()
        };
        answer["kvs"]
            .as_array()?
            .iter()
            .find(|kv| decode(&kv["key"]).as_deref() == Some(key))
            .and_then(|kv| decode(&kv["value"]))
    }

    /// Writes `value` at `key` through member 0's JSON gateway, as `etcdctl put` would.
    pub(crate) fn put(&self, key: &str, value: &str) {
        let url = format!("http://127.0.0.1:{}/v3/kv/put", self.members[0].client);
        let body = serde_json::json!({"key": BASE64.encode(key), "value": BASE64.encode(value)});
        http_within(Duration::from_secs(5))
            .post(&url)
            .send(body.to_string())
            .unwrap_or_else(|e| panic!("etcd put: {e}"));
    }

    /// Deletes every key under `prefix` through member 0's JSON gateway, as an operator's
    /// `etcdctl del --prefix` would; returns how many went.
    pub(crate) fn delete_prefix(&self, prefix: &str) -> u64 {
        self.on_prefix("deleterange", prefix)["deleted"]
            .as_str()
            .and_then(|d| d.parse().ok())
            .unwrap_or(0)
    }

    /// Member 0's answer to `/v3/kv/{call}` over every key under `prefix`.
    fn on_prefix(&self, call: &str, prefix: &str) -> serde_json::Value {
        let mut end = prefix.as_bytes().to_vec();
        if let Some(last) = end.last_mut() {
            *last += 1;
        }
        let url = format!("http://127.0.0.1:{}/v3/kv/{call}", self.members[0].client);
        let body =
            serde_json::json!({"key": BASE64.encode(prefix), "range_end": BASE64.encode(&end)});
        let mut resp = http_within(Duration::from_secs(5))
            .post(&url)
            .send(body.to_string())
            .unwrap_or_else(|e| panic!("etcd {call}: {e}"));
        serde_json::from_str(&resp.body_mut().read_to_string().unwrap()).unwrap()
    }

    /// Kills member `i` (its data stays for [`Etcd::restart`]).
    pub(crate) fn stop(&mut self, i: usize) {
        if let Some(mut c) = self.members[i].child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    /// Starts member `i` again on its data and waits for its health.
    pub(crate) fn restart(&mut self, i: usize) {
        self.spawn(i);
        self.wait_healthy(i);
    }

    fn spawn(&mut self, i: usize) {
        let m = &self.members[i];
        let client = format!("http://127.0.0.1:{}", m.client);
        let peer = format!("http://127.0.0.1:{}", m.peer);
        let child = Command::new("etcd")
            .args(["--name", &m.name, "--data-dir"])
            .arg(&m.data)
            .args(["--listen-client-urls", &client])
            .args(["--advertise-client-urls", &client])
            .args(["--listen-peer-urls", &peer])
            .args(["--initial-advertise-peer-urls", &peer])
            .args(["--initial-cluster", &self.cluster])
            .args(["--initial-cluster-state", "new"])
            .args(["--initial-cluster-token", "headroom-test"])
            .args(["--heartbeat-interval", "250", "--election-timeout", "2500"])
            .args(["--log-level", "warn"])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(&m.log).unwrap())
            .spawn()
            .expect("starting etcd");
        self.members[i].child = Some(child);
    }

    fn wait_healthy(&self, i: usize) {
        let m = &self.members[i];
        let url = format!("http://127.0.0.1:{}/health", m.client);
        let agent = http_within(Duration::from_secs(2));
        let ok = wait_for(Duration::from_secs(60), || {
            let mut r = agent.get(&url).call().ok()?;
            let body = r.body_mut().read_to_string().ok()?;
            body.contains("\"health\":\"true\"").then_some(())
        });
        assert!(
            ok.is_some(),
            "etcd member {} not healthy: {}",
            m.name,
            std::fs::read_to_string(&m.log).unwrap_or_default()
        );
    }
}

impl Drop for Etcd {
    fn drop(&mut self) {
        for i in 0..self.members.len() {
            self.stop(i);
        }
    }
}
