//! What the client tells the application: a subscription's [`RoomEvent`]s (messages, presence
//! changes, how each re-join went) and the client's own [`ClientEvent`]s (state changes,
//! broadcasts, renewed tokens, errors).

use std::fmt;
use std::time::Duration;

use crate::error::HubError;
use crate::message::{Broadcast, Message, User};
use crate::presence::PresenceDiff;

/// One event of a [`Subscription`](crate::Subscription).
#[derive(Debug, Clone)]
pub enum RoomEvent {
    /// A message of the room: each exactly once, in offset order, across reconnects.
    Message(Message),
    /// A user's first connection joined the room or their last one left.
    Presence(PresenceDiff),
    /// How a re-join went: whether every message since the room's position was delivered.
    Recovery(Recovery),
    /// The room is joined on a new connection (the first time, or after a reconnect).
    Joined(Joined),
    /// The hub refused the room (`forbidden`, `bad_room`, `too_many_rooms`, …) or took the
    /// client out of it: no more messages come; publishes fail with the same code.
    Error(HubError),
}

/// Why the client re-joined a room with `since`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RecoveryCause {
    /// The connection was lost and is back.
    Reconnect,
    /// The first join of a subscription made with a position ([`SubscribeOptions::since`](crate::SubscribeOptions::since)).
    Resume,
    /// A hole in the live offsets (the hub shed messages it could not deliver in time).
    Gap,
    /// A message of a new epoch arrived: the room's history was reset.
    Epoch,
    /// The hub could not answer the last re-join (Redis down): asked again.
    Retry,
    /// The subscription's buffer was full and the application has caught up: what was skipped
    /// is fetched from the history. Reported only when something was lost.
    Lag,
    /// A publish whose ack was lost is looked for in the history. Reported only when something
    /// was lost.
    Probe,
}

impl RecoveryCause {
    /// The JavaScript SDK's spelling: `reconnect`, `resume`, `gap`, `epoch`, `retry`, `lag`, `probe`.
    pub fn as_str(self) -> &'static str {
        match self {
            RecoveryCause::Reconnect => "reconnect",
            RecoveryCause::Resume => "resume",
            RecoveryCause::Gap => "gap",
            RecoveryCause::Epoch => "epoch",
            RecoveryCause::Retry => "retry",
            RecoveryCause::Lag => "lag",
            RecoveryCause::Probe => "probe",
        }
    }
}

impl fmt::Display for RecoveryCause {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// How a re-join went. `recovered: false` says messages may be lost, and why: never silently.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Recovery {
    /// Every message since the room's position was delivered.
    pub recovered: bool,
    /// Why not: `epoch_changed`, `too_old`, `too_many`, `unavailable` (Redis down: retrying),
    /// `no_history`, `overflow`, `gap`.
    pub reason: Option<String>,
    /// Messages the re-join delivered.
    pub replayed: u64,
    pub cause: RecoveryCause,
    /// `unavailable`: the client asks again until the hub can answer.
    pub retrying: bool,
    /// `overflow` or `gap`: how many offsets were given up.
    pub skipped: Option<u64>,
}

/// Why a room was joined on a connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum JoinCause {
    /// The subscription's first join.
    Subscribe,
    /// A re-join after a reconnect.
    Reconnect,
    /// The first join of a subscription made with a position.
    Resume,
}

/// The room is joined on the current connection, at this position.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Joined {
    pub epoch: Option<String>,
    pub offset: Option<u64>,
    pub cause: JoinCause,
}

/// The client's connection state.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum State {
    /// Not connected: before [`HubClient::start`](crate::HubClient::start), or waiting to try again.
    Disconnected,
    /// An attempt is under way.
    Connecting,
    /// The hub welcomed the client.
    Connected,
    /// For good: closed by the application, or refused by the hub (4001/4002 with a token that
    /// cannot be renewed, 4003).
    Closed,
}

impl State {
    pub fn as_str(self) -> &'static str {
        match self {
            State::Disconnected => "disconnected",
            State::Connecting => "connecting",
            State::Connected => "connected",
            State::Closed => "closed",
        }
    }
}

impl fmt::Display for State {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// What the hub's `welcome` said on the current connection.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConnectionInfo {
    pub client_id: String,
    /// The hub's name.
    pub hub: String,
    pub instance_id: String,
    pub user: Option<User>,
    /// Rooms the hub joined this connection to by itself: the personal room `user:<id>`, the
    /// token's `subs`.
    pub rooms: Vec<String>,
}

/// A change of the client's [`State`], with what caused it.
#[derive(Debug, Clone)]
pub struct StateChange {
    pub state: State,
    /// `Connecting`: which attempt (from 1) since the last connection that lasted.
    pub attempt: Option<u32>,
    /// `Connected`: the welcome.
    pub connection: Option<ConnectionInfo>,
    /// `Disconnected` / `Closed`: the close code (1006 when the socket gave none) and reason.
    pub code: Option<u16>,
    pub reason: Option<String>,
    /// `Disconnected`: how long until the next attempt.
    pub delay: Option<Duration>,
    /// `Closed` by the hub for good: why (`unauthorized`, `disconnected_by_server`).
    pub error: Option<HubError>,
}

impl StateChange {
    pub(crate) fn new(state: State) -> Self {
        StateChange {
            state,
            attempt: None,
            connection: None,
            code: None,
            reason: None,
            delay: None,
            error: None,
        }
    }
}

/// The hub accepted a renewed token (its `authenticated` answer).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TokenRenewed {
    pub user: Option<User>,
    /// Until when (Unix seconds) the connection may stay without another renewal.
    pub exp: Option<u64>,
}

/// One event of [`HubClient::events`](crate::HubClient::events).
#[derive(Debug, Clone)]
pub enum ClientEvent {
    State(StateChange),
    /// A broadcast (each id once; broadcasts have no history, so one sent while disconnected is
    /// not delivered).
    Broadcast(Broadcast),
    /// A message of a room the hub joined this connection to by itself
    /// ([`ConnectionInfo::rooms`]: the personal room, the token's `subs`) that the application
    /// has not subscribed to: it arrives without a join, once. Subscribe to the room for offset
    /// order and recovery across reconnects.
    Message(Message),
    Token(TokenRenewed),
    /// Something the application may want to log: a token provider that failed, an error frame of
    /// the hub that answers nothing in particular (`rate_limited`, …), the reason the client
    /// closed for good.
    Error(HubError),
}
