//! IMDSv2: the EC2 instance id of this host, for the `instance_id` field of a Signal (the
//! coordinator's `aws` actuator needs it for SetInstanceHealth).
//!
//! IMDSv2 is a session protocol: `PUT /latest/api/token` with a TTL header returns a token,
//! which `GET /latest/meta-data/instance-id` must carry. The endpoint is configurable (the
//! standard one is [`DEFAULT_ENDPOINT`]); off EC2
//! the call fails fast with the timeout. Blocking (ureq): call it once at agent start, from a
//! thread or `spawn_blocking`.

use std::time::Duration;

/// The standard IMDS endpoint.
pub const DEFAULT_ENDPOINT: &str = "http://169.254.169.254";

/// Lifetime asked for the session token, seconds.
const TOKEN_TTL_S: &str = "21600";

/// Longest accepted response body, bytes.
const MAX_BODY: u64 = 4096;

/// Why the instance id could not be read.
#[derive(Debug, thiserror::Error)]
pub enum ImdsError {
    /// The endpoint could not be reached or timed out (likely not on EC2).
    #[error("IMDS at {endpoint}: {error}")]
    Http {
        /// The IMDS endpoint.
        endpoint: String,
        /// What the HTTP client said.
        error: ureq::Error,
    },
    /// IMDS answered with an error status.
    #[error("IMDS at {endpoint}: {what} returned HTTP {status}")]
    Status {
        /// The IMDS endpoint.
        endpoint: String,
        /// Which request.
        what: &'static str,
        /// The HTTP status.
        status: u16,
    },
    /// The answer is not a plausible instance id.
    #[error("IMDS at {endpoint}: unexpected instance id {0:?}", .id)]
    Invalid {
        /// The IMDS endpoint.
        endpoint: String,
        /// What it answered (at most 64 characters).
        id: String,
    },
}

/// Reads the instance id through IMDSv2 at `endpoint` (e.g. [`DEFAULT_ENDPOINT`]).
pub fn instance_id(endpoint: &str, timeout: Duration) -> Result<String, ImdsError> {
    let base = endpoint.trim_end_matches('/');
    let agent: ureq::Agent = ureq::Agent::config_builder()
        .timeout_global(Some(timeout))
        .http_status_as_error(false)
        .build()
        .into();
    let http = |error| ImdsError::Http {
        endpoint: base.to_string(),
        error,
    };
    let mut resp = agent
        .put(format!("{base}/latest/api/token"))
        .header("X-aws-ec2-metadata-token-ttl-seconds", TOKEN_TTL_S)
        .send_empty()
        .map_err(http)?;
    if resp.status() != 200 {
        return Err(ImdsError::Status {
            endpoint: base.into(),
            what: "token PUT",
            status: resp.status().as_u16(),
        });
    }
    let token = resp
        .body_mut()
        .with_config()
        .limit(MAX_BODY)
        .read_to_string()
        .map_err(http)?;
    let mut resp = agent
        .get(format!("{base}/latest/meta-data/instance-id"))
        .header("X-aws-ec2-metadata-token", token.trim())
        .call()
        .map_err(http)?;
    if resp.status() != 200 {
        return Err(ImdsError::Status {
            endpoint: base.into(),
            what: "instance-id GET",
            status: resp.status().as_u16(),
        });
    }
    let id = resp
        .body_mut()
        .with_config()
        .limit(MAX_BODY)
        .read_to_string()
        .map_err(http)?;
    let id = id.trim().to_string();
    let plausible = id.starts_with("i-")
        && id.len() <= 64
        && id[2..].chars().all(|c| c.is_ascii_alphanumeric());
    if !plausible {
        return Err(ImdsError::Invalid {
            endpoint: base.into(),
            id: id.chars().take(64).collect(),
        });
    }
    Ok(id)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::{BufRead, BufReader, Write};
    use std::net::TcpListener;

    /// A stand-in IMDSv2 on 127.0.0.1: answers the token PUT, then the GET only with the token.
    fn stand_in(instance: &'static str) -> (String, std::thread::JoinHandle<Vec<String>>) {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        let handle = std::thread::spawn(move || {
            let mut seen = Vec::new();
            for _ in 0..2 {
                let (stream, _) = listener.accept().unwrap();
                let mut reader = BufReader::new(stream.try_clone().unwrap());
                let mut request = String::new();
                loop {
                    let mut line = String::new();
                    if reader.read_line(&mut line).unwrap() == 0 || line == "\r\n" {
                        break;
                    }
                    request.push_str(&line);
                }
                let lower = request.to_ascii_lowercase();
                let (status, body) = if request.starts_with("PUT /latest/api/token")
                    && lower.contains("x-aws-ec2-metadata-token-ttl-seconds: 21600")
                {
                    ("200 OK", "tok-123")
                } else if request.starts_with("GET /latest/meta-data/instance-id")
                    && lower.contains("x-aws-ec2-metadata-token: tok-123")
                {
                    ("200 OK", instance)
                } else {
                    ("401 Unauthorized", "")
                };
                let mut s = stream;
                write!(
                    s,
                    "HTTP/1.1 {status}\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
                    body.len()
                )
                .unwrap();
                seen.push(request.lines().next().unwrap_or("").to_string());
            }
            seen
        });
        (format!("http://{addr}"), handle)
    }

    #[test]
    fn reads_instance_id_with_a_session_token() {
        let (endpoint, server) = stand_in("i-0123456789abcdef0");
        let id = instance_id(&endpoint, Duration::from_secs(5)).unwrap();
        assert_eq!(id, "i-0123456789abcdef0");
        let seen = server.join().unwrap();
        assert!(seen[0].starts_with("PUT /latest/api/token"), "{seen:?}");
        assert!(
            seen[1].starts_with("GET /latest/meta-data/instance-id"),
            "{seen:?}"
        );
    }

    #[test]
    fn refuses_garbage_and_unreachable_endpoints() {
        let (endpoint, server) = stand_in("<html>nope</html>");
        assert!(matches!(
            instance_id(&endpoint, Duration::from_secs(5)),
            Err(ImdsError::Invalid { .. })
        ));
        server.join().unwrap();
        let closed = TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap();
        let err = instance_id(&format!("http://{closed}"), Duration::from_millis(500)).unwrap_err();
        assert!(matches!(err, ImdsError::Http { .. }), "{err}");
    }
}
