//! Which Redis the hub talks to — one server (`REDIS_URL`) or a Redis Cluster
//! (`REDIS_CLUSTER_NODES`) — and the one place that knows the difference. Everything else asks
//! [`RedisTarget`] for a connection and talks through [`Conn`], which speaks `ConnectionLike`
//! (commands, pipelines, scripts) either way; the few things a cluster does differently live here:
//! sharded pub/sub (SSUBSCRIBE grouped by hash slot, SPUBLISH), pipelines sent per slot to the
//! slot's master, and subscriber counts asked of the node that owns the channel.
//!
//! On a cluster, redis-rs routes each command by its key and follows MOVED / ASK; a pipeline goes
//! whole to the node of its first key, so callers group theirs by [`key_slot`].

use std::collections::HashMap;
use std::time::Duration;

use redis::aio::{
    ConnectionLike, ConnectionManager, ConnectionManagerConfig, MultiplexedConnection,
};
use redis::cluster::ClusterClientBuilder;
use redis::cluster_async::ClusterConnection;
use redis::cluster_routing::{Route, RoutingInfo, SingleNodeRoutingInfo, SlotAddr};
use redis::{Cmd, ConnectionInfo, IntoConnectionInfo, Pipeline, RedisFuture, RedisResult, Value};

use crate::config::Settings;

/// The Redis deployment a hub is configured for.
#[derive(Debug, Clone)]
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
            .map(secrecy::ExposeSecret::expose_secret)
        {
            let nodes = crate::config::comma_list(nodes)
                .map(IntoConnectionInfo::into_connection_info)
                .collect::<RedisResult<Vec<_>>>()?;
            return Ok(Some(RedisTarget::Cluster(nodes)));
        }
        match settings
            .redis_url
            .as_ref()
            .map(secrecy::ExposeSecret::expose_secret)
        {
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

    /// A multiplexed connection (the publisher's), or a cluster connection.
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

    /// A RESP3 connection whose pub/sub messages go to `push` (the subscriber's). On a cluster,
    /// redis-rs keeps one connection per node and forwards every node's pushes to `push`.
    pub async fn connect_pubsub(
        &self,
        timeout: Duration,
        push: impl redis::aio::AsyncPushSender,
    ) -> RedisResult<Conn> {
        match self {
            RedisTarget::Single(client) => {
                let info = client.get_connection_info().clone();
                let resp3 = info
                    .redis_settings()
                    .clone()
                    .set_protocol(redis::ProtocolVersion::RESP3);
                let client = redis::Client::open(info.set_redis_settings(resp3))?;
                let config = redis::AsyncConnectionConfig::new()
                    .set_connection_timeout(Some(timeout))
                    .set_response_timeout(Some(timeout))
                    .set_push_sender(push);
                let conn = client
                    .get_multiplexed_async_connection_with_config(&config)
                    .await?;
                Ok(Conn::Multiplexed(conn))
            }
            RedisTarget::Cluster(nodes) => {
                let client = Self::cluster_builder(nodes, timeout)
                    .use_protocol(redis::ProtocolVersion::RESP3)
                    .push_sender(push)
                    .build()?;
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

/// A connection to the configured Redis; cheap to clone (every variant is a handle).
#[derive(Clone)]
pub enum Conn {
    Multiplexed(MultiplexedConnection),
    Managed(ConnectionManager),
    Cluster(ClusterConnection),
}

impl std::fmt::Debug for Conn {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Conn::Multiplexed(_) => "Conn::Multiplexed",
            Conn::Managed(_) => "Conn::Managed",
            Conn::Cluster(_) => "Conn::Cluster",
        })
    }
}

impl ConnectionLike for Conn {
    fn req_packed_command<'a>(&'a mut self, cmd: &'a Cmd) -> RedisFuture<'a, Value> {
        match self {
            Conn::Multiplexed(c) => c.req_packed_command(cmd),
            Conn::Managed(c) => c.req_packed_command(cmd),
            Conn::Cluster(c) => c.req_packed_command(cmd),
        }
    }

    fn req_packed_commands<'a>(
        &'a mut self,
        pipeline: &'a Pipeline,
        offset: usize,
        count: usize,
    ) -> RedisFuture<'a, Vec<Value>> {
        match self {
            Conn::Multiplexed(c) => c.req_packed_commands(pipeline, offset, count),
            Conn::Managed(c) => c.req_packed_commands(pipeline, offset, count),
            Conn::Cluster(c) => c.req_packed_commands(pipeline, offset, count),
        }
    }

    fn get_db(&self) -> i64 {
        match self {
            Conn::Multiplexed(c) => c.get_db(),
            Conn::Managed(c) => c.get_db(),
            Conn::Cluster(c) => c.get_db(),
        }
    }
}

impl Conn {
    pub fn is_cluster(&self) -> bool {
        matches!(self, Conn::Cluster(_))
    }

