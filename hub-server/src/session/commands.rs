//! What each command of an admitted client does: join, leave, message, broadcast, ping, auth,
//! presence, rpc — after its room's namespace and its grants are checked ([`access`]), and for
//! namespaces that say so after the backend's subscribe or publish proxy agreed ([`hooks`]).

use std::sync::Arc;

use serde_json::value::RawValue;
use uuid::Uuid;

use super::pending::{Lane, Work};
use super::state::Session;
use crate::ack::Ack;
use crate::auth::access;
use crate::error::{CloseReason, ProtocolError};
use crate::hooks::{self, Refusal};
use crate::hub::ClientId;
use crate::outbox::Recipient;
use crate::protocol::{Command, Frame, Replay, Room, User};
use crate::state::AppState;
use crate::{join, publish};

/// Who a command's sender is, owned, for work that runs beside the read loop.
struct Sender {
    id: Arc<str>,
    name: Option<Arc<str>>,
}

impl Sender {
    fn user(&self) -> User<'_> {
        User {
            id: &self.id,
            name: self.name.as_deref(),
        }
    }
}

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
        let sender = Sender {
            id: identity.user_id.clone(),
            name: identity.name.clone(),
        };
        let checked =
            access::check(identity, &self.state.settings.namespaces, &command).and_then(|policy| {
                match (&command, policy) {
                    (Command::Presence(room), Some(policy)) if !policy.presence => {
                        Err(ProtocolError::NoPresence(room.to_string()))
                    }
                    (_, policy) => {
                        Ok(policy.map_or((false, false), |p| (p.proxy_subscribe, p.proxy_publish)))
                    }
                }
            });
        let (proxy_subscribe, proxy_publish) = match checked {
            Ok(proxied) => proxied,
            Err(err) => {
                let frame = match &command {
                    Command::Message { reference, .. } => {
                        Frame::error_for(&err, reference.as_deref())
                    }
                    Command::Join { room, .. } | Command::Presence(room) => {
                        Frame::error_in(&err, room)
                    }
                    _ => Frame::error(&err),
                };
                self.me.offer(&frame);
                return Ok(());
            }
        };
        let (state, client_id, me) = (self.state, self.client_id, self.me);
        match command {
            Command::Join { room, replay } if proxy_subscribe => {
                let asked = room.clone();
                let work = subscribe_then_join(state, client_id, me, sender, asked, replay);
                self.beside(room, Box::pin(work));
            }
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
            // In order behind the room's earlier messages, while the backend decides.
            Command::Message {
                room,
                content,
                reference,
            } if proxy_publish => {
                // The refusal is written only when it happens (the reference is kept for it).
                let kept = reference.clone();
                let lane = Lane::Room(room.clone());
                let work = publish_proxied(state, client_id, me, sender, room, content, reference);
                if self.pending.start(lane, Box::pin(work)).is_err() {
                    me.offer(&Frame::error_for(
                        &ProtocolError::TooMuchWaiting,
                        kept.as_deref(),
                    ));
                }
            }
            Command::Message {
                room,
                content,
                reference,
            } => self.send(Some(room), &content, reference),
            Command::Rpc {
                method,
                data,
                reference,
            } => {
                if !state.proxies.has_rpc() {
                    me.offer(&Frame::error_for(&ProtocolError::NoRpc, Some(&reference)));
                    return Ok(());
                }
                let kept = reference.clone();
                let work = rpc(state, client_id, me, sender, method, data, reference);
                if self.pending.start(Lane::Rpc, Box::pin(work)).is_err() {
                    me.offer(&Frame::error_for(
                        &ProtocolError::TooMuchWaiting,
                        Some(&kept),
                    ));
                }
            }
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

    /// A message as the client sent it (no proxy in its way), stamped and handed on.
    fn send(&self, room: Option<Room>, content: &str, reference: Option<String>) {
        let Some(identity) = &self.identity else {
            return;
        };
        let (state, client_id, me) = (self.state, self.client_id, self.me);
        stamp_and_send(
            state,
            client_id,
            me,
            identity.user(),
            room,
            content,
            reference,
        );
    }
}

/// The error frame of a backend's refusal, answering `reference` or the join of `room`.
fn refused(refusal: &Refusal, reference: Option<&str>, room: Option<&Room>) -> Frame {
    Frame::error_coded(&refusal.code, &refusal.message, reference, room)
}

