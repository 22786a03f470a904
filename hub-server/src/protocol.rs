//! The client protocol: frames a browser sends, frames a hub sends back, and room names.
//!
//! Outbound frames are serialized exactly once into a [`Frame`], whose bytes are shared (not copied)
//! by every recipient's queue and by the Redis envelope.

use serde::{Deserialize, Serialize};
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;
use tokio_tungstenite::tungstenite::Utf8Bytes;

use crate::error::ProtocolError;

/// Every client starts in this room, so a plain chat needs no set-up.
pub const DEFAULT_ROOM: &str = "general";
const MAX_ROOM_LEN: usize = 64;

/// A validated room name: 1–64 of `[A-Za-z0-9_.:-]`.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Room(String);

impl Room {
    pub fn parse(name: &str) -> Result<Self, ProtocolError> {
        let valid_char = |c: char| c.is_ascii_alphanumeric() || "_.:-".contains(c);
        if name.is_empty() || name.len() > MAX_ROOM_LEN || !name.chars().all(valid_char) {
            return Err(ProtocolError::BadRoom(name.chars().take(80).collect()));
        }
        Ok(Room(name.to_owned()))
    }

    pub fn default_room() -> Self {
        Room(DEFAULT_ROOM.to_owned())
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Display for Room {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

/// What a client asked for, after validation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Command {
    Join(Room),
    Leave(Room),
    Message { room: Room, content: String },
    Broadcast { content: String },
    Ping,
}

/// The JSON shape of a client frame; unknown fields are an error, not silently ignored.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawFrame {
    #[serde(rename = "type")]
    kind: String,
    room: Option<String>,
    content: Option<String>,
}

impl Command {
    /// Parses one text frame. Text that does not start with `{` is chat text for the default room;
    /// text that does is a JSON frame and must be a valid one.
    pub fn parse(text: &str) -> Result<Self, ProtocolError> {
        if !text.trim_start().starts_with('{') {
            return Ok(Command::Message {
                room: Room::default_room(),
                content: non_empty(text.to_owned())?,
            });
        }
        let raw: RawFrame =
            serde_json::from_str(text).map_err(|e| ProtocolError::BadJson(e.to_string()))?;
        let room = |r: Option<String>| -> Result<Room, ProtocolError> {
            Room::parse(r.as_deref().ok_or(ProtocolError::MissingField("room"))?)
        };
        let content = |c: Option<String>| c.ok_or(ProtocolError::MissingField("content"));
        match raw.kind.as_str() {
            "join" => Ok(Command::Join(room(raw.room)?)),
            "leave" => Ok(Command::Leave(room(raw.room)?)),
            "message" => Ok(Command::Message {
                room: match raw.room {
                    None => Room::default_room(),
                    some => room(some)?,
                },
                content: non_empty(content(raw.content)?)?,
            }),
            "broadcast" => Ok(Command::Broadcast {
                content: non_empty(content(raw.content)?)?,
            }),
            "ping" => Ok(Command::Ping),
            other => Err(ProtocolError::UnknownType(other.chars().take(40).collect())),
        }
    }
}

fn non_empty(content: String) -> Result<String, ProtocolError> {
    if content.is_empty() {
        Err(ProtocolError::EmptyContent)
    } else {
        Ok(content)
    }
}

/// A serialized hub → client frame. Cloning shares the bytes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Frame(Utf8Bytes);

impl Frame {
    fn encode(value: &impl Serialize) -> Self {
        // Serializing these plain structs cannot fail: no maps with non-string keys, no I/O.
        let json = serde_json::to_string(value).unwrap_or_else(|_| String::from("{}"));
        Frame(Utf8Bytes::from(json))
    }

    /// A frame that was serialized by another hub and arrived over Redis.
    pub fn from_json(json: &str) -> Self {
        Frame(Utf8Bytes::from(json))
    }

    pub fn as_str(&self) -> &str {
        self.0.as_str()
    }

    pub fn bytes(&self) -> Utf8Bytes {
        self.0.clone()
    }

