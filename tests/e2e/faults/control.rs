//! Hostile control-socket clients get errors or are disconnected; the agent keeps answering.

use std::time::Duration;

use crate::common::*;

/// Hostile control-socket clients: garbage, invalid UTF-8, an oversized line, absurd values and
/// a client that connects and says nothing. Each gets an error or is disconnected; the agent
/// keeps answering everyone else.
#[test]
fn hostile_control_requests_get_errors_and_the_agent_survives() {
    use std::io::{BufRead, BufReader, Write};
    use std::os::unix::net::UnixStream;
    let mut a = Agent::options().identity("fault-host", "web").create("");
    a.start();
    let idle = UnixStream::connect(a.socket()).unwrap();
    let ask = |line: &[u8]| -> Option<serde_json::Value> {
        let mut s = UnixStream::connect(a.socket()).unwrap();
        s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
        s.write_all(line).ok()?;
        s.write_all(b"\n").ok()?;
        let mut answer = String::new();
        BufReader::new(s).read_line(&mut answer).ok()?;
        serde_json::from_str(&answer).ok()
    };
    let huge = vec![b'{'; 2 << 20];
    for (line, want_error) in [
        (&b"hello"[..], true),
        (b"\xff\xfe\x00garbage", true),
        (b"{\"cmd\":\"status\"}", true),
        (b"{\"cmd\":\"status\",\"v\":99}", true),
        (b"{\"cmd\":\"decisions\",\"v\":1,\"since_s\":-1e308}", false),
        (b"{\"cmd\":\"decisions\",\"v\":1,\"since_s\":1e308}", false),
        (
            b"{\"cmd\":\"history\",\"v\":1,\"since_s\":1e308,\"resolution\":\"1m\"}",
            false,
        ),
        (
            b"{\"cmd\":\"history\",\"v\":1,\"since_s\":60,\"resolution\":\"7y\"}",
            true,
        ),
        (
            b"{\"cmd\":\"forecast\",\"v\":1,\"metric\":\"\\u0000\"}",
            false,
        ),
        (&huge, true),
    ] {
        let shown = String::from_utf8_lossy(&line[..line.len().min(60)]).to_string();
        match ask(line) {
            Some(v) => {
                if want_error {
                    assert_eq!(v["ok"], false, "{shown}: {v}");
                }
                assert!(
                    v["ok"] == true || v["error"].as_str().is_some_and(|e| !e.is_empty()),
                    "{shown}: {v}"
                );
                assert!(
                    !v["error"]
                        .as_str()
                        .unwrap_or_default()
                        .contains("internal error"),
                    "{shown}: a handler panicked: {v}"
                );
            }
            None => assert!(want_error, "{shown}: no answer"),
        }
        assert!(
            a.cli(&["status", "--json"]).status.success(),
            "agent still answers after {shown}: {}",
            tail(&a.log(), 20)
        );
    }
    drop(idle);
    assert!(a.child.as_mut().unwrap().try_wait().unwrap().is_none());
    assert!(a.term().success());
}
