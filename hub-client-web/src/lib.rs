//! hub-client-web: the small web server paired with one hub-server. It serves the chat page
//! (askama template + embedded static JS/CSS) whose browser code connects straight to the hub, and,
//! when it shares a secret with the hubs, signs the short-lived demo tokens the page signs in with.
//! Given the hubs' API addresses and key, it also serves the cluster's live status page; given their
//! hook secret, it is the demo backend they call (publish proxy of `moderated:` rooms, webhooks).

pub mod cli;
pub mod config;
pub mod error;
pub mod health;
pub mod hooks;
pub mod hub_api;
pub mod page;
pub mod prom;
pub mod routes;
pub mod static_files;
pub mod status;
pub mod token;

use std::future::Future;
use std::sync::Arc;

use tokio::net::TcpListener;

pub use config::Settings;

/// A request head (cookies included) larger than this is refused with 431.
pub const MAX_HEADER_BYTES: usize = 16 * 1024;

/// Serves until `shutdown` resolves, then lets in-flight requests finish.
pub async fn run(
    listener: TcpListener,
    settings: Settings,
    shutdown: impl Future<Output = ()> + Send + 'static,
) {
    let limits = http_accept::Limits {
        header_timeout: settings.request_header_timeout,
        max_header_bytes: MAX_HEADER_BYTES,
    };
    let (status, poller) = status::start(&settings);
    let routes = routes::routes(Arc::new(settings), status);
    let everyone = Arc::new(http_accept::Everyone);
    http_accept::serve(listener, routes, limits, everyone, shutdown).await;
    if let Some(poller) = poller {
        poller.abort();
    }
}
