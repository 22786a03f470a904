//! Joining and leaving rooms, and a join's replay buffer: while a join reads history, live
//! messages for the joiner wait in a queue of their own until [`Hub::settle`] moves the newer ones
//! to the client, under the lock, so nothing is lost or repeated.

use std::sync::atomic::Ordering;

use super::handle::Hub;
use super::state::ClientId;
use super::state::{Seat, State, remove_member};
use crate::error::ProtocolError;
use crate::namespace::PresenceMode;
use crate::outbox::{Drain, Recipient};
use crate::protocol::{Frame, Room};

/// What a join did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Joined {
    /// The room's first local member: the bridge subscribes to it.
    NewRoom,
    Member,
    /// Nothing: the client was in the room already.
    AlreadyMember,
}

impl Hub {
    /// Joins a room; joining a room twice is harmless. Returns true when the room just got its
    /// first local member (the bridge must subscribe before cross-hub messages can arrive).
    /// `presence`: how the room's namespace counts its members.
    pub fn join(
        &self,
        client_id: &ClientId,
        room: &Room,
        presence: PresenceMode,
    ) -> Result<bool, ProtocolError> {
        self.join_via(client_id, room, None, presence)
            .map(|joined| joined == Joined::NewRoom)
    }

    /// Joins `room`, with `via` (when given) standing in for the client's own queue: live
    /// messages wait there while a join replays history, until [`Hub::settle`]. A client already
    /// in the room stays as it is: it keeps receiving, and a replay may repeat what it got while
    /// the history was read (see [`Hub::skip_replayed`] for what comes after).
    pub fn join_via(
        &self,
        client_id: &ClientId,
        room: &Room,
        via: Option<Recipient>,
        presence: PresenceMode,
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
            members.insert(client_id.clone(), Seat::new(recipient, self.next_seat()));
            changes.extend(users.add(room, &member.user, &member.name, presence));
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
    /// frames after offset `after` (the replay had the rest), and no frame without offset whose
    /// message the replay had (`replayed`: a message delivered late, without offset, while the
    /// history read already found it stored) — and points the membership back at the client,
    /// still skipping what the replay had. Under the write lock, so no delivery can slip in
    /// between and pass them.
    pub fn settle(
        &self,
        client_id: &ClientId,
        room: &Room,
        buffer: &mut Drain,
        after: Option<u64>,
        replayed: impl Fn(&Frame) -> bool,
    ) {
        let mut state = self.write();
        let State { clients, rooms, .. } = &mut *state;
        let Some(member) = clients.get(client_id) else {
            return;
        };
        for frame in buffer.take_all() {
            let new = match (frame.offset(), after) {
                (Some(offset), Some(after)) => offset > after,
                (None, _) => !replayed(&frame),
                (Some(_), None) => true,
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

    /// A member that was in the room all along (its personal room after a reconnect, say) and
    /// joined again with a replay reaching offset `through`: live copies of what the replay has,
    /// still in the subscriber's backlog, are skipped from here on, as after [`Hub::settle`].
    /// Called before the replay is queued: a copy that slipped in before came before the replay
    /// too (a repeat the client drops by offset while it waits for `joined`), never after it.
    pub fn skip_replayed(&self, client_id: &ClientId, room: &Room, through: u64) {
        let state = self.read();
        if let Some(seat) = state.rooms.get(room).and_then(|m| m.get(client_id)) {
            seat.skip_through.fetch_max(through, Ordering::Relaxed);
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
}
