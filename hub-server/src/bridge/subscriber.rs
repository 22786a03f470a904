//! Brings messages in: one dedicated pub/sub connection, subscribed to the broadcast channel and
//! to the channel of every room with local members. Drops duplicates (sequence) and this hub's
//! own messages when they were already delivered here (`local`), counts what was missed, and
//! hands the rest to the hub in arrival order — in this task, never a task per message, which
//! would reorder them. Stored room messages of this hub come back this way too, so every hub
//! delivers a room's messages in the order of their offsets.

use std::collections::HashSet;
use std::sync::atomic::Ordering;
use std::time::Duration;

use futures_util::StreamExt;
use redis::aio::{PubSubSink, PubSubStream};

use super::Link;
use super::backoff::Backoff;
use super::envelope::{self, Target};
use super::sequence::{SequenceTracker, Verdict};
use crate::hub::Hub;
use crate::protocol::Frame;

pub(super) async fn run(link: Link, hub: Hub, ping_interval: Duration) {
    let mut backoff = Backoff::new(link.reconnect_max);
    let mut tracker = SequenceTracker::default();
    loop {
        if let Some((sink, stream)) = connect(&link).await {
            backoff.reset();
            // Whatever was published while we were away is gone: gap checks start afresh.
            tracker.forget_channels();
            let ended = Session {
                link: &link,
                hub: &hub,
                sink,
                tracker: &mut tracker,
            }
            .serve(stream, ping_interval)
            .await;
            link.bridge.subscribed.send_replace(HashSet::new());
            if ended == Ended::Shutdown {
                link.bridge.subscriber_up.send_replace(false);
                return;
            }
            super::Link::set_up(&link.bridge.subscriber_up, false, "subscriber");
        }
        if !link.pause(backoff.next_delay()).await {
            return;
        }
    }
}

async fn connect(link: &Link) -> Option<(PubSubSink, PubSubStream)> {
    let attempt = link.client.get_async_pubsub();
    match tokio::time::timeout(link.timeout, attempt).await {
        Ok(Ok(pubsub)) => Some(pubsub.split()),
        Ok(Err(err)) => {
            tracing::debug!(%err, "redis pub/sub connect failed");
            None
        }
        Err(_) => {
            tracing::debug!("redis pub/sub connect timed out");
            None
        }
    }
}

#[derive(Debug, PartialEq, Eq)]
enum Ended {
    Shutdown,
    ConnectionLost,
}

struct Session<'a> {
    link: &'a Link,
    hub: &'a Hub,
    sink: PubSubSink,
    tracker: &'a mut SequenceTracker,
}

