//! The `keda` actuator end to end: a real tonic client of the coordinator's KEDA external
//! scaler service, and replicas that answer it alike.

use std::time::Duration;

use serde_json::Value;

use crate::common::post_signals as post;
use crate::common::*;
use crate::coordinator::{TOKEN, group_view, signal, web_coordinator, write_config};

use headroom_coordinator::actuator::keda::proto::external_scaler_client::ExternalScalerClient;
use headroom_coordinator::actuator::keda::proto::{GetMetricsRequest, ScaledObjectRef};

/// A runtime for the tonic client.
fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
}

/// GetMetrics for group `web` from the KEDA service at `endpoint`: its value, or the code
/// of the status it answered.
fn web_metric(rt: &tokio::runtime::Runtime, endpoint: &str) -> Result<i64, tonic::Code> {
    rt.block_on(async {
        let mut client = ExternalScalerClient::connect(endpoint.to_string())
            .await
            .unwrap();
        client
            .get_metrics(GetMetricsRequest {
                scaled_object_ref: Some(ScaledObjectRef {
                    name: "web".into(),
                    namespace: "default".into(),
                    scaler_metadata: [("group".to_string(), "web".to_string())].into(),
                }),
                metric_name: "web_desired".into(),
            })
            .await
            .map(|m| m.into_inner().metric_values[0].metric_value)
            .map_err(|e| e.code())
    })
}

#[test]
fn keda_external_scaler_reports_desired_capacity() {
    let (_dir, c) = web_coordinator(
        "[keda]\nlisten = \"127.0.0.1:0\"\n",
        5.0,
        "kind = \"keda\"\nmetric_name = \"web_desired\"",
    );
    for (i, d) in [1.2, 2.0, 1.5].iter().enumerate() {
        let s = signal("web", &format!("h{i}"), "e", 1, *d);
        assert_eq!(post(&c.url, Some(TOKEN), &s.to_string()).0, 200);
    }
    // 4.7 busy cores at capacity 1 and target 1.0 -> 5 instances.
    let decided = wait_for(Duration::from_secs(10), || {
        (group_view(&c.url, "web")["evaluation"]["actual"] == 5).then_some(())
    });
    assert!(decided.is_some(), "{}", c.log());
    let endpoint = c.keda.clone().expect("keda listen line");
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let mut client = ExternalScalerClient::connect(endpoint).await.unwrap();
        let object = ScaledObjectRef {
            name: "web".into(),
            namespace: "default".into(),
            scaler_metadata: [("group".to_string(), "web".to_string())].into(),
        };
        let spec = client
            .get_metric_spec(object.clone())
            .await
            .unwrap()
            .into_inner();
        assert_eq!(spec.metric_specs[0].metric_name, "web_desired");
        assert_eq!(spec.metric_specs[0].target_size_float, 1.0);
        let metrics = client
            .get_metrics(GetMetricsRequest {
                scaled_object_ref: Some(object.clone()),
                metric_name: "web_desired".into(),
            })
            .await
            .unwrap()
            .into_inner();
        assert_eq!(metrics.metric_values[0].metric_value, 5);
        assert_eq!(metrics.metric_values[0].metric_value_float, 5.0);
        assert!(
            client
                .is_active(object.clone())
                .await
                .unwrap()
                .into_inner()
                .result
        );
        let mut stream = client
            .stream_is_active(object.clone())
            .await
            .unwrap()
            .into_inner();
        assert!(stream.message().await.unwrap().unwrap().result);
        let mut unknown = object.clone();
        unknown
            .scaler_metadata
            .insert("group".into(), "nope".into());
        let err = client
            .get_metrics(GetMetricsRequest {
                scaled_object_ref: Some(unknown),
                metric_name: String::new(),
            })
            .await;
        assert_eq!(err.unwrap_err().code(), tonic::Code::NotFound);
    });
}

/// A group whose demand fits the hosts it has needs no change, and KEDA still reads its
/// capacity (it asks every polling interval; an error would send it to its fallback).
#[test]
fn keda_reads_a_steady_group_without_a_change() {
    let (_dir, c) = web_coordinator(
        "[keda]\nlisten = \"127.0.0.1:0\"\n",
        5.0,
        "kind = \"keda\"\nmetric_name = \"web_desired\"",
    );
    // 3 x 0.9 = 2.7 busy cores -> 3 instances, as many as the hosts: hold.
    for i in 0..3 {
        let s = signal("web", &format!("h{i}"), "e", 1, 0.9);
        assert_eq!(post(&c.url, Some(TOKEN), &s.to_string()).0, 200);
    }
    let held = wait_for(Duration::from_secs(10), || {
        let v = group_view(&c.url, "web");
        (v["evaluation"]["live_hosts"] == 3).then_some(v)
    });
    let v = held.unwrap_or_else(|| panic!("{}", c.log()));
    assert_eq!(v["evaluation"]["desired"], 3, "{v}");
    let endpoint = c.keda.clone().expect("keda listen line");
    assert_eq!(web_metric(&runtime(), &endpoint), Ok(3), "{}", c.log());
}

