//! What a connection must send first, and by when: the first bytes of an HTTP/1 request within
//! [`HEADER_READ_TIMEOUT`] of being accepted (of the TLS handshake's end over TLS). hyper starts
//! its own header timeout only once it has bytes and knows the protocol, so without this a
//! client that sends nothing, or a few bytes of HTTP/2's preface, holds its connection (and
//! its place under the connection cap) for ever; and HTTP/2, which the API does not need and
//! which has no header timeout, is refused however it is asked for (prior knowledge over plain
//! HTTP, or its preface over TLS whatever ALPN said).
//!
//! One rule for both listeners: the check wraps the stream hyper reads, decrypted or not.

use std::io;
use std::pin::Pin;
use std::task::Context;
use std::time::Duration;

use super::stream::Conn;

/// How long a client may take to start a request, and after that to send its headers.
pub const HEADER_READ_TIMEOUT: Duration = Duration::from_secs(10);

/// The start of HTTP/2's connection preface.
const H2_START: &[u8] = b"PRI";

/// An acceptor that hands `inner`'s streams on behind the first-bytes rule.
#[derive(Clone)]
pub(super) struct FirstBytes<A>(pub(super) A);

impl<A, I, S> axum_server::accept::Accept<I, S> for FirstBytes<A>
where
    A: axum_server::accept::Accept<I, S>,
    A::Future: Send + 'static,
    A::Stream: Send,
    A::Service: Send,
{
    type Stream = Conn<A::Stream>;
    type Service = A::Service;
    type Future = Pin<Box<dyn Future<Output = io::Result<(Self::Stream, A::Service)>> + Send>>;

    fn accept(&self, stream: I, service: S) -> Self::Future {
        let accepted = self.0.accept(stream, service);
        Box::pin(async move {
            let (stream, service) = accepted.await?;
            Ok((
                Conn::gated(stream, Gate::within(HEADER_READ_TIMEOUT)),
                service,
            ))
        })
    }
}

/// The rule's state for one connection: its deadline, and how much of HTTP/2's preface came.
pub(super) struct Gate {
    deadline: Pin<Box<tokio::time::Sleep>>,
    /// How many bytes of [`H2_START`] the client sent so far.
    matched: usize,
}

impl Gate {
    /// An HTTP/1 request must start within `limit`.
    pub(super) fn within(limit: Duration) -> Self {
        Gate {
            deadline: Box::pin(tokio::time::sleep(limit)),
            matched: 0,
        }
    }

    /// Looks at bytes just read: `Ok(true)` once they show an HTTP/1 request (hyper's header
    /// timeout takes over), an error for HTTP/2.
    pub(super) fn check(&mut self, got: &[u8]) -> io::Result<bool> {
        for &b in got {
            if H2_START.get(self.matched) != Some(&b) {
                return Ok(true);
            }
            self.matched += 1;
            if self.matched == H2_START.len() {
                return Err(io::Error::new(
                    io::ErrorKind::InvalidData,
                    "HTTP/2 is not served",
                ));
            }
        }
        Ok(false)
    }

    /// Whether the deadline passed (else the task is woken when it does).
    pub(super) fn expired(&mut self, cx: &mut Context<'_>) -> bool {
        self.deadline.as_mut().poll(cx).is_ready()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    const LIMIT: Duration = Duration::from_millis(200);

    /// What reading the server's end gives after the client wrote `first` and then paused
    /// past the limit.
    async fn after(first: &[u8]) -> io::Result<Vec<u8>> {
        let (mut client, server) = tokio::io::duplex(256);
        let mut gated = Conn::gated(server, Gate::within(LIMIT));
        client.write_all(first).await.unwrap();
        let mut got = Vec::new();
        let mut buf = [0u8; 64];
        loop {
            match tokio::time::timeout(3 * LIMIT, gated.read(&mut buf)).await {
                Ok(Ok(0)) => return Ok(got),
                Ok(Ok(n)) => got.extend_from_slice(&buf[..n]),
                Ok(Err(e)) => return Err(e),
                // Still open, waiting for more: what hyper's own header timeout is for.
                Err(_) => return Ok(got),
            }
        }
    }

    #[tokio::test]
    async fn a_silent_client_is_closed_at_the_limit() {
        let e = after(b"").await.unwrap_err();
        assert_eq!(e.kind(), io::ErrorKind::TimedOut);
        // A few bytes of HTTP/2's preface and a pause: the same.
        let e = after(b"PR").await.unwrap_err();
        assert_eq!(e.kind(), io::ErrorKind::TimedOut);
    }

    #[tokio::test]
    async fn http2_is_refused_and_http1_goes_through() {
        let e = after(b"PRI * HTTP/2.0\r\n").await.unwrap_err();
        assert_eq!(e.kind(), io::ErrorKind::InvalidData);
        // An HTTP/1 request that then pauses is hyper's to time out, not closed here.
        assert_eq!(after(b"POST /v1").await.unwrap(), b"POST /v1");
        assert_eq!(after(b"PUT /").await.unwrap(), b"PUT /");
    }
}
