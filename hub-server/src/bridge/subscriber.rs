//! Brings messages in: one dedicated RESP3 connection, subscribed to the broadcast channel, the
//! control channel and the channel of every room with local members. Its pub/sub messages come
//! through the bounded [`inbound`](super::inbound) queue (what does not fit is shed and counted).
//! Drops duplicates (sequence) and this hub's own messages when they were already delivered here
//! (`local`), counts what was missed, and hands the rest to the hub in arrival order — in this
//! task, never a task per message, which would reorder them. Stored room messages of this hub
//! come back this way too, so every hub delivers a room's messages in the order of their offsets.
//!
//! Subscriptions follow the hub's room changes one by one (never by comparing every room), and a
//! fresh connection subscribes in chunks, each under `redis_timeout`, so 100k rooms resubscribe
//! without one giant command and joins waiting for an early chunk go on at once.
//!
//! On a Redis Cluster the connection is redis-rs's cluster connection (one socket per node, every
//! node's pushes into the same queue) and the subscriptions are sharded (SSUBSCRIBE, per slot, on
//! the slot's master only). redis-rs 1.8.1 subscribes again by itself when it refreshes its slot
//! map, but it refreshes only when a request meets MOVED or a broken connection, and a connection
//! that only receives never does. So the hub does not rely on it: a lost node connection ends the
//! session (its Disconnection push), and so does a change of slot ownership seen by the
//! topology check on every ping; the next session subscribes everything again on a fresh
//! connection that sees the new masters. What was published meanwhile is what `since` recovers.

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use super::channels::Target;
use super::control::Control;
use super::envelope;
use super::inbound::{self, Inbound, InboundReceiver};
use super::link::Link;
use super::sequence::{SequenceTracker, Verdict};
use crate::hub::Hub;
use crate::protocol::Frame;
use crate::redis_link::{Backoff, Conn, pause};

/// Channels per SUBSCRIBE / UNSUBSCRIBE command.
const CHUNK: usize = 1000;

/// How much the inbound queue holds; see [`inbound`].
#[derive(Debug, Clone, Copy)]
pub(super) struct InboundLimits {
    pub messages: usize,
    pub bytes: usize,
}

pub(super) async fn run(link: Link, hub: Hub, ping_interval: Duration, limits: InboundLimits) {
    let mut backoff = Backoff::new(link.redis.reconnect_max());
    let mut tracker = match link.bridge.channels.is_sharded() {
        true => SequenceTracker::per_channel(),
        false => SequenceTracker::default(),
    };
    loop {
        if let Some((conn, inbound)) = connect(&link, limits).await {
            backoff.reset();
            // Whatever was published while we were away is gone: gap checks start afresh.
            tracker.forget_channels();
            link.bridge.subscriber_connected.send_replace(true);
            let ended = Session {
                link: &link,
                hub: &hub,
                conn,
                tracker: &mut tracker,
            }
            .serve(inbound, ping_interval)
            .await;
            link.bridge.subscriber_connected.send_replace(false);
            link.bridge.subscribed.send_modify(|s| s.clear());
            if ended == Ended::Shutdown {
                link.bridge.subscriber_up.send_replace(false);
                return;
            }
            Link::set_up(&link.bridge.subscriber_up, false, "subscriber");
        }
        if !pause(&link.shutdown, backoff.next_delay()).await {
            return;
        }
    }
}

