//! Connecting for long-lived tasks (the bridge's publisher and subscriber): retry with capped,
//! jittered backoff until a connection is made or the hub shuts down.

use std::time::Duration;

use super::backoff::Backoff;
use super::conn::Conn;
use super::handle::Redis;
use crate::shutdown::Shutdown;

impl Redis {
    /// A multiplexed connection (or a cluster connection), retried with backoff; `None` once
    /// shutdown begins. `who` names the task in the log.
    pub async fn connect_retrying(&self, who: &'static str, shutdown: &Shutdown) -> Option<Conn> {
        let mut backoff = Backoff::new(self.reconnect_max());
        loop {
            let attempt = self.target().connect(self.timeout());
            match tokio::time::timeout(self.timeout(), attempt).await {
                Ok(Ok(conn)) => return Some(conn),
                Ok(Err(err)) => tracing::debug!(task = who, %err, "redis connect failed"),
                Err(_) => tracing::debug!(task = who, "redis connect timed out"),
            }
            if !pause(shutdown, backoff.next_delay()).await {
                return None;
            }
        }
    }
}

/// Sleeps, unless shutdown begins first; returns false on shutdown.
pub async fn pause(shutdown: &Shutdown, delay: Duration) -> bool {
    tokio::select! {
        _ = tokio::time::sleep(delay) => true,
        _ = shutdown.wait() => false,
    }
}
