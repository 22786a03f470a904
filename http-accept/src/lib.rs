//! The HTTP/1.1 accept loop shared by hub-server (`/ws`, `/health`) and hub-client-web (the page).
//! warp's own `serve` sets no timer, so a client that opens a connection and never finishes its
//! request (slowloris) would hold a socket and a task forever; here every connection must deliver
//! its request headers within `header_timeout`. After a WebSocket upgrade the socket belongs to
//! whoever took it (hub-server's session, with its own pings and pong timeout).

use std::future::Future;
use std::net::SocketAddr;
use std::time::Duration;

use http::Request;
use hyper::body::Incoming;
use hyper::server::conn::http1;
use hyper::service::{Service, service_fn};
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::service::TowerToHyperService;
use tokio::net::TcpListener;
use tokio::sync::watch;
use tokio_util::task::TaskTracker;
use warp::Filter;
use warp::reply::Reply;

/// The peer's address, put into every request's extensions (warp's `addr::remote()` only works
/// under warp's own server).
#[derive(Debug, Clone, Copy)]
pub struct PeerAddr(pub SocketAddr);

/// Accepts until `shutdown` resolves; connections then finish the request they are serving and
/// close, and this returns once they have (upgraded sockets are not HTTP connections any more and
/// are left to their owner).
pub async fn serve<F>(
    listener: TcpListener,
    routes: F,
    header_timeout: Duration,
    shutdown: impl Future<Output = ()>,
) where
    F: Filter + Clone + Send + Sync + 'static,
    F::Extract: Reply,
{
    // Every connection task watches this; dropping the sender tells them all to finish.
    let (stop, stopping) = watch::channel(());
    let connections = TaskTracker::new();
    tokio::pin!(shutdown);
    loop {
        let (stream, peer) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(accepted) => accepted,
                Err(err) => {
                    accept_failed(err).await;
                    continue;
                }
            },
            () = &mut shutdown => break,
        };
        let warp_service = TowerToHyperService::new(warp::service(routes.clone()));
        let service = service_fn(move |mut req: Request<Incoming>| {
            req.extensions_mut().insert(PeerAddr(peer));
            Service::call(&warp_service, req)
        });
        let mut stopping = stopping.clone();
        connections.spawn(async move {
            let mut builder = http1::Builder::new();
            builder
                .timer(TokioTimer::new())
                .header_read_timeout(header_timeout);
            let conn = builder
                .serve_connection(TokioIo::new(stream), service)
                .with_upgrades();
            tokio::pin!(conn);
            let result = tokio::select! {
                result = conn.as_mut() => result,
                _ = stopping.changed() => {
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
    drop(stop);
    connections.close();
    connections.wait().await;
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
