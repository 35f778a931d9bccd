//! End-to-end tests of how the coordinator's API answers clients that misbehave: one that
//! hangs up mid-commit, one without a valid token, one that sends nothing, and requests that
//! are missing, wrong, malformed or too large. The built binary on 127.0.0.1, real HTTP, a real
//! SQLite state file; the coordinator comes from [`crate::coordinator`]'s helpers.

use std::time::{Duration, Instant};

use serde_json::{Value, json};

use crate::common::{get, now, post_signals as post, wait_for};
use crate::coordinator::{TOKEN, group_view, signal, web_coordinator};

/// An agent that gives up on a slow commit (its timeout) and hangs up still has the signal
/// applied: the commit goes on, and so does applying it to the group, as the agent's retry
/// will be answered "duplicate".
#[test]
fn a_client_that_hangs_up_during_the_commit_still_has_its_signal_applied() {
    use std::io::Write;
    let (dir, c) = web_coordinator("", 5.0, "kind = \"dry-run\"");
    // Another connection holds the write lock, so the commit waits (busy timeout).
    let db = rusqlite::Connection::open(dir.path().join("state.db")).unwrap();
    db.execute_batch("BEGIN IMMEDIATE").unwrap();
    let body = signal("web", "hung-up", "e", 1, 1.0).to_string();
    let mut conn = std::net::TcpStream::connect(c.url.trim_start_matches("http://")).unwrap();
    write!(
        conn,
        "POST /v1/signals HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {TOKEN}\r\n\
         Content-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    )
    .unwrap();
    std::thread::sleep(Duration::from_millis(500));
    drop(conn);
    std::thread::sleep(Duration::from_millis(500));
    db.execute_batch("COMMIT").unwrap();
    let applied = wait_for(Duration::from_secs(10), || {
        let v = group_view(&c.url, "web");
        v["hosts"]
            .as_array()?
            .iter()
            .any(|h| h["host"] == "hung-up")
            .then_some(())
    });
    assert!(
        applied.is_some(),
        "{}\n{}",
        group_view(&c.url, "web"),
        c.log()
    );
}

/// A client without a valid token is answered before it sends its body (it cannot hold a
/// connection by trickling one), and group names cannot be probed with a bad token.
#[test]
fn a_bad_token_is_refused_before_the_body_and_reveals_no_group() {
    use std::io::{Read, Write};
    let (_dir, c) = web_coordinator("", 5.0, "kind = \"dry-run\"");
    let mut conn = std::net::TcpStream::connect(c.url.trim_start_matches("http://")).unwrap();
    conn.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    // Headers announcing a body that never comes.
    write!(
        conn,
        "POST /v1/signals HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer wrong-token-0123456789\r\n\
         Content-Type: application/json\r\nContent-Length: 1000\r\n\r\n"
    )
    .unwrap();
    let mut answer = [0u8; 64];
    let n = conn.read(&mut answer).expect("answered without the body");
    let answer = String::from_utf8_lossy(&answer[..n]);
    assert!(answer.starts_with("HTTP/1.1 401"), "{answer}");

    let probe = |group: &str| {
        get(
            &c.url,
            &format!("/v1/groups/{group}"),
            Some("wrong-token-0123456789"),
        )
    };
    let (known, unknown) = (probe("web"), probe("nope"));
    assert_eq!((known.0, unknown.0), (401, 401));
    assert_eq!(known.1.replace("web", "G"), unknown.1.replace("nope", "G"));
}

/// A client that connects and sends nothing is closed within the header timeout (10 s), as
/// one trickling its headers is, and HTTP/2 by prior knowledge at once.
#[test]
fn a_silent_client_is_closed() {
    use std::io::Read;
    let (_dir, c) = web_coordinator("", 5.0, "kind = \"dry-run\"");
    let mut conn = std::net::TcpStream::connect(c.url.trim_start_matches("http://")).unwrap();
    conn.set_read_timeout(Some(Duration::from_secs(20)))
        .unwrap();
    let started = Instant::now();
    let mut buf = [0u8; 16];
    let closed = match conn.read(&mut buf) {
        Ok(0) => true,
        Ok(_) => false,
        Err(e) => e.kind() == std::io::ErrorKind::ConnectionReset,
    };
    assert!(closed, "still open after {:?}", started.elapsed());
    assert!(
        started.elapsed() < Duration::from_secs(15),
        "{:?}",
        started.elapsed()
    );

    // HTTP/2 by prior knowledge (no header timeout there) is closed at once.
    use std::io::Write;
    let mut h2 = std::net::TcpStream::connect(c.url.trim_start_matches("http://")).unwrap();
    h2.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    h2.write_all(b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n").unwrap();
    let mut buf = [0u8; 64];
    let closed = match h2.read(&mut buf) {
        Ok(0) => true,
        Ok(_) => false,
        Err(e) => e.kind() == std::io::ErrorKind::ConnectionReset,
    };
    assert!(closed, "HTTP/2 prior knowledge served");
}

#[test]
fn refuses_missing_wrong_malformed_and_oversized_requests() {
    let (_dir, c) = web_coordinator("max_body_bytes = 4096\n", 5.0, "kind = \"dry-run\"");
    let good = signal("web", "h1", "e1", 1, 1.0).to_string();

    assert_eq!(post(&c.url, None, &good).0, 401);
    assert_eq!(post(&c.url, Some("wrong-token-0123456789"), &good).0, 401);
    let (status, body) = post(&c.url, Some(TOKEN), "{\"version\": 1, \"host\": ");
    assert_eq!(status, 400);
    assert!(body.contains("malformed signal JSON"), "{body}");
    let (status, body) = post(&c.url, Some(TOKEN), &json!({"version": 1}).to_string());
    assert_eq!(status, 400, "{body}");
    let mut bad = signal("web", "h1", "e1", 1, 1.0);
    bad["health"] = json!("sideways");
    assert_eq!(post(&c.url, Some(TOKEN), &bad.to_string()).0, 400);
    // A later agent's signal (a version and a field this coordinator does not know) is not a
    // bad signal: 501, which the agent retries, keeping it, until the coordinator is upgraded.
    let mut later = signal("web", "h1", "e1", 1, 1.0);
    later["version"] = json!(3);
    later["field_of_version_3"] = json!(true);
    let (status, body) = post(&c.url, Some(TOKEN), &later.to_string());
    assert_eq!(status, 501, "{body}");
    assert!(body.contains("signal version 3 is newer"), "{body}");
    let mut later = signal("web", "h1", "e1", 1, 1.0);
    later["version"] = json!(3);
    let batch = json!([signal("web", "h1", "e1", 1, 1.0), later]).to_string();
    assert_eq!(post(&c.url, Some(TOKEN), &batch).0, 501);
    let other_group = signal("db", "h1", "e1", 1, 1.0).to_string();
    assert_eq!(post(&c.url, Some(TOKEN), &other_group).0, 401);
    let big: Vec<Value> = (1..=40)
        .map(|i| signal("web", "h1", "e1", i, 1.0))
        .collect();
    let (status, body) = post(&c.url, Some(TOKEN), &serde_json::to_string(&big).unwrap());
    assert_eq!(status, 413, "{body}");

    let (status, body) = post(&c.url, Some(TOKEN), &good);
    assert_eq!(status, 200, "{body}");
    let v: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(v["applied"], 1);
    let v: Value = serde_json::from_str(&post(&c.url, Some(TOKEN), &good).1).unwrap();
    assert_eq!(
        (v["applied"].as_u64(), v["duplicates"].as_u64()),
        (Some(0), Some(1))
    );
    assert_eq!(v["results"][0]["outcome"], "duplicate");
    // A signal older than the signal TTL when sent (a drained backlog) is stored for audit, not
    // applied. Its age is the agent's own (sent minus decided): a host whose clock is an hour
    // behind still has its fresh signals applied.
    let mut skewed = signal("web", "h-skewed", "e1", 1, 1.0);
    skewed["decided_at"] = json!(now() - 3600.0);
    skewed["sent_at"] = json!(now() - 3599.5);
    let v: Value = serde_json::from_str(&post(&c.url, Some(TOKEN), &skewed.to_string()).1).unwrap();
    assert_eq!(v["applied"].as_u64(), Some(1), "{v}");
    let mut old = signal("web", "h-old", "e1", 1, 9.0);
    old["decided_at"] = json!(now() - 3600.0);
    let v: Value = serde_json::from_str(&post(&c.url, Some(TOKEN), &old.to_string()).1).unwrap();
    assert_eq!(
        (v["applied"].as_u64(), v["stored"].as_u64()),
        (Some(0), Some(1)),
        "{v}"
    );
    let view = group_view(&c.url, "web");
    assert!(
        view["hosts"]
            .as_array()
            .unwrap()
            .iter()
            .all(|h| h["host"] != "h-old"),
        "{view}"
    );
    assert_eq!(view["signals"]["stored"], 1);

    assert_eq!(get(&c.url, "/healthz", None).0, 200);
    assert_eq!(get(&c.url, "/v1/groups", None).0, 401);
    assert_eq!(
        get(&c.url, "/v1/groups", Some("wrong-token-0123456789")).0,
        401
    );
    let (status, metrics) = get(&c.url, "/metrics", None);
    assert_eq!(status, 200);
    for needle in [
        "headroom_coordinator_requests_rejected_total{reason=\"unauthorized\"} 3",
        "headroom_coordinator_requests_rejected_total{reason=\"malformed\"} 2",
        "headroom_coordinator_requests_rejected_total{reason=\"invalid\"} 1",
        "headroom_coordinator_requests_rejected_total{reason=\"too_large\"} 1",
        "headroom_coordinator_requests_rejected_total{reason=\"version\"} 2",
        "headroom_coordinator_signals_applied_total{group=\"web\"} 2",
        "headroom_coordinator_signals_duplicate_total{group=\"web\"} 1",
        "headroom_coordinator_ingest_seconds_bucket",
    ] {
        assert!(metrics.contains(needle), "{needle} not in\n{metrics}");
    }
}
