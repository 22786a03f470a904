//! Every frame a hub sends a client, each built here and serialized once: welcome, chat messages
//! and broadcasts, joined / left, acks, presence, pong, errors, rpc results.

use serde::Serialize;
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;
use tokio_tungstenite::tungstenite::Utf8Bytes;

use super::frame::Frame;
use super::room::Room;
use crate::error::ProtocolError;

/// Who sent a message, as every recipient sees it: set by the hub, never by the client.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct User<'a> {
    pub id: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub name: Option<&'a str>,
}

impl Frame {
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
        Self::error_coded(err.code(), &err.to_string(), reference, room)
    }

    /// An error whose code and message a backend chose (a proxy's refusal), answering the
    /// message or rpc with `reference`, or the join of `room`.
    pub fn error_coded(
        code: &str,
        message: &str,
        reference: Option<&str>,
        room: Option<&Room>,
    ) -> Self {
        #[derive(Serialize)]
        struct ErrorFrame<'a> {
            r#type: &'static str,
            code: &'a str,
            message: &'a str,
            #[serde(skip_serializing_if = "Option::is_none")]
            r#ref: Option<&'a str>,
            #[serde(skip_serializing_if = "Option::is_none")]
            room: Option<&'a str>,
        }
        Self::encode(&ErrorFrame {
            r#type: "error",
            code,
            message,
            r#ref: reference,
            room: room.map(Room::as_str),
        })
    }

    /// The backend's answer to an `rpc` frame, as it sent it (`data` is any JSON).
    pub fn rpc_result(reference: &str, data: &serde_json::value::RawValue) -> Self {
        #[derive(Serialize)]
        struct RpcResult<'a> {
            r#type: &'static str,
            r#ref: &'a str,
            data: &'a serde_json::value::RawValue,
        }
        Self::encode(&RpcResult {
            r#type: "rpc_result",
            r#ref: reference,
            data,
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
}
