//! The Redis bridge between hubs: what a hub publishes, what it receives, and whether Redis is
//! reachable. [`publisher`] sends local messages out, [`subscriber`] brings other hubs' messages
//! in through the bounded [`inbound`] queue, [`unconfirmed`] delivers this hub's own stored
//! messages when Redis is slow to bring them back. How to reach Redis (one server or a cluster)
//! is [`crate::redis_link`]'s business. Without Redis the bridge is disabled and the hub runs
//! standalone.

mod attempt;
mod catch_up;
mod channel_counts;
pub mod channels;
pub mod control;
mod counters;
pub mod envelope;
mod inbound;
mod lanes;
mod link;
mod node_pubsub;
mod node_state;
mod outgoing;
mod pipeline;
mod placement;
mod publisher;
mod receive;
pub mod sequence;
mod subscriber;
mod timings;
pub mod unconfirmed;

use std::collections::HashSet;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use tokio::sync::{mpsc, watch};

pub use channels::{Channels, Target};
pub use counters::{BridgeCounters, BridgeQueues, BridgeState};
use link::{Link, Shared};
pub use outgoing::Outgoing;
pub use timings::BridgeTimings;

use crate::config::Settings;
use crate::error::CloseReason;
use crate::history::{Appender, History};
use crate::hub::{ClientId, Hub};
use crate::protocol::Frame;
use crate::redis_link::Redis;
use crate::shutdown::Shutdown;

/// Joins' reads waiting for the subscriber to note them (see [`Bridge::join_read`]).
const JOIN_READS_QUEUED: usize = 65_536;

/// Cloneable handle to the bridge; `Disabled` when the hub runs standalone.
#[derive(Debug, Clone)]
pub enum Bridge {
    Disabled,
    Redis(Arc<Shared>),
}

