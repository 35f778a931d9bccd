//! A cap on the connections the listener holds at once. Every connection holds a descriptor
//! and some memory until its client sends a request or the header timeout closes it; without a
//! cap, anyone who can reach the port opens them faster than they time out and takes every
//! descriptor, so agents' signals (and the coordinator's own etcd and AWS calls) wait. Past the
//! cap a new connection is closed at once, before any byte is read: the clients that matter
//! retry, and the connections already open are served.
//!
//! The permit travels with the connection's stream ([`super::stream::Conn`]) and is given back
//! when hyper drops it.

use std::io;
use std::sync::Arc;

use tokio::sync::Semaphore;

use super::stream::Conn;

/// The most connections held at once (the unit's descriptor limit leaves room for the state
/// file, etcd and the actuators' calls beside them).
pub(super) const MAX_CONNECTIONS: usize = 4096;

/// The first acceptor a TCP connection meets: it admits the connection only while fewer than
/// its cap are open.
#[derive(Clone)]
pub(super) struct Capped {
    permits: Arc<Semaphore>,
}

impl Capped {
    /// A cap of `max` connections.
    pub(super) fn new(max: usize) -> Self {
        Capped {
            permits: Arc::new(Semaphore::new(max)),
        }
    }
}

impl<S> axum_server::accept::Accept<tokio::net::TcpStream, S> for Capped {
    type Stream = Conn<tokio::net::TcpStream>;
    type Service = S;
    type Future = std::future::Ready<io::Result<(Self::Stream, S)>>;

    fn accept(&self, stream: tokio::net::TcpStream, service: S) -> Self::Future {
        std::future::ready(match self.permits.clone().try_acquire_owned() {
            Ok(permit) => Ok((Conn::holding(stream, permit), service)),
            // The stream is dropped, which closes the connection.
            Err(_) => Err(io::Error::other("connection cap reached: closed at once")),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum_server::accept::Accept;

    /// Past the cap a connection is refused at once; one closed makes room again.
    #[tokio::test]
    async fn past_the_cap_a_connection_is_refused_until_one_closes() {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let capped = Capped::new(2);
        let mut held = Vec::new();
        let mut clients = Vec::new();
        for _ in 0..3 {
            clients.push(tokio::net::TcpStream::connect(addr).await.unwrap());
            let (stream, _) = listener.accept().await.unwrap();
            held.push(capped.accept(stream, ()).await);
        }
        assert!(held[0].is_ok() && held[1].is_ok());
        let refused = held.pop().unwrap().err().unwrap();
        assert!(refused.to_string().contains("cap"), "{refused}");
        held.pop();
        clients.push(tokio::net::TcpStream::connect(addr).await.unwrap());
        let (stream, _) = listener.accept().await.unwrap();
        assert!(capped.accept(stream, ()).await.is_ok());
    }
}
