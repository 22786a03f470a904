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
    Join {
        room: Room,
        replay: Replay,
    },
    Leave(Room),
    /// `reference`: the client's `ref`, echoed in the `ack` (or the `error`).
    Message {
        room: Room,
        content: String,
        reference: Option<String>,
    },
    Broadcast {
        content: String,
    },
    Ping,
    /// Who is in a room, across every hub.
    Presence(Room),
    /// A token: the first frame in `auth_mode = jwt`, or a refresh later.
    Auth {
        token: String,
    },
}

/// What a join asks to be replayed from the room's history before `joined`.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub enum Replay {
    /// Nothing: live messages from now on.
    #[default]
    None,
    /// The last `n` messages (`"history": n`).
    Last(usize),
    /// Every message after `offset` of `epoch` (`"since": {"epoch", "offset"}`): all or nothing.
    Since { epoch: String, offset: u64 },
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawSince {
    epoch: String,
    offset: u64,
}

/// Longest `ref` a client may attach to a message: it is echoed back, so it stays small.
const MAX_REF_LEN: usize = 64;

/// The JSON shape of a client frame; unknown fields are an error, not silently ignored.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawFrame {
    #[serde(rename = "type")]
    kind: String,
    room: Option<String>,
    content: Option<String>,
    token: Option<String>,
    history: Option<usize>,
    since: Option<RawSince>,
    #[serde(rename = "ref")]
    reference: Option<String>,
}

impl RawFrame {
    /// Fields another frame type has are as wrong here as unknown ones (a `token` on a message
    /// would otherwise be accepted and ignored).
    fn only(&self, allowed: &[&str]) -> Result<(), ProtocolError> {
        let present = [
            ("room", self.room.is_some()),
            ("content", self.content.is_some()),
            ("token", self.token.is_some()),
            ("history", self.history.is_some()),
            ("since", self.since.is_some()),
            ("ref", self.reference.is_some()),
        ];
        let extra = present.map(|(field, is)| (field, is && !allowed.contains(&field)));
        match extra.iter().find(|(_, extra)| *extra) {
            Some((field, _)) => Err(ProtocolError::BadJson(format!(
                "field {field:?} does not belong in a {:?} frame",
                self.kind
            ))),
            None => Ok(()),
        }
    }
}

