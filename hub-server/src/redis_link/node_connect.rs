//! Connections to one node of the configured Redis, and reading which node serves which slot: a
//! node of a cluster is reached with the seed nodes' credentials (and TLS) at the address the
//! cluster gives for it.

use std::time::Duration;

use futures_util::FutureExt;
use futures_util::future::BoxFuture;
use redis::aio::MultiplexedConnection;
use redis::{ConnectionAddr, ConnectionInfo, RedisResult};

use super::target::{Deployment, RedisTarget, multiplexed_config};
use super::topology::{Node, Topology};

impl RedisTarget {
    /// The nodes given in the configuration (one Redis: itself).
    pub fn seed_nodes(&self) -> Vec<Node> {
        match &self.deployment {
            Deployment::Single(_) => vec![Node::Only],
            Deployment::Cluster(seeds) => seeds
                .iter()
                .filter_map(|info| match info.addr() {
                    ConnectionAddr::Tcp(host, port) | ConnectionAddr::TcpTls { host, port, .. } => {
                        Some(Node::At {
                            host: host.as_str().into(),
                            port: *port,
                        })
                    }
                    _ => None,
                })
                .collect(),
        }
    }

    fn node_info(&self, node: &Node) -> RedisResult<ConnectionInfo> {
        let wrong = || {
            redis::RedisError::from((
                redis::ErrorKind::InvalidClientConfig,
                "no such node in this Redis deployment",
            ))
        };
        match (&self.deployment, node) {
            (Deployment::Single(client), Node::Only) => Ok(client.get_connection_info().clone()),
            (Deployment::Cluster(seeds), Node::At { host, port }) => {
                let seed = seeds.first().ok_or_else(wrong)?;
                let addr = match seed.addr() {
                    ConnectionAddr::Tcp(..) => ConnectionAddr::Tcp(host.to_string(), *port),
                    ConnectionAddr::TcpTls {
                        insecure,
                        tls_params,
                        ..
                    } => ConnectionAddr::TcpTls {
                        host: host.to_string(),
                        port: *port,
                        insecure: *insecure,
                        tls_params: tls_params.clone(),
                    },
                    _ => return Err(wrong()),
                };
                Ok(seed.clone().set_addr(addr))
            }
            _ => Err(wrong()),
        }
    }

    /// A multiplexed connection to `node` (RESP2), for commands and pipelines, made on the I/O
    /// thread.
    pub async fn connect_node(
        &self,
        node: &Node,
        timeout: Duration,
    ) -> RedisResult<MultiplexedConnection> {
        let client = redis::Client::open(self.node_info(node)?)?;
        self.multiplexed(client, multiplexed_config(timeout)).await
    }

    /// A RESP3 connection to `node` whose pub/sub messages (and its loss) go to `push`, made on
    /// the I/O thread: `push` is called there.
    pub async fn connect_node_pubsub(
        &self,
        node: &Node,
        timeout: Duration,
        push: impl redis::aio::AsyncPushSender + 'static,
    ) -> RedisResult<MultiplexedConnection> {
        let info = self.node_info(node)?;
        let resp3 = info
            .redis_settings()
            .clone()
            .set_protocol(redis::ProtocolVersion::RESP3);
        let client = redis::Client::open(info.set_redis_settings(resp3))?;
        let config = multiplexed_config(timeout).set_push_sender(push);
        self.multiplexed(client, config).await
    }

    /// Which master serves each slot: asked of `via` first (a connection the caller holds), else
    /// of every node in `known` and the seeds at once, on fresh connections; the first answer
    /// wins. One Redis serves everything (no request). `None` when no node answers in time.
    pub async fn topology(
        &self,
        via: Option<(Node, MultiplexedConnection)>,
        known: &[Node],
        timeout: Duration,
    ) -> Option<Topology> {
        if !self.is_cluster() {
            return Some(Topology::Only);
        }
        if let Some((node, mut conn)) = via
            && let Some(topology) = cluster_slots(&mut conn, &node, timeout).await
        {
            return Some(topology);
        }
        let mut nodes: Vec<Node> = known.iter().cloned().chain(self.seed_nodes()).collect();
        nodes.sort();
        nodes.dedup();
        let asks: Vec<BoxFuture<'_, Option<Topology>>> = nodes
            .into_iter()
            .map(|node| {
                async move {
                    let connect = self.connect_node(&node, timeout);
                    let mut conn = tokio::time::timeout(timeout, connect).await.ok()?.ok()?;
                    cluster_slots(&mut conn, &node, timeout).await
                }
                .boxed()
            })
            .collect();
        first_some(asks).await
    }
}

/// `CLUSTER SLOTS` on one connection, within `timeout`.
async fn cluster_slots(
    conn: &mut MultiplexedConnection,
    node: &Node,
    timeout: Duration,
) -> Option<Topology> {
    let mut cmd = redis::cmd("CLUSTER");
    cmd.arg("SLOTS");
    let reply = tokio::time::timeout(timeout, cmd.query_async::<redis::Value>(conn))
        .await
        .ok()?
        .ok()?;
    let host = match node {
        Node::At { host, .. } => host.to_string(),
        Node::Only => String::new(),
    };
    Topology::parse(&reply, &host)
}

/// The first of `futures` to give `Some`; `None` when all give `None`.
async fn first_some<T>(mut futures: Vec<BoxFuture<'_, Option<T>>>) -> Option<T> {
    while !futures.is_empty() {
        let (found, _, rest) = futures_util::future::select_all(futures).await;
        if found.is_some() {
            return found;
        }
        futures = rest;
    }
    None
}
