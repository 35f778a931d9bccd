//! The configuration's tests: the default file against the code, every problem reported with its key.

use super::*;

fn parse(text: &str) -> Result<Config, ConfigError> {
    Config::parse(Path::new("/etc/headroom/headroom.toml"), text)
}

#[test]
fn default_file_is_the_defaults() {
    assert_eq!(parse(DEFAULT_FILE).unwrap(), Config::default());
    let uncommented: String = DEFAULT_FILE
        .lines()
        .map(|l| match l.strip_prefix("# ") {
            Some(rest) if rest.contains(" = ") => {
                let key = rest.split(" = ").next().unwrap_or("");
                if key
                    .chars()
                    .all(|c| c.is_ascii_lowercase() || c == '_' || c.is_ascii_digit())
                {
                    rest.to_string()
                } else {
                    l.to_string()
                }
            }
            _ => l.to_string(),
        })
        .collect::<Vec<_>>()
        .join("\n");
    assert_eq!(parse(&uncommented).unwrap(), Config::default());
}

#[test]
fn default_file_names_every_key() {
    let value = toml::Value::try_from(Config::default()).unwrap();
    let mut keys = Vec::new();
    collect_keys(&value, "", &mut keys);
    for key in keys {
        let leaf = key.rsplit('.').next().unwrap();
        assert!(
            DEFAULT_FILE.contains(&format!("# {leaf} =")),
            "default file lacks {key}"
        );
    }
}

fn collect_keys(v: &toml::Value, prefix: &str, out: &mut Vec<String>) {
    if let toml::Value::Table(t) = v {
        for (k, v) in t {
            let key = if prefix.is_empty() {
                k.clone()
            } else {
                format!("{prefix}.{k}")
            };
            if v.is_table() {
                collect_keys(v, &key, out)
            } else {
                out.push(key)
            }
        }
    }
}

#[test]
fn empty_file_is_valid() {
    assert_eq!(parse("").unwrap(), Config::default());
}

#[test]
fn reports_every_problem_with_file_and_key() {
    let err = parse(
        "[agent]\ninterval = \"10ms\"\ncolour = 3\nlog = \"headroom=loud\"\n[model]\ndemand = \"app.q\"\nwarmup = \"1m\"\n[policy]\ntarget_utilization = 1.5\nspend_ceiling = 0.5\n[health]\nundelivered_degraded = \"0s\"\n",
    )
    .unwrap_err();
    let keys: Vec<&str> = err.problems.iter().map(|p| p.key.as_str()).collect();
    assert!(keys.contains(&"agent.log"), "{err}");
    assert!(keys.contains(&"agent.colour"), "{err}");
    assert!(keys.contains(&"agent.interval"), "{err}");
    assert!(keys.contains(&"policy.target_utilization"), "{err}");
    assert!(
        err.to_string()
            .contains("policy.spend_ceiling: 0.5 is neither 0 (derived from the shortfall budget) nor at least 1"),
        "{err}"
    );
    assert!(
        err.to_string()
            .contains("model.warmup: moved to [policy]: write it as policy.warmup"),
        "{err}"
    );
    assert!(keys.contains(&"model.capacity"), "{err}");
    assert!(
        err.to_string()
            .contains("health.undelivered_degraded: must be at least 1s"),
        "{err}"
    );
    let text = err.to_string();
    assert!(
        text.contains("/etc/headroom/headroom.toml: agent.interval: 10ms is outside"),
        "{text}"
    );
}

#[test]
fn a_history_longer_than_what_is_stored_is_refused() {
    let err = parse("[store]\nretention_1m = \"7d\"\n[model]\nhistory = \"14d\"\n").unwrap_err();
    assert!(
        err.to_string()
            .contains("model.history: 14days is longer than store.retention_1m (7days)"),
        "{err}"
    );
    assert!(parse("[store]\nretention_1m = \"60d\"\n[model]\nhistory = \"6w\"\n").is_ok());
    let err = parse("[model]\nhistory = \"10m\"\n").unwrap_err();
    assert!(
        err.to_string()
            .contains("model.history: must be at least 1h"),
        "{err}"
    );
}

