//! What the hub says in a room, as the application receives it: a [`Message`] (with the frame's
//! own text, for tools that pass it on), a [`Broadcast`], who sent them ([`User`]), and what a
//! publish returns ([`Ack`]) and where a room's stream stands ([`Position`]).

use serde::{Deserialize, Serialize};
use tokio_tungstenite::tungstenite::Utf8Bytes;

/// Who sent a message, as the hub set it (a client cannot spoof it): the token's `sub` and
/// `name`, or the client id of an anonymous client.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct User {
    pub id: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
}

/// One message of a room. A subscription yields each message once, in offset order.
#[derive(Debug, Clone)]
pub struct Message {
    /// Unique and stable: the same message replayed later has the same id.
    pub id: String,
    pub room: String,
    /// The client id of the connection that sent it (`api` for the server API).
    pub from: String,
    pub user: User,
    pub content: String,
    /// RFC 3339.
    pub timestamp: String,
    /// The name of the hub that accepted it.
    pub hub: String,
    /// The room's history position; `None` on a message delivered while Redis was down.
    pub epoch: Option<String>,
    pub offset: Option<u64>,
    /// Sent by a join (history or recovery), not live.
    pub replayed: bool,
    pub(crate) raw: Utf8Bytes,
}

impl Message {
    /// The frame as the hub sent it (one line of JSON).
    pub fn raw(&self) -> &str {
        self.raw.as_str()
    }

    /// The frame's size in bytes.
    pub(crate) fn size(&self) -> usize {
        self.raw.len()
    }
}

/// A `broadcast` frame: to every client on every hub (no room, no history).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Broadcast {
    pub id: String,
    pub from: String,
    pub user: User,
    pub content: String,
    pub timestamp: String,
    pub hub: String,
}

/// The hub stored a publish: its message id and offset in the room.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Ack {
    pub id: String,
    /// `None` when the hub keeps no history, or stored it while Redis was down.
    pub offset: Option<u64>,
}

/// Where a room's stream stands: every message up to `offset` of `epoch` was delivered (or was the
/// client's own, or was declared lost by a [`Recovery`](crate::Recovery) event). Keep it to resume
/// later with [`SubscribeOptions::since`](crate::SubscribeOptions::since).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Position {
    pub epoch: String,
    pub offset: u64,
}
