//! One client connection: registers it with the hub, starts its writer, reads and executes its
//! frames, enforces its limits, and on the way out takes the single cleanup path.

use std::net::IpAddr;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use futures_util::{Stream, StreamExt};
use tokio::sync::{mpsc, oneshot};
use tokio_tungstenite::tungstenite::error::{CapacityError, ProtocolError as WsProtocolError};
use tokio_tungstenite::tungstenite::{Error as WsError, Message};
use uuid::Uuid;

use crate::ack::Ack;
use crate::auth::{self, Auth, Grants, Identity, UserSlot};
use crate::error::{AuthFailure, CloseReason, ProtocolError};
use crate::hub::{ClientId, Newcomer};
use crate::outbox::{Kick, QueuedBytes, Recipient};
use crate::protocol::{Command, Frame, Room};
use crate::rate_limit::TokenBucket;
use crate::state::AppState;
use crate::{join, publish, writer};

/// How long a closing connection gets to send its last frames and finish the close handshake.
const WRITER_GRACE: std::time::Duration = std::time::Duration::from_secs(2);

/// Runs one upgraded connection to its end. `socket` is any WebSocket (split into halves here);
/// `bearer` is the token of the upgrade's `Authorization` header, if any.
pub async fn run<S>(socket: S, state: AppState, ip: IpAddr, bearer: Option<String>)
where
    S: Stream<Item = Result<Message, WsError>>
        + futures_util::Sink<Message, Error = WsError>
        + Unpin
        + Send
        + 'static,
{
    let settings = state.settings.clone();
    let (sink, mut stream) = state.metrics.accepted(socket).split();
    let client_id: ClientId = Uuid::new_v4().to_string().into();
    let (tx, rx) = mpsc::channel(settings.send_queue);
    let (close_tx, close_rx) = oneshot::channel();
    let kick = Arc::new(Kick::default());
    let me = Recipient {
        tx,
        queued: QueuedBytes::new(settings.send_queue_bytes),
        kick: kick.clone(),
    };
    // Echo mode (the hub-echo conformance binary only): messages go back through the writer.
    let (echo, echo_rx) = match settings.echo {
        true => {
            let (tx, rx) = mpsc::channel(16);
            (Some(tx), Some(rx))
        }
        false => (None, None),
    };
    let mut writer = tokio::spawn(writer::run(
        sink,
        rx,
        me.queued.clone(),
        close_rx,
        settings.ping_interval,
        echo_rx,
    ));
    tracing::debug!(client_id = %client_id, %ip, "client connected");

    let mut session = Session {
        state: &state,
        client_id: &client_id,
        me: &me,
        ip,
        bucket: TokenBucket::new(
            settings.rate_limit_per_sec,
            settings.rate_limit_burst,
            Instant::now(),
        ),
        rejected_in_a_row: 0,
        identity: None,
        user_slot: None,
        deadline: None,
        echo,
    };
    let started = match session.echo {
        Some(_) => Ok(()),
        None => session.start(bearer.as_deref()),
    };
    let reason = match started {
        Ok(()) => session.read_until_closed(&mut stream, &kick).await,
        Err(reason) => Some(reason),
    };

    // The one cleanup path: out of the hub (its Sender clones go), the user's place given back,
    // then tell the writer why.
    state.hub.remove(&client_id);
    drop(session);
    drop(me);
    match reason {
        Some(reason) => {
            let _ = close_tx.send(reason);
            // Finish the close handshake: keep reading (and discarding) until the client answers
            // our close frame. Dropping a socket with unread input makes the kernel send a reset,
            // which can destroy the error and close frames still in flight to the client.
            let drain = async { while let Some(Ok(_)) = stream.next().await {} };
            let both = async { tokio::join!(&mut writer, drain) };
            if tokio::time::timeout(WRITER_GRACE, both).await.is_err() {
                writer.abort();
            }
        }
        // The client left on its own: dropping the sender ends the writer without a close frame.
        None => {
            drop(close_tx);
            if tokio::time::timeout(WRITER_GRACE, &mut writer)
                .await
                .is_err()
            {
                writer.abort();
            }
        }
    }
    state.metrics.closed(reason);
    tracing::debug!(client_id = %client_id, ?reason, "client disconnected");
}

struct Session<'a> {
    state: &'a AppState,
    client_id: &'a ClientId,
    me: &'a Recipient,
    ip: IpAddr,
    bucket: TokenBucket,
    rejected_in_a_row: u32,
    /// `None` until the client has proved who it is (at once in `auth_mode = off`).
    identity: Option<Identity>,
    /// This connection's place under `max_connections_per_user`, held until the session ends.
    user_slot: Option<UserSlot>,
    /// When the connection must close, and why: no token by `auth_timeout`, then the token's
    /// expiry. One timer for both, since a connection is only ever waiting for one of them.
    deadline: Option<(tokio::time::Instant, CloseReason)>,
    /// Echo mode: where each message read goes instead of the chat protocol.
    echo: Option<mpsc::Sender<Message>>,
}

