//! Scale-in protection of busy hosts on moto, through the real AWS SDK: hosts report their
//! work in progress (signal version 2, `busy`) with their instance ids; the coordinator
//! protects the busy ones' instances, clears the protection once they have been idle for
//! `protection_idle`, protects none when every instance is busy, never names an instance
//! outside its group, and still accepts version-1 signals from older agents.

use std::time::Duration;

use serde_json::{Value, json};

use crate::common::{
    Coordinator, Moto, group_toml_with, post_signals as post, wait_for, write_token,
};
use crate::coordinator::{TOKEN, group_view, signal, write_config};

/// Each instance id with whether it is protected from scale-in, as moto has it.
fn protected(moto: &Moto) -> Vec<(String, bool)> {
    let v =
        moto.web_group("[[i['InstanceId'], i['ProtectedFromScaleIn']] for i in g['Instances']]");
    let mut out: Vec<(String, bool)> = v
        .as_array()
        .unwrap()
        .iter()
        .map(|p| (p[0].as_str().unwrap().to_string(), p[1].as_bool().unwrap()))
        .collect();
    out.sort();
    out
}

#[test]
fn busy_instances_are_protected_and_released_on_moto() {
    let Some(moto) = Moto::start() else { return };
    moto.create_web_group(8, 4);
    let ids: Vec<String> = protected(&moto).into_iter().map(|(id, _)| id).collect();
    assert_eq!(ids.len(), 4);
    let dir = tempfile::tempdir().unwrap();
    let token = write_token(dir.path(), "token", TOKEN);
    let actuator = moto.web_actuator();
    let config = write_config(
        dir.path(),
        "",
        &group_toml_with(
            "web",
            &token,
            600.0,
            "scale_in_protection = true\nprotection_idle = \"3s\"\nprotection_interval = \"1s\"\nmode = \"reactive\"",
            &actuator,
        ),
    );
    let c = Coordinator::start(dir.path(), &config, &moto.env());
    let mut seq = 0;
    // One round of signals: host i (instance ids[i]) reports busy[i]; a fifth host claims an
    // instance of no group of ours and is busy; `old` sends version 1 without the figure.
    let mut round = |busy: [f64; 4], old: bool| {
        seq += 1;
        for (i, b) in busy.iter().enumerate() {
            let mut s: Value = signal("web", &format!("h{i}"), "e", seq, 1.0);
            s["instance_id"] = json!(ids[i]);
            if !(old && i == 3) {
                s["version"] = json!(2);
                s["busy"] = json!(b);
            }
            let (status, body) = post(&c.url, Some(TOKEN), &s.to_string());
            assert_eq!(status, 200, "{body}");
        }
        let mut stranger = signal("web", "h9", "e", seq, 0.0);
        stranger["version"] = json!(2);
        stranger["busy"] = json!(5.0);
        stranger["instance_id"] = json!("i-0123456789abcdef0");
        assert_eq!(post(&c.url, Some(TOKEN), &stranger.to_string()).0, 200);
    };
    let expect =
        |want: [bool; 4]| -> Vec<(String, bool)> { ids.iter().cloned().zip(want).collect() };
    let settle = |want: [bool; 4], round: &mut dyn FnMut()| {
        let got = wait_for(Duration::from_secs(20), || {
            round();
            std::thread::sleep(Duration::from_millis(300));
            let p = protected(&moto);
            (p == expect(want)).then_some(p)
        });
        assert!(
            got.is_some(),
            "want {:?}, moto has {:?}; {}",
            expect(want),
            protected(&moto),
            group_view(&c.url, "web")["last_actions"]
        );
    };
    // Two busy hosts: their instances are protected, the idle ones not; h3 is an older agent.
    settle([true, true, false, false], &mut || {
        round([3.0, 1.0, 0.0, 0.0], true)
    });
    // h1 goes idle: cleared after protection_idle (3 s), h0 still protected.
    settle([true, false, false, false], &mut || {
        round([3.0, 0.0, 0.0, 0.0], false)
    });
    // Everyone busy: none protected, so the group can still scale in; the log says so.
    settle([false, false, false, false], &mut || {
        round([2.0, 2.0, 2.0, 2.0], false)
    });
    let log = std::fs::read_to_string(&c.log).unwrap();
    assert!(
        log.contains("every instance is busy, so none is protected"),
        "{log}"
    );
    // The actions: protect and unprotect, each naming only this group's instances.
    let v = group_view(&c.url, "web");
    let actions = v["last_actions"].as_array().unwrap();
    assert!(
        actions
            .iter()
            .any(|a| a["kind"] == "protect" && a["ok"] == true)
    );
    assert!(
        actions
            .iter()
            .any(|a| a["kind"] == "unprotect" && a["ok"] == true)
    );
    assert!(
        !actions.iter().any(|a| a["detail"]
            .as_str()
            .unwrap_or("")
            .contains("i-0123456789abcdef0")),
        "{actions:?}"
    );
}

/// A real agent with `busy = "connections"` and `busy_ports` reports the established
/// connections on those ports (a listener with two accepted connections: exactly 2, though the
/// coordinator's port on this host has the agents' connections too); one without the key
/// reports nothing (its signals stay version 1).
#[test]
fn an_agent_reports_its_established_connections_as_busy() {
    let (dir, c) = crate::coordinator::web_coordinator("", 60.0, "kind = \"dry-run\"");
    let token = dir.path().join("token");
    let gauge = crate::common::AppGauge::serve("queue_depth", 1.0);
    let urls = [c.url.clone()];
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let mut busy = crate::common::Agent::on_gauge(
        0,
        &gauge.url,
        1.0,
        &urls,
        &token,
        &format!("busy = \"connections\"\nbusy_ports = [{port}]\n"),
    );
    let mut quiet = crate::common::Agent::on_gauge(1, &gauge.url, 1.0, &urls, &token, "");
    let clients: Vec<_> = (0..2)
        .map(|_| std::net::TcpStream::connect(listener.local_addr().unwrap()).unwrap())
        .collect();
    let accepted: Vec<_> = (0..2).map(|_| listener.accept().unwrap()).collect();
    // Started after the connections are up: the agent counts them at most every 30 s.
    busy.start();
    quiet.start();
    let host = |v: &Value, name: &str| -> Option<Value> {
        v["hosts"]
            .as_array()?
            .iter()
            .find(|h| h["host"] == name)
            .cloned()
    };
    let seen = wait_for(Duration::from_secs(30), || {
        let v = group_view(&c.url, "web");
        let b = host(&v, "host-0")?["busy"].as_f64()?;
        (b == 2.0 && host(&v, "host-1").is_some()).then_some(v)
    });
    let v = seen.unwrap_or_else(|| panic!("{}", group_view(&c.url, "web")));
    assert_eq!(host(&v, "host-1").unwrap()["busy"], Value::Null);
    drop((clients, accepted));
}
