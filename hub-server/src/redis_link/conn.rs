//! A connection to the configured Redis, whichever kind it is: [`Conn`] speaks `ConnectionLike`
//! (commands, pipelines, scripts) either way, and hides the few things a cluster does
//! differently: sharded pub/sub (SSUBSCRIBE grouped by hash slot), pipelines sent to one slot's
//! master, and subscriber counts asked of the node that owns the channel.
//!
//! On a cluster, redis-rs routes each command by its key and follows MOVED / ASK; a pipeline goes
//! whole to the node of its first key, so callers group theirs by [`key_slot`](super::key_slot).

use std::collections::HashMap;

use redis::aio::{ConnectionLike, ConnectionManager, MultiplexedConnection};
use redis::cluster_async::ClusterConnection;
use redis::{Cmd, Pipeline, RedisFuture, RedisResult, Value};

use super::cluster::{by_slot, key_slot, master_of, on_master};

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
                c.route_pipeline(pipeline, 0, count, master_of(slot)).await
            }
            _ => pipeline.query_async(self).await,
        }
    }
}
