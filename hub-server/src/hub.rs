//! The hub: who is connected, who is in which room, and local delivery.
//!
//! `Hub` is a cheap cloneable handle (no global state). Delivery takes a read lock, hands each
//! recipient a shared [`Frame`] with `try_send` (never `.await`), and flags a full queue as a slow
//! consumer without waiting for it. Cross-hub traffic is the bridge's business: the hub only tells
//! it what to publish and which rooms have local members.

use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, OnceLock, PoisonError, RwLock, RwLockReadGuard, RwLockWriteGuard};

use tokio::sync::{Notify, mpsc};
use uuid::Uuid;

use crate::error::{CloseReason, ProtocolError};
use crate::protocol::{Frame, Room};
use crate::room_users::{PresenceChange, PresenceFeed, RoomUsers};
use crate::writer::QueuedBytes;

pub type ClientId = Arc<str>;

/// Tells a session to close, from anywhere, without waiting: the first reason wins.
#[derive(Debug, Default)]
pub struct Kick {
    reason: OnceLock<CloseReason>,
    notify: Notify,
}

impl Kick {
    pub fn close(&self, reason: CloseReason) {
        if self.reason.set(reason).is_ok() {
            // notify_one keeps a permit, so a session not yet waiting still sees it.
            self.notify.notify_one();
        }
    }

    pub async fn wait(&self) -> CloseReason {
        loop {
            if let Some(reason) = self.reason.get() {
                return *reason;
            }
            self.notify.notified().await;
        }
    }
}

/// How the hub reaches one client: its bounded queue, the bytes in it, and its kick switch.
#[derive(Debug, Clone)]
pub struct Recipient {
    pub tx: mpsc::Sender<Frame>,
    /// Bytes waiting in `tx`, against `send_queue_bytes` (the writer gives them back).
    pub queued: Arc<QueuedBytes>,
    pub kick: Arc<Kick>,
}

impl Recipient {
    /// Queues `frame`; a queue full in frames or in bytes closes the client as a slow consumer.
    /// Returns whether queued.
    pub fn offer(&self, frame: &Frame) -> bool {
        let len = frame.as_str().len();
        if !self.queued.try_add(len) {
            if !self.tx.is_closed() {
                self.kick.close(CloseReason::SlowConsumer);
            }
            return false;
        }
        match self.tx.try_send(frame.clone()) {
            Ok(()) => true,
            Err(mpsc::error::TrySendError::Full(_)) => {
                self.queued.release(len);
                self.kick.close(CloseReason::SlowConsumer);
                false
            }
            Err(mpsc::error::TrySendError::Closed(_)) => {
                self.queued.release(len);
                false
            }
        }
    }
}

#[derive(Debug)]
struct Member {
    recipient: Recipient,
    rooms: Vec<Room>,
    /// The user this connection belongs to (the client id itself when anonymous).
    user: Arc<str>,
    name: Option<Arc<str>>,
}

/// What a join did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Joined {
    /// The room's first local member: the bridge subscribes to it.
    NewRoom,
    Member,
    /// Nothing: the client was in the room already.
    AlreadyMember,
}

/// A client the session admitted, as the hub registers it.
#[derive(Debug)]
pub struct Newcomer {
    pub client_id: ClientId,
    pub recipient: Recipient,
    pub user: Arc<str>,
    pub name: Option<Arc<str>>,
    /// A member of the default room from the start (when the grants allow it).
    pub in_default_room: bool,
}

#[derive(Debug, Default)]
struct State {
    clients: HashMap<ClientId, Member>,
    rooms: HashMap<Room, HashMap<ClientId, Seat>>,
    users: RoomUsers,
}

/// A client's place in one room.
#[derive(Debug)]
struct Seat {
    recipient: Recipient,
    /// After a join's replay: room messages up to this offset are already in the client's queue
    /// (the replay had them), but the subscriber may still be working through its backlog of
    /// them. They are skipped until the first newer one passes; 0 when there is nothing to skip.
    skip_through: AtomicU64,
}

