//! One piece of the subscriber's work on one node, run beside the others so that a dead or
//! stalled node holds up only its own channels: connect (RESP3, the node's pushes into the one
//! inbound queue under a connection number of their own), SUBSCRIBE or UNSUBSCRIBE a chunk of
//! channels, or PING. Each runs under `redis_timeout`, a chunk under [`CHUNK_PATIENCE`] times it.

use std::time::Duration;

use redis::Value;
use redis::aio::MultiplexedConnection;

use super::inbound::InboundSender;
use crate::redis_link::{Node, Redis, subscribe, unsubscribe};

/// A SUBSCRIBE or UNSUBSCRIBE of a chunk (up to a thousand channels, answered one by one) gets
/// this many times `redis_timeout`. On a loaded machine (a reconnect storm: thousands of joins,
/// every hub subscribing at once) Redis takes longer over one than over a PING, and giving up
/// drops the connection: every channel of the hub is then subscribed again, which loads Redis
/// more and made one slow hub a cascade. A dead node is still noticed, by this or the next PING.
const CHUNK_PATIENCE: u32 = 4;

/// A node's pub/sub connection.
#[derive(Clone)]
pub(super) struct SubConn {
    pub conn: MultiplexedConnection,
    /// What its pushes go through; retired when the connection is let go.
    pub pushes: InboundSender,
}

pub(super) enum Task {
    Connect(InboundSender),
    Subscribe(Vec<String>),
    Unsubscribe(Vec<String>),
    Ping,
}

/// Why a command did not work.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Failure {
    /// The node answered with an error (MOVED: it no longer serves the slot): the connection
    /// is fine.
    Refused,
    /// No answer in time, a broken connection, or one whose replies no longer match its
    /// commands: it is to be dropped.
    Lost,
}

pub(super) enum Outcome {
    Connected(Option<SubConn>),
    Subscribed(Vec<String>, Result<(), Failure>),
    Unsubscribed(Vec<String>, Result<(), Failure>),
    Pinged(Result<(), Failure>),
}

pub(super) struct NodeTask {
    pub node: Node,
    /// The node's connection and its number (none for `Connect`).
    pub conn: Option<(SubConn, u64)>,
    pub task: Task,
}

pub(super) struct NodeDone {
    pub node: Node,
    /// Number of the connection used.
    pub generation: Option<u64>,
    pub outcome: Outcome,
}

impl NodeTask {
    pub async fn run(self, redis: Redis, sharded: bool) -> NodeDone {
        let NodeTask { node, conn, task } = self;
        let timeout = redis.timeout();
        let generation = conn.as_ref().map(|(_, g)| *g);
        let outcome = match (task, conn) {
            (Task::Connect(pushes), _) => {
                let connect = redis
                    .target()
                    .connect_node_pubsub(&node, timeout, pushes.clone());
                match tokio::time::timeout(timeout, connect).await {
                    Ok(Ok(conn)) => Outcome::Connected(Some(SubConn { conn, pushes })),
                    Ok(Err(err)) => {
                        tracing::debug!(%node, %err, "redis pub/sub connect failed");
                        pushes.retire();
                        Outcome::Connected(None)
                    }
                    Err(_) => {
                        tracing::debug!(%node, "redis pub/sub connect timed out");
                        pushes.retire();
                        Outcome::Connected(None)
                    }
                }
            }
            (Task::Subscribe(channels), Some((mut c, _))) => {
                // This handle's own: the connection's other users keep `redis_timeout`.
                c.conn.set_response_timeout(timeout * CHUNK_PATIENCE);
                let done = subscribe(&mut c.conn, &channels, sharded);
                let result = within(timeout * CHUNK_PATIENCE, done).await;
                Outcome::Subscribed(channels, result)
            }
            (Task::Unsubscribe(channels), Some((mut c, _))) => {
                c.conn.set_response_timeout(timeout * CHUNK_PATIENCE);
                let done = unsubscribe(&mut c.conn, &channels, sharded);
                let result = within(timeout * CHUNK_PATIENCE, done).await;
                Outcome::Unsubscribed(channels, result)
            }
            (Task::Ping, Some((mut c, _))) => {
                // A stalled node (SIGSTOP, a dead network path) sends nothing and closes
                // nothing: only an unanswered PING reveals it.
                let ping = redis::cmd("PING");
                let pong = ping.query_async::<Value>(&mut c.conn);
                let result = match tokio::time::timeout(timeout, pong).await {
                    Ok(Ok(Value::SimpleString(pong))) if pong == "PONG" => Ok(()),
                    _ => Err(Failure::Lost),
                };
                Outcome::Pinged(result)
            }
            (Task::Subscribe(channels), None) => Outcome::Subscribed(channels, Err(Failure::Lost)),
            (Task::Unsubscribe(channels), None) => {
                Outcome::Unsubscribed(channels, Err(Failure::Lost))
            }
            (Task::Ping, None) => Outcome::Pinged(Err(Failure::Lost)),
        };
        NodeDone {
            node,
            generation,
            outcome,
        }
    }
}

async fn within(
    timeout: Duration,
    work: impl Future<Output = redis::RedisResult<()>>,
) -> Result<(), Failure> {
    match tokio::time::timeout(timeout, work).await {
        Ok(Ok(())) => Ok(()),
        Ok(Err(err)) if err.code().is_some() => {
            tracing::warn!(%err, "redis refused a subscription change");
            Err(Failure::Refused)
        }
        Ok(Err(err)) => {
            tracing::warn!(%err, "redis subscription change failed");
            Err(Failure::Lost)
        }
        Err(_) => Err(Failure::Lost),
    }
}
