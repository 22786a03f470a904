//! The rooms the bridge must be subscribed to: those with local members. The bridge follows
//! changes one by one (a room's first member in, its last out), never by comparing every room.

use std::collections::HashSet;
use std::sync::PoisonError;

use super::handle::Hub;
use crate::protocol::Room;

impl Hub {
    /// Rooms with at least one local member: what the bridge must be subscribed to.
    pub fn local_rooms(&self) -> Vec<Room> {
        self.read().rooms.keys().cloned().collect()
    }

    /// Every room with local members, for a fresh subscription (after a reconnect): what changed
    /// before this call is in it, so pending changes are dropped.
    pub fn resync_rooms(&self) -> Vec<Room> {
        self.room_changes().clear();
        self.local_rooms()
    }

    /// Rooms whose local membership came or went since the last call (or [`Hub::resync_rooms`]),
    /// each with whether it has local members now.
    pub fn take_room_changes(&self) -> Vec<(Room, bool)> {
        let changed = std::mem::take(&mut *self.room_changes());
        let state = self.read();
        changed
            .into_iter()
            .map(|room| {
                let present = state.rooms.contains_key(&room);
                (room, present)
            })
            .collect()
    }

    pub(super) fn room_changed(&self, rooms: impl IntoIterator<Item = Room>) {
        self.room_changes().extend(rooms);
        self.0.rooms_changed.notify_one();
    }

    fn room_changes(&self) -> std::sync::MutexGuard<'_, HashSet<Room>> {
        self.0
            .room_changes
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
    }

    pub async fn rooms_changed(&self) {
        self.0.rooms_changed.notified().await;
    }
}