/// KEDA needs no leader: two replicas under one `[lease]` do not campaign for a `keda`
/// group, and given the same signals both answer GetMetrics with the same value, whichever
/// KEDA's Service reaches.
#[test]
fn two_replicas_given_the_same_signals_answer_keda_the_same() {
    let Some(etcd) = crate::common::Etcd::start(3) else {
        return;
    };
    let endpoints = etcd.endpoints_toml();
    let replicas: Vec<(tempfile::TempDir, Coordinator)> = (0..2)
        .map(|i| {
            web_coordinator(
                &format!(
                    "[keda]\nlisten = \"127.0.0.1:0\"\n[lease]\nendpoints = [{endpoints}]\nttl = \"5s\"\nreplica = \"r{i}\"\n"
                ),
                5.0,
                "kind = \"keda\"\nmetric_name = \"web_desired\"",
            )
        })
        .collect();
    let rt = runtime();
    let ask = |c: &Coordinator| -> i64 {
        web_metric(&rt, c.keda.as_deref().expect("keda listen line")).unwrap_or(-1)
    };
    let mut answers = Vec::new();
    for (seq, demand) in [(1, [1.2, 2.0, 1.5]), (2, [2.5, 3.0, 2.2])] {
        for (i, d) in demand.iter().enumerate() {
            let s = signal("web", &format!("h{i}"), "e", seq, *d);
            for (_, c) in &replicas {
                assert_eq!(post(&c.url, Some(TOKEN), &s.to_string()).0, 200);
            }
        }
        let want: f64 = demand.iter().sum();
        let both = wait_for(Duration::from_secs(15), || {
            let v: Vec<i64> = replicas.iter().map(|(_, c)| ask(c)).collect();
            (v[0] == v[1] && v[0] as f64 >= want).then_some(v[0])
        });
        let views: Vec<Value> = replicas
            .iter()
            .map(|(_, c)| group_view(&c.url, "web"))
            .collect();
        let answer = both.unwrap_or_else(|| {
            panic!(
                "the replicas answer {:?}: {:?}",
                replicas.iter().map(|(_, c)| ask(c)).collect::<Vec<_>>(),
                views
                    .iter()
                    .map(|v| v["evaluation"].clone())
                    .collect::<Vec<_>>()
            )
        });
        for v in &views {
            assert!(v["lease"].is_null(), "a keda group does not campaign: {v}");
        }
        answers.push(answer);
    }
    eprintln!("both replicas answered {answers:?}");
    drop(etcd);
}

/// Every host of a group goes silent while it should have instances: the coordinator
/// cannot decide, so GetMetrics answers an error (KEDA's own fallback applies), or the
/// configured `fallback_replicas`; and the decision again once a host is back.
#[test]
fn keda_answers_an_error_or_its_fallback_when_every_host_is_lost() {
    for fallback in [None, Some(7)] {
        let dir = tempfile::tempdir().unwrap();
        let token = write_token(dir.path(), "token", TOKEN);
        let actuator = match fallback {
            Some(n) => format!("kind = \"keda\"\nfallback_replicas = {n}"),
            None => "kind = \"keda\"".to_string(),
        };
        let groups = group_toml_with("web", &token, 5.0, "", &actuator)
            .replace("host_ttl = \"30s\"", "host_ttl = \"2s\"");
        let config = write_config(dir.path(), "[keda]\nlisten = \"127.0.0.1:0\"\n", &groups);
        let c = Coordinator::start(dir.path(), &config, &[]);
        let endpoint = c.keda.clone().expect("keda listen line");
        let rt = runtime();
        let read = || web_metric(&rt, &endpoint);
        // Never deployed: nothing decided, whatever the fallback.
        assert_eq!(read(), Err(tonic::Code::Unavailable), "{}", c.log());
        // Each send is a new signal from both hosts, so they stay live while it is read.
        let seq = std::cell::Cell::new(0);
        let send = || {
            seq.set(seq.get() + 1);
            for i in 0..2 {
                let s = signal("web", &format!("h{i}"), "e", seq.get(), 1.5);
                assert_eq!(post(&c.url, Some(TOKEN), &s.to_string()).0, 200);
            }
        };
        // 2 x 1.5 = 3 busy cores at capacity 1 -> 3 instances. The hosts live 2 s only: they
        // keep sending until it is read, so a slow read cannot miss it.
        let decided = wait_for(Duration::from_secs(10), || {
            send();
            read().ok().filter(|&v| v == 3)
        });
        assert!(decided.is_some(), "{:?}\n{}", read(), c.log());
        // Silent past host_ttl (2 s): lost.
        let want = fallback.map_or(Err(tonic::Code::Unavailable), |n| Ok(i64::from(n)));
        let lost = wait_for(Duration::from_secs(15), || (read() == want).then_some(()));
        assert!(lost.is_some(), "{fallback:?}: {:?}\n{}", read(), c.log());
        assert!(c.log().contains("every host went silent"), "{}", c.log());
        // The hosts are back: the decision again.
        let back = wait_for(Duration::from_secs(10), || {
            send();
            read().ok().filter(|&v| v == 3)
        });
        assert!(back.is_some(), "{fallback:?}: {:?}\n{}", read(), c.log());
    }
}
