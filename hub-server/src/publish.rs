//! Where a client's message goes once the session accepted it. Three ways, by where the history
//! lives:
//! - Redis: one atomic append-and-publish (the bridge's publisher), and every hub — this one too —
//!   delivers it when it comes back from Redis, so each hub delivers a room in offset order. While
//!   Redis is down it is delivered here at once, without offset, and stored when Redis is back;
//!   while Redis is merely slow, after `unconfirmed::PATIENCE` (local delivery never waits longer).
//! - memory (standalone): appended and delivered under the room's log lock.
//! - none (`history_size = 0`) and broadcasts: delivered here at once, then one PUBLISH (wave 1).

use crate::bridge::{Ack, Bridge, BridgeState, Outgoing, Target};
use crate::error::ProtocolError;
use crate::history::History;
use crate::hub::{ClientId, Recipient};
use crate::protocol::{Frame, Room};
use crate::state::AppState;

/// A message a session accepted from its client.
pub struct Message<'a> {
    pub sender: &'a ClientId,
    pub me: &'a Recipient,
    /// `None`: a broadcast.
    pub room: Option<Room>,
    pub id: String,
    /// The chat frame, without offset.
    pub frame: Frame,
    /// The client's `ref`: it wants an `ack`.
    pub reference: Option<String>,
}

pub fn send(state: &AppState, msg: Message<'_>) {
    let hub = &state.hub;
    let ack = msg.reference.map(|reference| Ack {
        to: msg.me.tx.downgrade(),
        reference,
        id: msg.id.clone(),
    });
    let sender = Some(msg.sender);
    match (msg.room, &state.history) {
        (Some(room), History::Memory(memory)) => {
            let offset = memory.with_room(&room, |log| {
                let stored = log.append(&msg.frame);
                hub.deliver(&room, &stored, sender);
                stored.offset()
            });
            if let Some(ack) = ack {
                ack.send(offset);
            }
        }
        (Some(room), History::Redis(_)) => {
            let Bridge::Redis(bridge) = &state.bridge else {
                return;
            };
            let down = state.bridge.state() != BridgeState::Up;
            if down {
                hub.deliver(&room, &msg.frame, sender);
            } else {
                let (frame, sender) = (msg.frame.clone(), msg.sender.clone());
                bridge
                    .unconfirmed
                    .push(msg.id.clone(), room.clone(), frame, sender);
            }
            let out = Outgoing {
                target: Target::Room(room),
                id: msg.id,
                frame: msg.frame,
                sender: msg.sender.clone(),
                delivered_locally: down,
                store: true,
                ack,
            };
            if let Err(out) = state.bridge.publish(out) {
                // The outage buffer is full: the local members at least get it now.
                let waiting = bridge.unconfirmed.take(&out.id);
                if let (Target::Room(room), Some(_)) = (&out.target, waiting) {
                    hub.deliver(room, &out.frame, sender);
                }
                if let Some(ack) = out.ack {
                    ack.fail(&ProtocolError::Unavailable);
                }
            }
        }
        (room, _) => {
            let target = match room {
                Some(room) => {
                    hub.deliver(&room, &msg.frame, sender);
                    Target::Room(room)
                }
                None => {
                    hub.deliver_all(&msg.frame, sender);
                    Target::Broadcast
                }
            };
            let out = Outgoing {
                target,
                id: msg.id,
                frame: msg.frame,
                sender: msg.sender.clone(),
                delivered_locally: true,
                store: false,
                ack: None,
            };
            // Overflow is counted by the bridge; local delivery already happened.
            let _ = state.bridge.publish(out);
            if let Some(ack) = ack {
                ack.send(None);
            }
        }
    }
}
