//! The application's side of a room: its bounded buffer, the message ids it was given (copies are
//! dropped), and how many messages the join in flight replayed.

use std::sync::Arc;

use crate::bounded_set::BoundedSet;
use crate::events::RoomEvent;
use crate::message::Message;
use crate::outbox::Outbox;
use crate::room_queue::RoomQueue;

/// The application's side of the room: its buffer, the ids it got, and what a re-join replayed.
#[derive(Debug)]
pub(super) struct AppSide {
    pub queue: Arc<RoomQueue>,
    pub seen: BoundedSet<String>,
    /// A join is in flight: its replayed messages are counted.
    pub counting: bool,
    pub replayed: u64,
}

/// Hands one message to the application, once: the client's own messages (which only a replay
/// shows) settle publishes instead, and copies are dropped. False when the buffer is full.
pub(super) fn deliver(
    app: &mut AppSide,
    outbox: &mut Outbox,
    own_ids: &BoundedSet<String>,
    room: &str,
    m: Message,
) -> bool {
    if own_ids.contains(m.from.as_str()) {
        outbox.match_stored(room, &m);
        return true;
    }
    if !m.id.is_empty() && app.seen.contains(m.id.as_str()) {
        return true;
    }
    let id = m.id.clone();
    let replayed = m.replayed;
    if !app.queue.push(RoomEvent::Message(m)) {
        return false;
    }
    if !id.is_empty() {
        app.seen.insert(id);
    }
    if app.counting && replayed {
        app.replayed += 1;
    }
    true
}
