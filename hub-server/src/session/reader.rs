//! The read loop of a session: every frame the client sends, raced against what may end the
//! connection (a kick, shutdown, the pong timeout, the auth deadline); the rate limit and the
//! parsing of each data frame, before it runs as a command.

use std::sync::atomic::Ordering;
use std::time::Instant;

use futures_util::{Stream, StreamExt};
use tokio_tungstenite::tungstenite::error::{CapacityError, ProtocolError as WsProtocolError};
use tokio_tungstenite::tungstenite::{Error as WsError, Message};

use super::state::Session;
use crate::deflate::Corrupt;
use crate::error::{CloseReason, ProtocolError};
use crate::outbox::Kick;
use crate::protocol::{Command, Frame};

impl Session<'_> {
    /// Reads frames until the client goes or must be closed; returns the close reason to send.
    pub(super) async fn read_until_closed<R>(
        &mut self,
        stream: &mut R,
        kick: &Kick,
    ) -> Option<CloseReason>
    where
        R: Stream<Item = Result<Message, WsError>> + Unpin,
    {
        let pong_timeout = self.state.settings.pong_timeout;
        let mut deadline = tokio::time::Instant::now() + pong_timeout;
        loop {
            // One timer for the pong timeout and the auth deadline, whichever comes first (the
            // pong timeout on a tie): a timer is ~100 bytes of every idle session's future.
            let (at, why) = match self.deadline {
                Some((at, reason)) if at < deadline => (at, reason),
                _ => (deadline, CloseReason::PongTimeout),
            };
            let msg = tokio::select! {
                biased;
                reason = kick.wait() => return Some(reason),
                _ = self.state.shutdown.wait() => return Some(CloseReason::ShuttingDown),
                _ = tokio::time::sleep_until(at) => return Some(why),
                msg = stream.next() => msg,
                () = self.pending.next_done(), if !self.pending.is_empty() => continue,
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
                    if let Some(reason) = self.on_frame(Some(text.as_str())) {
                        return Some(reason);
                    }
                }
                Some(Ok(Message::Binary(_))) => {
                    if let Some(reason) = self.on_frame(None) {
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
                Some(Err(err)) if Corrupt::is(&err) => {
                    tracing::debug!(client_id = %self.client_id, "compressed message does not inflate");
                    return Some(CloseReason::InvalidPayload);
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
    fn on_frame(&mut self, text: Option<&str>) -> Option<CloseReason> {
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
            Ok(command) => return self.execute(command).err(),
            Err(err) => {
                self.me.offer(&Frame::error(&err));
            }
        }
        None
    }
}
