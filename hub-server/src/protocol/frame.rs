//! A serialized hub → client frame: its JSON bytes, shared by every recipient, their
//! permessage-deflate form once a recipient needed it (shared the same way), and the room offset
//! of a stored message beside them (so a replay can drop live copies without parsing).

use std::sync::{Arc, OnceLock};

use bytes::Bytes;
use serde::Serialize;
use tokio_tungstenite::tungstenite::Utf8Bytes;

use crate::deflate::Deflaters;

/// A serialized hub → client frame. Cloning shares the bytes, and the compressed bytes.
#[derive(Debug, Clone)]
pub struct Frame {
    json: Utf8Bytes,
    /// The JSON compressed for permessage-deflate, by the first writer whose client agreed to
    /// it; every other such writer sends the same bytes (`None`: the compressor failed, send the
    /// JSON). One small allocation per frame, not per recipient.
    deflated: Arc<OnceLock<Option<Bytes>>>,
    /// The room offset of a stored message, kept beside the bytes so a join's replay can drop
    /// live copies of what it replayed without parsing them.
    offset: Option<u64>,
}

/// Two frames are equal when they say the same thing, compressed yet or not.
impl PartialEq for Frame {
    fn eq(&self, other: &Self) -> bool {
        self.json == other.json && self.offset == other.offset
    }
}

impl Eq for Frame {}

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
            deflated: Arc::default(),
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

    /// The JSON as a permessage-deflate payload with the largest window, compressed the first
    /// time any recipient needs it and shared from then on (a writer that comes while another
    /// compresses waits for that result rather than compressing again).
    pub fn deflated(&self, deflaters: &Deflaters) -> Option<Bytes> {
        self.deflated
            .get_or_init(|| {
                deflaters.compress(crate::deflate::MAX_WINDOW_BITS, self.json.as_bytes())
            })
            .clone()
    }

    /// Whether this is an `error` frame (every one starts with its type, see `outbound`).
    pub fn is_error(&self) -> bool {
        self.as_str().starts_with(r#"{"type":"error""#)
    }

    /// The message id a chat frame carries (`None` for frames without one). Parses the frame:
    /// for the rare frames that must be matched by id, not for every delivery.
    pub fn message_id(&self) -> Option<String> {
        #[derive(serde::Deserialize)]
        struct Id {
            id: Option<String>,
        }
        serde_json::from_str::<Id>(self.as_str()).ok()?.id
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

    #[test]
    fn a_frame_is_compressed_once_for_all_its_clones() {
        let deflaters = Deflaters::new(1);
        let frame = Frame::from_json(format!(
            r#"{{"type":"x","content":"{}"}}"#,
            "ab".repeat(300)
        ));
        let copy = frame.clone();
        assert_eq!(frame, copy);
        let first = frame.deflated(&deflaters).expect("compressed");
        let second = copy.deflated(&deflaters).expect("compressed");
        assert_eq!(
            first.as_ptr(),
            second.as_ptr(),
            "the same bytes, not a second compression"
        );
        assert!(
            first.len() < frame.as_str().len() / 4,
            "{} bytes",
            first.len()
        );
        // Equality is about what the frame says, not whether it was compressed yet.
        assert_eq!(frame, Frame::from_json(frame.as_str().to_owned()));
    }
}
