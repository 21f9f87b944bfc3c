//! How every listener serves what it accepts: one accept loop, a bounded handshake per connection
//! (the protocol told by its first bytes, or TLS and its ALPN for the mTLS listener), then hyper's
//! HTTP/1.1 or HTTP/2 server for that protocol alone, and a graceful shutdown that answers what is
//! in flight.
//!
//! A connection is handed to the one hyper server its protocol needs rather than to a wrapper that
//! holds room for both and re-reads what it sniffed: a held keep-alive HTTP/1.1 connection costs
//! about 11 KB instead of 16 KB, which is what lets 10,000 idle clients fit a gateway's memory.

use std::{future::Future, io, net::SocketAddr, time::Duration};

use axum::{Router, extract::ConnectInfo};
use hyper::{
    Request,
    body::Incoming,
    server::conn::{http1, http2},
};
use hyper_util::{
    rt::{TokioExecutor, TokioIo},
    server::graceful::{GracefulShutdown, Watcher},
};
use tokio::{
    io::{AsyncRead, AsyncWrite},
    net::{TcpListener, TcpStream},
};

use crate::Shutdown;

/// The HTTP version a connection speaks.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Protocol {
    Http1,
    Http2,
}

/// What an HTTP/2 client with prior knowledge sends first (RFC 9113, section 3.4).
const H2_PREFACE: &[u8; 24] = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";

/// How long an accepted connection may take to say which protocol it speaks (its first bytes, or
/// its TLS handshake) before it is closed: as long as a common web server gives a client to send
/// its request headers, so a pre-opened connection of a browser or client pool is kept.
const HANDSHAKE_DEADLINE: Duration = Duration::from_secs(60);

impl Protocol {
    /// The protocol of a connection whose first bytes are `first`, or `None` while they are too
    /// few to tell (nothing yet, or a beginning of the HTTP/2 preface shorter than `PRI `).
    pub fn of_first_bytes(first: &[u8]) -> Option<Protocol> {
        let n = first.len().min(H2_PREFACE.len());
        if first[..n] != H2_PREFACE[..n] {
            return Some(Protocol::Http1);
        }
        // No HTTP/1 method is named `PRI`; hyper's HTTP/2 server checks the rest of the preface.
        (n >= 4).then_some(Protocol::Http2)
    }

    /// Reads the first bytes of `tcp`, leaving them for the server, until they tell its protocol.
    /// A connection closed before it sent anything is an `UnexpectedEof` error.
    async fn sniff(tcp: &TcpStream) -> io::Result<Protocol> {
        let mut first = [0u8; H2_PREFACE.len()];
        loop {
            let n = tcp.peek(&mut first).await?;
            if n == 0 {
                return Err(io::ErrorKind::UnexpectedEof.into());
            }
            if let Some(protocol) = Protocol::of_first_bytes(&first[..n]) {
                return Ok(protocol);
            }
            // A few bytes of the preface are in and peeking again would see just them: wait for
            // the rest (the handshake deadline bounds this).
            tokio::time::sleep(Duration::from_millis(2)).await;
        }
    }

    /// The protocol a TLS handshake agreed by ALPN: HTTP/2 for `h2`, HTTP/1.1 otherwise (RFC 9113
    /// section 3.2: over TLS, HTTP/2 is only spoken once ALPN chose it).
    pub fn of_alpn(negotiated: Option<&[u8]>) -> Protocol {
        match negotiated {
            Some(b"h2") => Protocol::Http2,
            _ => Protocol::Http1,
        }
    }
}

/// The ALPN identifiers a TLS listener offers, in order of preference.
pub fn alpn_protocols() -> Vec<Vec<u8>> {
    vec![b"h2".to_vec(), b"http/1.1".to_vec()]
}

/// Serves `router` on `listener` until `shutdown` fires, then answers what is in flight and closes
/// idle connections. Every request carries the peer's `ConnectInfo<SocketAddr>`.
pub async fn serve(
    listener: TcpListener,
    router: Router,
    shutdown: Shutdown,
) -> anyhow::Result<()> {
    serve_with(listener, router, shutdown, |tcp, peer| async move {
        match Protocol::sniff(&tcp).await {
            Ok(protocol) => Ok((tcp, protocol, ConnectInfo(peer))),
            Err(e) => Err(e.to_string()),
        }
    })
    .await
}

