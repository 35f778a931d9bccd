//! The coordinator's configuration: the packaged examples, every problem with its key, the README's reference.
use super::*;

fn parse(text: &str) -> Result<CoordinatorConfig, ConfigError> {
    CoordinatorConfig::parse(Path::new("/etc/headroom/coordinator.toml"), text)
}

/// The example the package installs is a configuration this code accepts, as written
/// and with its KEDA lines in place of dry-run.
#[test]
fn the_packaged_replica_example_parses_and_differs_only_in_its_name() {
    let example = include_str!("../../../packaging/coordinator-ha.toml.example");
    let c = parse(example).unwrap_or_else(|e| panic!("{e}"));
    let lease = c.lease.expect("[lease]");
    assert_eq!(lease.endpoints.len(), 3);
    assert_eq!(lease.ttl, crate::lease::DEFAULT_TTL);
    assert_eq!(lease.prefix, crate::lease::DEFAULT_PREFIX);
    assert_eq!(lease.replica, "coord-a");
    let broken = example
        .replace("ttl = \"10s\"", "ttl = \"1500ms\"")
        .replace("replica = \"coord-a\"", "replica = \"\"");
    let err = parse(&broken).unwrap_err().to_string();
    assert!(
        err.contains("lease.ttl") && err.contains("lease.replica"),
        "{err}"
    );
}

#[test]
fn the_packaged_example_parses() {
    let example = include_str!("../../../packaging/coordinator.toml.example");
    let c = parse(example).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(c.groups["web"].spend_ceiling, 0.0);
    let keda: String = example
        .replace("kind = \"dry-run\"", "")
        .replace("# kind = \"keda\"", "kind = \"keda\"")
        .replace("# fallback_replicas = 3", "fallback_replicas = 3")
        .replacen(
            "[groups.web]",
            "[keda]\nlisten = \"0.0.0.0:9090\"\n\n[groups.web]",
            1,
        );
    let c = parse(&keda).unwrap_or_else(|e| panic!("{e}"));
    match &c.groups["web"].actuator {
        ActuatorConfig::Keda(k) => assert_eq!(k.fallback_replicas, Some(3)),
        other => panic!("{other:?}"),
    }
    // The commented entry at the end, uncommented.
    let at = example
        .find("# [[groups.web.schedule]]")
        .expect("a schedule entry");
    let entry: Vec<&str> = example[at..]
        .lines()
        .map(|l| l.strip_prefix("# ").unwrap_or(l))
        .collect();
    let scheduled = format!("{}{}", &example[..at], entry.join("\n"));
    let c = parse(&scheduled).unwrap_or_else(|e| panic!("{e}"));
    let (schedule, problems) = c.groups["web"].schedule("groups.web.");
    assert_eq!(problems, vec![]);
    assert_eq!(
        schedule.entries[0].describe(),
        "friday-evening (cron \"0 17 * * FRI\" Europe/Berlin, 4h)"
    );
}

/// The field names serde knows for `T` (a struct): a deserializer that only asks.
fn fields_of<T: serde::de::DeserializeOwned>() -> &'static [&'static str] {
    struct Probe(&'static [&'static str]);
    #[derive(Debug)]
    struct Asked;
    impl std::fmt::Display for Asked {
        fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            f.write_str("asked")
        }
    }
    impl std::error::Error for Asked {}
    impl serde::de::Error for Asked {
        fn custom<M: std::fmt::Display>(_: M) -> Self {
            Asked
        }
    }
    impl<'de> serde::Deserializer<'de> for &mut Probe {
        type Error = Asked;
        fn deserialize_any<V: serde::de::Visitor<'de>>(self, _: V) -> Result<V::Value, Asked> {
            Err(Asked)
        }
        fn deserialize_struct<V: serde::de::Visitor<'de>>(
            self,
            _: &'static str,
            fields: &'static [&'static str],
            _: V,
        ) -> Result<V::Value, Asked> {
            self.0 = fields;
            Err(Asked)
        }
        serde::forward_to_deserialize_any! {
            bool i8 i16 i32 i64 i128 u8 u16 u32 u64 u128 f32 f64 char str string bytes
            byte_buf option unit unit_struct newtype_struct seq tuple tuple_struct map enum
            identifier ignored_any
        }
    }
    let mut probe = Probe(&[]);
    let _ = T::deserialize(&mut probe);
    probe.0
}

