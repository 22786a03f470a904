//! Clients arrive and leave: registration (with its starting rooms), the one cleanup path, kicks,
//! and what the hub can say of its clients.

use std::sync::Arc;

use super::handle::Hub;
use super::state::ClientId;
use super::state::{Member, Seat, State, remove_member};
use crate::error::CloseReason;
use crate::namespace::PresenceMode;
use crate::outbox::Recipient;
use crate::protocol::Room;

/// A client the session admitted, as the hub registers it.
#[derive(Debug)]
pub struct Newcomer {
    pub client_id: ClientId,
    pub recipient: Recipient,
    pub user: Arc<str>,
    pub name: Option<Arc<str>>,
    /// The rooms it is in from the start (the default room, its personal room, its
    /// server-side subscriptions), each with how its namespace counts presence. The session
    /// checked them and kept them within `max_rooms_per_client`.
    pub rooms: Vec<(Room, PresenceMode)>,
}

impl Hub {
    /// Adds a client, a member of its starting rooms at once (one lock, no waiting: the bridge
    /// subscribes to the rooms that are new on this hub as it does for any join).
    pub fn register(&self, newcomer: Newcomer) {
        let Newcomer {
            client_id,
            recipient,
            user,
            name,
            rooms: starting,
        } = newcomer;
        let mut changes = Vec::new();
        let mut new_rooms = Vec::new();
        {
            let mut state = self.write();
            let State {
                clients,
                rooms,
                users,
            } = &mut *state;
            let mut joined: Vec<Room> = Vec::with_capacity(starting.len());
            for (room, presence) in starting {
                if joined.contains(&room) {
                    continue;
                }
                let members = rooms.entry(room.clone()).or_default();
                if members.is_empty() {
                    new_rooms.push(room.clone());
                }
                let seated = self.next_seat();
                members.insert(client_id.clone(), Seat::new(recipient.clone(), seated));
                changes.extend(users.add(&room, &user, &name, presence));
                joined.push(room);
            }
            clients.insert(
                client_id,
                Member {
                    recipient,
                    rooms: joined,
                    user,
                    name,
                },
            );
        }
        if !new_rooms.is_empty() {
            self.room_changed(new_rooms);
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
