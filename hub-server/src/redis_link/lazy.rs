//! A managed connection made on first use, so a hub starts while Redis is still down, and then
//! kept: redis-rs reconnects it after an outage.

use tokio::sync::OnceCell;

use std::time::Duration;

use super::conn::Conn;
use super::target::RedisTarget;

#[derive(Debug, Default)]
pub struct LazyConn(OnceCell<Conn>);

impl LazyConn {
    /// The connection, made now if this is the first use; `None` when Redis cannot be reached
    /// within `redis_timeout` (the next call tries again).
    pub async fn get(&self, target: &RedisTarget, timeout: Duration) -> Option<Conn> {
        let make = || target.managed(timeout);
        match tokio::time::timeout(timeout, self.0.get_or_try_init(make)).await {
            Ok(Ok(conn)) => Some(conn.clone()),
            Ok(Err(err)) => {
                tracing::debug!(%err, "redis connect failed");
                None
            }
            Err(_) => None,
        }
    }
}
