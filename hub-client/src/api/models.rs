//! What the API answers and what a history read asks for, as the calls return and take them.

use serde::{Deserialize, Serialize};
use serde_json::Value;

/// What `POST /api/publish` answers.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Published {
    pub id: String,
    /// `None` with `history_size = 0`.
    pub offset: Option<u64>,
    pub epoch: Option<String>,
}

/// One message of [`crate::api::ApiClient::publish_batch`]: what `POST /api/publish` takes.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BatchMessage {
    pub room: String,
    pub content: String,
    /// As whom (`{"id":"api"}` when none).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user: Option<crate::message::User>,
    /// The same key within 5 minutes publishes nothing and answers the first result.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub idempotency_key: Option<String>,
}

impl BatchMessage {
    /// `content` to `room`, as the API, with no idempotency key.
    pub fn new(room: impl Into<String>, content: impl Into<String>) -> Self {
        BatchMessage {
            room: room.into(),
            content: content.into(),
            user: None,
            idempotency_key: None,
        }
    }
}

/// What `GET /api/rooms/{room}/history` answers. Messages are the frames as a join replays them.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct History {
    pub room: String,
    pub epoch: Option<String>,
    pub offset: Option<u64>,
    pub messages: Vec<Value>,
    /// With `since`: whether every message after it is there (all or nothing).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub recovered: Option<bool>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
}

/// Which part of a room's history to read.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct HistoryQuery {
    /// The last N messages.
    pub limit: Option<u64>,
    /// Every message after this offset of this epoch.
    pub since: Option<(String, u64)>,
}
