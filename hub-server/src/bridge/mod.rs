//! The Redis bridge between hubs: what a hub publishes, what it receives, and whether Redis is
//! reachable. [`publisher`] sends local messages out, [`subscriber`] brings other hubs' messages
//! in through the bounded [`inbound`] queue. [`redis_link`] knows whether that is one Redis
//! (`REDIS_URL`) or a Redis Cluster (`REDIS_CLUSTER_NODES`, sharded pub/sub). Without either the
//! bridge is disabled and the hub runs standalone.

mod backoff;
pub mod control;
pub mod envelope;
mod inbound;
mod publisher;
pub mod redis_link;
pub mod sequence;
mod subscriber;
pub mod unconfirmed;

use std::collections::HashSet;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use serde::Serialize;
use tokio::sync::{mpsc, watch};
use tokio::task::JoinHandle;

use crate::config::Settings;
use crate::error::ProtocolError;
use crate::hub::{ClientId, Hub};
use crate::protocol::Frame;
use crate::shutdown::Shutdown;
pub use envelope::{Channels, Target};
pub use redis_link::{Conn, RedisTarget};

/// A local message on its way to Redis.
#[derive(Debug)]
pub struct Outgoing {
    pub target: Target,
    /// The message id (also inside the frame): how this hub recognizes it when it comes back.
    pub id: String,
    /// The chat frame as the sender's session built it (no offset yet).
    pub frame: Frame,
    pub sender: ClientId,
    /// Already delivered to this hub's clients (history off, a broadcast, or Redis down when it
    /// was sent); otherwise this hub delivers it when it comes back from Redis, in room order.
    pub delivered_locally: bool,
    /// Append it to the room's history in the same atomic step as the publish.
    pub store: bool,
    pub ack: Option<Ack>,
}

/// A promise to tell the sender that its message is stored: an `{"type":"ack",…}` frame for a
/// client (its queue held weakly, so a message waiting out an outage does not keep a closed
/// client's writer alive), or the answer to a server API call.
#[derive(Debug)]
pub enum Ack {
    Client {
        to: mpsc::WeakSender<Frame>,
        reference: String,
        id: String,
    },
    Api(tokio::sync::oneshot::Sender<Result<Stored, ProtocolError>>),
}

/// Where a message landed in its room's history.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Stored {
    pub offset: Option<u64>,
    pub epoch: Option<String>,
}

impl Ack {
    pub fn send(self, stored: Stored) {
        match self {
            Ack::Client { to, reference, id } => {
                if let Some(to) = to.upgrade() {
                    // A full queue means the client is being closed as a slow consumer anyway.
                    let _ = to.try_send(Frame::ack(&reference, &id, stored.offset));
                }
            }
            Ack::Api(answer) => {
                let _ = answer.send(Ok(stored));
            }
        }
    }

