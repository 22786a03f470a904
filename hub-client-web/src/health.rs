//! `/health` for load balancers; the `healthcheck` subcommand that asks it is
//! [`service_kit::healthcheck`] (re-exported here as [`check`]).

use serde::Serialize;
pub use service_kit::healthcheck::check;

/// The body of `/health`. The web server has no dependency to be unready on: serving means healthy.
/// It does not probe the hub: a hub outage is the page's to show, not a reason to pull the page.
#[derive(Debug, Serialize)]
pub struct Health {
    pub status: &'static str,
    pub service: &'static str,
    pub version: &'static str,
    /// The configured hub URL, or `ws://<page host>:PORT/PATH` when the page derives it.
    pub hub_url: String,
}

impl Health {
    pub fn ok(hub_url: String) -> Self {
        Health {
            status: "ok",
            service: env!("CARGO_PKG_NAME"),
            version: env!("CARGO_PKG_VERSION"),
            hub_url,
        }
    }
}
