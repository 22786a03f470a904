//! What each command of an admitted client does: join, leave, message, broadcast, ping, auth,
//! presence — after its room's namespace and its grants are checked ([`access`]).

use uuid::Uuid;

use super::pending::Work;
use super::state::Session;
use crate::ack::Ack;
use crate::auth::access;
use crate::error::{CloseReason, ProtocolError};
use crate::hub::ClientId;
use crate::outbox::Recipient;
use crate::protocol::{Command, Frame, Room};
use crate::state::AppState;
use crate::{join, publish};

impl<'a> Session<'a> {
    /// Runs one command; an error is a reason to close the connection.
    pub(super) fn execute(&mut self, command: Command) -> Result<(), CloseReason> {
        let Some(identity) = &self.identity else {
            // Nothing but a token counts before the client is admitted.
            return match command {
                Command::Auth { token } => self.authenticate(&token),
                _ => {
                    self.me
                        .offer(&Frame::error(&ProtocolError::Unauthenticated));
                    Ok(())
                }
            };
        };
        let checked =
            access::check(identity, &self.state.settings.namespaces, &command).and_then(|policy| {
                match (&command, policy) {
                    (Command::Presence(room), Some(policy)) if !policy.presence => {
                        Err(ProtocolError::NoPresence(room.to_string()))
                    }
                    _ => Ok(()),
                }
            });
        if let Err(err) = checked {
            let frame = match &command {
                Command::Message { reference, .. } => Frame::error_for(&err, reference.as_deref()),
                Command::Join { room, .. } | Command::Presence(room) => Frame::error_in(&err, room),
                _ => Frame::error(&err),
            };
            self.me.offer(&frame);
            return Ok(());
        }
        let (state, client_id, me) = (self.state, self.client_id, self.me);
        match command {
            // Joins and presence questions wait on Redis: they run beside the read loop (see
            // `pending`), boxed, so they take memory only while they run.
            Command::Join { room, replay } => {
                let work = join::join(state, client_id, me, room.clone(), replay);
                self.beside(room, Box::pin(work));
            }
            // After a join of the same room still under way, not before it.
            Command::Leave(room) if self.pending.busy(&room) => {
                let left = room.clone();
                let work = async move { leave(state, client_id, me, &left) };
                self.beside(room, Box::pin(work));
            }
            Command::Leave(room) => leave(state, client_id, me, &room),
            Command::Message {
                room,
                content,
                reference,
            } => self.send(Some(room), &content, reference),
            Command::Broadcast { content } => self.send(None, &content, None),
            Command::Ping => {
                self.me.offer(&Frame::pong());
            }
            Command::Auth { token } => return self.authenticate(&token),
            Command::Presence(room) => {
                let asked = room.clone();
                let work = async move {
                    let answer = match state.presence.room(&asked).await {
                        Ok(presence) => Frame::presence(&presence),
                        Err(_) => Frame::error_in(&ProtocolError::PresenceUnavailable, &asked),
                    };
                    me.offer(&answer);
                };
                self.beside(room, Box::pin(work));
            }
        }
        Ok(())
    }

    /// Runs `work` beside the read loop, after what is under way for `room`; refused at once
    /// (`unavailable`, naming the room) when too much is waiting already.
    fn beside(&mut self, room: Room, work: Work<'a>) {
        let answer = Frame::error_in(&ProtocolError::TooMuchWaiting, &room);
        if self.pending.start(room, work).is_err() {
            self.me.offer(&answer);
        }
    }

    /// Stamps the message with its id, sender and user, and hands it on (see [`publish`]).
    fn send(&self, room: Option<Room>, content: &str, reference: Option<String>) {
        let Some(identity) = &self.identity else {
            return;
        };
        let id = Uuid::new_v4().to_string();
        let frame = Frame::chat(
            &id,
            room.as_ref(),
            self.client_id,
            identity.user(),
            content,
            self.state.hub.name(),
        );
        let ack = reference.map(|reference| Ack::Client {
            to: self.me.downgrade(),
            reference,
            id: id.clone(),
        });
        let message = publish::Message {
            sender: self.client_id.clone(),
            room,
            id,
            frame,
            ack,
        };
        publish::send(self.state, message);
    }
}

/// Leaves `room`: `left`, or `not_member`.
fn leave(state: &AppState, client_id: &ClientId, me: &Recipient, room: &Room) {
    match state.hub.leave(client_id, room) {
        Ok(()) => me.offer(&Frame::left(room)),
        Err(err) => me.offer(&Frame::error(&err)),
    };
}