/// A RESP3 connection whose pub/sub messages go to a fresh bounded queue.
async fn connect(link: &Link, limits: InboundLimits) -> Option<(Conn, InboundReceiver)> {
    let bridge = link.bridge.clone();
    let on_shed: inbound::OnShed = Arc::new(move || {
        let shed = bridge.counters.inbound_shed.fetch_add(1, Ordering::Relaxed) + 1;
        if shed.is_power_of_two() {
            tracing::warn!(shed, "inbound queue full: messages from redis shed");
        }
    });
    let (tx, rx) = inbound::queue(limits.messages, limits.bytes, on_shed);
    let timeout = link.redis.timeout();
    let attempt = link.redis.target().connect_pubsub(timeout, tx);
    match tokio::time::timeout(timeout, attempt).await {
        Ok(Ok(conn)) => Some((conn, rx)),
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
    conn: Conn,
    tracker: &'a mut SequenceTracker,
}

impl Session<'_> {
    async fn serve(mut self, mut inbound: InboundReceiver, ping_interval: Duration) -> Ended {
        // Read before subscribing, so that a change while we subscribe is seen at the first check.
        let topology = self.topology().await;
        if !self.subscribe_all().await {
            return Ended::ConnectionLost;
        }
        Link::set_up(&self.link.bridge.subscriber_up, true, "subscriber");
        let mut ping = tokio::time::interval(ping_interval);
        ping.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                biased;
                _ = self.link.shutdown.wait() => return Ended::Shutdown,
                msg = inbound.recv() => match msg {
                    Some(msg) => self.handle(&msg),
                    None => return Ended::ConnectionLost,
                },
                _ = self.hub.rooms_changed() => {
                    if !self.follow_room_changes().await {
                        return Ended::ConnectionLost;
                    }
                }
                _ = ping.tick() => {
                    // A stalled Redis (SIGSTOP, a dead network path) sends nothing and closes
                    // nothing: only an unanswered PING reveals it.
                    let ping_cmd = redis::cmd("PING");
                    let pong = ping_cmd.query_async::<redis::Value>(&mut self.conn);
                    if !matches!(tokio::time::timeout(self.link.redis.timeout(), pong).await, Ok(Ok(_))) {
                        tracing::warn!("redis did not answer PING in time");
                        return Ended::ConnectionLost;
                    }
                    match (&topology, self.topology().await) {
                        (Some(before), Some(now)) if *before != now => {
                            tracing::warn!("redis cluster slots changed masters: subscribing again");
                            return Ended::ConnectionLost;
                        }
                        // The slots could not be read when this session subscribed (during a
                        // failover, typically): which masters it subscribed on is unknown, so
                        // subscribe again now that they can be.
                        (None, Some(_)) => {
                            tracing::warn!("redis cluster slots readable again: subscribing again");
                            return Ended::ConnectionLost;
                        }
                        _ => {}
                    }
                    self.tracker.expire();
                }
            }
        }
    }

    /// A Redis Cluster's slot ranges and their masters (`CLUSTER SLOTS`, from any node), sorted;
    /// `None` on one Redis or when no node answers in time (the PING judges the connection).
    async fn topology(&mut self) -> Option<Vec<(i64, i64, String)>> {
        if !self.conn.is_cluster() {
            return None;
        }
        let mut cmd = redis::cmd("CLUSTER");
        cmd.arg("SLOTS");
        let slots = cmd.query_async::<redis::Value>(&mut self.conn);
        let Ok(Ok(redis::Value::Array(ranges))) =
            tokio::time::timeout(self.link.redis.timeout(), slots).await
        else {
            return None;
        };
        let mut owners: Vec<(i64, i64, String)> = ranges
            .iter()
            .filter_map(|range| match range {
                redis::Value::Array(parts) => match (parts.first(), parts.get(1), parts.get(2)) {
                    (Some(redis::Value::Int(from)), Some(redis::Value::Int(to)), Some(master)) => {
                        Some((*from, *to, format!("{master:?}")))
                    }
                    _ => None,
                },
                _ => None,
            })
            .collect();
        owners.sort();
        Some(owners)
    }

    /// On a fresh connection: every room with local members, the broadcast and control channels.
    async fn subscribe_all(&mut self) -> bool {
        let channels = &self.link.bridge.channels;
        let mut wanted = vec![channels.name(&Target::Broadcast), channels.control()];
        wanted.extend(
            self.hub
                .resync_rooms()
                .into_iter()
                .map(|room| channels.name(&Target::Room(room))),
        );
        self.subscribe(wanted).await
    }

    /// Subscribes to rooms that got their first local member and unsubscribes from rooms that
    /// lost their last, since the last call.
    async fn follow_room_changes(&mut self) -> bool {
        let channels = &self.link.bridge.channels;
        let (mut add, mut remove) = (Vec::new(), Vec::new());
        {
            let subscribed = self.link.bridge.subscribed.borrow();
            for (room, present) in self.hub.take_room_changes() {
                let channel = channels.name(&Target::Room(room));
                match (present, subscribed.contains(&channel)) {
                    (true, false) => add.push(channel),
                    (false, true) => remove.push(channel),
                    _ => {}
                }
            }
        }
        self.unsubscribe(remove).await && self.subscribe(add).await
    }

    /// SUBSCRIBE in chunks; each chunk counts as subscribed (joins waiting for it go on) once
    /// Redis confirmed it.
    async fn subscribe(&mut self, channels: Vec<String>) -> bool {
        for chunk in channels.chunks(CHUNK) {
            let ok =
                tokio::time::timeout(self.link.redis.timeout(), self.conn.subscribe(chunk)).await;
            if !matches!(ok, Ok(Ok(()))) {
                tracing::warn!(channels = chunk.len(), "redis SUBSCRIBE failed");
                return false;
            }
            self.link
                .bridge
                .subscribed
                .send_modify(|s| s.extend(chunk.iter().cloned()));
        }
        true
    }

    /// UNSUBSCRIBE in chunks. Each channel stops counting as subscribed before its UNSUBSCRIBE
    /// goes out: a client that joins the room meanwhile waits for the SUBSCRIBE that follows, not
    /// for the old subscription on its way out.
    async fn unsubscribe(&mut self, channels: Vec<String>) -> bool {
        for chunk in channels.chunks(CHUNK) {
            self.link.bridge.subscribed.send_modify(|s| {
                for channel in chunk {
                    s.remove(channel);
                }
            });
            let ok =
                tokio::time::timeout(self.link.redis.timeout(), self.conn.unsubscribe(chunk)).await;
            if !matches!(ok, Ok(Ok(()))) {
                tracing::warn!(channels = chunk.len(), "redis UNSUBSCRIBE failed");
                return false;
            }
            for channel in chunk {
                self.tracker.forget_channel(channel);
            }
        }
        true
    }

    fn handle(&mut self, msg: &Inbound) {
        let counters = &self.link.bridge.counters;
        let Ok(channel) = std::str::from_utf8(&msg.channel) else {
            return;
        };
        if channel == self.link.bridge.channels.control() {
            return Control::apply(&msg.payload, self.hub);
        }
        // Still queued for a channel left since (its room lost its last member here): nobody
        // here wants it, and counting it would make the next subscription's first message look
        // like a gap — "lost" messages that were only published while nobody listened.
        if !self.link.bridge.subscribed.borrow().contains(channel) {
            return;
        }
        let envelope = match envelope::decode(&msg.payload) {
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