    /// The message did not make it: an error (carrying the client's `ref`).
    pub fn fail(self, err: &ProtocolError) {
        match self {
            Ack::Client { to, reference, .. } => {
                if let Some(to) = to.upgrade() {
                    let _ = to.try_send(Frame::error_for(err, Some(&reference)));
                }
            }
            Ack::Api(answer) => {
                let _ = answer.send(Err(err.clone()));
            }
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum BridgeState {
    Disabled,
    Up,
    Down,
}

/// Counters reported by `/health`; every message lost or dropped is counted here, never silent.
#[derive(Debug, Default, Serialize)]
pub struct BridgeCounters {
    pub published: AtomicU64,
    /// Local messages that found the outage buffer full and never reached Redis.
    pub overflowed: AtomicU64,
    /// Messages Redis refused (an error reply to their command): not published, not stored.
    pub failed: AtomicU64,
    pub received: AtomicU64,
    pub own_dropped: AtomicU64,
    pub duplicates_dropped: AtomicU64,
    /// Messages of other hubs that Redis never delivered to this hub (sequence gaps).
    pub missed: AtomicU64,
    /// Messages from Redis this hub had no room for (its inbound queue was full): shed, not
    /// delivered; they show up as `missed` too, once the next message of their room arrives.
    pub inbound_shed: AtomicU64,
    pub undecodable: AtomicU64,
    pub reconnects: AtomicU64,
    /// Publish round trips and cross-hub lag, for `/metrics` (not in `/health`).
    #[serde(skip)]
    pub timings: crate::metrics::BridgeTimings,
}

/// See [`Bridge::queues`].
#[derive(Debug, Clone, Copy)]
pub struct BridgeQueues {
    pub subscribed_channels: usize,
    pub buffered: usize,
}

#[derive(Debug)]
pub struct RedisBridge {
    outgoing: mpsc::Sender<Outgoing>,
    channels: Channels,
    publisher_up: watch::Sender<bool>,
    subscriber_up: watch::Sender<bool>,
    /// The subscriber has a connection: up, or still subscribing on a fresh one (joins then wait
    /// for their channel instead of being told `joined` before it is subscribed).
    subscriber_connected: watch::Sender<bool>,
    /// Channels the subscriber connection is confirmed to be subscribed to.
    subscribed: watch::Sender<HashSet<String>>,
    counters: BridgeCounters,
    /// This hub's stored room messages until they come back from Redis (or are overdue).
    pub unconfirmed: unconfirmed::Unconfirmed,
    redis_timeout: Duration,
    tasks: std::sync::Mutex<Vec<JoinHandle<()>>>,
    target: RedisTarget,
    /// For requests outside the message path (control, presence, the API), made on first use.
    commands: tokio::sync::OnceCell<Conn>,
}

/// Cloneable handle to the bridge; `Disabled` when the hub runs standalone.
#[derive(Debug, Clone)]
pub enum Bridge {
    Disabled,
    Redis(Arc<RedisBridge>),
}

#[derive(Debug, thiserror::Error)]
#[error("REDIS_URL / REDIS_CLUSTER_NODES is not usable: {0}")]
pub struct BadRedisUrl(#[from] redis::RedisError);

impl Bridge {
    /// Starts the publisher, subscriber and overdue-delivery tasks; they run until `shutdown`.
    pub fn start(settings: &Settings, hub: Hub, shutdown: Shutdown) -> Result<Self, BadRedisUrl> {
        let Some(target) = RedisTarget::from_settings(settings)? else {
            return Ok(Bridge::Disabled);
        };
        let channels = match target.is_cluster() {
            true => Channels::sharded(&settings.redis_prefix),
            false => Channels::new(&settings.redis_prefix),
        };
        let (outgoing, outgoing_rx) = mpsc::channel(settings.bridge_buffer);
        let inner = Arc::new(RedisBridge {
            outgoing,
            channels,
            publisher_up: watch::Sender::new(false),
            subscriber_up: watch::Sender::new(false),
            subscriber_connected: watch::Sender::new(false),
            subscribed: watch::Sender::new(HashSet::new()),
            counters: BridgeCounters::default(),
            unconfirmed: unconfirmed::Unconfirmed::default(),
            redis_timeout: settings.redis_timeout,
            tasks: std::sync::Mutex::new(Vec::new()),
            target: target.clone(),
            commands: tokio::sync::OnceCell::new(),
        });
        let link = Link {
            target,
            timeout: settings.redis_timeout,
            reconnect_max: settings.reconnect_max,
            instance_id: hub.instance_id(),
            bridge: inner.clone(),
            shutdown,
        };
        let tasks = vec![
            tokio::spawn(publisher::run(
                link.clone(),
                outgoing_rx,
                settings.redis_ping_interval,
                publisher::Retention::new(settings.history_size, settings.history_ttl),
            )),
            tokio::spawn(subscriber::run(
                link.clone(),
                hub.clone(),
                settings.redis_ping_interval,
                subscriber::InboundLimits {
                    messages: settings.inbound_buffer,
                    bytes: settings.inbound_buffer_bytes,
                },
            )),
            tokio::spawn(unconfirmed::run(
                inner.clone(),
                hub.clone(),
                link.shutdown.clone(),
            )),
        ];
        *inner
            .tasks
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner) = tasks;
        Ok(Bridge::Redis(inner))
    }

    /// Hands a local message to the publisher without waiting. While Redis is down it waits in
    /// the bounded buffer; when that is full it is counted as overflowed and given back.
    pub fn publish(&self, out: Outgoing) -> Result<(), Box<Outgoing>> {
        // Standalone: nothing to publish.
        let Bridge::Redis(inner) = self else {
            return Ok(());
        };
        inner.outgoing.try_send(out).map_err(|err| match err {
            mpsc::error::TrySendError::Full(out) => {
                let lost = inner.counters.overflowed.fetch_add(1, Ordering::Relaxed) + 1;
                if lost.is_power_of_two() {
                    tracing::warn!(lost, "bridge buffer full: cross-hub messages dropped");
                }
                Box::new(out)
            }
            // The publisher has stopped: the hub is shutting down.
            mpsc::error::TrySendError::Closed(out) => Box::new(out),
        })
    }

    pub fn state(&self) -> BridgeState {
        match self {
            Bridge::Disabled => BridgeState::Disabled,
            Bridge::Redis(inner)
                if *inner.publisher_up.borrow() && *inner.subscriber_up.borrow() =>
            {
                BridgeState::Up
            }
            Bridge::Redis(_) => BridgeState::Down,
        }
    }

    pub fn counters(&self) -> Option<&BridgeCounters> {
        match self {
            Bridge::Disabled => None,
            Bridge::Redis(inner) => Some(&inner.counters),
        }
    }

    /// Channels subscribed and messages waiting for the publisher, for `/metrics`.
    pub fn queues(&self) -> Option<BridgeQueues> {
        let Bridge::Redis(inner) = self else {
            return None;
        };
        Some(BridgeQueues {
            subscribed_channels: inner.subscribed.borrow().len(),
            buffered: inner.outgoing.max_capacity() - inner.outgoing.capacity(),
        })
    }

    /// A managed connection for one-off requests (reconnected by redis-rs; on a cluster, routed
    /// by key), or `None` when Redis cannot be reached within `redis_timeout`. Standalone: `None`.
    pub async fn commands(&self) -> Option<Conn> {
        let Bridge::Redis(inner) = self else {
            return None;
        };
        let make = || inner.target.managed(inner.redis_timeout);
        let made = tokio::time::timeout(inner.redis_timeout, inner.commands.get_or_try_init(make));
        match made.await {
            Ok(Ok(conn)) => Some(conn.clone()),
            _ => None,
        }
    }

    /// Closes every connection of `user` on every hub with 4003; false when Redis could not be
    /// told (this hub's connections are closed all the same).
    pub async fn disconnect_user(&self, hub: &Hub, user: &str) -> bool {
        let Bridge::Redis(inner) = self else {
            hub.kick_user(user, crate::error::CloseReason::Disconnected);
            return true;
        };
        let order = control::Control {
            disconnect: user.to_owned(),
        };
        let Some(mut conn) = self.commands().await else {
            hub.kick_user(user, crate::error::CloseReason::Disconnected);
            return false;
        };
        let mut cmd = redis::cmd(inner.channels.publish_command());
        cmd.arg(inner.channels.control()).arg(order.encode());
        let sent = tokio::time::timeout(inner.redis_timeout, cmd.query_async::<i64>(&mut conn));
        if !matches!(sent.await, Ok(Ok(_))) {
            hub.kick_user(user, crate::error::CloseReason::Disconnected);
            return false;
        }
        true
    }

    /// Waits (bounded) until the subscriber confirms `target`'s channel, so that a client told
    /// `joined` really receives what other hubs publish next — also while a fresh connection is
    /// still subscribing every room again. Returns at once when Redis is down: the subscription
    /// then happens on reconnect.
    pub async fn wait_subscribed(&self, target: &Target) {
        let Bridge::Redis(inner) = self else { return };
        if !*inner.subscriber_connected.borrow() {
            return;
        }
        let channel = inner.channels.name(target);
        let mut rx = inner.subscribed.subscribe();
        let confirmed = rx.wait_for(|set| set.contains(&channel));
        if tokio::time::timeout(inner.redis_timeout, confirmed)
            .await
            .is_err()
        {
            tracing::warn!(%channel, "subscription not confirmed in time");
        }
    }

    /// Waits for the bridge tasks to finish their last work after shutdown (the publisher
    /// flushes its buffer), at most `deadline`.
    pub async fn finish(&self, deadline: Duration) {
        let Bridge::Redis(inner) = self else { return };
        let tasks = std::mem::take(
            &mut *inner
                .tasks
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner),
        );
        let all = futures_util::future::join_all(tasks);
        if tokio::time::timeout(deadline, all).await.is_err() {
            tracing::warn!("bridge did not finish within the shutdown grace period");
        }
    }
}

/// What every bridge task needs to reach Redis.
#[derive(Debug, Clone)]
struct Link {
    target: RedisTarget,
    timeout: Duration,
    reconnect_max: Duration,
    /// This process's origin id, stamped on every envelope it publishes.
    instance_id: uuid::Uuid,
    bridge: Arc<RedisBridge>,
    shutdown: Shutdown,
}

impl Link {
    /// Connects (a multiplexed connection, or a cluster connection), retrying with backoff;
    /// `None` once shutdown begins.
    async fn connect(&self, who: &'static str) -> Option<Conn> {
        let mut backoff = backoff::Backoff::new(self.reconnect_max);
        loop {
            let attempt = self.target.connect(self.timeout);
            match tokio::time::timeout(self.timeout, attempt).await {
                Ok(Ok(conn)) => return Some(conn),
                Ok(Err(err)) => tracing::debug!(task = who, %err, "redis connect failed"),
                Err(_) => tracing::debug!(task = who, "redis connect timed out"),
            }
            if !self.pause(backoff.next_delay()).await {
                return None;
            }
        }
    }

    /// Sleeps, unless shutdown begins first; returns false on shutdown.
    async fn pause(&self, delay: Duration) -> bool {
        tokio::select! {
            _ = tokio::time::sleep(delay) => true,
            _ = self.shutdown.wait() => false,
        }
    }

    fn set_up(flag: &watch::Sender<bool>, up: bool, who: &'static str) {
        let was = flag.send_replace(up);
        match (was, up) {
            (false, true) => tracing::info!(task = who, "redis connection up"),
            (true, false) => tracing::warn!(task = who, "redis connection lost"),
            _ => {}
        }
    }
}
