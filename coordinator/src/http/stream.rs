//! A connection's stream as the listener hands it on: what it holds for the connection's life
//! (its place under the connection cap, [`super::connections`]) and the first-bytes rule while
//! that applies ([`super::first_bytes`]). One stream type for both, so each layer (the TCP
//! stream under TLS, the bytes hyper reads) is wrapped the same way.

use std::io;
use std::pin::Pin;
use std::task::{Context, Poll};

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::sync::OwnedSemaphorePermit;

use super::first_bytes::Gate;

/// A stream with what its connection holds and the rule its first bytes must meet.
pub(super) struct Conn<S> {
    inner: S,
    /// A place under the connection cap, given back when hyper drops the connection.
    _place: Option<OwnedSemaphorePermit>,
    /// Until the first bytes showed an HTTP/1 request.
    gate: Option<Gate>,
}

impl<S> Conn<S> {
    /// `inner`, holding `place` for as long as it lives.
    pub(super) fn holding(inner: S, place: OwnedSemaphorePermit) -> Self {
        Conn {
            inner,
            _place: Some(place),
            gate: None,
        }
    }

    /// `inner`, closed unless its first bytes pass `gate`.
    pub(super) fn gated(inner: S, gate: Gate) -> Self {
        Conn {
            inner,
            _place: None,
            gate: Some(gate),
        }
    }
}

impl<S: AsyncRead + Unpin> AsyncRead for Conn<S> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let before = buf.filled().len();
        let read = Pin::new(&mut self.inner).poll_read(cx, buf);
        let Some(gate) = self.gate.as_mut() else {
            return read;
        };
        match read {
            Poll::Ready(Ok(())) => match gate.check(&buf.filled()[before..]) {
                Ok(passed) => {
                    if passed {
                        self.gate = None;
                    }
                    Poll::Ready(Ok(()))
                }
                Err(e) => Poll::Ready(Err(e)),
            },
            Poll::Pending if gate.expired(cx) => Poll::Ready(Err(io::Error::new(
                io::ErrorKind::TimedOut,
                "no request started in time",
            ))),
            other => other,
        }
    }
}

impl<S: AsyncWrite + Unpin> AsyncWrite for Conn<S> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.inner).poll_write(cx, buf)
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.inner).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }
}