impl Seat {
    fn new(recipient: Recipient) -> Self {
        Seat {
            recipient,
            skip_through: AtomicU64::new(0),
        }
    }

    /// Whether `frame` is one the replay already gave this client.
    fn replayed(&self, frame: &Frame) -> bool {
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

#[derive(Debug, Default)]
pub struct Counters {
    pub delivered: AtomicU64,
    pub received: AtomicU64,
    pub slow_consumers: AtomicU64,
}

#[derive(Debug)]
struct Inner {
    name: String,
    instance_id: Uuid,
    max_rooms_per_client: usize,
    state: RwLock<State>,
    /// Woken when the set of rooms with local members changes (the bridge resubscribes).
    rooms_changed: Notify,
    /// Rooms that got their first local member or lost their last since the bridge last asked
    /// ([`Hub::take_room_changes`]): it subscribes per change, never by comparing every room.
    /// At most one entry per room.
    room_changes: Mutex<HashSet<Room>>,
    /// Every change of who is in which room, for the presence writer.
    presence: PresenceFeed,
    counters: Counters,
}

#[derive(Debug, Clone)]
pub struct Hub(Arc<Inner>);

impl Hub {
    pub fn new(name: String, max_rooms_per_client: usize) -> Self {
        Hub(Arc::new(Inner {
            name,
            // A fresh id per process: two hubs configured with one name still tell each other apart.
            instance_id: Uuid::new_v4(),
            max_rooms_per_client,
            state: RwLock::default(),
            rooms_changed: Notify::new(),
            room_changes: Mutex::default(),
            presence: PresenceFeed::default(),
            counters: Counters::default(),
        }))
    }

    pub fn name(&self) -> &str {
        &self.0.name
    }

    pub fn instance_id(&self) -> Uuid {
        self.0.instance_id
    }

    pub fn counters(&self) -> &Counters {
        &self.0.counters
    }

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

    fn read(&self) -> RwLockReadGuard<'_, State> {
        self.0.state.read().unwrap_or_else(PoisonError::into_inner)
    }

    fn write(&self) -> RwLockWriteGuard<'_, State> {
        self.0.state.write().unwrap_or_else(PoisonError::into_inner)
    }

    /// Adds a client; a member of the default room from the start when `in_default_room`.
    pub fn register(&self, newcomer: Newcomer) {
        let Newcomer {
            client_id,
            recipient,
            user,
            name,
            in_default_room,
        } = newcomer;
        let room = Room::default_room();
        let mut changes = Vec::new();
        let new_room = {
            let mut state = self.write();
            let mut new_room = None;
            if in_default_room {
                let members = state.rooms.entry(room.clone()).or_default();
                new_room = members.is_empty().then(|| room.clone());
                members.insert(client_id.clone(), Seat::new(recipient.clone()));
                changes.push(state.users.add(&room, &user, &name));
            }
            state.clients.insert(
                client_id,
                Member {
                    recipient,
                    rooms: if in_default_room { vec![room] } else { vec![] },
                    user,
                    name,
                },
            );
            new_room
        };
        if let Some(room) = new_room {
            self.room_changed([room]);
        }
        self.0.presence.send(changes);
    }

    /// The one cleanup path of a client: out of every room, out of the hub. Dropping the hub's
    /// `Sender` clones is what lets the session's writer finish.
    pub fn remove(&self, client_id: &ClientId) {
        let mut changes = Vec::new();
        let emptied = {
            let mut state = self.write();
            let Some(member) = state.clients.remove(client_id) else {
                return;
            };
            let mut emptied = Vec::new();
            for room in member.rooms {
                changes.extend(state.users.remove(&room, &member.user));
                if remove_member(&mut state.rooms, &room, client_id) {
                    emptied.push(room);
                }
            }
            emptied
        };
        self.0.presence.send(changes);
        if !emptied.is_empty() {
            self.room_changed(emptied);
        }
    }

