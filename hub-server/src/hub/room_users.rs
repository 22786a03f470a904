//! Who is in which room on this hub, by user: the local half of presence. The hub updates it
//! under its lock with every join and leave and hands each change to the presence writer
//! through a bounded queue; when that queue is full the writer is told to resync from a
//! snapshot instead (nothing grows without bound, nothing is silently lost).

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, OnceLock};

use tokio::sync::{Notify, mpsc};

use crate::namespace::PresenceMode;
use crate::protocol::Room;

/// A user's connection count in a room on this hub changed to `count` (0: gone from here).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PresenceChange {
    pub room: Room,
    pub user: Arc<str>,
    pub name: Option<Arc<str>>,
    pub count: u32,
    /// The room's first joins and last leaves are announced (`presence_diff`); false for a room
    /// whose namespace sets `presence_events = false`.
    pub events: bool,
}

#[derive(Debug, Clone)]
struct UserCount {
    count: u32,
    name: Option<Arc<str>>,
}

/// One room's users, and whether their comings and goings are announced.
#[derive(Debug)]
struct RoomEntry {
    users: HashMap<Arc<str>, UserCount>,
    events: bool,
}

/// Only rooms with presence are here: a room whose namespace sets `presence = false` (personal
/// rooms, by default) costs nothing in this map, in the presence writer or in Redis.
#[derive(Debug, Default)]
pub struct RoomUsers {
    rooms: HashMap<Room, RoomEntry>,
    /// In how many rooms each user is: its length is the hub's user count, read every heartbeat.
    users: HashMap<Arc<str>, u32>,
}

impl RoomUsers {
    /// One more connection of `user` in `room`; `None` (nothing counted) when the room has no
    /// presence.
    pub fn add(
        &mut self,
        room: &Room,
        user: &Arc<str>,
        name: &Option<Arc<str>>,
        presence: PresenceMode,
    ) -> Option<PresenceChange> {
        let events = match presence {
            PresenceMode::Off => return None,
            PresenceMode::Quiet => false,
            PresenceMode::Events => true,
        };
        let room_entry = self.rooms.entry(room.clone()).or_insert_with(|| RoomEntry {
            users: HashMap::new(),
            events,
        });
        let events = room_entry.events;
        let entry = room_entry.users.entry(user.clone()).or_insert(UserCount {
            count: 0,
            name: name.clone(),
        });
        if entry.count == 0 {
            *self.users.entry(user.clone()).or_insert(0) += 1;
        }
        entry.count += 1;
        entry.name = name.clone();
        Some(change(room, user, entry, events))
    }

    /// One connection of `user` fewer in `room`; `None` when the room has no presence here.
    pub fn remove(&mut self, room: &Room, user: &Arc<str>) -> Option<PresenceChange> {
        let room_entry = self.rooms.get_mut(room)?;
        let events = room_entry.events;
        let users = &mut room_entry.users;
        let entry = users.get_mut(user)?;
        entry.count = entry.count.saturating_sub(1);
        let change = change(room, user, entry, events);
        if entry.count == 0 {
            users.remove(user);
            if users.is_empty() {
                self.rooms.remove(room);
            }
            if let Some(rooms) = self.users.get_mut(user) {
                *rooms -= 1;
                if *rooms == 0 {
                    self.users.remove(user);
                }
            }
        }
        Some(change)
    }

    /// Every (room, user) with its count: what a resync writes.
    pub fn snapshot(&self) -> Vec<PresenceChange> {
        self.rooms
            .iter()
            .flat_map(|(room, entry)| {
                let events = entry.events;
                entry
                    .users
                    .iter()
                    .map(move |(user, c)| change(room, user, c, events))
            })
            .collect()
    }

    /// The users of one room on this hub.
    pub fn room(&self, room: &Room) -> Vec<PresenceChange> {
        self.rooms
            .get(room)
            .map(|entry| {
                entry
                    .users
                    .iter()
                    .map(|(user, c)| change(room, user, c, entry.events))
                    .collect()
            })
            .unwrap_or_default()
    }

    pub fn users(&self) -> usize {
        self.users.len()
    }
}

fn change(room: &Room, user: &Arc<str>, c: &UserCount, events: bool) -> PresenceChange {
    PresenceChange {
        room: room.clone(),
        user: user.clone(),
        name: c.name.clone(),
        count: c.count,
        events,
    }
}

/// The bounded queue of changes from the hub to the presence writer.
#[derive(Debug, Default)]
pub struct PresenceFeed {
    tx: OnceLock<mpsc::Sender<PresenceChange>>,
    /// A change did not fit: the writer must resync from a snapshot.
    lost: AtomicBool,
    lost_notify: Notify,
}

impl PresenceFeed {
    /// The writer's end; the hub sends nothing until someone subscribes.
    pub fn subscribe(&self, capacity: usize) -> mpsc::Receiver<PresenceChange> {
        let (tx, rx) = mpsc::channel(capacity);
        let _ = self.tx.set(tx);
        rx
    }

    pub fn send(&self, changes: Vec<PresenceChange>) {
        let Some(tx) = self.tx.get() else { return };
        for change in changes {
            if tx.try_send(change).is_err() {
                self.lost.store(true, Ordering::Relaxed);
                self.lost_notify.notify_one();
                return;
            }
        }
    }

    /// Whether changes were lost since the last call (then: resync).
    pub fn take_lost(&self) -> bool {
        self.lost.swap(false, Ordering::Relaxed)
    }

    pub async fn lost(&self) {
        self.lost_notify.notified().await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_go_up_and_down_per_room_and_user_and_empty_entries_go() {
        let mut users = RoomUsers::default();
        let r = Room::parse("r").expect("room");
        let ana: Arc<str> = "ana".into();
        let name = Some(Arc::from("Ana"));
        let events = PresenceMode::Events;
        let count = |c: Option<PresenceChange>| c.expect("counted").count;
        assert_eq!(count(users.add(&r, &ana, &name, events)), 1);
        assert_eq!(count(users.add(&r, &ana, &name, events)), 2);
        let other = Room::parse("other").expect("room");
        users.add(&other, &ana, &name, events);
        assert_eq!(users.users(), 1, "one user in two rooms");
        assert_eq!(users.remove(&other, &ana).map(|c| c.count), Some(0));
        assert_eq!(users.users(), 1);
        assert_eq!(users.remove(&r, &ana).map(|c| c.count), Some(1));
        assert_eq!(users.remove(&r, &ana).map(|c| c.count), Some(0));
        assert!(users.snapshot().is_empty());
        assert_eq!(users.users(), 0);
        assert!(users.remove(&r, &ana).is_none());
    }

    #[test]
    fn rooms_without_presence_are_not_counted_and_quiet_ones_say_so() {
        let mut users = RoomUsers::default();
        let ana: Arc<str> = "ana".into();
        let personal = Room::parse("user:ana").expect("room");
        assert_eq!(users.add(&personal, &ana, &None, PresenceMode::Off), None);
        assert_eq!(users.remove(&personal, &ana), None);
        assert!(users.snapshot().is_empty());
        assert_eq!(users.users(), 0);
        let live = Room::parse("live:1").expect("room");
        let joined = users.add(&live, &ana, &None, PresenceMode::Quiet);
        assert_eq!(joined.map(|c| (c.count, c.events)), Some((1, false)));
        let left = users.remove(&live, &ana);
        assert_eq!(left.map(|c| (c.count, c.events)), Some((0, false)));
    }
}