#[test]
fn bounds_that_would_exhaust_memory_or_drop_signals_are_refused() {
    let err = parse(
        "[agent]\nhost_id = \"-x\"\ngroup = \"a b\"\ndecision_interval = \"1h\"\n\
         [sources]\nring_capacity = 1048576\n[sources.app]\ntimeout = \"0s\"\n\
         gauges = [\"a_gauge_name_longer_than_the_sample_holds\"]\n\
         [model]\ndemand = \"app.queue\"\ncapacity = 1.0\n[policy]\nwarmup = \"100y\"\nmax_scale_in_fraction = 2.0\n\
         [coordinator]\noutbox_max_age = \"0s\"\noutbox_max_rows = 0\ntimeout = \"1ms\"\n\
         [store]\nretention_events = \"0s\"\ncache_kib = 0\n[health]\npsi_full_degraded = -5.0\n",
    )
    .unwrap_err();
    let keys: Vec<&str> = err.problems.iter().map(|p| p.key.as_str()).collect();
    for key in [
        "agent.host_id",
        "agent.group",
        "agent.decision_interval",
        "sources.ring_capacity",
        "sources.app.gauges",
        "model.demand",
        "sources.app.timeout",
        "policy.warmup",
        "policy.max_scale_in_fraction",
        "coordinator.outbox_max_age",
        "coordinator.outbox_max_rows",
        "coordinator.timeout",
        "store.retention_events",
        "store.cache_kib",
        "health.psi_full_degraded",
    ] {
        assert!(keys.contains(&key), "{key} not reported: {err}");
    }
}

#[test]
fn a_reload_applies_the_policy_and_keeps_what_needs_a_restart() {
    let old = Config::default();
    let mut new = Config::default();
    new.policy.target_utilization = 0.5;
    new.agent.decision_interval = Duration::from_secs(20);
    new.model.demand = "cpu.busy".into();
    new.coordinator.urls = vec!["http://127.0.0.1:1".into()];
    new.agent.socket = "/tmp/elsewhere.sock".into();
    let (applied, kept) = old.reloaded(&new);
    assert_eq!(applied.policy.target_utilization, 0.5);
    assert_eq!(applied.agent.decision_interval, Duration::from_secs(20));
    assert_eq!(applied.model.demand, old.model.demand);
    assert!(applied.coordinator.urls.is_empty());
    assert_eq!(applied.agent.socket, old.agent.socket);
    assert_eq!(kept, ["agent.socket", "model.demand", "coordinator"]);
    assert_eq!(old.reloaded(&old).1, Vec::<&str>::new());
}

/// A capacity is in its demand's unit: with a new demand it waits for the restart too; alone
/// it applies at once. The forecaster's history is sized at start.
#[test]
fn a_reload_keeps_a_capacity_with_its_demand_and_the_history() {
    let old = Config::default();
    let mut new = Config::default();
    new.model.demand = "accept_queue.depth".into();
    new.model.capacity = 100.0;
    new.model.history = old.model.history * 2;
    let (applied, kept) = old.reloaded(&new);
    assert_eq!(applied.model.capacity, old.model.capacity);
    assert_eq!(applied.model.history, old.model.history);
    assert_eq!(kept, ["model.demand", "model.capacity", "model.history"]);
    let mut new = Config::default();
    new.model.capacity = 8.0;
    let (applied, kept) = old.reloaded(&new);
    assert_eq!(applied.model.capacity, 8.0);
    assert!(kept.is_empty(), "{kept:?}");
    // Back to 0: the host's CPUs again.
    let (applied, _) = new.reloaded(&old);
    assert_eq!(applied.model.capacity, 0.0);
    assert!(applied.model.capacity_in_force(&applied.sources.proc_root) >= 1.0);
}

/// A misspelled demand is refused: no sample holds it, so the agent would run healthy and
/// never decide.
#[test]
fn a_demand_no_sample_holds_is_refused() {
    let err = parse("[model]\ndemand = \"cpu.bussy_cores\"\n").unwrap_err();
    assert_eq!(err.problems.len(), 1, "{err}");
    assert_eq!(err.problems[0].key, "model.demand");
    assert!(err.problems[0].reason.contains("is no metric"), "{err}");
    for fine in ["accept_queue.depth", "disk.busy.nvme0n1"] {
        let text = format!("[model]\ndemand = \"{fine}\"\ncapacity = 10.0\n");
        assert!(parse(&text).is_ok(), "{fine}");
    }
}

#[test]
fn type_errors_name_the_key() {
    let err = parse("[agent]\ninterval = \"soon\"\n").unwrap_err();
    assert_eq!(err.problems[0].key, "agent.interval");
    assert!(err.problems[0].reason.contains("not a duration"), "{err}");
    let err = parse("[policy]\ntarget_utilization = \"high\"\n").unwrap_err();
    assert_eq!(err.problems[0].key, "policy.target_utilization");
}

#[test]
fn syntax_errors_are_reported() {
    let err = parse("[agent\n").unwrap_err();
    assert_eq!(err.problems.len(), 1);
    assert!(err.to_string().contains("headroom.toml"));
}

