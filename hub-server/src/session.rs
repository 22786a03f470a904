//! One client connection: registers it with the hub, starts its writer, reads and executes its
//! frames, enforces its limits, and on the way out takes the single cleanup path.

use std::net::IpAddr;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Instant;

use futures_util::{Stream, StreamExt};
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;
use tokio::sync::{mpsc, oneshot};
use tokio_tungstenite::tungstenite::error::{CapacityError, ProtocolError as WsProtocolError};
use tokio_tungstenite::tungstenite::{Error as WsError, Message};
use uuid::Uuid;

use crate::bridge::Target;
use crate::error::{CloseReason, ProtocolError};
use crate::hub::{ClientId, Kick, Recipient};
use crate::protocol::{Command, Frame, Room};
use crate::rate_limit::TokenBucket;
use crate::state::AppState;
use crate::writer;

/// How long a closing connection gets to send its last frames and finish the close handshake.
const WRITER_GRACE: std::time::Duration = std::time::Duration::from_secs(2);

/// Runs one upgraded connection to its end. `socket` is any WebSocket (split into halves here).
pub async fn run<S>(socket: S, state: AppState, ip: IpAddr)
where
    S: Stream<Item = Result<Message, WsError>>
        + futures_util::Sink<Message, Error = WsError>
        + Unpin
        + Send
        + 'static,
{
    let settings = state.settings.clone();
    let (sink, mut stream) = socket.split();
    let client_id: ClientId = Uuid::new_v4().to_string().into();
    let (tx, rx) = mpsc::channel(settings.send_queue);
    let (close_tx, close_rx) = oneshot::channel();
    let kick = Arc::new(Kick::default());
    let me = Recipient {
        tx,
        kick: kick.clone(),
    };
    let mut writer = tokio::spawn(writer::run(sink, rx, close_rx, settings.ping_interval));

    let connected_at = OffsetDateTime::now_utc()
        .format(&Rfc3339)
        .unwrap_or_default();
    // The welcome is queued before the client joins the default room, so it is always the first
    // frame: a delivery from another task cannot get in between.
    let instance = state.hub.instance_id().to_string();
    me.offer(&Frame::welcome(
        &client_id,
        state.hub.name(),
        &instance,
        &[crate::protocol::DEFAULT_ROOM],
    ));
    state
        .hub
        .register(client_id.clone(), me.clone(), ip, connected_at);
    tracing::debug!(client_id = %client_id, %ip, "client connected");

    let mut session = Session {
        state: &state,
        client_id: &client_id,
        me: &me,
        bucket: TokenBucket::new(
            settings.rate_limit_per_sec,
            settings.rate_limit_burst,
            Instant::now(),
        ),
        rejected_in_a_row: 0,
    };
    let reason = session.read_until_closed(&mut stream, &kick).await;

    // The one cleanup path: out of the hub (its Sender clones go), then tell the writer why.
    state.hub.remove(&client_id);
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
    tracing::debug!(client_id = %client_id, ?reason, "client disconnected");
}

struct Session<'a> {
    state: &'a AppState,
    client_id: &'a ClientId,
    me: &'a Recipient,
    bucket: TokenBucket,
    rejected_in_a_row: u32,
}

impl Session<'_> {
    /// Reads frames until the client goes or must be closed; returns the close reason to send.
    async fn read_until_closed<R>(&mut self, stream: &mut R, kick: &Kick) -> Option<CloseReason>
    where
        R: Stream<Item = Result<Message, WsError>> + Unpin,
    {
        let pong_timeout = self.state.settings.pong_timeout;
        let mut deadline = tokio::time::Instant::now() + pong_timeout;
        loop {
            let msg = tokio::select! {
                biased;
                reason = kick.wait() => return Some(reason),
                _ = self.state.shutdown.wait() => return Some(CloseReason::ShuttingDown),
                _ = tokio::time::sleep_until(deadline) => return Some(CloseReason::PongTimeout),
                msg = stream.next() => msg,
            };
            // Any frame, pongs included, proves the client is alive.
            deadline = tokio::time::Instant::now() + pong_timeout;
            match msg {
                None | Some(Ok(Message::Close(_))) => return None,
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
            Ok(command) => self.execute(command).await,
            Err(err) => {
                self.me.offer(&Frame::error(&err));
            }
        }
        None
    }

    async fn execute(&mut self, command: Command) {
        let hub = &self.state.hub;
        match command {
            Command::Join(room) => match hub.join(self.client_id, &room) {
                Ok(_) => {
                    // `joined` promises cross-hub delivery: wait for the subscription. Not only
                    // for the room's first member: a second one may join while the first's
                    // SUBSCRIBE is still on its way (the wait returns at once once confirmed).
                    let target = Target::Room(room.clone());
                    self.state.bridge.wait_subscribed(&target).await;
                    self.me.offer(&Frame::joined(&room));
                }
                Err(err) => {
                    self.me.offer(&Frame::error(&err));
                }
            },
            Command::Leave(room) => match hub.leave(self.client_id, &room) {
                Ok(()) => {
                    self.me.offer(&Frame::left(&room));
                }
                Err(err) => {
                    self.me.offer(&Frame::error(&err));
                }
            },
            Command::Message { room, content } => self.send(Some(room), &content),
            Command::Broadcast { content } => self.send(None, &content),
            Command::Ping => {
                self.me.offer(&Frame::pong());
            }
        }
    }

    /// Local delivery first, then exactly one publish for the other hubs.
    fn send(&self, room: Option<Room>, content: &str) {
        let hub = &self.state.hub;
        let id = Uuid::new_v4().to_string();
        let frame = Frame::chat(&id, room.as_ref(), self.client_id, content, hub.name());
        let target = match room {
            Some(room) => {
                hub.deliver(&room, &frame, Some(self.client_id));
                Target::Room(room)
            }
            None => {
                hub.deliver_all(&frame, Some(self.client_id));
                Target::Broadcast
            }
        };
        self.state.bridge.publish(target, frame);
    }
}