impl Command {
    /// Parses one text frame. Text that does not start with `{` is chat text for the default room;
    /// text that does is a JSON frame and must be a valid one.
    pub fn parse(text: &str) -> Result<Self, ProtocolError> {
        if !text.trim_start().starts_with('{') {
            return Ok(Command::Message {
                room: Room::default_room(),
                content: non_empty(text.to_owned())?,
                reference: None,
            });
        }
        let raw: RawFrame =
            serde_json::from_str(text).map_err(|e| ProtocolError::BadJson(e.to_string()))?;
        let room = |r: Option<String>| -> Result<Room, ProtocolError> {
            Room::parse(r.as_deref().ok_or(ProtocolError::MissingField("room"))?)
        };
        let content = |c: Option<String>| c.ok_or(ProtocolError::MissingField("content"));
        match raw.kind.as_str() {
            "join" => raw.only(&["room", "history", "since"])?,
            "leave" | "presence" => raw.only(&["room"])?,
            "message" => raw.only(&["room", "content", "ref"])?,
            "broadcast" => raw.only(&["content"])?,
            "ping" => raw.only(&[])?,
            "auth" => raw.only(&["token"])?,
            _ => {}
        }
        match raw.kind.as_str() {
            "join" => Ok(Command::Join {
                room: room(raw.room)?,
                replay: match (raw.history, raw.since) {
                    (None, None) => Replay::None,
                    (Some(n), None) => Replay::Last(n),
                    (None, Some(since)) => Replay::Since {
                        epoch: since.epoch,
                        offset: since.offset,
                    },
                    (Some(_), Some(_)) => {
                        return Err(ProtocolError::BadJson(
                            "a join has \"history\" or \"since\", not both".into(),
                        ));
                    }
                },
            }),
            "leave" => Ok(Command::Leave(room(raw.room)?)),
            "presence" => Ok(Command::Presence(room(raw.room)?)),
            "message" => Ok(Command::Message {
                room: match raw.room {
                    None => Room::default_room(),
                    some => room(some)?,
                },
                content: non_empty(content(raw.content)?)?,
                reference: match raw.reference {
                    Some(r) if r.is_empty() || r.len() > MAX_REF_LEN => {
                        return Err(ProtocolError::BadJson(format!(
                            "\"ref\" must be 1-{MAX_REF_LEN} bytes"
                        )));
                    }
                    r => r,
                },
            }),
            "broadcast" => Ok(Command::Broadcast {
                content: non_empty(content(raw.content)?)?,
            }),
            "ping" => Ok(Command::Ping),
            "auth" => Ok(Command::Auth {
                token: raw.token.ok_or(ProtocolError::MissingField("token"))?,
            }),
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

/// Who sent a message, as every recipient sees it: set by the hub, never by the client.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct User<'a> {
    pub id: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub name: Option<&'a str>,
}

/// A serialized hub → client frame. Cloning shares the bytes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Frame {
    json: Utf8Bytes,
    /// The room offset of a stored message, kept beside the bytes so a join's replay can drop
    /// live copies of what it replayed without parsing them.
    offset: Option<u64>,
}

impl Frame {
    fn encode(value: &impl Serialize) -> Self {
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

    pub fn welcome(
        client_id: &str,
        hub: &str,
        instance_id: &str,
        rooms: &[&str],
        user: User<'_>,
    ) -> Self {
        #[derive(Serialize)]
        struct Welcome<'a> {
            r#type: &'static str,
            client_id: &'a str,
            hub: &'a str,
            instance_id: &'a str,
            rooms: &'a [&'a str],
            user: User<'a>,
        }
        Self::encode(&Welcome {
            r#type: "welcome",
            client_id,
            hub,
            instance_id,
            rooms,
            user,
        })
    }

