//! What the hub sends: each item the socket yields, and each frame routed to what it answers —
//! a room (messages, joins, presence), a publish (acks, errors with a `ref`), the client itself
//! (welcome, broadcasts, renewed tokens).

use futures_util::{FutureExt, StreamExt};
use tokio::time::Instant;
use tokio_tungstenite::tungstenite::{Error as WsError, Message as WsMessage, Utf8Bytes};

use super::task::{Driver, LinkState};
use crate::connection::Closed;
use crate::error::{ErrorCode, HubError};
use crate::events::{ClientEvent, RoomEvent, TokenRenewed};
use crate::frame::{Inbound, Kind};

/// Frames read in one go when the socket has more ready (fewer trips through the driver's wait).
const BATCH: usize = 64;

impl Driver {
    /// One item of the socket, then whatever else it has ready now.
    pub(super) fn on_socket(&mut self, item: Option<Result<WsMessage, WsError>>) {
        self.on_item(item);
        for _ in 0..BATCH {
            if self.ctx.backlog {
                break;
            }
            let LinkState::Open(conn) = &mut self.ctx.link else {
                return;
            };
            match conn.reader.next().now_or_never() {
                Some(item) => self.on_item(item),
                None => break,
            }
        }
        if let LinkState::Open(conn) = &self.ctx.link
            && conn.broken
        {
            self.drop_connection(Closed::local(
                "the hub stopped reading what the client sends",
            ));
        }
    }

    fn on_item(&mut self, item: Option<Result<WsMessage, WsError>>) {
        let LinkState::Open(conn) = &mut self.ctx.link else {
            return;
        };
        match item {
            Some(Ok(WsMessage::Text(text))) => {
                conn.heard = true;
                self.on_text(text);
            }
            Some(Ok(WsMessage::Close(frame))) => {
                conn.heard = true;
                conn.close = Some(match frame {
                    Some(f) => Closed {
                        code: f.code.into(),
                        reason: f.reason.to_string(),
                    },
                    None => Closed {
                        code: 1005,
                        reason: String::new(),
                    },
                });
            }
            Some(Ok(_)) => conn.heard = true,
            Some(Err(e)) => {
                let why = conn
                    .close
                    .take()
                    .unwrap_or_else(|| Closed::local(format!("connection lost: {e}")));
                self.drop_connection(why);
            }
            None => {
                let why = conn
                    .close
                    .take()
                    .unwrap_or_else(|| Closed::local("connection closed"));
                self.drop_connection(why);
            }
        }
    }

    fn on_text(&mut self, text: Utf8Bytes) {
        let Some(frame) = Inbound::parse(&text) else {
            tracing::debug!("a frame the client cannot read was ignored");
            return;
        };
        match frame.kind {
            Kind::Message => {
                let mut link = self.ctx.link();
                let Some(session) = frame
                    .room
                    .as_deref()
                    .and_then(|room| self.sessions.get_mut(room))
                else {
                    // A notification to the personal room (or a `subs` room) the application
                    // did not subscribe to: it still gets it, once, with no join sent.
                    let hub_joined = frame
                        .room
                        .as_ref()
                        .is_some_and(|room| self.hub_rooms.contains(room));
                    if hub_joined
                        && let Some(id) = frame.id.clone()
                        && self.hub_room_ids.insert(id)
                    {
                        self.emit(ClientEvent::Message(frame.into_message(text)));
                    }
                    return;
                };
                session.on_message(frame.into_message(text), &mut link);
            }
            Kind::Welcome => {
                if self.ctx.conn().is_none() {
                    self.on_welcome(frame);
                }
            }
            Kind::Joined | Kind::Presence => {
                self.answer(frame);
                self.pump();
            }
            Kind::Ack => self.on_ack(frame),
            Kind::PresenceDiff => {
                let Some(session) = frame.room.as_deref().and_then(|r| self.sessions.get(r)) else {
                    return;
                };
                if session.refusal().is_none() {
                    // A presence change past the buffer's bound is dropped (counted).
                    let _ = session
                        .queue()
                        .push(RoomEvent::Presence(frame.into_presence_diff()));
                }
            }
            Kind::Broadcast => {
                if let Some(id) = frame.id.as_ref().filter(|id| !id.is_empty())
                    && !self.broadcast_ids.insert(id.clone())
                {
                    return;
                }
                self.emit(ClientEvent::Broadcast(frame.into_broadcast()));
            }
            Kind::Authenticated => {
                self.emit(ClientEvent::Token(TokenRenewed {
                    user: frame.user.clone(),
                    exp: frame.exp,
                }));
                self.schedule_refresh(frame.exp);
            }
            Kind::Left => {
                let ours = match (frame.room.as_deref(), self.ctx.conn()) {
                    (Some(room), Some(conn)) => conn.answers_our_leave(room),
                    _ => false,
                };
                if ours {
                    return;
                }
                let mut link = self.ctx.link();
                if let Some(session) = frame.room.as_deref().and_then(|r| self.sessions.get_mut(r))
                {
                    session.on_left(&mut link);
                }
            }
            Kind::Error => self.on_error(frame),
            // A pong (any frame counts as a sign of life), and frame types added later.
            Kind::Pong | Kind::Other => {}
        }
    }

    /// A `joined`, `presence` or room `error` frame: the answer to the oldest question about its
    /// room on this connection.
    fn answer(&mut self, frame: Inbound) {
        let Some(room) = frame.room.clone() else {
            return;
        };
        let Some((session_id, asked)) = self.ctx.conn().and_then(|c| c.answered(&room)) else {
            return;
        };
        let mut link = self.ctx.link();
        if let Some(session) = self.sessions.get_mut(&room).filter(|s| s.id == session_id) {
            session.on_answer(asked, frame, &mut link);
        }
    }

    fn on_ack(&mut self, frame: Inbound) {
        let Some(generation) = self.ctx.conn().map(|c| c.generation) else {
            return;
        };
        if let Some(stored) = self.ctx.outbox.on_ack(&frame, generation) {
            let mut link = self.ctx.link();
            if let Some(session) = self.sessions.get_mut(&stored.room) {
                session.own_stored(stored.offset, &mut link);
            }
        }
        self.pump();
    }

    fn on_error(&mut self, frame: Inbound) {
        if frame.reference.is_some() {
            if let Some(generation) = self.ctx.conn().map(|c| c.generation) {
                self.ctx.outbox.on_error(&frame, generation);
            }
            self.pump();
            return;
        }
        if frame.room.is_some() {
            self.answer(frame);
            return;
        }
        let code = ErrorCode::from_hub(frame.code.as_deref());
        if code.as_str() == "rate_limited"
            && let Some(generation) = self.ctx.conn().map(|c| c.generation)
        {
            self.ctx.outbox.rate_limited(generation, Instant::now());
        }
        let message = frame
            .message
            .unwrap_or_else(|| "error from the hub".to_owned());
        self.emit(ClientEvent::Error(HubError::new(code, message)));
    }
}
