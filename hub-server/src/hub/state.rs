//! What the hub's lock protects: every client with its rooms, every room with its members' seats,
//! and the users per room (the local half of presence).

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use super::members::Members;
use super::room_users::RoomUsers;
use crate::outbox::Recipient;
use crate::protocol::{Frame, Room};

/// A connection's id, unique per process (a UUID), shared by every map that names the client.
pub type ClientId = Arc<str>;

#[derive(Debug)]
pub(super) struct Member {
    pub(super) recipient: Recipient,
    pub(super) rooms: Vec<Room>,
    /// The user this connection belongs to (the client id itself when anonymous).
    pub(super) user: Arc<str>,
    pub(super) name: Option<Arc<str>>,
}

#[derive(Debug, Default)]
pub(super) struct State {
    pub(super) clients: HashMap<ClientId, Member>,
    pub(super) rooms: HashMap<Room, Members<ClientId, Seat>>,
    pub(super) users: RoomUsers,
}

/// A client's place in one room.
#[derive(Debug)]
pub(super) struct Seat {
    pub(super) recipient: Recipient,
    /// After a join's replay: room messages up to this offset are already in the client's queue
    /// (the replay had them), but the subscriber may still be working through its backlog of
    /// them. They are skipped until the first newer one passes; 0 when there is nothing to skip.
    pub(super) skip_through: AtomicU64,
    /// When the seat was taken, in the hub's count of seats (see [`Hub::seat_mark`]): a message
    /// handed on before then is not this member's to get live.
    ///
    /// [`Hub::seat_mark`]: super::Hub::seat_mark
    pub(super) seated: u64,
}

impl Seat {
    pub(super) fn new(recipient: Recipient, seated: u64) -> Self {
        Seat {
            recipient,
            skip_through: AtomicU64::new(0),
            seated,
        }
    }

    /// Whether `frame` is one the replay already gave this client.
    pub(super) fn replayed(&self, frame: &Frame) -> bool {
        let skip = self.skip_through.load(Ordering::Relaxed);
        match frame.offset() {
            _ if skip == 0 => false,
            Some(offset) if offset <= skip => true,
            Some(_) => {
                // Offsets reach a hub in order: once past, nothing older comes.
                self.skip_through.store(0, Ordering::Relaxed);
                false
            }
            None => false,
        }
    }
}

/// Removes one member; returns true when the room is now empty (and gone).
pub(super) fn remove_member(
    rooms: &mut HashMap<Room, Members<ClientId, Seat>>,
    room: &Room,
    client_id: &ClientId,
) -> bool {
    let Some(members) = rooms.get_mut(room) else {
        return false;
    };
    members.remove(client_id);
    if members.is_empty() {
        rooms.remove(room);
        return true;
    }
    false
}
