//! The high-availability harness: a three-member etcd cluster, moto with the group `web`,
//! coordinator replicas under one `[lease]`, and agents whose demand is an application gauge.
//! What each replica did is read back from its state file (its actuation log).

use std::path::PathBuf;
use std::time::Duration;

use serde_json::Value;

use crate::common::{
    Agent, AppGauge, Coordinator, Etcd, Moto, Proxy, coordinator_recorded, free_port,
    outbox_produced, wait_for, web_group_toml, write_token,
};

pub(super) const TOKEN: &str = "ha-token-0a1b2c3d4e5f6a7b8c9d";
/// Demand one instance serves at the target (capacity 1, target 1).
pub(super) const CAPACITY: f64 = 1.0;

/// One coordinator replica: its name, files and process.
pub(super) struct Replica {
    pub(super) name: String,
    pub(super) home: PathBuf,
    pub(super) config: PathBuf,
    pub(super) state: PathBuf,
    pub(super) url: String,
    pub(super) process: Option<Coordinator>,
}

/// A successful `set_capacity` in a replica's actuation log.
#[derive(Debug, Clone)]
pub(super) struct Actuation {
    pub(super) replica: usize,
    pub(super) at: f64,
    pub(super) to: u64,
}

/// The cluster, the engine, the replicas and the hosts.
pub(super) struct Ha {
    pub(super) etcd: Etcd,
    pub(super) moto: Moto,
    pub(super) dir: tempfile::TempDir,
    pub(super) replicas: Vec<Replica>,
    pub(super) gauges: Vec<AppGauge>,
    pub(super) agents: Vec<Agent>,
    pub(super) ttl_s: u64,
    /// Proxies between one replica and etcd's members ([`Ha::behind_proxies`]).
    pub(super) proxies: Vec<Proxy>,
}

impl Ha {
    /// etcd (3 members), moto with group `web` at `desired` of at most `max`, and `replicas`
    /// replica configs (none started).
    pub(super) fn new(replicas: usize, ttl_s: u64, max: u32, desired: u32) -> Option<Ha> {
        let moto = Moto::start()?;
        let etcd = Etcd::start(3)?;
        moto.create_web_group(max, desired);
        let dir = tempfile::tempdir().unwrap();
        let token = write_token(dir.path(), "token", TOKEN);
        let endpoints = etcd.endpoints_toml();
        let replicas = (0..replicas)
            .map(|i| {
                let name = format!("coord-{i}");
                let home = dir.path().join(&name);
                std::fs::create_dir(&home).unwrap();
                let port = free_port();
                let state = home.join("coordinator.db");
                let config = home.join("coordinator.toml");
                std::fs::write(
                    &config,
                    format!(
                        r#"listen = "127.0.0.1:{port}"
state = "{state}"

[lease]
endpoints = [{endpoints}]
ttl = "{ttl_s}s"
prefix = "/headroom-test/"
replica = "{name}"
{group}"#,
                        state = state.display(),
                        group =
                            web_group_toml(&token, CAPACITY, 1.0, max, 3.0, &moto.web_actuator()),
                    ),
                )
                .unwrap();
                Replica {
                    name,
                    home,
                    config,
                    state,
                    url: format!("http://127.0.0.1:{port}"),
                    process: None,
                }
            })
            .collect();
        Some(Ha {
            etcd,
            moto,
            dir,
            replicas,
            gauges: Vec::new(),
            agents: Vec::new(),
            ttl_s,
            proxies: Vec::new(),
        })
    }

    /// Starts replica `i` with `env` on top of moto's.
    /// Puts replica `i` (not started yet) behind one cuttable proxy per etcd member, so that
    /// the test can partition it from etcd alone ([`Proxy::cut`]).
    pub(super) fn behind_proxies(&mut self, i: usize) {
        self.proxies = self
            .etcd
            .client_ports()
            .into_iter()
            .map(Proxy::start)
            .collect();
        let through: Vec<String> = self
            .proxies
            .iter()
            .map(|p| format!("\"http://127.0.0.1:{}\"", p.port))
            .collect();
        let config = &self.replicas[i].config;
        let text = std::fs::read_to_string(config).unwrap().replace(
            &format!("endpoints = [{}]", self.etcd.endpoints_toml()),
            &format!("endpoints = [{}]", through.join(", ")),
        );
        assert!(text.contains(&through[0]), "{text}");
        std::fs::write(config, text).unwrap();
    }

