//! The HTTP/1.1 accept loop behind `/ws` and `/health`. warp's own `serve` sets no timer, so a
//! client that opens a connection and never finishes its request (slowloris) would hold a socket
//! and a task forever; here every connection must deliver its request headers within
//! `handshake_timeout`. After a WebSocket upgrade the socket belongs to its session, whose pings
//! and pong timeout take over.

use std::net::SocketAddr;
use std::time::Duration;

use http::Request;
use hyper::body::Incoming;
use hyper::server::conn::http1;
use hyper::service::{Service, service_fn};
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::service::TowerToHyperService;
use tokio::net::TcpListener;
use warp::Filter;
use warp::reply::Reply;

use crate::shutdown::Shutdown;

/// The peer's address, put into every request's extensions (warp's `addr::remote()` only works
/// under warp's own server).
#[derive(Debug, Clone, Copy)]
pub struct PeerAddr(pub SocketAddr);

/// Accepts until `shutdown` begins; connections still reading a request then finish it and close.
pub async fn serve<F>(
    listener: TcpListener,
    routes: F,
    handshake_timeout: Duration,
    shutdown: Shutdown,
) where
    F: Filter + Clone + Send + Sync + 'static,
    F::Extract: Reply,
{
    loop {
        let (stream, peer) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(accepted) => accepted,
                Err(err) => {
                    accept_failed(err).await;
                    continue;
                }
            },
            () = shutdown.wait() => return,
        };
        let warp_service = TowerToHyperService::new(warp::service(routes.clone()));
        let service = service_fn(move |mut req: Request<Incoming>| {
            req.extensions_mut().insert(PeerAddr(peer));
            Service::call(&warp_service, req)
        });
        let shutdown = shutdown.clone();
        tokio::spawn(async move {
            let mut builder = http1::Builder::new();
            builder
                .timer(TokioTimer::new())
                .header_read_timeout(handshake_timeout);
            let conn = builder
                .serve_connection(TokioIo::new(stream), service)
                .with_upgrades();
            tokio::pin!(conn);
            let result = tokio::select! {
                result = conn.as_mut() => result,
                () = shutdown.wait() => {
                    conn.as_mut().graceful_shutdown();
                    conn.await
                }
            };
            if let Err(err) = result {
                // Timeouts and resets of single clients are routine, not the server's failure.
                tracing::debug!(%peer, %err, "http connection ended with an error");
            }
        });
    }
}

/// Out of file descriptors, say: log, and give running connections a moment to end before the
/// next accept (as hyper 0.14's server did) instead of spinning.
async fn accept_failed(err: std::io::Error) {
    use std::io::ErrorKind::{ConnectionAborted, ConnectionRefused, ConnectionReset};
    if matches!(
        err.kind(),
        ConnectionAborted | ConnectionRefused | ConnectionReset
    ) {
        return;
    }
    tracing::error!(%err, "accept failed");
    tokio::time::sleep(Duration::from_secs(1)).await;
}
