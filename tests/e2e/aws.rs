//! The `aws` actuator end to end: the real AWS SDK against a moto server on 127.0.0.1.

use std::time::Duration;

use serde_json::{Value, json};

use crate::common::Moto;
use crate::common::post_signals as post;
use crate::common::*;
use crate::coordinator::{TOKEN, group_view, signal, write_config};

fn asg(moto: &Moto) -> Value {
    moto.web_group(
        "{'desired': g['DesiredCapacity'], 'instances': \
         [[i['InstanceId'], i['HealthStatus']] for i in g['Instances']]}",
    )
}

/// The first of group `web`'s last actions that `matches`, waited for: an action is recorded
/// once the engine's calls return, which may come after moto already shows their effect.
fn recorded(url: &str, matches: impl Fn(&Value) -> bool) -> Option<Value> {
    wait_for(Duration::from_secs(10), || {
        group_view(url, "web")["last_actions"]
            .as_array()?
            .iter()
            .find(|a| matches(a))
            .cloned()
    })
}

#[test]
fn aws_actuator_follows_the_group_on_moto() {
    let Some(moto) = Moto::start() else { return };
    moto.create_web_group(6, 2);
    assert_eq!(asg(&moto)["desired"], 2);

    let dir = tempfile::tempdir().unwrap();
    let token = write_token(dir.path(), "token", TOKEN);
    let stabilization = 4.0;
    let actuator = moto.web_actuator();
    let config = write_config(
        dir.path(),
        "",
        &group_toml_with(
            "web",
            &token,
            stabilization,
            // The scale-in is the subject here, not the tail: a budget near the median keeps the
            // plan close to P90, whatever P99 the short, jumpy history gives.
            "replace_unhealthy_after = 2\nshortfall_budget = 0.4",
            &actuator,
        ),
    );
    let c = Coordinator::start(dir.path(), &config, &moto.env());

    let mut seq = 0;
    let mut send = |demand: f64, health: &str, instance: Option<&str>| {
        seq += 1;
        for h in ["h1", "h2", "h3"] {
            let mut s = signal("web", h, "e", seq, demand);
            if h == "h1" {
                s["health"] = json!(health);
                if let Some(id) = instance {
                    s["instance_id"] = json!(id);
                }
            }
            let (status, body) = post(&c.url, Some(TOKEN), &s.to_string());
            assert_eq!(status, 200, "{body}");
        }
    };
    // 3 x 0.5 = 1.5 -> 2 (as is); then the step 3 x 1.6 = 4.8 -> 5.
    send(0.5, "healthy", None);
    std::thread::sleep(Duration::from_millis(600));
    assert_eq!(asg(&moto)["desired"], 2, "{}", c.log());
    send(1.6, "healthy", None);
    let risen = wait_for(Duration::from_secs(15), || {
        (asg(&moto)["desired"] == 5).then_some(())
    });
    assert!(
        risen.is_some(),
        "DesiredCapacity did not rise to 5: {}\n{}",
        asg(&moto),
        c.log()
    );

    // Demand falls to 3 x 0.1 = 0.3 -> 1, but only after the stabilisation window.
    let dropped_at = now();
    send(0.1, "healthy", None);
    std::thread::sleep(Duration::from_secs_f64(stabilization / 2.0));
    // Judged below, once the window's start is known: the python call can take seconds.
    let (desired, read_by) = (asg(&moto)["desired"].clone(), now());
    let fell = wait_for(Duration::from_secs(20), || {
        (asg(&moto)["desired"] == 1).then_some(())
    });
    assert!(
        fell.is_some(),
        "DesiredCapacity did not fall: {}\n{}",
        asg(&moto),
        c.log()
    );
    let scale_in = recorded(&c.url, |a| a["kind"] == "set_capacity" && a["to"] == 1)
        .unwrap_or_else(|| panic!("no scale-in recorded: {}", group_view(&c.url, "web")));
    // The window counts from the last evaluation that saw demand above the low level, as the
    // state file records each evaluation's demand: read there, not guessed from the time the
    // test sent the drop (a tick slowed by the engine's call can come long before it).
    let at = scale_in["at"].as_f64().unwrap();
    let last_high: f64 = rusqlite::Connection::open(dir.path().join("state.db"))
        .unwrap()
        .query_row(
            "SELECT MAX(t) FROM demand WHERE grp = 'web' AND value > 0.31 AND t < ?1",
            [at],
            |r| r.get(0),
        )
        .unwrap();
    if read_by < last_high + stabilization - 0.01 {
        assert_eq!(desired, 5, "scaled in inside the window: {}", c.log());
    }
    assert!(
        at - last_high >= stabilization - 0.01,
        "scaled in {:.2}s after the last evaluation that saw the high demand ({:.2}s after the drop was sent)",
        at - last_high,
        at - dropped_at
    );
    assert_eq!(
        group_view(&c.url, "web")["evaluation"]["actual_source"],
        "actuator"
    );

    // An instance id outside the group is refused, and nothing is marked.
    let foreign = "i-0123456789abcdef0";
    send(0.1, "unhealthy", Some(foreign));
    send(0.1, "unhealthy", Some(foreign));
    let refused = wait_for(Duration::from_secs(10), || {
        group_view(&c.url, "web")["last_actions"]
            .as_array()?
            .iter()
            .find(|a| a["kind"] == "replace" && a["ok"] == false)
            .cloned()
    });
    let refused = refused.unwrap_or_else(|| panic!("no refused replacement: {}", c.log()));
    assert!(
        refused["detail"]
            .as_str()
            .unwrap()
            .contains("not in auto scaling group"),
        "{refused}"
    );
    let g = asg(&moto);
    assert!(
        g["instances"]
            .as_array()
            .unwrap()
            .iter()
            .all(|i| i[1] == "Healthy"),
        "{g}"
    );
    send(0.1, "healthy", None);

    // Two consecutive unhealthy signals with an instance id: SetInstanceHealth marks it.
    let victim = asg(&moto)["instances"][0][0].as_str().unwrap().to_string();
    send(0.1, "unhealthy", Some(&victim));
    send(0.1, "unhealthy", Some(&victim));
    let marked = wait_for(Duration::from_secs(10), || {
        let g = asg(&moto);
        let unhealthy = g["instances"]
            .as_array()?
            .iter()
            .any(|i| i[0] == victim.as_str() && i[1] == "Unhealthy");
        let gone = !g["instances"]
            .as_array()?
            .iter()
            .any(|i| i[0] == victim.as_str());
        (unhealthy || gone).then_some(())
    });
    assert!(
        marked.is_some(),
        "instance not marked: {}\n{}",
        asg(&moto),
        c.log()
    );
    let replaced = recorded(&c.url, |a| a["kind"] == "replace" && a["ok"] == true);
    assert!(replaced.is_some(), "{}", group_view(&c.url, "web"));
}

