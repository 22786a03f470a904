//! What the hub tells presence: every change of who is in which room (the feed), and its users
//! per room now.

use super::handle::Hub;
use super::room_users::{PresenceChange, PresenceFeed};
use crate::protocol::Room;

impl Hub {
    pub fn presence_feed(&self) -> &PresenceFeed {
        &self.0.presence
    }

    /// Every (room, user) on this hub with its connection count.
    pub fn presence_snapshot_by_room(&self) -> Vec<PresenceChange> {
        self.read().users.snapshot()
    }

    /// The users of `room` on this hub.
    pub fn room_users(&self, room: &Room) -> Vec<PresenceChange> {
        self.read().users.room(room)
    }

    pub fn user_count(&self) -> usize {
        self.read().users.users()
    }
}
