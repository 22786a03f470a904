//! The HTTP/1.1 accept loop shared by hub-server (`/ws`, `/health`) and hub-client-web (the page).
//! warp's own `serve` sets no timer, so a client that opens a connection and never finishes its
//! request (slowloris) would hold a socket and a task forever; here every connection must deliver
//! its request headers within `header_timeout`, in at most `max_header_bytes`, and is admitted at
//! all only when the server's [`Admission`] says so (a connection still in its handshake holds a
//! place, and memory, like an established one). After a WebSocket upgrade the socket belongs to
//! whoever took it (hub-server's session, with its own pings and pong timeout).

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use http::Request;
use hyper::body::Incoming;
use hyper::server::conn::http1;
use hyper::service::{Service, service_fn};
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::service::TowerToHyperService;
use tokio::io::AsyncWriteExt;
use tokio::net::TcpListener;
use tokio::sync::watch;
use tokio_util::task::TaskTracker;
use warp::Filter;
use warp::reply::Reply;

/// The peer's address, put into every request's extensions (warp's `addr::remote()` only works
/// under warp's own server).
#[derive(Debug, Clone, Copy)]
pub struct PeerAddr(pub SocketAddr);

/// How long and how large a request's head may be.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    /// The whole request head must arrive within this.
    pub header_timeout: Duration,
    /// The request head may take at most this many bytes (hyper's read buffer; at least 8 KiB):
    /// a longer one is answered 431 and the connection closed.
    pub max_header_bytes: usize,
}

/// Smallest head buffer hyper accepts.
pub const MIN_HEADER_BYTES: usize = 8192;

/// Whether a freshly accepted connection may be served. Its ticket rides in every request's
/// extensions (a handler that keeps the socket, an upgrade, takes a clone) and is dropped with
/// the connection.
pub trait Admission: Send + Sync + 'static {
    type Ticket: Clone + Send + Sync + 'static;
    fn admit(&self) -> Option<Self::Ticket>;
}

/// Every connection admitted (the page server, the internal API).
#[derive(Debug, Clone, Copy, Default)]
pub struct Everyone;

impl Admission for Everyone {
    type Ticket = ();
    fn admit(&self) -> Option<()> {
        Some(())
    }
}

/// What a connection refused by [`Admission`] is told before it is closed.
const FULL: &[u8] = b"HTTP/1.1 503 Service Unavailable\r\ncontent-type: text/plain\r\ncontent-length: 31\r\nconnection: close\r\n\r\nserver at its connection limit\n";

/// Accepts until `shutdown` resolves; connections then finish the request they are serving and
/// close, and this returns once they have (upgraded sockets are not HTTP connections any more and
/// are left to their owner).
pub async fn serve<F, A>(
    listener: TcpListener,
    routes: F,
    limits: Limits,
    admission: Arc<A>,
    shutdown: impl Future<Output = ()>,
) where
    F: Filter + Clone + Send + Sync + 'static,
    F::Extract: Reply,
    A: Admission,
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
        let Some(ticket) = admission.admit() else {
            connections.spawn(refuse(stream));
            continue;
        };
        let warp_service = TowerToHyperService::new(warp::service(routes.clone()));
        let service = service_fn(move |mut req: Request<Incoming>| {
            req.extensions_mut().insert(PeerAddr(peer));
            req.extensions_mut().insert(ticket.clone());
            Service::call(&warp_service, req)
        });
        let mut stopping = stopping.clone();
        connections.spawn(async move {
            let mut builder = http1::Builder::new();
            builder
                .timer(TokioTimer::new())
                .header_read_timeout(limits.header_timeout)
                .max_buf_size(limits.max_header_bytes.max(MIN_HEADER_BYTES));
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

/// Tells a connection over the limit so, without reading its request, and closes it.
async fn refuse(mut stream: tokio::net::TcpStream) {
    let told = async {
        stream.write_all(FULL).await?;
        stream.shutdown().await
    };
    let _ = tokio::time::timeout(Duration::from_secs(1), told).await;
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
