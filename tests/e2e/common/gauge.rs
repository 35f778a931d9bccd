//! A local application's Prometheus endpoint for the agent's `[sources.app]` to scrape.

use std::io::{Read, Write};
use std::net::TcpListener;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

/// A Prometheus endpoint serving one gauge whose value the test sets.
pub(crate) struct AppGauge {
    /// The scrape URL.
    pub url: String,
    value: Arc<AtomicU64>,
}

impl AppGauge {
    /// Serves `# TYPE NAME gauge` / `NAME VALUE` on a free loopback port until the test ends.
    pub(crate) fn serve(name: &str, initial: f64) -> AppGauge {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let url = format!("http://{}/metrics", listener.local_addr().unwrap());
        let value = Arc::new(AtomicU64::new(initial.to_bits()));
        let (v, name) = (value.clone(), name.to_string());
        std::thread::spawn(move || {
            for stream in listener.incoming() {
                let Ok(mut s) = stream else { continue };
                let _ = s.set_read_timeout(Some(Duration::from_secs(2)));
                let mut buf = [0u8; 2048];
                let _ = s.read(&mut buf);
                let body = format!(
                    "# TYPE {name} gauge\n{name} {}\n",
                    f64::from_bits(v.load(Ordering::Relaxed))
                );
                let _ = write!(
                    s,
                    "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                    body.len()
                );
            }
        });
        AppGauge { url, value }
    }

    /// Sets the gauge.
    pub(crate) fn set(&self, v: f64) {
        self.value.store(v.to_bits(), Ordering::Relaxed);
    }
}
