//! Who is in which room on this hub, by user: the local half of presence. The hub updates it
//! under its lock with every join and leave and hands each change to the presence writer
//! through a bounded queue; when that queue is full the writer is told to resync from a
//! snapshot instead (nothing grows without bound, nothing is silently lost).

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, OnceLock};

use tokio::sync::{Notify, mpsc};

use crate::protocol::Room;

/// A user's connection count in a room on this hub changed to `count` (0: gone from here).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PresenceChange {
    pub room: Room,
    pub user: Arc<str>,
    pub name: Option<Arc<str>>,
    pub count: u32,
}

#[derive(Debug, Clone)]
struct UserCount {
    count: u32,
    name: Option<Arc<str>>,
}

#[derive(Debug, Default)]
pub struct RoomUsers {
    rooms: HashMap<Room, HashMap<Arc<str>, UserCount>>,
    /// In how many rooms each user is: its length is the hub's user count, read every heartbeat.
    users: HashMap<Arc<str>, u32>,
}

impl RoomUsers {
    pub fn add(&mut self, room: &Room, user: &Arc<str>, name: &Option<Arc<str>>) -> PresenceChange {
        let entry = self
            .rooms
            .entry(room.clone())
            .or_default()
            .entry(user.clone())
            .or_insert(UserCount {
                count: 0,
                name: name.clone(),
            });
        if entry.count == 0 {
            *self.users.entry(user.clone()).or_insert(0) += 1;
        }
        entry.count += 1;
        entry.name = name.clone();
        change(room, user, entry)
    }

    pub fn remove(&mut self, room: &Room, user: &Arc<str>) -> Option<PresenceChange> {
        let users = self.rooms.get_mut(room)?;
        let entry = users.get_mut(user)?;
        entry.count = entry.count.saturating_sub(1);
        let change = change(room, user, entry);
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
            .flat_map(|(room, users)| users.iter().map(move |(user, c)| change(room, user, c)))
            .collect()
    }

    /// The users of one room on this hub.
    pub fn room(&self, room: &Room) -> Vec<PresenceChange> {
        self.rooms
            .get(room)
            .map(|users| {
                users
                    .iter()
                    .map(|(user, c)| change(room, user, c))
                    .collect()
            })
            .unwrap_or_default()
    }

    pub fn users(&self) -> usize {
        self.users.len()
    }
}

fn change(room: &Room, user: &Arc<str>, c: &UserCount) -> PresenceChange {
    PresenceChange {
        room: room.clone(),
        user: user.clone(),
        name: c.name.clone(),
        count: c.count,
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
        assert_eq!(users.add(&r, &ana, &name).count, 1);
        assert_eq!(users.add(&r, &ana, &name).count, 2);
        let other = Room::parse("other").expect("room");
        users.add(&other, &ana, &name);
        assert_eq!(users.users(), 1, "one user in two rooms");
        assert_eq!(users.remove(&other, &ana).map(|c| c.count), Some(0));
        assert_eq!(users.users(), 1);
        assert_eq!(users.remove(&r, &ana).map(|c| c.count), Some(1));
        assert_eq!(users.remove(&r, &ana).map(|c| c.count), Some(0));
        assert!(users.snapshot().is_empty());
        assert_eq!(users.users(), 0);
        assert!(users.remove(&r, &ana).is_none());
    }
}
