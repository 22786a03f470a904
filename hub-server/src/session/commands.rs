//! What each command of an admitted client does: join, leave, message, broadcast, ping, auth,
//! presence — after its grants are checked.

use uuid::Uuid;

use super::state::Session;
use crate::ack::Ack;
use crate::error::{CloseReason, ProtocolError};
use crate::protocol::{Command, Frame, Room};
use crate::{join, publish};

impl Session<'_> {
    /// Runs one command; an error is a reason to close the connection.
    pub(super) async fn execute(&mut self, command: Command) -> Result<(), CloseReason> {
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
        if let Err(err) = identity.grants.permits(&command) {
            let frame = match &command {
                Command::Message { reference, .. } => Frame::error_for(&err, reference.as_deref()),
                Command::Join { room, .. } | Command::Presence(room) => Frame::error_in(&err, room),
                _ => Frame::error(&err),
            };
            self.me.offer(&frame);
            return Ok(());
        }
        let hub = &self.state.hub;
        match command {
            // Joins and presence questions wait on Redis and hold much state while they do:
            // boxed, they take memory only while they run, instead of making every idle
            // connection's task as large as its largest wait (5.4 KB before, measured).
            Command::Join { room, replay } => {
                Box::pin(join::join(
                    self.state,
                    self.client_id,
                    self.me,
                    room,
                    replay,
                ))
                .await;
            }
            Command::Leave(room) => match hub.leave(self.client_id, &room) {
                Ok(()) => {
                    self.me.offer(&Frame::left(&room));
                }
                Err(err) => {
                    self.me.offer(&Frame::error(&err));
                }
            },
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
                let answer = match Box::pin(self.state.presence.room(&room)).await {
                    Ok(presence) => Frame::presence(&presence),
                    Err(_) => Frame::error_in(&ProtocolError::PresenceUnavailable, &room),
                };
                self.me.offer(&answer);
            }
        }
        Ok(())
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
            to: self.me.tx.downgrade(),
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
