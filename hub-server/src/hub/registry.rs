//! Clients arrive and leave: registration (with the default room), the one cleanup path, kicks,
//! and what the hub can say of its clients.

use std::sync::Arc;

use super::handle::Hub;
use super::state::ClientId;
use super::state::{Member, Seat, remove_member};
use crate::error::CloseReason;
use crate::outbox::Recipient;
use crate::protocol::Room;

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

impl Hub {
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
                let seated = self.next_seat();
                members.insert(client_id.clone(), Seat::new(recipient.clone(), seated));
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
}