    pub fn welcome(client_id: &str, hub: &str, instance_id: &str, rooms: &[&str]) -> Self {
        #[derive(Serialize)]
        struct Welcome<'a> {
            r#type: &'static str,
            client_id: &'a str,
            hub: &'a str,
            instance_id: &'a str,
            rooms: &'a [&'a str],
        }
        Self::encode(&Welcome {
            r#type: "welcome",
            client_id,
            hub,
            instance_id,
            rooms,
        })
    }

    /// A chat message (`room` set) or a broadcast (`room` none).
    pub fn chat(id: &str, room: Option<&Room>, from: &str, content: &str, hub: &str) -> Self {
        #[derive(Serialize)]
        struct Chat<'a> {
            r#type: &'static str,
            id: &'a str,
            #[serde(skip_serializing_if = "Option::is_none")]
            room: Option<&'a str>,
            from: &'a str,
            content: &'a str,
            timestamp: String,
            hub: &'a str,
        }
        Self::encode(&Chat {
            r#type: if room.is_some() {
                "message"
            } else {
                "broadcast"
            },
            id,
            room: room.map(Room::as_str),
            from,
            content,
            timestamp: now_rfc3339(),
            hub,
        })
    }

    pub fn joined(room: &Room) -> Self {
        Self::room_event("joined", room)
    }

    pub fn left(room: &Room) -> Self {
        Self::room_event("left", room)
    }

    fn room_event(kind: &'static str, room: &Room) -> Self {
        #[derive(Serialize)]
        struct RoomEvent<'a> {
            r#type: &'static str,
            room: &'a str,
        }
        Self::encode(&RoomEvent {
            r#type: kind,
            room: room.as_str(),
        })
    }

    pub fn pong() -> Self {
        Frame(Utf8Bytes::from_static(r#"{"type":"pong"}"#))
    }

    pub fn error(err: &ProtocolError) -> Self {
        #[derive(Serialize)]
        struct ErrorFrame<'a> {
            r#type: &'static str,
            code: &'static str,
            message: &'a str,
        }
        Self::encode(&ErrorFrame {
            r#type: "error",
            code: err.code(),
            message: &err.to_string(),
        })
    }
}

fn now_rfc3339() -> String {
    OffsetDateTime::now_utc()
        .format(&Rfc3339)
        .unwrap_or_else(|_| String::from("1970-01-01T00:00:00Z"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn room(name: &str) -> Room {
        Room::parse(name).expect("valid room")
    }

    #[test]
    fn parses_every_command() {
        assert_eq!(
            Command::parse(r#"{"type":"join","room":"r1"}"#),
            Ok(Command::Join(room("r1")))
        );
        assert_eq!(
            Command::parse(r#"{"type":"leave","room":"r1"}"#),
            Ok(Command::Leave(room("r1")))
        );
        assert_eq!(
            Command::parse(r#"{"type":"message","room":"a.b:c-d_e","content":"hi"}"#),
            Ok(Command::Message {
                room: room("a.b:c-d_e"),
                content: "hi".into()
            })
        );
        assert_eq!(
            Command::parse(r#"{"type":"message","content":"hi"}"#),
            Ok(Command::Message {
                room: room("general"),
                content: "hi".into()
            })
        );
        assert_eq!(
            Command::parse(r#"{"type":"broadcast","content":"all"}"#),
            Ok(Command::Broadcast {
                content: "all".into()
            })
        );
        assert_eq!(Command::parse(r#"{"type":"ping"}"#), Ok(Command::Ping));
    }

    #[test]
    fn plain_text_goes_to_the_default_room() {
        assert_eq!(
            Command::parse("hello there"),
            Ok(Command::Message {
                room: room("general"),
                content: "hello there".into()
            })
        );
    }

    #[test]
    fn bad_frames_name_their_fault() {
        let code = |text: &str| Command::parse(text).map_err(|e| e.code()).unwrap_err();
        assert_eq!(code(r#"{"type":"join""#), "bad_json");
        assert_eq!(code(r#"{"type":"dance"}"#), "unknown_type");
        assert_eq!(code(r#"{"type":"join","room":"no spaces"}"#), "bad_room");
        assert_eq!(code(r#"{"type":"join","room":""}"#), "bad_room");
        assert_eq!(
            code(&format!(r#"{{"type":"join","room":"{}"}}"#, "r".repeat(65))),
            "bad_room"
        );
        assert_eq!(code(r#"{"type":"join"}"#), "missing_field");
        assert_eq!(
            code(r#"{"type":"message","content":"x","extra":1}"#),
            "bad_json"
        );
        assert_eq!(code(r#"{"type":"message","content":""}"#), "empty_content");
    }

    #[test]
    fn room_names_accept_the_documented_alphabet_only() {
        assert!(Room::parse(&"a".repeat(64)).is_ok());
        for bad in ["a b", "a/b", "é", "a\nb", "<script>"] {
            assert!(Room::parse(bad).is_err(), "{bad:?} must be refused");
        }
    }

    #[test]
    fn chat_frames_carry_every_documented_field() {
        let frame = Frame::chat("id1", Some(&room("r")), "c1", "<b>x</b>", "hub1");
        let v: serde_json::Value = serde_json::from_str(frame.as_str()).expect("json");
        assert_eq!(v["type"], "message");
        assert_eq!(v["room"], "r");
        assert_eq!(v["from"], "c1");
        assert_eq!(v["content"], "<b>x</b>");
        assert_eq!(v["hub"], "hub1");
        let ts = v["timestamp"].as_str().expect("timestamp");
        assert!(OffsetDateTime::parse(ts, &Rfc3339).is_ok(), "{ts}");

        let frame = Frame::chat("id2", None, "c1", "all", "hub1");
        let v: serde_json::Value = serde_json::from_str(frame.as_str()).expect("json");
        assert_eq!(v["type"], "broadcast");
        assert!(v.get("room").is_none());
    }
}