#[test]
fn a_replica_url_the_client_would_refuse_is_refused() {
    let err = parse(
        "[coordinator]\nurls = [\"http://\", \"http://bad host:80\", \"https://h:99999\"]\n\
         token_file = \"t\"\n",
    )
    .unwrap_err();
    let urls = err
        .problems
        .iter()
        .filter(|p| p.key == "coordinator.urls")
        .count();
    assert_eq!(urls, 3, "{err}");
}

#[test]
fn a_replica_listed_twice_is_refused() {
    let err = parse(
        "[coordinator]\nurls = [\"http://127.0.0.1:1\", \"http://127.0.0.1:1\"]\ntoken_file = \"t\"\n",
    )
    .unwrap_err();
    assert!(
        err.problems
            .iter()
            .any(|p| p.key == "coordinator.urls" && p.reason.contains("listed twice")),
        "{err}"
    );
}

#[test]
fn the_busy_figure_is_connections_or_a_configured_gauge() {
    for good in ["busy = \"connections\"", "busy = \"\""] {
        assert!(parse(&format!("[coordinator]\n{good}\n")).is_ok(), "{good}");
    }
    let ok = parse(
        "[sources.app]\nendpoint = \"http://127.0.0.1:9/m\"\ngauges = [\"jobs\"]\n[coordinator]\nbusy = \"app.jobs\"\n",
    );
    assert!(ok.is_ok(), "{ok:?}");
    for (bad, why) in [
        (
            "busy = \"app.jobs\"",
            "\"jobs\" is not one of sources.app.gauges",
        ),
        (
            "busy = \"sockets\"",
            "\"sockets\" is none of \"connections\", \"app.GAUGE\" or \"\" (off)",
        ),
    ] {
        let err = parse(&format!("[coordinator]\n{bad}\n")).unwrap_err();
        assert!(
            err.problems
                .iter()
                .any(|p| p.key == "coordinator.busy" && p.reason == why),
            "{err}"
        );
    }
}

#[test]
fn coordinator_needs_a_token() {
    let err = parse("[coordinator]\nurls = [\"http://127.0.0.1:1\"]\n").unwrap_err();
    assert_eq!(err.problems[0].key, "coordinator.token_file");
}

/// The files the configuration names are judged with its text: a missing token is reported
/// with a value out of range, not after it is fixed.
#[test]
fn problems_of_the_named_files_come_with_the_texts() {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("headroom.toml");
    std::fs::write(
        &config,
        format!(
            "[agent]\ninterval = \"50ms\"\n[coordinator]\nurls = [\"http://127.0.0.1:1\"]\n\
             token_file = \"{}\"\nca_cert = \"{}\"\n",
            dir.path().join("no-token").display(),
            dir.path().join("no-ca").display()
        ),
    )
    .unwrap();
    let err = Config::load(&config, false).unwrap_err();
    let keys: Vec<&str> = err.problems.iter().map(|p| p.key.as_str()).collect();
    assert_eq!(
        keys,
        [
            "agent.interval",
            "coordinator.token_file",
            "coordinator.ca_cert"
        ],
        "{err}"
    );
}

/// A token the coordinator would refuse stops the agent at start (exit 64 at the edge),
/// rather than a 401 answered for ever.
#[test]
fn a_token_the_coordinator_would_refuse_is_a_config_error() {
    use std::os::unix::fs::PermissionsExt;
    let dir = tempfile::tempdir().unwrap();
    let token = dir.path().join("token");
    let config = dir.path().join("headroom.toml");
    std::fs::write(
        &config,
        format!(
            "[coordinator]\nurls = [\"http://127.0.0.1:1\"]\ntoken_file = \"{}\"\n",
            token.display()
        ),
    )
    .unwrap();
    for (text, mode, refused) in [
        ("secret\n", 0o600, Some("at least 16 bytes")),
        (
            "0123456789abcdef0123\n",
            0o644,
            Some("accessible by others"),
        ),
        ("0123456789abcdef0123\n", 0o640, None),
    ] {
        std::fs::write(&token, text).unwrap();
        std::fs::set_permissions(&token, std::fs::Permissions::from_mode(mode)).unwrap();
        match (Config::load(&config, false), refused) {
            (Ok(_), None) => {}
            (Err(e), Some(why)) => {
                assert_eq!(e.problems[0].key, "coordinator.token_file", "{e}");
                assert!(e.to_string().contains(why), "{e}");
            }
            (other, _) => panic!("{text:?} {mode:o}: {other:?}"),
        }
    }
}

