//! What a message from Redis does here: control orders are carried out; a room or broadcast
//! message is dropped when its channel was left meanwhile, when it is a duplicate (a batch
//! re-sent after a failure) or this hub's own already delivered (`local`); gaps in another hub's
//! per-channel count are counted as missed; the rest goes to the hub, in arrival order — in the
//! subscriber's task, never a task per message, which would reorder them. Stored room messages of
//! this hub come back this way too, so every hub delivers a room's messages in the order of their
//! offsets.

use std::sync::atomic::Ordering;

use super::catch_up::{CatchUp, Held, hashed};
use super::channels::Target;
use super::control::Control;
use super::envelope;
use super::inbound::Inbound;
use super::link::Link;
use super::sequence::{SequenceTracker, Verdict};
use crate::hub::Hub;
use crate::protocol::{Frame, Room};

pub(super) struct Receiver<'a> {
    pub link: &'a Link,
    pub hub: &'a Hub,
    pub tracker: &'a mut SequenceTracker,
    pub catch_up: &'a mut CatchUp,
}

impl Receiver<'_> {
    pub fn handle(&mut self, msg: &Inbound) {
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
                    // Delivered already (late, without offset): the room's position moves past
                    // it all the same — but not under a history read on its way, which must
                    // still deliver what is older (it skips this one by its id).
                    if let (Some(offset), Some(epoch)) = (envelope.o, envelope.e)
                        && !self.catch_up.holding(channel)
                    {
                        self.catch_up.delivered(channel, offset, epoch);
                    }
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
            Some(Target::Room(room)) if self.catch_up.holding(channel) => {
                let message = Held {
                    frame,
                    sender,
                    epoch: envelope.e.map(hashed),
                };
                if let Some(all) = self.catch_up.hold(channel, message) {
                    counters.catch_up_failed.fetch_add(1, Ordering::Relaxed);
                    tracing::warn!(%channel, "room too busy to hold while its history is read: its members recover the gap");
                    deliver_held(self.hub, &room, all);
                }
            }
            Some(Target::Room(room)) => {
                if let (Some(offset), Some(epoch)) = (envelope.o, envelope.e) {
                    if self.catch_up.caught_already(channel, offset, epoch) {
                        counters.duplicates_dropped.fetch_add(1, Ordering::Relaxed);
                        return;
                    }
                    self.catch_up.delivered(channel, offset, epoch);
                }
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

/// Delivers `messages` to `room`'s members, in this order.
pub(super) fn deliver_held(hub: &Hub, room: &Room, messages: Vec<Held>) {
    for message in messages {
        hub.deliver(room, &message.frame, message.sender.as_ref());
    }
}