    /// Makes replica `i` (not started yet) actuate through the command hook `hook`, called with
    /// the replica's name and the desired count, instead of the AWS group.
    pub(super) fn use_command_hook(&mut self, i: usize, hook: &std::path::Path) {
        let config = &self.replicas[i].config;
        let text = std::fs::read_to_string(config).unwrap();
        let at = text.find("[groups.web.actuator]").unwrap();
        let hooked = format!(
            "{}[groups.web.actuator]\nkind = \"command\"\nprogram = \"{}\"\nargs = [\"{}\", \"{{desired}}\"]\n",
            &text[..at],
            hook.display(),
            self.replicas[i].name
        );
        std::fs::write(config, hooked).unwrap();
    }

    /// Adds `keys` to group `web`'s table in every replica's configuration (none started yet).
    pub(super) fn add_group_keys(&mut self, keys: &str) {
        for r in &self.replicas {
            let text = std::fs::read_to_string(&r.config).unwrap();
            let at = text.find("[groups.web.actuator]").unwrap();
            let added = format!("{}{keys}\n\n{}", &text[..at], &text[at..]);
            std::fs::write(&r.config, added).unwrap();
        }
    }

    /// Two replicas started, two hosts at demand 2 each, TTL 5 s, the group at 2 of at most
    /// 20 and sized by its leader; with the leader's index.
    pub(super) fn pair_sized() -> Option<(Ha, usize)> {
        let mut ha = Ha::new(2, 5, 20, 2)?;
        ha.start_replica(0, &[]);
        ha.start_replica(1, &[]);
        ha.start_hosts(&[2.0, 2.0]);
        let leader = ha.wait_leader(Duration::from_secs(60));
        ha.wait_sized();
        Some((ha, leader))
    }

    /// Alternates the demand ([`Ha::alternate_demand`]) every `every` for `span`.
    pub(super) fn alternate_demand_for(&self, span: Duration, every: Duration, level: &mut f64) {
        let t0 = std::time::Instant::now();
        while t0.elapsed() < span {
            self.alternate_demand(level);
            std::thread::sleep(every);
        }
    }

    /// Replica `i`'s first actuation decided after `after`, waiting 60 s at most while the
    /// demand alternates every 2 s.
    pub(super) fn wait_actuation_by(
        &self,
        i: usize,
        after: f64,
        level: &mut f64,
    ) -> Option<Actuation> {
        wait_for(Duration::from_secs(60), || {
            self.alternate_demand(level);
            std::thread::sleep(Duration::from_secs(2));
            self.actuations()
                .into_iter()
                .find(|a| a.replica == i && a.at > after)
        })
    }

    /// Waits (60 s at most) for the leader to size the group for the hosts' first demand.
    pub(super) fn wait_sized(&self) {
        wait_for(Duration::from_secs(60), || {
            (self.moto.web_desired() >= 4).then_some(())
        })
        .expect("the leader sizes the group");
    }

    /// Sets every host's demand to `level`, then flips it between 3 and 5 for the next call.
    pub(super) fn alternate_demand(&self, level: &mut f64) {
        self.set_demand(*level);
        *level = if *level == 3.0 { 5.0 } else { 3.0 };
    }

    pub(super) fn start_replica(&mut self, i: usize, env: &[(&str, &str)]) {
        let r = &self.replicas[i];
        let mut all: Vec<(&str, &str)> = self.moto.env().to_vec();
        all.extend_from_slice(env);
        self.replicas[i].process = Some(Coordinator::start(&r.home, &r.config, &all));
    }

    /// Starts one agent per entry of `demand`, each serving that demand on its gauge and
    /// delivering to every replica.
    pub(super) fn start_hosts(&mut self, demand: &[f64]) {
        let urls: Vec<String> = self.replicas.iter().map(|r| r.url.clone()).collect();
        let token = self.dir.path().join("token");
        for (i, d) in demand.iter().enumerate() {
            let g = AppGauge::serve("queue_depth", *d);
            let mut a = Agent::on_gauge(i, &g.url, CAPACITY, &urls, &token, "timeout = \"2s\"\n");
            a.start();
            self.gauges.push(g);
            self.agents.push(a);
        }
    }