    /// SUBSCRIBE, or on a cluster SSUBSCRIBE: one command per hash slot (all sent at once), since
    /// a sharded subscription names channels of one slot only; redis-rs sends each to its slot's
    /// master.
    pub async fn subscribe(&mut self, channels: &[String]) -> RedisResult<()> {
        match self {
            Conn::Multiplexed(c) => c.subscribe(channels).await,
            Conn::Managed(c) => c.subscribe(channels).await,
            Conn::Cluster(c) => {
                let each = by_slot(channels).into_values().map(|group| {
                    let mut c = c.clone();
                    async move { c.ssubscribe(group).await }
                });
                futures_util::future::try_join_all(each).await.map(drop)
            }
        }
    }

    pub async fn unsubscribe(&mut self, channels: &[String]) -> RedisResult<()> {
        match self {
            Conn::Multiplexed(c) => c.unsubscribe(channels).await,
            Conn::Managed(c) => c.unsubscribe(channels).await,
            Conn::Cluster(c) => {
                let each = by_slot(channels).into_values().map(|group| {
                    let mut c = c.clone();
                    async move { c.sunsubscribe(group).await }
                });
                futures_util::future::try_join_all(each).await.map(drop)
            }
        }
    }

    /// Subscribers per channel: `PUBSUB NUMSUB`, or on a cluster `PUBSUB SHARDNUMSUB` asked of
    /// each channel's master (the only node that knows its sharded subscribers).
    pub async fn numsub(&mut self, channels: &[&str]) -> RedisResult<HashMap<String, i64>> {
        let Conn::Cluster(c) = self else {
            let mut cmd = redis::cmd("PUBSUB");
            cmd.arg("NUMSUB").arg(channels);
            return cmd.query_async(self).await;
        };
        let asks = channels.iter().map(|channel| {
            let mut cmd = redis::cmd("PUBSUB");
            cmd.arg("SHARDNUMSUB").arg(*channel);
            let mut c = c.clone();
            async move {
                let value = c.route_command(cmd, on_master(key_slot(channel))).await?;
                Ok::<_, redis::RedisError>(redis::from_redis_value::<HashMap<String, i64>>(value)?)
            }
        });
        let mut counts = HashMap::new();
        for answer in futures_util::future::join_all(asks).await {
            counts.extend(answer?);
        }
        Ok(counts)
    }

    /// Sends `pipeline` to the master of `slot` (a cluster), or as it is (one Redis).
    pub async fn pipeline_on(&mut self, slot: u16, pipeline: Pipeline) -> RedisResult<Vec<Value>> {
        match self {
            Conn::Cluster(c) => {
                let count = pipeline.len();
                let route = SingleNodeRoutingInfo::SpecificNode(Route::new(slot, SlotAddr::Master));
                c.route_pipeline(pipeline, 0, count, route).await
            }
            _ => pipeline.query_async(self).await,
        }
    }
}

fn on_master(slot: u16) -> RoutingInfo {
    RoutingInfo::SingleNode(SingleNodeRoutingInfo::SpecificNode(Route::new(
        slot,
        SlotAddr::Master,
    )))
}

fn by_slot(channels: &[String]) -> HashMap<u16, Vec<&String>> {
    let mut groups: HashMap<u16, Vec<&String>> = HashMap::new();
    for channel in channels {
        groups.entry(key_slot(channel)).or_default().push(channel);
    }
    groups
}

/// The Redis Cluster hash slot of a key or sharded channel: CRC16 (XMODEM) of its hash tag — the
/// part between the first `{` and the next `}`, when not empty — or of the whole name, mod 16384.
pub fn key_slot(key: &str) -> u16 {
    let bytes = key.as_bytes();
    let hashed = match bytes.iter().position(|&b| b == b'{') {
        Some(open) => match bytes[open + 1..].iter().position(|&b| b == b'}') {
            Some(len) if len > 0 => &bytes[open + 1..open + 1 + len],
            _ => bytes,
        },
        None => bytes,
    };
    crc16_xmodem(hashed) % 16384
}

fn crc16_xmodem(data: &[u8]) -> u16 {
    let mut crc: u16 = 0;
    for &byte in data {
        crc ^= u16::from(byte) << 8;
        for _ in 0..8 {
            crc = if crc & 0x8000 != 0 {
                (crc << 1) ^ 0x1021
            } else {
                crc << 1
            };
        }
    }
    crc
}

/// Errors of a cluster in motion (a failover, a slot migration, a node still loading): the command
/// was not carried out and goes again on a fresh view of the cluster — never counted as refused.
pub fn is_cluster_transient(code: &str) -> bool {
    matches!(
        code,
        "MOVED" | "ASK" | "TRYAGAIN" | "CLUSTERDOWN" | "MASTERDOWN" | "READONLY" | "LOADING"
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slots_match_redis_cluster_keyslot() {
        // Values from `redis-cli CLUSTER KEYSLOT`.
        assert_eq!(key_slot("foo"), 12182);
        assert_eq!(key_slot("123456789"), 12739);
        assert_eq!(key_slot("{user1000}.following"), key_slot("user1000"));
        assert_eq!(key_slot("foo{}{bar}"), key_slot("foo{}{bar}"));
        assert_eq!(key_slot("foo{{bar}}zap"), key_slot("{bar"));
        assert_eq!(
            key_slot("rthub:history:{lobby}"),
            key_slot("rthub:room:{lobby}")
        );
    }
}