    /// The answer to a refresh: the token was good, the connection now lasts until `exp`.
    pub fn authenticated(user: User<'_>, exp: u64) -> Self {
        #[derive(Serialize)]
        struct Authenticated<'a> {
            r#type: &'static str,
            user: User<'a>,
            exp: u64,
        }
        Self::encode(&Authenticated {
            r#type: "authenticated",
            user,
            exp,
        })
    }

    /// A chat message (`room` set) or a broadcast (`room` none).
    pub fn chat(
        id: &str,
        room: Option<&Room>,
        from: &str,
        user: User<'_>,
        content: &str,
        hub: &str,
    ) -> Self {
        #[derive(Serialize)]
        struct Chat<'a> {
            r#type: &'static str,
            id: &'a str,
            #[serde(skip_serializing_if = "Option::is_none")]
            room: Option<&'a str>,
            from: &'a str,
            user: User<'a>,
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
            user,
            content,
            timestamp: now_rfc3339(),
            hub,
        })
    }

    pub fn joined(room: &Room, outcome: &JoinOutcome) -> Self {
        #[derive(Serialize)]
        struct Joined<'a> {
            r#type: &'static str,
            room: &'a str,
            #[serde(flatten)]
            outcome: &'a JoinOutcome,
        }
        Self::encode(&Joined {
            r#type: "joined",
            room: room.as_str(),
            outcome,
        })
    }

    /// The message with `reference` is in the history (`offset`; none without history).
    pub fn ack(reference: &str, id: &str, offset: Option<u64>) -> Self {
        #[derive(Serialize)]
        struct Ack<'a> {
            r#type: &'static str,
            r#ref: &'a str,
            id: &'a str,
            #[serde(skip_serializing_if = "Option::is_none")]
            offset: Option<u64>,
        }
        Self::encode(&Ack {
            r#type: "ack",
            r#ref: reference,
            id,
            offset,
        })
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

    /// Users whose first connection joined `room`, or whose last left it (across every hub).
    pub fn presence_diff(
        room: &Room,
        joins: &[(String, Option<String>)],
        leaves: &[(String, Option<String>)],
    ) -> Self {
        #[derive(Serialize)]
        struct Who<'a> {
            user: &'a str,
            #[serde(skip_serializing_if = "Option::is_none")]
            name: Option<&'a str>,
        }
        #[derive(Serialize)]
        struct Diff<'a> {
            r#type: &'static str,
            room: &'a str,
            joins: Vec<Who<'a>>,
            leaves: Vec<Who<'a>>,
        }
        fn who(list: &[(String, Option<String>)]) -> Vec<Who<'_>> {
            list.iter()
                .map(|(user, name)| Who {
                    user,
                    name: name.as_deref(),
                })
                .collect()
        }
        Self::encode(&Diff {
            r#type: "presence_diff",
            room: room.as_str(),
            joins: who(joins),
            leaves: who(leaves),
        })
    }

    /// The answer to `{"type":"presence","room":…}`.
    pub fn presence(presence: &impl Serialize) -> Self {
        #[derive(Serialize)]
        struct Answer<'a, P> {
            r#type: &'static str,
            #[serde(flatten)]
            presence: &'a P,
        }
        Self::encode(&Answer {
            r#type: "presence",
            presence,
        })
    }

    pub fn pong() -> Self {
        Self::from_json(Utf8Bytes::from_static(r#"{"type":"pong"}"#))
    }

    pub fn error(err: &ProtocolError) -> Self {
        Self::error_for(err, None)
    }

    /// An error answering the message with `reference`.
    pub fn error_for(err: &ProtocolError, reference: Option<&str>) -> Self {
        Self::error_frame(err, reference, None)
    }

    /// An error answering a join (or a presence question) about `room`: the client learns which.
    pub fn error_in(err: &ProtocolError, room: &Room) -> Self {
        Self::error_frame(err, None, Some(room))
    }

    fn error_frame(err: &ProtocolError, reference: Option<&str>, room: Option<&Room>) -> Self {
        #[derive(Serialize)]
        struct ErrorFrame<'a> {
            r#type: &'static str,
            code: &'static str,
            message: &'a str,
            #[serde(skip_serializing_if = "Option::is_none")]
            r#ref: Option<&'a str>,
            #[serde(skip_serializing_if = "Option::is_none")]
            room: Option<&'a str>,
        }
        Self::encode(&ErrorFrame {
            r#type: "error",
            code: err.code(),
            message: &err.to_string(),
            r#ref: reference,
            room: room.map(Room::as_str),
        })
    }
}