proptest::proptest! {
    #[test]
    fn never_panics(text in "\\PC{0,200}") {
        let _ = parse(&text);
    }
}

/// Capacity 0 is the host's CPUs as the proc root's `stat` lists them, the scale the demand
/// `cpu.busy_cores` is measured on: not the CPUs this process may run on (a unit's
/// `CPUAffinity=` or quota would otherwise shrink the host it measures).
#[test]
fn capacity_zero_is_the_cpus_proc_stat_lists() {
    let root = tempfile::tempdir().unwrap();
    let line = "0 0 0 100 0 0 0 0 0 0";
    std::fs::write(
        root.path().join("stat"),
        format!(
            "cpu  {line}\ncpu0 {line}\ncpu1 {line}\ncpu7 {line}\nprocs_running 1\nprocs_blocked 0\n"
        ),
    )
    .unwrap();
    let mut model = Config::default().model;
    assert_eq!(model.capacity_in_force(root.path()), 3.0);
    model.capacity = 1.5;
    assert_eq!(model.capacity_in_force(root.path()), 1.5);
    // Unreadable: what this process may run on, at least 1.
    model.capacity = 0.0;
    assert!(model.capacity_in_force(&root.path().join("missing")) >= 1.0);
}

/// A capacity no coordinator takes (its figures stop at 1e15) is refused at start: every
/// signal would be refused, and lost.
#[test]
fn a_capacity_a_coordinator_refuses_is_a_config_error() {
    let err = parse("[model]\ncapacity = 2e15\n").unwrap_err();
    assert_eq!(err.problems[0].key, "model.capacity", "{err}");
    assert!(err.to_string().contains("0..=1e15"), "{err}");
    assert!(parse("[model]\ncapacity = 1e15\n").is_ok());
}

/// A CA file without a certificate stops the agent at start, named by its key.
#[test]
fn a_ca_file_without_a_certificate_is_a_config_error() {
    let dir = tempfile::tempdir().unwrap();
    let token = dir.path().join("token");
    std::fs::write(&token, "0123456789abcdef0123\n").unwrap();
    std::fs::set_permissions(&token, std::os::unix::fs::PermissionsExt::from_mode(0o600)).unwrap();
    let ca = dir.path().join("ca.pem");
    std::fs::write(&ca, "not a certificate\n").unwrap();
    let config = dir.path().join("headroom.toml");
    std::fs::write(
        &config,
        format!(
            "[coordinator]\nurls = [\"https://127.0.0.1:1\"]\ntoken_file = \"{}\"\nca_cert = \"{}\"\n",
            token.display(),
            ca.display()
        ),
    )
    .unwrap();
    let e = Config::load(&config, false).unwrap_err();
    assert_eq!(e.problems[0].key, "coordinator.ca_cert", "{e}");
    assert!(e.to_string().contains("no PEM certificate"), "{e}");
}

/// A PSI stall demand by its old name says what it is called now.
#[test]
fn a_psi_demand_by_its_old_name_says_its_new_one() {
    let err = parse("[model]\ndemand = \"psi.cpu.some_stall_us\"\ncapacity = 1e5\n").unwrap_err();
    assert!(
        err.to_string()
            .contains("renamed psi.cpu.some_stall_us_per_s"),
        "{err}"
    );
    assert!(parse("[model]\ndemand = \"psi.cpu.some_stall_us_per_s\"\ncapacity = 1e5\n").is_ok());
}

/// What the agent would refuse or disable at start is a configuration error already: an app
/// endpoint off this host, a socket path no Unix socket holds.
#[test]
fn what_the_agent_would_refuse_at_start_is_a_config_error() {
    let err = parse("[sources.app]\nendpoint = \"http://10.1.2.3:80/metrics\"\ngauges = [\"q\"]\n")
        .unwrap_err();
    assert_eq!(err.problems[0].key, "sources.app.endpoint", "{err}");
    let long = format!("/tmp/{}/h.sock", "d".repeat(120));
    let err = parse(&format!("[agent]\nsocket = \"{long}\"\n")).unwrap_err();
    assert_eq!(err.problems[0].key, "agent.socket", "{err}");
    assert!(
        parse("[sources.app]\nendpoint = \"http://127.0.0.1:9100/metrics\"\ngauges = [\"q\"]\n")
            .is_ok()
    );
}

#[test]
fn a_group_name_with_a_slash_is_refused() {
    let err = parse("[agent]\ngroup = \"web/a\"\n").unwrap_err();
    assert!(
        err.to_string()
            .contains("/etc/headroom/headroom.toml: agent.group: must not contain '/'"),
        "{err}"
    );
}