impl Session<'_> {
    /// Anonymous clients are admitted at once; token holders once a token checks out, from the
    /// upgrade's header now or from their first frame within `auth_timeout`.
    fn start(&mut self, bearer: Option<&str>) -> Result<(), CloseReason> {
        let state = self.state;
        match (&state.auth, bearer) {
            (Auth::Off, _) => self.admit(auth::anonymous(self.client_id)),
            (Auth::Jwt(verifier), Some(token)) => {
                let identity = verifier.verify(token).map_err(|f| self.refused(f))?;
                self.admit(identity)
            }
            (Auth::Jwt(_), None) => {
                let at = tokio::time::Instant::now() + self.state.settings.auth_timeout;
                self.deadline = Some((at, CloseReason::AuthFailed(AuthFailure::NoToken)));
                Ok(())
            }
        }
    }

    /// The client is who it says: count it against its user's limit, welcome it, and only then
    /// put it in the hub, so the welcome is always its first frame.
    fn admit(&mut self, identity: Identity) -> Result<(), CloseReason> {
        let hub = &self.state.hub;
        if self.state.auth.is_required() {
            let slot = self.state.users.try_take(&identity.user_id);
            self.user_slot = Some(slot.ok_or(CloseReason::TooManyUserConnections)?);
        }
        let default_room = Room::default_room();
        let in_default_room = identity.grants.may_join(&default_room);
        let rooms: &[&str] = if in_default_room {
            &[crate::protocol::DEFAULT_ROOM]
        } else {
            &[]
        };
        let instance = hub.instance_id().to_string();
        self.me.offer(&Frame::welcome(
            self.client_id,
            hub.name(),
            &instance,
            rooms,
            identity.user(),
        ));
        hub.register(Newcomer {
            client_id: self.client_id.clone(),
            recipient: self.me.clone(),
            user: identity.user_id.clone(),
            name: identity.name.clone(),
            in_default_room,
        });
        tracing::debug!(client_id = %self.client_id, user = %identity.user_id, "client admitted");
        self.deadline = self.expiry(&identity);
        self.identity = Some(identity);
        Ok(())
    }

    /// A token from an `auth` frame: the first one admits the client; a later one for the same
    /// user is a refresh that moves the expiry (and may change name and grants).
    fn authenticate(&mut self, token: &str) -> Result<(), CloseReason> {
        let state = self.state;
        let Auth::Jwt(verifier) = &state.auth else {
            self.me.offer(&Frame::error(&ProtocolError::AuthOff));
            return Ok(());
        };
        let identity = verifier.verify(token).map_err(|f| self.refused(f))?;
        match &self.identity {
            None => self.admit(identity),
            Some(current) if current.user_id != identity.user_id => {
                Err(self.refused(AuthFailure::OtherUser))
            }
            Some(_) => {
                let exp = identity.expires_at.unwrap_or_default();
                self.me.offer(&Frame::authenticated(identity.user(), exp));
                // Grants may have narrowed: leave what the new token no longer allows.
                for room in state.hub.rooms_of(self.client_id) {
                    if !identity.grants.may_join(&room)
                        && state.hub.leave(self.client_id, &room).is_ok()
                    {
                        self.me.offer(&Frame::left(&room));
                    }
                }
                self.deadline = self.expiry(&identity);
                self.identity = Some(identity);
                Ok(())
            }
        }
    }

    fn refused(&self, failure: AuthFailure) -> CloseReason {
        // The reason only: never the token.
        tracing::info!(client_id = %self.client_id, ip = %self.ip, reason = failure.text(), "token refused");
        CloseReason::AuthFailed(failure)
    }

    /// When the token runs out (`exp` + `jwt_leeway`), as a timer instant.
    fn expiry(&self, identity: &Identity) -> Option<(tokio::time::Instant, CloseReason)> {
        let exp = identity.expires_at?;
        let leeway = self.state.settings.jwt_leeway;
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap_or_default();
        // A token may say it lasts for ever: a timer a year out is as good, and cannot overflow.
        let left = Duration::from_secs(exp)
            .saturating_sub(now)
            .saturating_add(leeway)
            .min(Duration::from_secs(365 * 24 * 3600));
        Some((
            tokio::time::Instant::now() + left,
            CloseReason::TokenExpired,
        ))
    }

    /// Reads frames until the client goes or must be closed; returns the close reason to send.
    async fn read_until_closed<R>(&mut self, stream: &mut R, kick: &Kick) -> Option<CloseReason>
    where
        R: Stream<Item = Result<Message, WsError>> + Unpin,
    {
        let pong_timeout = self.state.settings.pong_timeout;
        let mut deadline = tokio::time::Instant::now() + pong_timeout;
        loop {
            let auth_deadline = async {
                match self.deadline {
                    Some((at, reason)) => {
                        tokio::time::sleep_until(at).await;
                        reason
                    }
                    None => std::future::pending().await,
                }
            };
            let msg = tokio::select! {
                biased;
                reason = kick.wait() => return Some(reason),
                _ = self.state.shutdown.wait() => return Some(CloseReason::ShuttingDown),
                _ = tokio::time::sleep_until(deadline) => return Some(CloseReason::PongTimeout),
                reason = auth_deadline => return Some(reason),
                msg = stream.next() => msg,
            };
            // Any frame, pongs included, proves the client is alive.
            deadline = tokio::time::Instant::now() + pong_timeout;
            match msg {
                None | Some(Ok(Message::Close(_))) => return None,
                Some(Ok(msg @ (Message::Text(_) | Message::Binary(_)))) if self.echo.is_some() => {
                    if let Some(echo) = &self.echo
                        && echo.send(msg).await.is_err()
                    {
                        return None;
                    }
                }
                Some(Ok(Message::Text(text))) => {
                    if let Some(reason) = self.on_frame(Some(text.as_str())).await {
                        return Some(reason);
                    }
                }
                Some(Ok(Message::Binary(_))) => {
                    if let Some(reason) = self.on_frame(None).await {
                        return Some(reason);
                    }
                }
                Some(Ok(Message::Ping(_) | Message::Pong(_) | Message::Frame(_))) => {}
                Some(Err(WsError::Capacity(CapacityError::MessageTooLong { .. }))) => {
                    return Some(CloseReason::MessageTooBig);
                }
                Some(Err(WsError::Protocol(WsProtocolError::ResetWithoutClosingHandshake))) => {
                    return None;
                }
                Some(Err(WsError::Utf8(err))) => {
                    tracing::debug!(client_id = %self.client_id, %err, "text frame not UTF-8");
                    return Some(CloseReason::InvalidPayload);
                }
                Some(Err(WsError::Protocol(err))) => {
                    tracing::debug!(client_id = %self.client_id, %err, "websocket protocol error");
                    return Some(CloseReason::ProtocolViolation);
                }
                Some(Err(err)) => {
                    tracing::debug!(client_id = %self.client_id, %err, "connection lost");
                    return None;
                }
            }
        }
    }

    /// One data frame (`None`: a binary one). Returns a close reason when the client must go.
    async fn on_frame(&mut self, text: Option<&str>) -> Option<CloseReason> {
        let settings = &self.state.settings;
        if !self.bucket.try_take(Instant::now()) {
            self.rejected_in_a_row += 1;
            self.state.metrics.rate_limited();
            if self.rejected_in_a_row > settings.rate_limit_max_rejects {
                return Some(CloseReason::RateLimitExceeded);
            }
            if self.rejected_in_a_row == 1 {
                self.me.offer(&Frame::error(&ProtocolError::RateLimited(
                    settings.rate_limit_per_sec,
                )));
            }
            return None;
        }
        self.rejected_in_a_row = 0;
        self.state
            .hub
            .counters()
            .received
            .fetch_add(1, Ordering::Relaxed);
        let command = match text {
            Some(text) => Command::parse(text),
            None => Err(ProtocolError::BinaryUnsupported),
        };
        match command {
            Ok(command) => return self.execute(command).await.err(),
            Err(err) => {
                self.me.offer(&Frame::error(&err));
            }
        }
        None
    }

    /// Runs one command; an error is a reason to close the connection.
    async fn execute(&mut self, command: Command) -> Result<(), CloseReason> {
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
        if let Err(err) = permitted(&identity.grants, &command) {
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

/// Whether the grants allow `command`: joining needs `rooms` or `read`, publishing `rooms`,
/// broadcasting the `broadcast` claim.
fn permitted(grants: &Grants, command: &Command) -> Result<(), ProtocolError> {
    let forbidden = |what: String| Err(ProtocolError::Forbidden(what));
    match command {
        // Who is in a room is for those who may be in it.
        Command::Join { room, .. } | Command::Presence(room) if !grants.may_join(room) => {
            forbidden(format!("not allowed to join room {room:?}"))
        }
        Command::Message { room, .. } if !grants.may_publish(room) => {
            forbidden(format!("not allowed to publish to room {room:?}"))
        }
        Command::Broadcast { .. } if !grants.broadcast => {
            forbidden("not allowed to broadcast".to_owned())
        }
        _ => Ok(()),
    }
}
