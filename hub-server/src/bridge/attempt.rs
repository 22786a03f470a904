//! One piece of the publisher's work on one node, run beside the others so that a dead or
//! stalled node holds up only its own: connect when there is no connection (and load the append
//! script: a restarted node or a promoted replica may lack it), then check the node or send a
//! batch — first waiting, for messages that waited out a failure, until the other hubs listen
//! again (pub/sub keeps nothing for a subscriber that is not there yet).

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use redis::Value;
use redis::aio::MultiplexedConnection;
use tokio::time::Instant;

use super::link::Link;
use super::pipeline::Batch;
use crate::history::Appender;
use crate::redis_link::{Conn, Node, numsub, pause};

/// The longest a batch that waited out a failure waits for the other hubs before it goes anyway.
const RESUME_WAIT: Duration = Duration::from_secs(5);

/// What every piece of work needs.
pub(super) struct Ctx {
    pub link: Link,
    pub appender: Appender,
    pub sharded: bool,
    /// Every hub subscribes to the broadcast channel: its subscriber count is the number of hubs.
    pub broadcast: String,
}

pub(super) enum Work {
    /// Is the node there (PING), or how many hubs listen (counted on the broadcast's master)?
    Check { count_hubs: bool },
    /// Send a batch; before it, wait until each channel has its former subscribers (none: go).
    Send {
        batch: Batch,
        wait_for: HashMap<String, i64>,
    },
}

pub(super) struct Attempt {
    pub node: Node,
    /// The node's connection and its number; `None`: connect first.
    pub conn: Option<(MultiplexedConnection, u64)>,
    pub work: Work,
}

/// The connection an attempt used.
pub(super) enum Via {
    /// The node's connection of this number.
    Existing(u64),
    /// One made for the attempt (`None`: it could not be made).
    Made(Option<MultiplexedConnection>),
}

pub(super) enum Outcome {
    /// The node answered; with the hubs listening when it was asked.
    Checked(Option<i64>),
    Sent {
        batch: Batch,
        replies: Vec<Value>,
        took: Duration,
    },
    /// The node did not answer in time (or not at all): the batch comes back unsent.
    Failed(Option<Batch>),
}

pub(super) struct Done {
    pub node: Node,
    pub via: Via,
    pub outcome: Outcome,
}

impl Attempt {
    pub async fn run(self, ctx: Arc<Ctx>) -> Done {
        let Attempt { node, conn, work } = self;
        let (mut conn, via) = match conn {
            Some((conn, number)) => (conn, Via::Existing(number)),
            None => match ctx.connect(&node).await {
                Some(conn) => (conn.clone(), Via::Made(Some(conn))),
                None => {
                    let batch = match work {
                        Work::Send { batch, .. } => Some(batch),
                        Work::Check { .. } => None,
                    };
                    return Done {
                        node,
                        via: Via::Made(None),
                        outcome: Outcome::Failed(batch),
                    };
                }
            },
        };
        let outcome = match work {
            Work::Check { count_hubs } => ctx.check(&mut conn, count_hubs).await,
            Work::Send { batch, wait_for } => {
                if !wait_for.is_empty() {
                    ctx.wait_for_subscribers(&mut conn, &wait_for).await;
                }
                ctx.send(&mut conn, batch).await
            }
        };
        Done { node, via, outcome }
    }
}

impl Ctx {
    /// A fresh connection to `node` with the append script loaded, within `redis_timeout`.
    async fn connect(&self, node: &Node) -> Option<MultiplexedConnection> {
        let timeout = self.link.redis.timeout();
        let connect = self.link.redis.target().connect_node(node, timeout);
        let conn = match tokio::time::timeout(timeout, connect).await {
            Ok(Ok(conn)) => conn,
            Ok(Err(err)) => {
                tracing::debug!(%node, %err, "publisher: redis connect failed");
                return None;
            }
            Err(_) => {
                tracing::debug!(%node, "publisher: redis connect timed out");
                return None;
            }
        };
        let counters = &self.link.bridge.counters;
        counters.reconnects.fetch_add(1, Ordering::Relaxed);
        let loaded = self
            .appender
            .load(Conn::Multiplexed(conn.clone()), timeout)
            .await;
        loaded.then_some(conn)
    }