/// `max_breach = "raise"`: a plan above the group's max raises the ASG's MaxSize to the
/// plan plus the buffer, and the scale-in that brings it under puts MaxSize back.
#[test]
fn a_plan_above_max_raises_the_asg_maximum_and_puts_it_back() {
    let Some(moto) = Moto::start() else { return };
    moto.create_web_group(4, 2);
    let sizes = || moto.web_group("[g['DesiredCapacity'], g['MaxSize']]");
    let dir = tempfile::tempdir().unwrap();
    let token = write_token(dir.path(), "token", TOKEN);
    let actuator = moto.web_actuator();
    let groups = group_toml_with(
        "web",
        &token,
        2.0,
        // The maximum is the subject, not the tail: plan near the median.
        "shortfall_budget = 0.4\nmax_breach = \"raise\"\nmax_breach_buffer = 0.1",
        &actuator,
    )
    .replace("max = 20", "max = 4");
    let config = write_config(dir.path(), "", &groups);
    let c = Coordinator::start(dir.path(), &config, &moto.env());
    let mut seq = 0;
    let mut send = |demand: f64| {
        seq += 1;
        for h in ["h1", "h2", "h3"] {
            let s = signal("web", h, "e", seq, demand);
            assert_eq!(post(&c.url, Some(TOKEN), &s.to_string()).0, 200);
        }
    };
    // 3 x 2.0 = 6 instances, above max 4: MaxSize 7 (6 x 1.1, rounded up), desired 6.
    send(2.0);
    let raised = wait_for(Duration::from_secs(15), || {
        (sizes() == json!([6, 7])).then_some(())
    });
    assert!(raised.is_some(), "{}\n{}", sizes(), c.log());
    // 3 x 0.1 = 0.3 -> 1 after the stabilisation window: MaxSize back to 4.
    send(0.1);
    let back = wait_for(Duration::from_secs(20), || {
        (sizes() == json!([1, 4])).then_some(())
    });
    assert!(back.is_some(), "{}\n{}", sizes(), c.log());
    let detail = |want: &'static str| {
        move |a: &Value| a["detail"].as_str().is_some_and(|d| d.contains(want))
    };
    assert!(
        recorded(&c.url, detail("maximum set to 7")).is_some()
            && recorded(&c.url, detail("maximum set to 4")).is_some(),
        "{}",
        group_view(&c.url, "web")["last_actions"]
    );
}

