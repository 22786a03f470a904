//! Who is in a room: the answer to a presence question ([`Presence`]) and the changes members are
//! told about ([`PresenceDiff`]).

use serde::{Deserialize, Serialize};

/// One user in a room, across every hub.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Member {
    pub user: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// Their connections in the room on all hubs together.
    pub connections: u64,
}

/// The hub's `presence` frame: who is in the room.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Presence {
    pub room: String,
    pub count: u64,
    /// At most 1,000 of them.
    pub members: Vec<Member>,
    /// The room has more users than `members` lists (`count` says how many).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub truncated: bool,
}

/// A user who joined or left a room.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PresenceUser {
    pub user: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
}

/// A `presence_diff` frame: a user's first connection joined the room, or their last one left.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PresenceDiff {
    pub room: String,
    pub joins: Vec<PresenceUser>,
    pub leaves: Vec<PresenceUser>,
}
