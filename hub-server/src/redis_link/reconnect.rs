//! Waiting out a backoff without holding up a shutdown.

use std::time::Duration;

use crate::shutdown::Shutdown;

/// Sleeps, unless shutdown begins first; returns false on shutdown.
pub async fn pause(shutdown: &Shutdown, delay: Duration) -> bool {
    tokio::select! {
        _ = tokio::time::sleep(delay) => true,
        _ = shutdown.wait() => false,
    }
}