/// `max_breach = "raise"` owns the ASG's MaxSize: one left raised above `max` (a put-back that
/// failed, or a coordinator stopped between its two calls) while the group fits under `max` is
/// put back at a decision, recorded as a `set_max` action. Before, it stayed raised for good.
#[test]
fn a_maximum_left_raised_is_put_back() {
    let Some(moto) = Moto::start() else { return };
    // As a raise to 16 leaves it: MaxSize 16, the group at 2.
    moto.create_web_group(16, 2);
    let sizes = || moto.web_group("[g['DesiredCapacity'], g['MaxSize']]");
    let dir = tempfile::tempdir().unwrap();
    let token = write_token(dir.path(), "token", TOKEN);
    let groups = group_toml_with(
        "web",
        &token,
        2.0,
        "max_breach = \"raise\"",
        &moto.web_actuator(),
    )
    .replace("max = 20", "max = 4");
    let config = write_config(dir.path(), "", &groups);
    let c = Coordinator::start(dir.path(), &config, &moto.env());
    for seq in 1..=3 {
        for h in ["h1", "h2"] {
            let s = signal("web", h, "e", seq, 0.5);
            assert_eq!(post(&c.url, Some(TOKEN), &s.to_string()).0, 200);
        }
    }
    let back = wait_for(Duration::from_secs(20), || {
        (sizes()[1] == json!(4)).then_some(())
    });
    assert!(back.is_some(), "{}\n{}", sizes(), c.log());
    let put_back = recorded(&c.url, |a| a["kind"] == "set_max")
        .unwrap_or_else(|| panic!("no set_max action: {:#}", group_view(&c.url, "web")));
    assert_eq!(put_back["ok"], true, "{put_back}");
    assert!(
        put_back["reason"]
            .as_str()
            .is_some_and(|r| r.contains("still raised to 16")),
        "{put_back}"
    );
}

/// A group its own policies also scale (a target-tracking policy, a scheduled action) is named
/// in a warning at the first read: each would undo the other's DesiredCapacity.
#[test]
fn the_groups_own_scaling_policies_are_warned_of() {
    let Some(moto) = Moto::start() else { return };
    moto.create_web_group(6, 2);
    moto.boto(
        "c.put_scaling_policy(AutoScalingGroupName='web', PolicyName='cpu70', \
         PolicyType='TargetTrackingScaling', TargetTrackingConfiguration={'TargetValue': 70.0, \
         'PredefinedMetricSpecification': {'PredefinedMetricType': 'ASGAverageCPUUtilization'}})\n\
         c.put_scheduled_update_group_action(AutoScalingGroupName='web', \
         ScheduledActionName='nightly', Recurrence='0 2 * * *', DesiredCapacity=1)\nprint('{}')",
    );
    let dir = tempfile::tempdir().unwrap();
    let token = write_token(dir.path(), "token", TOKEN);
    let groups = group_toml_with("web", &token, 2.0, "", &moto.web_actuator());
    let config = write_config(dir.path(), "", &groups);
    let c = Coordinator::start(dir.path(), &config, &moto.env());
    let s = signal("web", "h1", "e", 1, 0.5);
    assert_eq!(post(&c.url, Some(TOKEN), &s.to_string()).0, 200);
    let warned = wait_for(Duration::from_secs(20), || {
        let log = c.log();
        log.contains("also scaled by its own policies")
            .then_some(log)
    });
    let log = warned.unwrap_or_else(|| panic!("no warning: {}", c.log()));
    assert!(
        log.contains("policy cpu70") && log.contains("scheduled action nightly"),
        "{log}"
    );
    assert_eq!(
        log.matches("also scaled by its own policies").count(),
        1,
        "once"
    );
}
