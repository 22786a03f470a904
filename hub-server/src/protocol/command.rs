//! What a client sends: each JSON frame (or plain text) parsed and validated into a [`Command`].
//! Unknown fields and fields of another frame type are errors, never silently ignored.

use serde::Deserialize;

use super::room::Room;
use crate::error::ProtocolError;

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
    /// A call to the backend's RPC proxy: `data` is the frame's JSON as sent (`null` when
    /// absent), answered by an `rpc_result` or an `error` with `reference`.
    Rpc {
        method: String,
        data: String,
        reference: String,
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
/// Longest rpc `method`: a name, posted to the backend with every call.
const MAX_METHOD_LEN: usize = 128;

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
    method: Option<String>,
    data: Option<Box<serde_json::value::RawValue>>,
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
            ("method", self.method.is_some()),
            ("data", self.data.is_some()),
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
            "rpc" => raw.only(&["method", "data", "ref"])?,
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
                reference: raw.reference.map(checked_ref).transpose()?,
            }),
            "broadcast" => Ok(Command::Broadcast {
                content: non_empty(content(raw.content)?)?,
            }),
            "ping" => Ok(Command::Ping),
            "auth" => Ok(Command::Auth {
                token: raw.token.ok_or(ProtocolError::MissingField("token"))?,
            }),
            "rpc" => Ok(Command::Rpc {
                method: match raw.method {
                    None => return Err(ProtocolError::MissingField("method")),
                    Some(m) if m.is_empty() || m.len() > MAX_METHOD_LEN => {
                        return Err(ProtocolError::BadJson(format!(
                            "\"method\" must be 1-{MAX_METHOD_LEN} bytes"
                        )));
                    }
                    Some(m) => m,
                },
                data: raw
                    .data
                    .map_or_else(|| "null".to_owned(), |d| d.get().to_owned()),
                reference: checked_ref(raw.reference.ok_or(ProtocolError::MissingField("ref"))?)?,
            }),
            other => Err(ProtocolError::UnknownType(other.chars().take(40).collect())),
        }
    }
}

/// A client's `ref`: echoed back, so 1 to [`MAX_REF_LEN`] bytes.
fn checked_ref(reference: String) -> Result<String, ProtocolError> {
    if reference.is_empty() || reference.len() > MAX_REF_LEN {
        return Err(ProtocolError::BadJson(format!(
            "\"ref\" must be 1-{MAX_REF_LEN} bytes"
        )));
    }
    Ok(reference)
}

fn non_empty(content: String) -> Result<String, ProtocolError> {
    if content.is_empty() {
        Err(ProtocolError::EmptyContent)
    } else {
        Ok(content)
    }
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
    fn rpc_frames_keep_their_data_as_sent_and_need_a_method_and_a_ref() {
        assert_eq!(
            Command::parse(r#"{"type":"rpc","method":"sum","data":{"a": [1, 2]},"ref":"r1"}"#),
            Ok(Command::Rpc {
                method: "sum".into(),
                data: r#"{"a": [1, 2]}"#.into(),
                reference: "r1".into(),
            })
        );
        assert_eq!(
            Command::parse(r#"{"type":"rpc","method":"now","ref":"r2"}"#),
            Ok(Command::Rpc {
                method: "now".into(),
                data: "null".into(),
                reference: "r2".into(),
            })
        );
        assert_eq!(
            Command::parse(r#"{"type":"rpc","data":1,"ref":"r"}"#),
            Err(ProtocolError::MissingField("method"))
        );
        assert_eq!(
            Command::parse(r#"{"type":"rpc","method":"m"}"#),
            Err(ProtocolError::MissingField("ref"))
        );
        assert!(Command::parse(r#"{"type":"rpc","method":"","ref":"r"}"#).is_err());
        assert!(Command::parse(r#"{"type":"rpc","method":"m","ref":"r","room":"x"}"#).is_err());
        assert!(
            Command::parse(r#"{"type":"message","room":"r","content":"c","method":"m"}"#).is_err()
        );
    }
}