    /// Joins a room; joining a room twice is harmless. Returns true when the room just got its
    /// first local member (the bridge must subscribe before cross-hub messages can arrive).
    pub fn join(&self, client_id: &ClientId, room: &Room) -> Result<bool, ProtocolError> {
        self.join_via(client_id, room, None)
            .map(|joined| joined == Joined::NewRoom)
    }

    /// Joins `room`, with `via` (when given) standing in for the client's own queue: live
    /// messages wait there while a join replays history, until [`Hub::settle`]. A client already
    /// in the room stays as it is: it keeps receiving, and a replay may repeat what it has.
    pub fn join_via(
        &self,
        client_id: &ClientId,
        room: &Room,
        via: Option<Recipient>,
    ) -> Result<Joined, ProtocolError> {
        let mut changes = Vec::new();
        let joined = {
            let mut state = self.write();
            let State {
                clients,
                rooms,
                users,
            } = &mut *state;
            let Some(member) = clients.get_mut(client_id) else {
                return Ok(Joined::AlreadyMember);
            };
            if member.rooms.contains(room) {
                return Ok(Joined::AlreadyMember);
            }
            if member.rooms.len() >= self.0.max_rooms_per_client {
                return Err(ProtocolError::TooManyRooms(self.0.max_rooms_per_client));
            }
            member.rooms.push(room.clone());
            let members = rooms.entry(room.clone()).or_default();
            let recipient = via.unwrap_or_else(|| member.recipient.clone());
            members.insert(client_id.clone(), Seat::new(recipient));
            changes.push(users.add(room, &member.user, &member.name));
            if members.len() == 1 {
                Joined::NewRoom
            } else {
                Joined::Member
            }
        };
        if joined == Joined::NewRoom {
            self.room_changed([room.clone()]);
        }
        self.0.presence.send(changes);
        Ok(joined)
    }

    /// Ends a [`Hub::join_via`] of a new member: moves what waited in `buffer` to the client's own queue — only
    /// frames after offset `after` (the replay had the rest) — and points the membership back at
    /// the client, still skipping what the replay had. Under the write lock, so no delivery can
    /// slip in between and pass them.
    pub fn settle(
        &self,
        client_id: &ClientId,
        room: &Room,
        buffer: &mut mpsc::Receiver<Frame>,
        after: Option<u64>,
    ) {
        let mut state = self.write();
        let State { clients, rooms, .. } = &mut *state;
        let Some(member) = clients.get(client_id) else {
            return;
        };
        while let Ok(frame) = buffer.try_recv() {
            let new = match (frame.offset(), after) {
                (Some(offset), Some(after)) => offset > after,
                _ => true,
            };
            if new {
                member.recipient.offer(&frame);
            }
        }
        if let Some(members) = rooms.get_mut(room)
            && let Some(seat) = members.get_mut(client_id)
        {
            seat.recipient = member.recipient.clone();
            *seat.skip_through.get_mut() = after.unwrap_or(0);
        }
    }

    pub fn leave(&self, client_id: &ClientId, room: &Room) -> Result<(), ProtocolError> {
        let (emptied, change) = {
            let mut state = self.write();
            let State {
                clients,
                rooms,
                users,
            } = &mut *state;
            let member = clients
                .get_mut(client_id)
                .filter(|m| m.rooms.contains(room))
                .ok_or_else(|| ProtocolError::NotMember(room.to_string()))?;
            member.rooms.retain(|r| r != room);
            let change = users.remove(room, &member.user);
            (remove_member(rooms, room, client_id), change)
        };
        if emptied {
            self.room_changed([room.clone()]);
        }
        self.0.presence.send(change.into_iter().collect());
        Ok(())
    }

