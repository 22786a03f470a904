//! Where a message goes once a session (or the server API) accepted it. Three ways, by where the
//! history lives:
//! - Redis: one atomic append-and-publish (the bridge's publisher), and every hub — this one too —
//!   delivers it when it comes back from Redis, so each hub delivers a room in offset order. While
//!   Redis is down it is delivered here at once, without offset, and stored when Redis is back;
//!   while Redis is merely slow, after `unconfirmed::PATIENCE` (local delivery never waits longer).
//! - memory (standalone): appended and delivered under the room's log lock.
//! - none (`history_size = 0`, for the hub or the room's namespace) and broadcasts: delivered here
//!   at once, then one PUBLISH (wave 1).

use tokio::sync::oneshot;

use crate::ack::{Ack, StoredAt};
use crate::bridge::{Bridge, BridgeState, Outgoing, Target};
use crate::error::ProtocolError;
use crate::history::History;
use crate::hub::ClientId;
use crate::protocol::{Frame, Room, User};
use crate::state::AppState;

/// A message accepted from a client or a backend.
pub struct Message {
    /// Who must not get it back: the sending client (for the API, an id no client has).
    pub sender: ClientId,
    /// `None`: a broadcast.
    pub room: Option<Room>,
    pub id: String,
    /// The chat frame, without offset.
    pub frame: Frame,
    /// Who wants to know where it was stored.
    pub ack: Option<Ack>,
}

pub fn send(state: &AppState, msg: Message) {
    let hub = &state.hub;
    let sender = Some(&msg.sender);
    // Where this room's history lives: a room whose namespace keeps none goes the third way.
    let history = match &msg.room {
        Some(room) => state.history.of(state.settings.namespaces.policy(room)),
        None => &History::Off,
    };
    match (msg.room, history) {
        (Some(room), History::Memory(memory)) => {
            let stored = memory.with_room(&room, |log| {
                let stored = log.append(&msg.frame);
                hub.deliver(&room, &stored, sender);
                StoredAt {
                    offset: stored.offset(),
                    epoch: Some(log.epoch().to_owned()),
                }
            });
            if let Some(ack) = msg.ack {
                ack.send(stored);
            }
        }
        (Some(room), History::Redis(_)) => {
            let Some(unconfirmed) = state.bridge.unconfirmed() else {
                return;
            };
            let down = state.bridge.state() != BridgeState::Up;
            if down {
                hub.deliver(&room, &msg.frame, sender);
            } else {
                let (frame, sender) = (msg.frame.clone(), msg.sender.clone());
                unconfirmed.push(msg.id.clone(), room.clone(), frame, sender, hub.seat_mark());
            }
            let out = Outgoing {
                target: Target::Room(room),
                id: msg.id,
                frame: msg.frame,
                sender: msg.sender.clone(),
                delivered_locally: down,
                store: true,
                ack: msg.ack,
            };
            if let Err(out) = state.bridge.publish(out) {
                // The bridge's queue is full (counted there). While Redis is down the local
                // members already have it (wave 1's outage behaviour): the sender hears it was
                // delivered, without offset, as for a broadcast (failing it would make a page send
                // it again, twice for those members). While Redis is up, the message goes nowhere:
                // delivering it here now would put it ahead of this room's older messages still on
                // their way round through Redis, so the sender is told it failed instead.
                unconfirmed.take(&out.id);
                if let Some(ack) = out.ack {
                    if down {
                        ack.send(StoredAt::nowhere());
                    } else {
                        ack.fail(&ProtocolError::Unavailable);
                    }
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
            if let Some(ack) = msg.ack {
                ack.send(StoredAt::nowhere());
            }
        }
    }
}

/// What the server API learns of a message it published.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Published {
    pub id: String,
    pub offset: Option<u64>,
    pub epoch: Option<String>,
}

/// Why the server API could not publish.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ApiPublishError {
    /// Redis is down (or did not answer within `redis_timeout`): nothing was published.
    #[error("redis is unavailable")]
    Unavailable,
}

/// Publishes `content` to `room` (or to everyone: `None`) on behalf of a backend, as `user`
/// (`{"id":"api"}` when none), and waits until it is stored (room messages with history) or
/// handed to Redis. Unlike a client's message, it is refused while Redis is down: the backend
/// gets a 503 and can retry, instead of a message only this hub's clients saw.
pub async fn from_api(
    state: &AppState,
    room: Option<Room>,
    content: &str,
    user: User<'_>,
) -> Result<Published, ApiPublishError> {
    if matches!(state.bridge, Bridge::Redis(_)) && state.bridge.state() != BridgeState::Up {
        return Err(ApiPublishError::Unavailable);
    }
    let id = uuid::Uuid::new_v4().to_string();
    let sender: ClientId = "api".into();
    let frame = Frame::chat(&id, room.as_ref(), &sender, user, content, state.hub.name());
    let (answer, stored) = oneshot::channel();
    let msg = Message {
        sender,
        room,
        id: id.clone(),
        frame,
        ack: Some(Ack::Api(answer)),
    };
    send(state, msg);
    let wait = state.settings.redis_timeout * 2;
    match tokio::time::timeout(wait, stored).await {
        Ok(Ok(Ok(stored))) => Ok(Published {
            id,
            offset: stored.offset,
            epoch: stored.epoch,
        }),
        _ => Err(ApiPublishError::Unavailable),
    }
}
