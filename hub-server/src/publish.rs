//! Where a message goes once a session (or the server API) accepted it. Three ways, by where the
//! history lives:
//! - Redis: one atomic append-and-publish (the bridge's publisher), and every hub — this one too —
//!   delivers it when it comes back from Redis, so each hub delivers a room in offset order. While
//!   Redis is down it is delivered here at once, without offset, and stored when Redis is back;
//!   while Redis is merely slow, after `unconfirmed::PATIENCE` (local delivery never waits longer).
//!   A server API message is the exception: its caller waits for the append anyway and may
//!   withdraw it if it has not gone to Redis in time (then it reaches nobody, and the caller is
//!   told so truthfully), so it is held here as long as the caller may wait.
//! - memory (standalone): appended and delivered under the room's log lock.
//! - none (`history_size = 0`, for the hub or the room's namespace) and broadcasts: delivered here
//!   at once, then one PUBLISH (wave 1).

use std::time::Duration;

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
            // A server API call waits for the append anyway: its message reaches this hub's
            // members as it reaches the others', from Redis with its offset — never early
            // without one, which its caller might then be told was not published.
            if down {
                hub.deliver(&room, &msg.frame, sender);
            } else {
                let (frame, from) = (msg.frame.clone(), msg.sender.clone());
                let (id, mark) = (msg.id.clone(), hub.seat_mark());
                match msg.ack.as_ref().and_then(Ack::handover) {
                    Some(handover) => {
                        let patience = api_wait(state) * 2 + Duration::from_secs(1);
                        unconfirmed.push_api(
                            id,
                            room.clone(),
                            frame,
                            from,
                            mark,
                            handover,
                            patience,
                        );
                    }
                    None => unconfirmed.push(id, room.clone(), frame, from, mark),
                }
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
    /// Redis is down (or the message waited 2 × `redis_timeout` without going to it, and was
    /// withdrawn): nothing was published.
    #[error("redis is unavailable")]
    Unavailable,
    /// The message went to Redis but no reply came in 4 × `redis_timeout`: it may be stored.
    #[error("redis did not confirm in time")]
    Unconfirmed,
}

/// How long a server API call waits for its message to go to Redis before it withdraws it, and
/// then (when it went) for Redis's reply.
fn api_wait(state: &AppState) -> Duration {
    state.settings.redis_timeout * 2
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
    let (ack, mut stored, handover) = Ack::api();
    let msg = Message {
        sender,
        room,
        id: id.clone(),
        frame,
        ack: Some(ack),
    };
    send(state, msg);
    let wait = api_wait(state);
    let answer = match tokio::time::timeout(wait, &mut stored).await {
        Ok(answer) => answer,
        // Not sent yet (Redis is down or far behind): withdrawn, so it never will be.
        Err(_) if handover.withdraw() => return Err(ApiPublishError::Unavailable),
        // On its way to Redis, so possibly stored: its answer, for as long again.
        Err(_) => match tokio::time::timeout(wait, &mut stored).await {
            Ok(answer) => answer,
            Err(_) => return Err(ApiPublishError::Unconfirmed),
        },
    };
    match answer {
        Ok(Ok(stored)) => Ok(Published {
            id,
            offset: stored.offset,
            epoch: stored.epoch,
        }),
        _ => Err(ApiPublishError::Unavailable),
    }
}
