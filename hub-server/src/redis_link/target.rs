//! Which Redis the hub talks to — one server (`REDIS_URL`) or a Redis Cluster
//! (`REDIS_CLUSTER_NODES`) — and how to open a connection to all of it: multiplexed or managed
//! (one-off requests). Connections to one node of it are in [`node_connect`](super::node_connect).

use std::time::Duration;

use redis::aio::{ConnectionManager, ConnectionManagerConfig};
use redis::cluster::ClusterClientBuilder;
use redis::{ConnectionAddr, ConnectionInfo, IntoConnectionInfo, RedisResult};
use secrecy::ExposeSecret;

use super::conn::Conn;
use crate::config::Settings;

/// The Redis deployment a hub is configured for. Its `Debug` names the nodes' addresses only: the
/// URLs carry the password.
#[derive(Clone)]
pub enum RedisTarget {
    Single(redis::Client),
    /// The seed nodes of a Redis Cluster; redis-rs discovers the rest (CLUSTER SLOTS).
    Cluster(Vec<ConnectionInfo>),
}

impl RedisTarget {
    /// `REDIS_CLUSTER_NODES`, else `REDIS_URL`, else `None` (standalone). Both set is refused by
    /// the configuration.
    pub fn from_settings(settings: &Settings) -> RedisResult<Option<Self>> {
        if let Some(nodes) = settings
            .redis_cluster_nodes
            .as_ref()
            .map(ExposeSecret::expose_secret)
        {
            let nodes = crate::config::comma_list(nodes)
                .map(IntoConnectionInfo::into_connection_info)
                .collect::<RedisResult<Vec<_>>>()?;
            return Ok(Some(RedisTarget::Cluster(nodes)));
        }
        match settings.redis_url.as_ref().map(ExposeSecret::expose_secret) {
            Some(url) => Ok(Some(RedisTarget::Single(redis::Client::open(url)?))),
            None => Ok(None),
        }
    }

    /// Rooms use sharded pub/sub (and `{room}`-tagged channel names).
    pub fn is_cluster(&self) -> bool {
        matches!(self, RedisTarget::Cluster(_))
    }

    fn cluster_builder(nodes: &[ConnectionInfo], timeout: Duration) -> ClusterClientBuilder {
        ClusterClientBuilder::new(nodes.to_vec())
            .connection_timeout(timeout)
            .response_timeout(timeout)
    }

    /// A multiplexed connection, or a cluster connection.
    pub async fn connect(&self, timeout: Duration) -> RedisResult<Conn> {
        match self {
            RedisTarget::Single(client) => {
                let config = redis::AsyncConnectionConfig::new()
                    .set_connection_timeout(Some(timeout))
                    .set_response_timeout(Some(timeout));
                let conn = client
                    .get_multiplexed_async_connection_with_config(&config)
                    .await?;
                Ok(Conn::Multiplexed(conn))
            }
            RedisTarget::Cluster(nodes) => {
                let client = Self::cluster_builder(nodes, timeout).build()?;
                Ok(Conn::Cluster(client.get_async_connection().await?))
            }
        }
    }

    /// A connection for one-off requests that reconnects by itself: a `ConnectionManager`, or a
    /// cluster connection (which repairs its node connections on its own).
    pub async fn managed(&self, timeout: Duration) -> RedisResult<Conn> {
        match self {
            RedisTarget::Single(client) => {
                let config = ConnectionManagerConfig::new()
                    .set_connection_timeout(Some(timeout))
                    .set_response_timeout(Some(timeout))
                    .set_number_of_retries(1);
                let conn = ConnectionManager::new_with_config(client.clone(), config).await?;
                Ok(Conn::Managed(conn))
            }
            RedisTarget::Cluster(_) => self.connect(timeout).await,
        }
    }
}

impl std::fmt::Debug for RedisTarget {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            RedisTarget::Single(client) => f
                .debug_tuple("Single")
                .field(&Address(client.get_connection_info()))
                .finish(),
            RedisTarget::Cluster(nodes) => f
                .debug_tuple("Cluster")
                .field(&nodes.iter().map(Address).collect::<Vec<_>>())
                .finish(),
        }
    }
}

/// A node's address without its credentials, for `Debug`.
struct Address<'a>(&'a ConnectionInfo);

impl std::fmt::Debug for Address<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self.0.addr() {
            ConnectionAddr::Tcp(host, port) => write!(f, "{host}:{port}"),
            ConnectionAddr::TcpTls { host, port, .. } => write!(f, "tls {host}:{port}"),
            ConnectionAddr::Unix(path) => write!(f, "unix {}", path.display()),
            _ => f.write_str("<address>"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_shows_addresses_never_passwords() {
        let single = RedisTarget::Single(
            redis::Client::open("redis://:hunter2-secret@10.0.0.5:6380/2").expect("url"),
        );
        let cluster = RedisTarget::Cluster(vec![
            "redis://user:hunter2-secret@10.0.0.6:7000"
                .into_connection_info()
                .expect("url"),
        ]);
        for (target, address) in [(single, "10.0.0.5:6380"), (cluster, "10.0.0.6:7000")] {
            let shown = format!("{target:?}");
            assert!(shown.contains(address), "{shown}");
            assert!(!shown.contains("hunter2"), "{shown}");
        }
    }
}