/// The README's configuration reference names every key the code reads.
#[test]
fn the_readme_reference_covers_every_key() {
    let readme = include_str!("../../../README.md");
    let at = readme
        .find("## Coordinator configuration reference")
        .expect("the reference");
    let reference = &readme[at..];
    let end = reference[3..]
        .find("\n## ")
        .map_or(reference.len(), |e| e + 3);
    let reference = &reference[..end];
    let mut missing = Vec::new();
    let mut want = |prefix: &str, fields: &[&str]| {
        for f in fields {
            let key = format!("`{prefix}{f}`");
            let short = format!("`.{f}`");
            if !reference.contains(&key) && !reference.contains(&short) {
                missing.push(key);
            }
        }
    };
    let top: Vec<&str> = fields_of::<CoordinatorConfig>()
        .iter()
        .copied()
        .filter(|f| !["tls", "keda", "lease", "groups"].contains(f))
        .collect();
    want("", &top);
    want("tls.", fields_of::<TlsConfig>());
    want("keda.", fields_of::<KedaConfig>());
    want("lease.", fields_of::<LeaseConfig>());
    let group: Vec<&str> = fields_of::<GroupConfig>()
        .iter()
        .copied()
        .filter(|f| !["actuator", "schedule"].contains(f))
        .collect();
    want("groups.NAME.", &group);
    want(
        "groups.NAME.schedule[].",
        fields_of::<ScheduleEntryConfig>(),
    );
    want("groups.NAME.actuator.", &["kind"]);
    want(
        "groups.NAME.actuator.",
        fields_of::<crate::actuator::AwsConfig>(),
    );
    want(
        "groups.NAME.actuator.",
        fields_of::<crate::actuator::CommandConfig>(),
    );
    want(
        "groups.NAME.actuator.",
        fields_of::<crate::actuator::KedaActuatorConfig>(),
    );
    assert!(fields_of::<GroupConfig>().contains(&"schedule"));
    assert_eq!(missing, Vec::<String>::new());
}

#[test]
fn a_measured_warm_up_needs_bounds_in_order() {
    let c =
        parse("[groups.web]\ntoken_files = [\"/t\"]\ninstance_warmup = \"measured\"\n").unwrap();
    assert_eq!(c.groups["web"].instance_warmup, InstanceWarmup::Measured);
    let err = parse("[groups.web]\ntoken_files = [\"/t\"]\ninstance_warmup = \"guessed\"\n")
        .unwrap_err()
        .to_string();
    assert!(err.contains("groups.web.instance_warmup"), "{err}");
    let err = parse(
        "[groups.web]\ntoken_files = [\"/t\"]\nwarmup_floor = \"10m\"\nwarmup_ceiling = \"5m\"\n",
    )
    .unwrap_err()
    .to_string();
    assert!(
        err.contains("groups.web.warmup_ceiling: need 0s < warmup_ceiling and warmup_floor <= warmup_ceiling (floor 10m, ceiling 5m)"),
        "{err}"
    );
}

#[test]
fn scale_in_protection_needs_aws_and_sane_intervals() {
    let err = parse(
        "[groups.web]\ntoken_files = [\"/t\"]\nscale_in_protection = true\nprotection_idle = \"0s\"\nprotection_interval = \"500ms\"\n",
    )
    .unwrap_err()
    .to_string();
    for want in [
        "groups.web.scale_in_protection: needs an actuator that can protect instances (aws), not \"dry-run\"",
        "groups.web.protection_idle: must be longer than 0s",
        "groups.web.protection_interval: must be at least 1s",
    ] {
        assert!(err.contains(want), "{want}: {err}");
    }
}

#[test]
fn schedule_entries_are_checked_with_their_group() {
    let err = parse(
        "[groups.web]\ntoken_files = [\"/t\"]\nmax = 10\n[[groups.web.schedule]]\nat = \"2026-12-24T08:00:00Z\"\nduration = \"1h\"\nmin_instances = 11\n[[groups.web.schedule]]\nname = \"x\"\ncron = \"0 8 * * MONDAY\"\nduration = \"1h\"\nmin_instances = 2\n",
    )
    .unwrap_err()
    .to_string();
    assert!(
        err.contains("groups.web.schedule[0].min_instances: 11 is above the group's max 10"),
        "{err}"
    );
    assert!(
        err.contains("groups.web.schedule[1].cron: (x) \"0 8 * * MONDAY\" is not a cron pattern"),
        "{err}"
    );
}

#[test]
fn parses_a_full_group_and_defaults() {
    let c = parse(
        r#"
        listen = "127.0.0.1:0"
        state = "/tmp/x.db"
        [groups.web]
        token_files = ["/t"]
        warmup = "30s"
        scale_in_stabilization = "5s"
        [groups.web.actuator]
        kind = "command"
        program = "/bin/true"
        args = ["{desired}"]
        "#,
    )
    .unwrap();
    let g = &c.groups["web"];
    assert_eq!(g.warmup, Duration::from_secs(30));
    assert_eq!(g.scale_in_stabilization, Duration::from_secs(5));
    assert_eq!(g.min, 1);
}