impl Session<'_> {
    async fn serve(mut self, mut stream: PubSubStream, ping_interval: Duration) -> Ended {
        let mut subscribed = HashSet::new();
        if !self.sync_subscriptions(&mut subscribed).await {
            return Ended::ConnectionLost;
        }
        super::Link::set_up(&self.link.bridge.subscriber_up, true, "subscriber");
        let mut ping = tokio::time::interval(ping_interval);
        ping.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                biased;
                _ = self.link.shutdown.wait() => return Ended::Shutdown,
                msg = stream.next() => match msg {
                    Some(msg) => self.handle(&msg),
                    None => return Ended::ConnectionLost,
                },
                _ = self.hub.rooms_changed() => {
                    if !self.sync_subscriptions(&mut subscribed).await {
                        return Ended::ConnectionLost;
                    }
                }
                _ = ping.tick() => {
                    // A stalled Redis (SIGSTOP, a dead network path) sends nothing and closes
                    // nothing: only an unanswered PING reveals it.
                    let pong = self.sink.ping::<redis::Value>();
                    if !matches!(tokio::time::timeout(self.link.timeout, pong).await, Ok(Ok(_))) {
                        tracing::warn!("redis did not answer PING in time");
                        return Ended::ConnectionLost;
                    }
                }
            }
        }
    }

    /// Subscribes to what the hub needs now and unsubscribes from what it no longer needs.
    async fn sync_subscriptions(&mut self, subscribed: &mut HashSet<String>) -> bool {
        let channels = &self.link.bridge.channels;
        let mut wanted: HashSet<String> = self
            .hub
            .local_rooms()
            .into_iter()
            .map(|room| channels.name(&Target::Room(room)))
            .collect();
        wanted.insert(channels.name(&Target::Broadcast));
        wanted.insert(channels.control());

        let add: Vec<String> = wanted.difference(subscribed).cloned().collect();
        let remove: Vec<String> = subscribed.difference(&wanted).cloned().collect();
        let timeout = self.link.timeout;
        if !remove.is_empty() {
            // Unconfirmed before the UNSUBSCRIBE goes out: a client that joins one of these rooms
            // meanwhile must wait for the SUBSCRIBE that follows, not take the old one for it.
            subscribed.retain(|channel| !remove.contains(channel));
            self.link.bridge.subscribed.send_replace(subscribed.clone());
        }
        if !add.is_empty() {
            let ok = tokio::time::timeout(timeout, self.sink.subscribe(&add)).await;
            if !matches!(ok, Ok(Ok(()))) {
                tracing::warn!(channels = add.len(), "redis SUBSCRIBE failed");
                return false;
            }
        }
        if !remove.is_empty() {
            let ok = tokio::time::timeout(timeout, self.sink.unsubscribe(&remove)).await;
            if !matches!(ok, Ok(Ok(()))) {
                tracing::warn!(channels = remove.len(), "redis UNSUBSCRIBE failed");
                return false;
            }
            for channel in &remove {
                self.tracker.forget_channel(channel);
            }
        }
        *subscribed = wanted;
        self.link.bridge.subscribed.send_replace(subscribed.clone());
        true
    }

    fn handle(&mut self, msg: &redis::Msg) {
        let counters = &self.link.bridge.counters;
        let channel = msg.get_channel_name();
        if channel == self.link.bridge.channels.control() {
            return super::control::Control::apply(msg.get_payload_bytes(), self.hub);
        }
        let envelope = match envelope::decode(msg.get_payload_bytes()) {
            Ok(envelope) => envelope,
            Err(err) => {
                counters.undecodable.fetch_add(1, Ordering::Relaxed);
                tracing::warn!(%channel, %err, "dropping undecodable message from redis");
                return;
            }
        };
        let own = envelope.origin == self.link.instance_id;
        match self
            .tracker
            .observe(envelope.origin, channel, envelope.seq, envelope.n)
        {
            Verdict::Duplicate => {
                counters.duplicates_dropped.fetch_add(1, Ordering::Relaxed);
                return;
            }
            Verdict::Deliver { missed: 0 } => {}
            Verdict::Deliver { missed } => {
                counters.missed.fetch_add(missed, Ordering::Relaxed);
                tracing::warn!(%channel, origin = %envelope.origin, missed, "messages from another hub were lost");
            }
        }
        if own && envelope.local {
            counters.own_dropped.fetch_add(1, Ordering::Relaxed);
            return;
        }
        // Our own stored message: deliver it now, unless it was overdue and went out without
        // offset already; its sender must not get it back.
        let sender = match own {
            false => None,
            true => match envelope
                .id
                .and_then(|id| self.link.bridge.unconfirmed.take(id))
            {
                Some(entry) => Some(entry.sender),
                None => {
                    counters.own_dropped.fetch_add(1, Ordering::Relaxed);
                    return;
                }
            },
        };
        counters.received.fetch_add(1, Ordering::Relaxed);
        let frame = match (envelope.o, envelope.e) {
            (Some(offset), Some(epoch)) => Frame::stored_from(envelope.frame.get(), offset, epoch),
            (offset, _) => Frame::from_stored(envelope.frame.get(), offset),
        };
        match self.link.bridge.channels.target(channel) {
            Some(Target::Room(room)) => {
                self.hub.deliver(&room, &frame, sender.as_ref());
            }
            Some(Target::Broadcast) => {
                self.hub.deliver_all(&frame, sender.as_ref());
            }
            None => tracing::warn!(%channel, "message on an unknown channel"),
        }
        if !own {
            counters.timings.cross_hub_lag(envelope.t);
        }
    }
}