    /// Queues `frame` for every local member of `room` except `except`. Returns how many got it.
    pub fn deliver(&self, room: &Room, frame: &Frame, except: Option<&ClientId>) -> usize {
        let state = self.read();
        let Some(members) = state.rooms.get(room) else {
            return 0;
        };
        let seats = members
            .iter()
            .filter(|(_, seat)| !seat.replayed(frame))
            .map(|(id, seat)| (id, &seat.recipient));
        self.offer_all(seats, frame, except)
    }

    /// Queues `frame` for every local client except `except`.
    pub fn deliver_all(&self, frame: &Frame, except: Option<&ClientId>) -> usize {
        let state = self.read();
        let recipients = state.clients.iter().map(|(id, m)| (id, &m.recipient));
        self.offer_all(recipients, frame, except)
    }

    fn offer_all<'a>(
        &self,
        recipients: impl Iterator<Item = (&'a ClientId, &'a Recipient)>,
        frame: &Frame,
        except: Option<&ClientId>,
    ) -> usize {
        let (mut delivered, mut slow) = (0u64, 0u64);
        for (id, recipient) in recipients {
            if Some(id) == except {
                continue;
            }
            if recipient.offer(frame) {
                delivered += 1;
            } else if !recipient.tx.is_closed() {
                slow += 1;
            }
        }
        let c = &self.0.counters;
        c.delivered.fetch_add(delivered, Ordering::Relaxed);
        if slow > 0 {
            c.slow_consumers.fetch_add(slow, Ordering::Relaxed);
        }
        delivered as usize
    }

    /// The rooms `client_id` is in.
    pub fn rooms_of(&self, client_id: &ClientId) -> Vec<Room> {
        self.read()
            .clients
            .get(client_id)
            .map(|m| m.rooms.clone())
            .unwrap_or_default()
    }

    /// Closes every local connection of `user` with `reason`; returns how many.
    pub fn kick_user(&self, user: &str, reason: CloseReason) -> usize {
        let state = self.read();
        let mut kicked = 0;
        for member in state.clients.values().filter(|m| &*m.user == user) {
            member.recipient.kick.close(reason);
            kicked += 1;
        }
        kicked
    }

    pub fn connections(&self) -> usize {
        self.read().clients.len()
    }

    pub fn room_count(&self) -> usize {
        self.read().rooms.len()
    }

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

    fn room_changed(&self, rooms: impl IntoIterator<Item = Room>) {
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

/// Removes one member; returns true when the room is now empty (and gone).
fn remove_member(
    rooms: &mut HashMap<Room, HashMap<ClientId, Seat>>,
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

#[cfg(test)]
mod tests {
    use super::*;

    fn client(hub: &Hub, id: &str, queue: usize) -> (ClientId, mpsc::Receiver<Frame>, Arc<Kick>) {
        let (tx, rx) = mpsc::channel(queue);
        let kick = Arc::new(Kick::default());
        let id: ClientId = id.into();
        let recipient = Recipient {
            tx,
            queued: QueuedBytes::new(usize::MAX),
            kick: kick.clone(),
        };
        hub.register(Newcomer {
            client_id: id.clone(),
            recipient,
            user: id.clone(),
            name: None,
            in_default_room: true,
        });
        (id, rx, kick)
    }

    fn room(name: &str) -> Room {
        Room::parse(name).expect("valid")
    }

    #[test]
    fn delivery_reaches_members_but_not_the_sender_or_other_rooms() {
        let hub = Hub::new("h".into(), 10);
        let (a, mut rx_a, _) = client(&hub, "a", 8);
        let (b, mut rx_b, _) = client(&hub, "b", 8);
        let (c, mut rx_c, _) = client(&hub, "c", 8);
        hub.join(&b, &room("r")).expect("join");
        hub.join(&a, &room("r")).expect("join");
        hub.leave(&c, &room("general")).expect("leave");

        let frame = Frame::pong();
        assert_eq!(hub.deliver(&room("r"), &frame, Some(&a)), 1);
        assert_eq!(rx_b.try_recv().ok(), Some(frame.clone()));
        assert!(rx_a.try_recv().is_err());
        assert!(rx_c.try_recv().is_err());
        assert_eq!(hub.deliver_all(&frame, Some(&a)), 2);
        let _ = c;
    }

    #[test]
    fn rooms_appear_and_disappear_with_their_members() {
        let hub = Hub::new("h".into(), 10);
        let (a, _rx, _) = client(&hub, "a", 8);
        assert!(hub.join(&a, &room("x")).expect("join"), "first member");
        assert!(
            !hub.join(&a, &room("x")).expect("join"),
            "joining twice is harmless"
        );
        assert!(hub.local_rooms().contains(&room("x")));
        hub.leave(&a, &room("x")).expect("leave");
        assert!(!hub.local_rooms().contains(&room("x")));
        assert_eq!(hub.leave(&a, &room("x")).unwrap_err().code(), "not_member");
        hub.remove(&a);
        assert_eq!(hub.connections(), 0);
        assert_eq!(hub.room_count(), 0);
    }

    #[test]
    fn a_full_queue_kicks_the_slow_consumer_only() {
        let hub = Hub::new("h".into(), 10);
        let (_slow, _rx_slow, kick_slow) = client(&hub, "slow", 1);
        let (_fast, mut rx_fast, kick_fast) = client(&hub, "fast", 8);
        let frame = Frame::pong();
        hub.deliver(&room("general"), &frame, None);
        rx_fast.try_recv().expect("fast got the first");
        hub.deliver(&room("general"), &frame, None);
        assert_eq!(kick_slow.reason.get(), Some(&CloseReason::SlowConsumer));
        assert_eq!(kick_fast.reason.get(), None);
        assert!(
            rx_fast.try_recv().is_ok(),
            "the fast client is not held back"
        );
    }

    #[test]
    fn a_buffered_join_settles_without_gap_or_duplicate_even_when_the_backlog_comes_late() {
        let hub = Hub::new("h".into(), 10);
        let (a, mut rx, kick) = client(&hub, "a", 16);
        let r = room("r");
        let stored = |o: u64| Frame::from_stored(format!("{{\"offset\":{o}}}"), Some(o));
        let (tx, mut waiting) = mpsc::channel(16);
        let via = Recipient {
            tx,
            queued: QueuedBytes::new(usize::MAX),
            kick,
        };
        hub.join_via(&a, &r, Some(via)).expect("join");
        // Live while the history is read: 4 and 5 (the replay will cover up to 5), then 6.
        for o in [4, 5, 6] {
            hub.deliver(&r, &stored(o), None);
        }
        assert!(
            rx.try_recv().is_err(),
            "nothing reaches the client before its replay"
        );
        hub.settle(&a, &r, &mut waiting, Some(5));
        assert_eq!(rx.try_recv().ok().and_then(|f| f.offset()), Some(6));
        // The subscriber's backlog: 5 again (skipped), then 7 and 8 pass.
        for o in [5, 7, 8] {
            hub.deliver(&r, &stored(o), None);
        }
        let got: Vec<_> = std::iter::from_fn(|| rx.try_recv().ok())
            .filter_map(|f| f.offset())
            .collect();
        assert_eq!(got, vec![7, 8]);
        // Once past, a new epoch's low offsets are not skipped.
        hub.deliver(&r, &stored(1), None);
        assert_eq!(rx.try_recv().ok().and_then(|f| f.offset()), Some(1));
    }

    #[test]
    fn the_room_limit_per_client_holds() {
        let hub = Hub::new("h".into(), 2);
        let (a, _rx, _) = client(&hub, "a", 8);
        hub.join(&a, &room("one")).expect("second room");
        assert_eq!(
            hub.join(&a, &room("two")).unwrap_err().code(),
            "too_many_rooms"
        );
    }
}