/// A join of a `proxy_subscribe` room: the backend first, then the join as any other.
async fn subscribe_then_join(
    state: &AppState,
    client_id: &ClientId,
    me: &Recipient,
    sender: Sender,
    room: Room,
    replay: Replay,
) {
    let request = hooks::subscribe::Request {
        client_id,
        user: sender.user(),
        room: room.as_str(),
    };
    match state.proxies.subscribe(&request).await {
        Ok(hooks::subscribe::Verdict::Allow) => {
            join::join(state, client_id, me, room, replay).await
        }
        Ok(hooks::subscribe::Verdict::Refuse(refusal)) => {
            me.offer(&refused(&refusal, None, Some(&room)));
        }
        Err(_) => {
            me.offer(&Frame::error_in(&ProtocolError::BackendUnavailable, &room));
        }
    }
}

/// A message to a `proxy_publish` room: published as sent, with the backend's content, or not
/// at all (an error frame with the message's `ref`, and nobody on any hub gets it).
async fn publish_proxied(
    state: &AppState,
    client_id: &ClientId,
    me: &Recipient,
    sender: Sender,
    room: Room,
    content: String,
    reference: Option<String>,
) {
    let request = hooks::publish::Request {
        client_id,
        user: sender.user(),
        room: room.as_str(),
        content: &content,
    };
    let verdict = state.proxies.publish(&request).await;
    let content = match verdict {
        Ok(hooks::publish::Verdict::AsSent) => content,
        Ok(hooks::publish::Verdict::Replace(replaced)) => replaced,
        Ok(hooks::publish::Verdict::Refuse(refusal)) => {
            me.offer(&refused(&refusal, reference.as_deref(), None));
            return;
        }
        Err(_) => {
            let err = ProtocolError::BackendUnavailable;
            me.offer(&Frame::error_for(&err, reference.as_deref()));
            return;
        }
    };
    stamp_and_send(
        state,
        client_id,
        me,
        sender.user(),
        Some(room),
        &content,
        reference,
    );
}

/// An `rpc` frame: the backend's `data` as an `rpc_result`, or an error frame, with the `ref`.
async fn rpc(
    state: &AppState,
    client_id: &ClientId,
    me: &Recipient,
    sender: Sender,
    method: String,
    data: String,
    reference: String,
) {
    // It was read as one JSON value (the command kept it as text): this cannot fail.
    let Ok(data) = RawValue::from_string(data) else {
        let err = ProtocolError::BadJson("\"data\" is not JSON".into());
        me.offer(&Frame::error_for(&err, Some(&reference)));
        return;
    };
    let request = hooks::rpc::Request {
        client_id,
        user: sender.user(),
        method: &method,
        data: &data,
    };
    let answer = match state.proxies.rpc(&request).await {
        Ok(hooks::rpc::Verdict::Result(data)) => Frame::rpc_result(&reference, &data),
        Ok(hooks::rpc::Verdict::Refuse(refusal)) => refused(&refusal, Some(&reference), None),
        Err(_) => Frame::error_for(&ProtocolError::BackendUnavailable, Some(&reference)),
    };
    me.offer(&answer);
}

/// Stamps a message with its id, sender and user, and hands it on (see [`publish`]).
fn stamp_and_send(
    state: &AppState,
    client_id: &ClientId,
    me: &Recipient,
    user: User<'_>,
    room: Option<Room>,
    content: &str,
    reference: Option<String>,
) {
    let id = Uuid::new_v4().to_string();
    let frame = Frame::chat(
        &id,
        room.as_ref(),
        client_id,
        user,
        content,
        state.hub.name(),
    );
    let ack = reference.map(|reference| Ack::Client {
        to: me.downgrade(),
        reference,
        id: id.clone(),
    });
    let message = publish::Message {
        sender: client_id.clone(),
        room,
        id,
        frame,
        ack,
    };
    publish::send(state, message);
}

/// Leaves `room`: `left`, or `not_member`.
fn leave(state: &AppState, client_id: &ClientId, me: &Recipient, room: &Room) {
    match state.hub.leave(client_id, room) {
        Ok(()) => me.offer(&Frame::left(room)),
        Err(err) => me.offer(&Frame::error(&err)),
    };
}
