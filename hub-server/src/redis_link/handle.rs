//! The handle every Redis user of the hub holds: where Redis is, how long to wait for it, and the
//! one shared connection for one-off requests.

use std::sync::Arc;
use std::time::Duration;

use super::conn::Conn;
use super::lazy::LazyConn;
use super::target::RedisTarget;
use crate::config::Settings;

/// The configured Redis URL or cluster nodes do not parse.
#[derive(Debug, thiserror::Error)]
#[error("REDIS_URL / REDIS_CLUSTER_NODES is not usable: {0}")]
pub struct BadRedisUrl(#[from] redis::RedisError);

/// A cloneable handle on the configured Redis: where it is, how long to wait for it, and one
/// managed connection for one-off requests (presence, control orders, the API), shared by all.
#[derive(Debug, Clone)]
pub struct Redis(Arc<Inner>);

#[derive(Debug)]
struct Inner {
    target: RedisTarget,
    /// Longest wait for a connection or a reply (`redis_timeout`).
    timeout: Duration,
    /// Cap of the reconnect backoff (`reconnect_max`).
    reconnect_max: Duration,
    commands: LazyConn,
}

impl Redis {
    /// `None` when neither `REDIS_URL` nor `REDIS_CLUSTER_NODES` is set: the hub runs standalone.
    pub fn from_settings(settings: &Settings) -> Result<Option<Self>, BadRedisUrl> {
        let Some(target) = RedisTarget::from_settings(settings)? else {
            return Ok(None);
        };
        Ok(Some(Redis(Arc::new(Inner {
            target,
            timeout: settings.redis_timeout,
            reconnect_max: settings.reconnect_max,
            commands: LazyConn::default(),
        }))))
    }

    pub fn target(&self) -> &RedisTarget {
        &self.0.target
    }

    /// A Redis Cluster: rooms use sharded pub/sub and `{room}`-tagged names.
    pub fn is_cluster(&self) -> bool {
        self.0.target.is_cluster()
    }

    pub fn timeout(&self) -> Duration {
        self.0.timeout
    }

    pub fn reconnect_max(&self) -> Duration {
        self.0.reconnect_max
    }

    /// The shared managed connection for one-off requests, or `None` when Redis cannot be
    /// reached within `redis_timeout`.
    pub async fn commands(&self) -> Option<Conn> {
        self.0.commands.get(&self.0.target, self.0.timeout).await
    }
}
