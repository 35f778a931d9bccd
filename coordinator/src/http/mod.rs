//! The coordinator's HTTP listener: plain HTTP or TLS (rustls), HTTP/1.1 only, and slow or
//! silent clients closed.
//!
//! - At most [`connections::MAX_CONNECTIONS`] connections are held at once ([`connections`]),
//!   counted from the TCP accept (a TLS handshake holds one too; axum-server gives it 10 s).
//! - A connection must start an HTTP/1 request within [`HEADER_READ_TIMEOUT`] and send its
//!   headers within as long again; HTTP/2 is refused ([`first_bytes`]): the API needs nothing
//!   of it, and hyper's HTTP/2 has no header timeout. So neither a silent client nor a
//!   slowloris one holds a connection, a descriptor and a place under the cap for ever.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;

use crate::config::CoordinatorConfig;

mod connections;
mod first_bytes;
mod stream;

use connections::{Capped, MAX_CONNECTIONS};
use first_bytes::FirstBytes;
pub use first_bytes::HEADER_READ_TIMEOUT;

/// How long a stop waits for requests in flight.
const GRACE: Duration = Duration::from_secs(5);

/// The running listener.
pub struct Server {
    /// The address it listens on (the configured port, or the one picked for port 0).
    pub addr: SocketAddr,
    handle: axum_server::Handle,
    task: tokio::task::JoinHandle<std::io::Result<()>>,
}

/// The TLS configuration `tls` names: its certificate chain and key, loaded and paired, for
/// HTTP/1.1 only, as over plain HTTP (HTTP/2 has no header timeout). `--check` loads it too, so
/// a file that cannot serve is found before a start.
pub async fn server_tls(
    tls: &crate::config::TlsConfig,
) -> anyhow::Result<axum_server::tls_rustls::RustlsConfig> {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let rustls = axum_server::tls_rustls::RustlsConfig::from_pem_file(&tls.cert, &tls.key)
        .await
        .with_context(|| {
            format!(
                "loading TLS certificate {} and key {}",
                tls.cert.display(),
                tls.key.display()
            )
        })?;
    let mut only_http1 = (*rustls.get_inner()).clone();
    only_http1.alpn_protocols = vec![b"http/1.1".to_vec()];
    rustls.reload_from_config(Arc::new(only_http1));
    Ok(rustls)
}

impl Server {
    /// Binds `config.listen` and serves `router` on it, over TLS when `config.tls` is set.
    pub async fn start(config: &CoordinatorConfig, router: axum::Router) -> anyhow::Result<Server> {
        let listener = std::net::TcpListener::bind(&config.listen)
            .with_context(|| format!("binding listen address {}", config.listen))?;
        listener.set_nonblocking(true)?;
        let addr = listener.local_addr()?;
        let handle = axum_server::Handle::new();
        let service = router.into_make_service();
        let task = match &config.tls {
            Some(tls) => {
                let rustls = server_tls(tls).await?;
                listening(&format!("headroom coordinator listening on https://{addr}"));
                let mut server = axum_server::from_tcp_rustls(listener, rustls)
                    .map(|tls| FirstBytes(tls.acceptor(Capped::new(MAX_CONNECTIONS))));
                slow_client_limits(server.http_builder());
                tokio::spawn(server.handle(handle.clone()).serve(service))
            }
            None => {
                listening(&format!("headroom coordinator listening on http://{addr}"));
                let mut server = axum_server::from_tcp(listener)
                    .acceptor(FirstBytes(Capped::new(MAX_CONNECTIONS)));
                slow_client_limits(server.http_builder());
                tokio::spawn(server.handle(handle.clone()).serve(service))
            }
        };
        Ok(Server { addr, handle, task })
    }

    /// Stops accepting, lets requests in flight finish (at most 5 s) and returns how
    /// the server ended.
    pub async fn stop(self) -> anyhow::Result<()> {
        self.handle.graceful_shutdown(Some(GRACE));
        match self.task.await {
            Ok(Ok(())) => Ok(()),
            Ok(Err(e)) => Err(e).context("HTTP server"),
            Err(e) => Err(e).context("HTTP server task"),
        }
    }
}

/// Closes connections whose headers do not arrive within [`HEADER_READ_TIMEOUT`]: hyper only
/// enforces its header timeout when given a timer, and without one a slowloris client
/// (trickling header bytes) holds a connection and a descriptor forever.
fn slow_client_limits(
    builder: &mut hyper_util::server::conn::auto::Builder<hyper_util::rt::TokioExecutor>,
) {
    builder
        .http1()
        .timer(hyper_util::rt::TokioTimer::new())
        .header_read_timeout(HEADER_READ_TIMEOUT);
}

/// Says where the coordinator listens, on standard output (scripts wait for the line). A
/// reader gone, or any failure to print, never stops the daemon: the log says it too.
pub(crate) fn listening(line: &str) {
    if let Err(e) = headroom_common::stdout::print(&format!("{line}\n")) {
        tracing::debug!(error = %e, "standard output: the listening line was not printed");
    }
}
