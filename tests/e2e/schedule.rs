//! Scheduled events end to end: `headroom schedule` lists the next firings from a
//! coordinator's configuration (and refuses a broken entry with its key, exit 64), and a
//! running coordinator raises a group's plan for an entry in force, naming it in the reason.

use std::process::Command;
use std::time::Duration;

use serde_json::Value;

use crate::common::{
    Coordinator, bin, group_toml_with, post_signals as post, wait_for, write_token,
};
use crate::coordinator::{TOKEN, group_view, signal, write_config};

fn schedule(args: &[&str]) -> std::process::Output {
    Command::new(bin())
        .arg("schedule")
        .args(args)
        .output()
        .expect("run headroom schedule")
}

#[test]
fn headroom_schedule_lists_the_next_firings_of_each_entry() {
    let dir = tempfile::tempdir().unwrap();
    let token = write_token(dir.path(), "token", TOKEN);
    let entries = "[[groups.web.schedule]]\nname = \"friday-evening\"\ncron = \"0 17 * * FRI\"\n\
                   tz = \"Europe/Berlin\"\nduration = \"4h\"\nmin_instances = 12\n\
                   [[groups.web.schedule]]\nat = \"2099-12-24T08:00:00Z\"\nduration = \"1h\"\n\
                   demand_factor = 1.5\n";
    let groups = group_toml_with("web", &token, 1.0, "", "kind = \"dry-run\"").replace(
        "[groups.web.actuator]",
        &format!("{entries}[groups.web.actuator]"),
    );
    let config = write_config(dir.path(), "", &groups);
    let o = schedule(&[
        "--config",
        config.to_str().unwrap(),
        "--json",
        "--count",
        "2",
    ]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let v: Value = serde_json::from_slice(&o.stdout).unwrap();
    let web = &v[0];
    assert_eq!(web["group"], "web");
    assert_eq!(web["lead_s"], 1.2); // warm-up 1s + decision interval 200ms
    let friday = &web["entries"][0];
    assert_eq!(friday["name"], "friday-evening");
    assert_eq!(friday["raise"], "min_instances 12");
    let next = friday["next"].as_array().unwrap();
    assert_eq!(next.len(), 2);
    for f in next {
        // 17:00 in Berlin is 16:00Z in winter and 15:00Z in summer.
        let start = f["start"].as_str().unwrap();
        assert!(
            start.ends_with("T16:00:00Z") || start.ends_with("T15:00:00Z"),
            "{start}"
        );
        let day = chrono::DateTime::parse_from_rfc3339(start).unwrap();
        assert_eq!(chrono::Datelike::weekday(&day), chrono::Weekday::Fri);
    }
    let sale = &web["entries"][1];
    assert_eq!(sale["name"], "schedule[1]");
    assert_eq!(sale["next"][0]["start"], "2099-12-24T08:00:00Z");
    assert_eq!(sale["next"][0]["raises_from"], "2099-12-24T07:59:58Z");
    assert_eq!(sale["next"][0]["end"], "2099-12-24T09:00:00Z");
    let o = schedule(&["--config", config.to_str().unwrap()]);
    let text = String::from_utf8_lossy(&o.stdout);
    assert!(
        text.contains("schedule[1] (at 2099-12-24T08:00:00Z, 1h): demand x1.5")
            && text.contains(
                "2099-12-24T08:00:00Z to 2099-12-24T09:00:00Z, raised from 2099-12-24T07:59:58Z"
            ),
        "{text}"
    );
    // A broken entry: the key names the group, the entry and the field; exit 64.
    let broken = groups.replace("cron = \"0 17 * * FRI\"", "cron = \"0 17 * FRI\"");
    let config = write_config(dir.path(), "", &broken);
    let o = schedule(&["--config", config.to_str().unwrap()]);
    let err = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(64), "{err}");
    assert!(
        err.contains("groups.web.schedule[0].cron: (friday-evening) \"0 17 * FRI\" has 4 fields"),
        "{err}"
    );
}

/// An entry in force (every minute, for an hour) raises a running coordinator's group to its
/// `min_instances`: first with no host live yet (the group wakes for it), then over demand that
/// needs 2; each reason names the entry.
#[test]
fn a_coordinator_raises_a_group_for_an_entry_in_force() {
    let dir = tempfile::tempdir().unwrap();
    let token = write_token(dir.path(), "token", TOKEN);
    let groups = group_toml_with("web", &token, 1.0, "", "kind = \"dry-run\"").replace(
        "[groups.web.actuator]",
        "[[groups.web.schedule]]\nname = \"all-hands\"\ncron = \"* * * * *\"\nduration = \"1h\"\n\
         min_instances = 7\n[groups.web.actuator]",
    );
    let config = write_config(dir.path(), "", &groups);
    let c = Coordinator::start(dir.path(), &config, &[]);
    let raised = |live: u64| {
        wait_for(Duration::from_secs(20), || {
            let v = group_view(&c.url, "web");
            let e = v["evaluation"].clone();
            (e["desired"] == 7 && e["live_hosts"] == live).then_some(e)
        })
        .unwrap_or_else(|| panic!("never raised: {}", group_view(&c.url, "web")))
    };
    let reason = raised(0)["reason"].as_str().unwrap().to_string();
    assert_eq!(
        reason,
        "no live hosts; scheduled: all-hands (cron \"* * * * *\" UTC, 1h): min_instances 7 \
         raises the group to 7"
    );
    for seq in 1..=3 {
        let s = signal("web", "h1", "e1", seq, 1.5);
        assert_eq!(post(&c.url, Some(TOKEN), &s.to_string()).0, 200);
    }
    let reason = raised(1)["reason"].as_str().unwrap().to_string();
    assert!(
        reason.contains("scheduled: all-hands (cron \"* * * * *\" UTC, 1h)")
            && reason.contains("min_instances 7 raises the plan to 7"),
        "{reason}"
    );
}