    /// Sets every host's demand to `per_host`.
    pub(super) fn set_demand(&self, per_host: f64) {
        for g in &self.gauges {
            g.set(per_host);
        }
    }

    /// Replica `i`'s view of group `web`, when it answers.
    pub(super) fn view(&self, i: usize) -> Option<Value> {
        self.replicas[i].process.as_ref()?;
        let agent = crate::common::http_within(Duration::from_secs(2));
        let mut r = agent
            .get(format!("{}/v1/groups/web", self.replicas[i].url))
            .header("Authorization", &format!("Bearer {TOKEN}"))
            .call()
            .ok()?;
        if r.status() != 200 {
            return None;
        }
        serde_json::from_str(&r.body_mut().read_to_string().ok()?).ok()
    }

    /// The replica that says it actuates, if exactly one does.
    pub(super) fn leader(&self) -> Option<usize> {
        let leaders: Vec<usize> = (0..self.replicas.len())
            .filter(|i| {
                self.view(*i)
                    .is_some_and(|v| v["lease"]["leader_here"] == true)
            })
            .collect();
        (leaders.len() == 1).then(|| leaders[0])
    }

    /// Waits for one replica to lead.
    pub(super) fn wait_leader(&self, limit: Duration) -> usize {
        wait_for(limit, || self.leader()).unwrap_or_else(|| {
            panic!(
                "no single leader within {limit:?}: {}",
                (0..self.replicas.len())
                    .map(|i| format!(
                        "{}: {:?}",
                        self.replicas[i].name,
                        self.view(i).map(|v| v["lease"].clone())
                    ))
                    .collect::<Vec<_>>()
                    .join("; ")
            )
        })
    }

    /// Every successful `set_capacity` of every replica, by time.
    pub(super) fn actuations(&self) -> Vec<Actuation> {
        let mut all = Vec::new();
        for (i, r) in self.replicas.iter().enumerate() {
            let Ok(conn) = rusqlite::Connection::open_with_flags(
                &r.state,
                rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY,
            ) else {
                continue;
            };
            let Ok(mut q) = conn.prepare("SELECT body FROM actions WHERE grp = 'web'") else {
                continue;
            };
            let bodies: Vec<String> = q
                .query_map([], |row| row.get(0))
                .unwrap()
                .map(Result::unwrap)
                .collect();
            for b in bodies {
                let v: Value = serde_json::from_str(&b).unwrap();
                if v["kind"] == "set_capacity" && v["ok"] == true {
                    all.push(Actuation {
                        replica: i,
                        at: v["at"].as_f64().unwrap(),
                        to: v["to"].as_u64().unwrap(),
                    });
                }
            }
        }
        all.sort_by(|a, b| a.at.total_cmp(&b.at));
        all
    }

    /// Signals the agents produced that a running replica never recorded (the last few, still
    /// in flight when the agents stopped, excepted: at most `tail` per agent and replica).
    pub(super) fn signals_lost(&mut self, tail: usize) -> usize {
        let mut lost = 0;
        for (h, a) in self.agents.iter_mut().enumerate() {
            let _ = a.term();
            let produced = outbox_produced(&a.db());
            for r in self.replicas.iter().filter(|r| r.process.is_some()) {
                let recorded: std::collections::BTreeSet<(String, u64)> =
                    coordinator_recorded(&r.state, &format!("host-{h}"))
                        .into_iter()
                        .map(|r| (r.epoch, r.seq))
                        .collect();
                let missing = produced.iter().filter(|p| !recorded.contains(*p)).count();
                if missing > tail {
                    eprintln!("{}: host-{h} missing {missing} signals", r.name);
                    lost += missing - tail;
                }
            }
        }
        lost
    }

    /// The replica's process id.
    pub(super) fn pid(&self, i: usize) -> u32 {
        self.replicas[i]
            .process
            .as_ref()
            .expect("running")
            .child
            .id()
    }

    /// Sends `sig` (`-STOP`, `-CONT`) to replica `i`.
    pub(super) fn signal(&self, i: usize, sig: &str) {
        let ok = std::process::Command::new("kill")
            .args([sig, &self.pid(i).to_string()])
            .status()
            .unwrap();
        assert!(ok.success());
    }

    /// Replica `i`'s log.
    pub(super) fn log(&self, i: usize) -> String {
        self.replicas[i]
            .process
            .as_ref()
            .map(Coordinator::log)
            .unwrap_or_default()
    }
}