#[test]
fn reports_every_problem_with_file_and_key() {
    let err = parse(
        "listen = \"nope\"\ncolour = 1\n[groups.web]\ntoken_files = []\ntarget_utilization = 2.0\nbogus = 1\nspend_ceiling = -1.0\n",
    )
    .unwrap_err();
    let keys: Vec<&str> = err.problems.iter().map(|p| p.key.as_str()).collect();
    for key in [
        "colour",
        "groups.web.bogus",
        "listen",
        "groups.web.token_files",
        "groups.web.target_utilization",
        "groups.web.spend_ceiling",
    ] {
        assert!(keys.contains(&key), "{key} not reported: {err}");
    }
    let text = err.to_string();
    assert!(
        text.contains("/etc/headroom/coordinator.toml: listen: \"nope\" is not host:port"),
        "{text}"
    );
}

#[test]
fn what_the_agent_refuses_a_coordinator_refuses_too() {
    let err = parse(
        "retention = \"0s\"\n[groups.web]\ntoken_files = [\"/t\"]\nwarmup = \"3h\"\ndecision_interval = \"11m\"\n",
    )
    .unwrap_err();
    let text = err.to_string();
    for want in [
        "retention: 0s is shorter than 1h",
        "groups.web.warmup: 3h is longer than 2h",
        "groups.web.decision_interval: 11m is longer than 10m",
    ] {
        assert!(text.contains(want), "{want}: {text}");
    }
}

#[test]
fn raising_the_maximum_needs_an_actuator_that_has_one() {
    let err = parse(
        "[groups.web]\ntoken_files = [\"/t\"]\nmax_breach = \"raise\"\nmax_breach_buffer = 2.0\n\
         [groups.web.actuator]\nkind = \"command\"\nprogram = \"/bin/true\"\n",
    )
    .unwrap_err();
    let text = err.to_string();
    assert!(
        text.contains("groups.web.max_breach: \"raise\" needs an actuator that has a maximum"),
        "{text}"
    );
    assert!(
        text.contains("groups.web.max_breach_buffer: 2 is outside [0, 1]"),
        "{text}"
    );
    let ok = parse("[groups.web]\ntoken_files = [\"/t\"]\nmax_breach = \"raise\"\n")
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(ok.groups["web"].max_breach, MaxBreach::Raise);
}

#[test]
fn durations_are_written_with_their_unit() {
    let err = parse("[groups.web]\nwarmup = \"soon\"\n").unwrap_err();
    assert_eq!(err.problems[0].key, "groups.web.warmup", "{err}");
    let err = parse("[groups.web]\nscale_in_stabilization = 5\n").unwrap_err();
    assert_eq!(err.problems[0].key, "groups.web.scale_in_stabilization");
    assert!(err.to_string().contains("write it with its unit"), "{err}");
}

#[test]
fn actuator_problems_name_their_key() {
    let err = parse(
        "[groups.web]\ntoken_files = [\"/t\"]\n[groups.web.actuator]\nkind = \"command\"\nprogram = \"\"\n",
    )
    .unwrap_err();
    assert_eq!(err.problems[0].key, "groups.web.actuator.program", "{err}");
    let err = parse(
        "[groups.web]\ntoken_files = [\"/t\"]\n[groups.web.actuator]\nkind = \"command\"\nprogram = \"/bin/true\"\nshell = true\n",
    )
    .unwrap_err();
    assert!(err.to_string().contains("shell"), "{err}");
    // A value of the wrong type inside the kind's settings names its key.
    let err = parse(
        "[groups.web]\ntoken_files = [\"/t\"]\n[groups.web.actuator]\nkind = \"command\"\nprogram = \"/bin/true\"\ntimeout = 5\n",
    )
    .unwrap_err();
    assert!(err.to_string().contains("`timeout`"), "{err}");
    let err = parse(
        "[groups.web]\ntoken_files = [\"/t\"]\n[groups.web.actuator]\nkind = \"dry-run\"\nprogram = \"/bin/true\"\n",
    )
    .unwrap_err();
    assert!(err.to_string().contains("program: unknown key"), "{err}");
    let err =
        parse("[groups.web]\ntoken_files = [\"/t\"]\n[groups.web.actuator]\nkind = \"magic\"\n")
            .unwrap_err();
    assert!(err.to_string().contains("unknown variant `magic`"), "{err}");
}

/// A group's name holds no '/': its campaigns would sit in another group's election, and
/// `/v1/groups/{name}` could not address it.
#[test]
fn a_group_name_with_a_slash_is_refused_with_its_key() {
    let err = parse("[groups.\"web/a\"]\ntoken_files = [\"/t\"]\n").unwrap_err();
    let text = err.to_string();
    assert!(
        text.contains(
            "/etc/headroom/coordinator.toml: groups.\"web/a\": name must not contain '/'"
        ),
        "{text}"
    );
}