impl Bridge {
    /// Starts the publisher, subscriber and overdue-delivery tasks; they run until `shutdown`.
    /// `history` is where the subscriber catches rooms up after a lost subscription.
    pub fn start(
        settings: &Settings,
        redis: Option<&Redis>,
        history: &History,
        hub: Hub,
        shutdown: Shutdown,
    ) -> Self {
        let Some(redis) = redis else {
            return Bridge::Disabled;
        };
        let channels = match redis.is_cluster() {
            true => Channels::sharded(&settings.redis_prefix),
            false => Channels::new(&settings.redis_prefix),
        };
        let (outgoing, outgoing_rx) = mpsc::channel(settings.bridge_buffer);
        let (join_reads, join_reads_rx) = mpsc::channel(JOIN_READS_QUEUED);
        let shared = Arc::new(Shared {
            outgoing,
            buffered: AtomicUsize::new(0),
            buffer_limit: settings.bridge_buffer,
            channels,
            publisher_up: watch::Sender::new(false),
            subscriber_up: watch::Sender::new(false),
            subscriber_connected: watch::Sender::new(false),
            subscribed: watch::Sender::new(HashSet::new()),
            counters: BridgeCounters::default(),
            unconfirmed: Arc::default(),
            join_reads,
            redis: redis.clone(),
            tasks: std::sync::Mutex::new(Vec::new()),
        });
        let link = Link {
            redis: redis.clone(),
            instance_id: hub.instance_id(),
            bridge: shared.clone(),
            shutdown,
        };
        let tasks = vec![
            tokio::spawn(publisher::run(
                link.clone(),
                outgoing_rx,
                settings.redis_ping_interval,
                Appender::new(settings, redis.is_cluster()),
            )),
            tokio::spawn(subscriber::run(
                link.clone(),
                hub.clone(),
                settings.redis_ping_interval,
                subscriber::InboundLimits {
                    messages: settings.inbound_buffer,
                    bytes: settings.inbound_buffer_bytes,
                },
                catch_up::Reader::new(history.clone(), settings.namespaces.clone()),
                join_reads_rx,
            )),
            tokio::spawn(unconfirmed::run(
                shared.unconfirmed.clone(),
                hub.clone(),
                link.shutdown.clone(),
            )),
        ];
        *shared
            .tasks
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner) = tasks;
        Bridge::Redis(shared)
    }

    /// Hands a local message to the publisher without waiting. While Redis (or its slot's
    /// master) is down it waits in the bounded buffer; when that is full it is counted as
    /// overflowed and given back.
    pub fn publish(&self, out: Outgoing) -> Result<(), Box<Outgoing>> {
        // Standalone: nothing to publish.
        let Bridge::Redis(inner) = self else {
            return Ok(());
        };
        // The bound covers every message not yet answered by Redis: queued, held by a lane whose
        // master is down, or on its way.
        let full = inner.buffered.fetch_add(1, Ordering::AcqRel) >= inner.buffer_limit;
        let refused = match full {
            true => Some(out),
            false => match inner.outgoing.try_send(out) {
                Ok(()) => None,
                Err(mpsc::error::TrySendError::Full(out)) => Some(out),
                // The publisher has stopped: the hub is shutting down.
                Err(mpsc::error::TrySendError::Closed(out)) => {
                    inner.buffered.fetch_sub(1, Ordering::AcqRel);
                    return Err(Box::new(out));
                }
            },
        };
        let Some(out) = refused else {
            return Ok(());
        };
        inner.buffered.fetch_sub(1, Ordering::AcqRel);
        let lost = inner.counters.overflowed.fetch_add(1, Ordering::Relaxed) + 1;
        if lost.is_power_of_two() {
            tracing::warn!(lost, "bridge buffer full: cross-hub messages dropped");
        }
        Err(Box::new(out))
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

    /// This hub's stored room messages on their way round (see [`unconfirmed`]).
    pub fn unconfirmed(&self) -> Option<&unconfirmed::Unconfirmed> {
        match self {
            Bridge::Disabled => None,
            Bridge::Redis(inner) => Some(&inner.unconfirmed),
        }
    }

    /// Channels subscribed and messages waiting for the publisher, for `/metrics`.
    pub fn queues(&self) -> Option<BridgeQueues> {
        let Bridge::Redis(inner) = self else {
            return None;
        };
        Some(BridgeQueues {
            subscribed_channels: inner.subscribed.borrow().len(),
            buffered: inner.buffered.load(Ordering::Relaxed),
        })
    }

    /// Closes every connection of `user` on every hub with 4003; false when Redis could not be
    /// told (this hub's connections are closed all the same).
    pub async fn disconnect_user(&self, hub: &Hub, user: &str) -> bool {
        let Bridge::Redis(inner) = self else {
            hub.kick_user(user, CloseReason::Disconnected);
            return true;
        };
        let order = control::Control {
            disconnect: user.to_owned(),
        };
        let Some(mut conn) = inner.redis.commands().await else {
            hub.kick_user(user, CloseReason::Disconnected);
            return false;
        };
        let mut cmd = redis::cmd(inner.channels.publish_command());
        cmd.arg(inner.channels.control()).arg(order.encode());
        let sent = tokio::time::timeout(inner.redis.timeout(), cmd.query_async::<i64>(&mut conn));
        if !matches!(sent.await, Ok(Ok(_))) {
            hub.kick_user(user, CloseReason::Disconnected);
            return false;
        }
        true
    }

    /// Waits (bounded) until the subscriber confirms `target`'s channel, so that a client told
    /// `joined` really receives what other hubs publish next — also while a fresh connection is
    /// still subscribing every room again. Returns at once when Redis is down: the subscription
    /// then happens on reconnect. False when the channel is not subscribed yet (the join tells
    /// [`Bridge::join_read`] so).
    pub async fn wait_subscribed(&self, target: &Target) -> bool {
        let Bridge::Redis(inner) = self else {
            return true;
        };
        if !*inner.subscriber_connected.borrow() {
            return false;
        }
        let channel = inner.channels.name(target);
        let mut rx = inner.subscribed.subscribe();
        let confirmed = rx.wait_for(|set| set.contains(&channel));
        if tokio::time::timeout(inner.redis.timeout(), confirmed)
            .await
            .is_err()
        {
            tracing::warn!(%channel, "subscription not confirmed in time");
            return false;
        }
        true
    }

    /// `client`'s join replayed `frames` from the history: any of them still waiting to come
    /// back from Redis is not delivered to it late (it would be its second copy).
    pub fn replayed(&self, client: &ClientId, frames: &[Frame]) {
        let Bridge::Redis(inner) = self else { return };
        // Almost always nothing waits: then no frame is parsed for its id.
        if frames.is_empty() || !inner.unconfirmed.waiting() {
            return;
        }
        let ids: Vec<String> = frames.iter().filter_map(Frame::message_id).collect();
        inner.unconfirmed.replayed(client, &ids);
    }

    /// A join's history read covered `target`'s room through `offset` of `epoch`. Before the
    /// room's channel was subscribed (`subscribed` false), what is published after the read and
    /// before the subscription never reaches this hub live: the subscriber reads it from the
    /// history once subscribed. After, the offset is where a catch-up starts if the subscription
    /// is lost before any message of the room came (see [`catch_up`]).
    pub fn join_read(&self, target: &Target, epoch: &str, offset: u64, subscribed: bool) {
        let Bridge::Redis(inner) = self else { return };
        let read = link::JoinRead {
            channel: inner.channels.name(target),
            epoch: catch_up::hashed(epoch),
            offset,
            subscribed,
        };
        if inner.join_reads.try_send(read).is_err() {
            inner
                .counters
                .catch_up_failed
                .fetch_add(1, Ordering::Relaxed);
            tracing::warn!("too many joins at once: one room may not be caught up after a loss");
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