/// Serves `router` on `listener` until `shutdown` fires, like [`serve`], with `handshake` turning
/// each accepted connection into the stream to serve, its protocol and an extension every request
/// on it carries (TLS and the peer's identity, say). A handshake that fails, or takes longer than
/// `HANDSHAKE_DEADLINE` (60 s), closes the connection; its error is logged at debug level.
pub async fn serve_with<H, Fut, I, X>(
    listener: TcpListener,
    router: Router,
    shutdown: Shutdown,
    handshake: H,
) -> anyhow::Result<()>
where
    H: Fn(TcpStream, SocketAddr) -> Fut + Clone + Send + 'static,
    Fut: Future<Output = Result<(I, Protocol, X), String>> + Send + 'static,
    I: AsyncRead + AsyncWrite + Send + Unpin + 'static,
    X: Clone + Send + Sync + 'static,
{
    let graceful = GracefulShutdown::new();
    loop {
        let (tcp, peer) = tokio::select! {
            _ = shutdown.cancelled() => break,
            accepted = accept(&listener) => accepted,
        };
        // Answers go out as soon as they are written, not held back for more (Nagle).
        if let Err(e) = tcp.set_nodelay(true) {
            tracing::debug!(error = %e, "cannot set TCP_NODELAY on an accepted connection");
        }
        // The watcher is taken before the handshake, so a shutdown waits for this connection;
        // a handshake under way when it fires is abandoned.
        let (router, watcher, handshake, shutdown) = (
            router.clone(),
            graceful.watcher(),
            handshake.clone(),
            shutdown.clone(),
        );
        tokio::spawn(async move {
            let shaken = tokio::select! {
                _ = shutdown.cancelled() => return,
                shaken = tokio::time::timeout(HANDSHAKE_DEADLINE, handshake(tcp, peer)) => shaken,
            };
            let (io, protocol, extension) = match shaken {
                Ok(Ok(shaken)) => shaken,
                Ok(Err(e)) => {
                    tracing::debug!(%peer, error = %e, "closed a connection at its handshake");
                    return;
                }
                Err(_) => {
                    tracing::debug!(%peer, "closed a connection that did not finish its handshake in time");
                    return;
                }
            };
            if let Err(e) = serve_connection(io, protocol, router, extension, watcher).await {
                tracing::debug!(%peer, error = %e, "a connection ended with an error");
            }
        });
    }
    drop(listener);
    graceful.shutdown().await;
    Ok(())
}

/// Serves one connection speaking `protocol` with `router`, every request carrying `extension`,
/// until the peer closes it or, once `watcher`'s shutdown begins, its requests in flight are
/// answered. (No upgrades: nothing here speaks WebSocket.)
async fn serve_connection<I, X>(
    io: I,
    protocol: Protocol,
    router: Router,
    extension: X,
    watcher: Watcher,
) -> Result<(), hyper::Error>
where
    I: AsyncRead + AsyncWrite + Send + Unpin + 'static,
    X: Clone + Send + Sync + 'static,
{
    let service = hyper::service::service_fn(move |mut request: Request<Incoming>| {
        request.extensions_mut().insert(extension.clone());
        tower::ServiceExt::oneshot(router.clone(), request)
    });
    let io = TokioIo::new(io);
    match protocol {
        Protocol::Http1 => {
            watcher
                .watch(http1::Builder::new().serve_connection(io, service))
                .await
        }
        // Boxed: HTTP/2's connection state is the larger, and a task holding it inline would make
        // every HTTP/1.1 connection as large.
        Protocol::Http2 => {
            Box::pin(
                watcher
                    .watch(http2::Builder::new(TokioExecutor::new()).serve_connection(io, service)),
            )
            .await
        }
    }
}

/// The next connection `listener` accepts. A connection that failed before it was accepted is
/// skipped; any other error (out of file descriptors, most often) is logged and retried after a
/// second rather than in a tight loop.
async fn accept(listener: &TcpListener) -> (TcpStream, SocketAddr) {
    loop {
        match listener.accept().await {
            Ok(accepted) => return accepted,
            Err(e)
                if matches!(
                    e.kind(),
                    io::ErrorKind::ConnectionRefused
                        | io::ErrorKind::ConnectionAborted
                        | io::ErrorKind::ConnectionReset
                ) => {}
            Err(e) => {
                tracing::warn!(error = %e, "cannot accept a connection; trying again in 1 s");
                tokio::time::sleep(Duration::from_secs(1)).await;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn first_bytes_tell_the_protocol_as_soon_as_they_can() {
        for request in [
            &b"GET / HTTP/1.1\r\n"[..],
            b"POST /mcp",
            b"PUT",
            b"PATCH",
            b"PROPFIND",
        ] {
            assert_eq!(Protocol::of_first_bytes(request), Some(Protocol::Http1));
        }
        assert_eq!(Protocol::of_first_bytes(b"P"), None);
        assert_eq!(Protocol::of_first_bytes(b"PR"), None);
        assert_eq!(Protocol::of_first_bytes(b"PRI"), None);
        assert_eq!(Protocol::of_first_bytes(b"PRI "), Some(Protocol::Http2));
        assert_eq!(Protocol::of_first_bytes(H2_PREFACE), Some(Protocol::Http2));
        assert_eq!(Protocol::of_first_bytes(b""), None);
        // Past the preface's length only the preface is compared.
        let mut longer = H2_PREFACE.to_vec();
        longer.extend_from_slice(b"\0\0\x12\x04");
        assert_eq!(Protocol::of_first_bytes(&longer), Some(Protocol::Http2));
        // Bytes that leave the preface are HTTP/1's to answer, even after `PRI `.
        assert_eq!(
            Protocol::of_first_bytes(b"PRI / HTTP/1.1"),
            Some(Protocol::Http1)
        );
    }

    #[test]
    fn alpn_chooses_http2_only_when_agreed() {
        assert_eq!(Protocol::of_alpn(Some(b"h2")), Protocol::Http2);
        assert_eq!(Protocol::of_alpn(Some(b"http/1.1")), Protocol::Http1);
        assert_eq!(Protocol::of_alpn(None), Protocol::Http1);
    }
}