/// What `joined` says about the history: the epoch and last offset the replay covered, and for
/// `since` whether the recovery was complete. Empty when the room keeps no history.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct JoinOutcome {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub epoch: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub offset: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub recovered: Option<bool>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<&'static str>,
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
            Ok(Command::Join {
                room: room("r1"),
                replay: Replay::None
            })
        );
        assert_eq!(
            Command::parse(r#"{"type":"join","room":"r1","history":20}"#),
            Ok(Command::Join {
                room: room("r1"),
                replay: Replay::Last(20)
            })
        );
        assert_eq!(
            Command::parse(r#"{"type":"join","room":"r1","since":{"epoch":"e1","offset":7}}"#),
            Ok(Command::Join {
                room: room("r1"),
                replay: Replay::Since {
                    epoch: "e1".into(),
                    offset: 7
                }
            })
        );
        assert_eq!(
            Command::parse(r#"{"type":"message","room":"r1","content":"hi","ref":"c1"}"#),
            Ok(Command::Message {
                room: room("r1"),
                content: "hi".into(),
                reference: Some("c1".into())
            })
        );
        assert_eq!(
            Command::parse(r#"{"type":"leave","room":"r1"}"#),
            Ok(Command::Leave(room("r1")))
        );
        assert_eq!(
            Command::parse(r#"{"type":"message","room":"a.b:c-d_e","content":"hi"}"#),
            Ok(Command::Message {
                room: room("a.b:c-d_e"),
                content: "hi".into(),
                reference: None
            })
        );
        assert_eq!(
            Command::parse(r#"{"type":"message","content":"hi"}"#),
            Ok(Command::Message {
                room: room("general"),
                content: "hi".into(),
                reference: None
            })
        );
        assert_eq!(
            Command::parse(r#"{"type":"broadcast","content":"all"}"#),
            Ok(Command::Broadcast {
                content: "all".into()
            })
        );
        assert_eq!(Command::parse(r#"{"type":"ping"}"#), Ok(Command::Ping));
        assert_eq!(
            Command::parse(r#"{"type":"auth","token":"a.b.c"}"#),
            Ok(Command::Auth {
                token: "a.b.c".into()
            })
        );
    }

    #[test]
    fn plain_text_goes_to_the_default_room() {
        assert_eq!(
            Command::parse("hello there"),
            Ok(Command::Message {
                room: room("general"),
                content: "hello there".into(),
                reference: None
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
        assert_eq!(code(r#"{"type":"auth"}"#), "missing_field");
        assert_eq!(
            code(r#"{"type":"join","room":"r","history":5,"since":{"epoch":"e","offset":1}}"#),
            "bad_json"
        );
        assert_eq!(
            code(r#"{"type":"join","room":"r","history":-1}"#),
            "bad_json"
        );
        assert_eq!(
            code(r#"{"type":"message","content":"x","ref":""}"#),
            "bad_json"
        );
        assert_eq!(
            code(r#"{"type":"leave","room":"r","history":5}"#),
            "bad_json"
        );
    }

    #[test]
    fn a_client_cannot_name_the_sender_or_slip_fields_into_other_frames() {
        let code = |text: &str| Command::parse(text).map_err(|e| e.code()).unwrap_err();
        assert_eq!(
            code(r#"{"type":"message","content":"x","user":{"id":"admin","name":"Admin"}}"#),
            "bad_json"
        );
        assert_eq!(
            code(r#"{"type":"broadcast","content":"x","user":{"id":"admin"}}"#),
            "bad_json"
        );
        assert_eq!(
            code(r#"{"type":"message","content":"x","token":"t"}"#),
            "bad_json"
        );
        assert_eq!(
            code(r#"{"type":"auth","token":"t","room":"r"}"#),
            "bad_json"
        );
        assert_eq!(
            code(r#"{"type":"broadcast","content":"x","room":"r"}"#),
            "bad_json"
        );
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
        let ana = User {
            id: "u1",
            name: Some("Ana"),
        };
        let frame = Frame::chat("id1", Some(&room("r")), "c1", ana, "<b>x</b>", "hub1");
        let v: serde_json::Value = serde_json::from_str(frame.as_str()).expect("json");
        assert_eq!(v["type"], "message");
        assert_eq!(v["room"], "r");
        assert_eq!(v["from"], "c1");
        assert_eq!(v["user"], serde_json::json!({"id": "u1", "name": "Ana"}));
        assert_eq!(v["content"], "<b>x</b>");
        assert_eq!(v["hub"], "hub1");
        let ts = v["timestamp"].as_str().expect("timestamp");
        assert!(OffsetDateTime::parse(ts, &Rfc3339).is_ok(), "{ts}");

        let anonymous = User {
            id: "c1",
            name: None,
        };
        let frame = Frame::chat("id2", None, "c1", anonymous, "all", "hub1");
        let v: serde_json::Value = serde_json::from_str(frame.as_str()).expect("json");
        assert_eq!(v["type"], "broadcast");
        assert_eq!(v["user"], serde_json::json!({"id": "c1"}));
        assert!(v.get("room").is_none());
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