    async fn check(&self, conn: &mut MultiplexedConnection, count_hubs: bool) -> Outcome {
        let timeout = self.link.redis.timeout();
        let answer = match count_hubs {
            true => {
                let channels = [self.broadcast.as_str()];
                let count = numsub(conn, &channels, self.sharded);
                match tokio::time::timeout(timeout, count).await {
                    Ok(Ok(counts)) => Some(counts.get(&self.broadcast).copied()),
                    _ => None,
                }
            }
            false => {
                let ping = redis::cmd("PING");
                let pong = ping.query_async::<Value>(conn);
                matches!(tokio::time::timeout(timeout, pong).await, Ok(Ok(_))).then_some(None)
            }
        };
        match answer {
            Some(hubs) => Outcome::Checked(hubs),
            None => Outcome::Failed(None),
        }
    }

    /// One pipeline under `redis_timeout`: a stalled node holds back its own messages only.
    async fn send(&self, conn: &mut MultiplexedConnection, mut batch: Batch) -> Outcome {
        let withdrawn = batch.hand_over();
        if withdrawn > 0 {
            // They leave the bridge's queue here, unanswered: their callers stopped waiting.
            let buffered = &self.link.bridge.buffered;
            buffered.fetch_sub(withdrawn, Ordering::AcqRel);
            tracing::debug!(withdrawn, "server API messages withdrawn before they went");
        }
        let sent_at = Instant::now();
        if batch.len() == 0 && !batch.counts_hubs {
            // Every message was withdrawn by its API caller: nothing to send.
            return Outcome::Sent {
                batch,
                replies: Vec::new(),
                took: sent_at.elapsed(),
            };
        }
        let pipe = batch.pipeline(self.sharded, &self.broadcast);
        let timeout = self.link.redis.timeout();
        match tokio::time::timeout(timeout, pipe.query_async::<Vec<Value>>(conn)).await {
            Ok(Ok(replies)) => Outcome::Sent {
                batch,
                replies,
                took: sent_at.elapsed(),
            },
            Ok(Err(err)) => {
                tracing::warn!(%err, held = batch.len(), "publish failed");
                Outcome::Failed(Some(batch))
            }
            Err(_) => {
                tracing::warn!(held = batch.len(), "publish timed out: redis stalled");
                Outcome::Failed(Some(batch))
            }
        }
    }

    /// Holds a batch that waited out a failure until the other hubs can receive it. Every live
    /// hub retries within `reconnect_max`, so we wait at least that long (plus a margin for its
    /// SUBSCRIBE), and until each channel has the subscribers it had before; never longer than
    /// [`RESUME_WAIT`].
    async fn wait_for_subscribers(
        &self,
        conn: &mut MultiplexedConnection,
        wanted: &HashMap<String, i64>,
    ) {
        let start = Instant::now();
        let settle = start + self.link.redis.reconnect_max() + Duration::from_millis(250);
        let deadline = start + RESUME_WAIT;
        let channels: Vec<&str> = wanted.keys().map(String::as_str).collect();
        let timeout = self.link.redis.timeout();
        while Instant::now() < deadline {
            let counts = tokio::time::timeout(timeout, numsub(conn, &channels, self.sharded)).await;
            let Ok(Ok(counts)) = counts else { return };
            let ready = wanted
                .iter()
                .all(|(ch, before)| counts.get(ch).copied().unwrap_or(0) >= *before);
            if ready && Instant::now() >= settle {
                tracing::info!(?counts, "subscribers are back; flushing the outage buffer");
                return;
            }
            if !pause(&self.link.shutdown, Duration::from_millis(50)).await {
                return;
            }
        }
        tracing::warn!(
            "other hubs did not all resubscribe in time; flushing the outage buffer anyway"
        );
    }
}
