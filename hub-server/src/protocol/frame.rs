//! A serialized hub → client frame: its JSON bytes, shared by every recipient, and the room
//! offset of a stored message beside them (so a replay can drop live copies without parsing).

use serde::Serialize;
use tokio_tungstenite::tungstenite::Utf8Bytes;

/// A serialized hub → client frame. Cloning shares the bytes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Frame {
    json: Utf8Bytes,
    /// The room offset of a stored message, kept beside the bytes so a join's replay can drop
    /// live copies of what it replayed without parsing them.
    offset: Option<u64>,
}

impl Frame {
    pub(super) fn encode(value: &impl Serialize) -> Self {
        // Serializing these plain structs cannot fail: no maps with non-string keys, no I/O.
        let json = serde_json::to_string(value).unwrap_or_else(|_| String::from("{}"));
        Frame::from_json(json)
    }

    /// A frame serialized elsewhere (another hub, the history), with its offset if it has one.
    pub fn from_stored(json: impl Into<Utf8Bytes>, offset: Option<u64>) -> Self {
        Frame {
            json: json.into(),
            offset,
        }
    }

    /// A frame that was serialized by another hub and arrived over Redis.
    pub fn from_json(json: impl Into<Utf8Bytes>) -> Self {
        Self::from_stored(json, None)
    }

    pub fn as_str(&self) -> &str {
        self.json.as_str()
    }

    pub fn bytes(&self) -> Utf8Bytes {
        self.json.clone()
    }

    pub fn offset(&self) -> Option<u64> {
        self.offset
    }

    /// This chat frame as the history stores it: `offset` and `epoch` first. The Redis append
    /// script builds exactly the same bytes (see `history::scripts`).
    pub fn stored(&self, offset: u64, epoch: &str) -> Self {
        Self::stored_from(self.as_str(), offset, epoch)
    }

    /// [`Frame::stored`] of a chat frame's JSON as Redis keeps and sends it (`offset` and epoch
    /// travel beside it there). A frame that already starts with `offset` (stored by an older
    /// hub) is taken as it is.
    pub fn stored_from(chat: &str, offset: u64, epoch: &str) -> Self {
        if chat.starts_with("{\"offset\":") {
            return Self::from_stored(chat.to_owned(), Some(offset));
        }
        let rest = chat.get(1..).unwrap_or_default();
        let json = format!("{{\"offset\":{offset},\"epoch\":\"{epoch}\",{rest}");
        Self::from_stored(json, Some(offset))
    }

    /// A stored frame sent again by a join's replay.
    pub fn replayed(&self) -> Self {
        let json = format!("{{\"replayed\":true,{}", &self.as_str()[1..]);
        Self::from_stored(json, self.offset)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::protocol::{Room, User};

    fn room(name: &str) -> Room {
        Room::parse(name).expect("valid room")
    }

    #[test]
    fn stored_and_replayed_frames_are_the_chat_frame_with_fields_in_front() {
        let user = User {
            id: "u",
            name: None,
        };
        let chat = Frame::chat("id", Some(&room("r")), "c", user, "x", "h");
        let stored = chat.stored(42, "ab12cd34");
        assert_eq!(stored.offset(), Some(42));
        let v: serde_json::Value = serde_json::from_str(stored.as_str()).expect("json");
        assert_eq!(
            (v["offset"].as_u64(), v["epoch"].as_str()),
            (Some(42), Some("ab12cd34"))
        );
        assert_eq!(v["content"], "x");
        let replayed = stored.replayed();
        let v: serde_json::Value = serde_json::from_str(replayed.as_str()).expect("json");
        assert_eq!(
            (v["replayed"].as_bool(), v["offset"].as_u64()),
            (Some(true), Some(42))
        );
        assert_eq!(replayed.offset(), Some(42));
    }
}
