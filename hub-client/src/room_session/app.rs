//! The application's side of a room: its bounded buffer, the ids of messages it was given without
//! an offset (their stored copies, which come later with one, are dropped), and how many messages
//! the join in flight replayed.

use std::sync::Arc;

use crate::bounded_set::BoundedSet;
use crate::events::RoomEvent;
use crate::message::Message;
use crate::outbox::Outbox;
use crate::room_queue::{Pushed, RoomQueue};

/// The application's side of the room: its buffer, the ids it got, and what a re-join replayed.
#[derive(Debug)]
pub(super) struct AppSide {
    pub queue: Arc<RoomQueue>,
    /// Ids of messages delivered without an offset (the hub delivered them while Redis was down).
    /// A message with an offset needs no entry: the room's stream drops every offset it has
    /// accounted for, and a message that has an offset never comes again without one.
    pub seen: BoundedSet<String>,
    /// A join is in flight: its replayed messages are counted.
    pub counting: bool,
    pub replayed: u64,
}

/// Hands one message to the application, once: the client's own messages (which only a replay
/// shows) settle publishes instead, and copies are dropped. False when the buffer is full;
/// `backlog` is set when it is half full.
pub(super) fn deliver(
    app: &mut AppSide,
    outbox: &mut Outbox,
    own_ids: &BoundedSet<String>,
    backlog: &mut bool,
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
    let remember = (m.offset.is_none() && !m.id.is_empty()).then(|| m.id.clone());
    let replayed = m.replayed;
    match app.queue.push(RoomEvent::Message(m)) {
        Pushed::Refused => return false,
        Pushed::TakenHalfFull => *backlog = true,
        Pushed::Taken => {}
    }
    if let Some(id) = remember {
        app.seen.insert(id);
    }
    if app.counting && replayed {
        app.replayed += 1;
    }
    true
}
