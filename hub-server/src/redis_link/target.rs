//! Which Redis the hub talks to — one server (`REDIS_URL`) or a Redis Cluster
//! (`REDIS_CLUSTER_NODES`) — and how to open a connection to all of it: multiplexed or managed
//! (one-off requests), each on the Redis I/O thread ([`IoThread`]). Connections to one node of it
//! are in [`node_connect`](super::node_connect).

use std::time::Duration;

use redis::aio::{ConnectionManager, ConnectionManagerConfig, MultiplexedConnection};
use redis::cluster::ClusterClientBuilder;
use redis::{
    AsyncConnectionConfig, ConnectionAddr, ConnectionInfo, IntoConnectionInfo, RedisResult,
};
use secrecy::ExposeSecret;

use super::conn::{Conn, Managed};
use super::io_thread::IoThread;
use crate::config::Settings;

/// Requests a connection takes without its caller waiting for room. A request waiting for room
/// leaves only when its task runs again, and on a hub running behind (a join storm: thousands of
/// history reads at once) that is past `redis_timeout`, with Redis never asked. redis-rs's
/// default is 50: with it, `redis_io`'s 2,000 requests at once had 9 counted late in a `make
/// test`, and 8-9 in each of 3 runs beside four busy loops (0 with this). The queue takes memory
/// only as it fills.
pub(super) const PIPELINE_BUFFER: usize = 16_384;

/// The Redis deployment a hub is configured for, and the thread its connections are made on. Its
/// `Debug` names the nodes' addresses only: the URLs carry the password.
#[derive(Clone)]
pub struct RedisTarget {
    pub(super) deployment: Deployment,
    pub(super) io: IoThread,
}

#[derive(Clone)]
pub(super) enum Deployment {
    Single(redis::Client),
    /// The seed nodes of a Redis Cluster; redis-rs discovers the rest (CLUSTER SLOTS).
    Cluster(Vec<ConnectionInfo>),
}

impl RedisTarget {
    /// `REDIS_CLUSTER_NODES`, else `REDIS_URL`, else `None` (standalone). Both set is refused by
    /// the configuration. Starts the Redis I/O thread when there is a Redis.
    pub fn from_settings(settings: &Settings) -> RedisResult<Option<Self>> {
        let deployment = if let Some(nodes) = settings
            .redis_cluster_nodes
            .as_ref()
            .map(ExposeSecret::expose_secret)
        {
            let nodes = crate::config::comma_list(nodes)
                .map(IntoConnectionInfo::into_connection_info)
                .collect::<RedisResult<Vec<_>>>()?;
            Deployment::Cluster(nodes)
        } else {
            match settings.redis_url.as_ref().map(ExposeSecret::expose_secret) {
                Some(url) => Deployment::Single(redis::Client::open(url)?),
                None => return Ok(None),
            }
        };
        Ok(Some(RedisTarget {
            deployment,
            io: IoThread::start()?,
        }))
    }

    /// Rooms use sharded pub/sub (and `{room}`-tagged channel names).
    pub fn is_cluster(&self) -> bool {
        matches!(self.deployment, Deployment::Cluster(_))
    }

    fn cluster_builder(nodes: &[ConnectionInfo], timeout: Duration) -> ClusterClientBuilder {
        ClusterClientBuilder::new(nodes.to_vec())
            .connection_timeout(timeout)
            .response_timeout(timeout)
    }

    /// A multiplexed connection, or a cluster connection.
    pub async fn connect(&self, timeout: Duration) -> RedisResult<Conn> {
        match &self.deployment {
            Deployment::Single(client) => {
                let conn = self
                    .multiplexed(client.clone(), multiplexed_config(timeout))
                    .await?;
                Ok(Conn::Multiplexed(conn))
            }
            Deployment::Cluster(nodes) => {
                let client = Self::cluster_builder(nodes, timeout).build()?;
                let connect = async move { client.get_async_connection().await };
                Ok(Conn::Cluster(self.io.run(connect).await?))
            }
        }
    }

    /// A multiplexed connection to what `client` names, made on the I/O thread.
    pub(super) async fn multiplexed(
        &self,
        client: redis::Client,
        config: AsyncConnectionConfig,
    ) -> RedisResult<MultiplexedConnection> {
        let connect = async move {
            client
                .get_multiplexed_async_connection_with_config(&config)
                .await
        };
        self.io.run(connect).await
    }

    /// A connection for one-off requests that reconnects by itself: a `ConnectionManager` whose
    /// requests run on the I/O thread (see [`Managed`]), or a cluster connection (which repairs
    /// its node connections on its own task, made there).
    pub async fn managed(&self, timeout: Duration) -> RedisResult<Conn> {
        match &self.deployment {
            Deployment::Single(client) => {
                let client = client.clone();
                let config = ConnectionManagerConfig::new()
                    .set_connection_timeout(Some(timeout))
                    .set_response_timeout(Some(timeout))
                    .set_pipeline_buffer_size(PIPELINE_BUFFER)
                    .set_number_of_retries(1);
                let connect =
                    async move { ConnectionManager::new_with_config(client, config).await };
                let conn = self.io.run(connect).await?;
                Ok(Conn::Managed(Managed::new(conn, self.io.clone())))
            }
            Deployment::Cluster(_) => self.connect(timeout).await,
        }
    }
}

/// Every multiplexed connection's settings: `timeout` (`redis_timeout`) to connect and for each
/// reply, and the request queue of [`PIPELINE_BUFFER`].
pub(super) fn multiplexed_config(timeout: Duration) -> AsyncConnectionConfig {
    AsyncConnectionConfig::new()
        .set_connection_timeout(Some(timeout))
        .set_response_timeout(Some(timeout))
        .set_pipeline_buffer_size(PIPELINE_BUFFER)
}

impl std::fmt::Debug for RedisTarget {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match &self.deployment {
            Deployment::Single(client) => f
                .debug_tuple("Single")
                .field(&Address(client.get_connection_info()))
                .finish(),
            Deployment::Cluster(nodes) => f
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
        let io = IoThread::start().expect("thread");
        let single = RedisTarget {
            deployment: Deployment::Single(
                redis::Client::open("redis://:hunter2-secret@10.0.0.5:6380/2").expect("url"),
            ),
            io: io.clone(),
        };
        let cluster = RedisTarget {
            deployment: Deployment::Cluster(vec![
                "redis://user:hunter2-secret@10.0.0.6:7000"
                    .into_connection_info()
                    .expect("url"),
            ]),
            io,
        };
        for (target, address) in [(single, "10.0.0.5:6380"), (cluster, "10.0.0.6:7000")] {
            let shown = format!("{target:?}");
            assert!(shown.contains(address), "{shown}");
            assert!(!shown.contains("hunter2"), "{shown}");
        }
    }
}
