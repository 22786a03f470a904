//! The wire: every frame the hub sends, read in one pass into one flat struct (the fields of all
//! frame types side by side, unknown ones ignored, so a newer hub's additions do not break an
//! older client), and every frame the client sends, written by one function each.

use serde::Deserialize;
use tokio_tungstenite::tungstenite::Utf8Bytes;

use crate::message::{Broadcast, Message, User};
use crate::presence::{Member, Presence, PresenceDiff, PresenceUser};

/// The `type` of a hub frame.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub(crate) enum Kind {
    Welcome,
    Message,
    Broadcast,
    Joined,
    Left,
    Ack,
    Pong,
    Error,
    Presence,
    PresenceDiff,
    Authenticated,
    /// A frame type added after this client was written.
    #[serde(other)]
    Other,
}

/// Any hub frame: `kind` says which fields mean something.
#[derive(Debug, Deserialize)]
pub(crate) struct Inbound {
    #[serde(rename = "type")]
    pub kind: Kind,
    pub room: Option<String>,
    pub id: Option<String>,
    pub from: Option<String>,
    pub user: Option<User>,
    pub content: Option<String>,
    pub timestamp: Option<String>,
    pub hub: Option<String>,
    pub epoch: Option<String>,
    pub offset: Option<u64>,
    pub replayed: Option<bool>,
    #[serde(rename = "ref")]
    pub reference: Option<String>,
    pub code: Option<String>,
    pub message: Option<String>,
    pub recovered: Option<bool>,
    pub reason: Option<String>,
    pub client_id: Option<String>,
    pub instance_id: Option<String>,
    pub rooms: Option<Vec<String>>,
    pub exp: Option<u64>,
    pub count: Option<u64>,
    pub members: Option<Vec<Member>>,
    pub truncated: Option<bool>,
    pub joins: Option<Vec<PresenceUser>>,
    pub leaves: Option<Vec<PresenceUser>>,
}

impl Inbound {
    /// Reads a text frame; `None` when it is not a JSON object with a `type` we can read.
    pub(crate) fn parse(text: &str) -> Option<Inbound> {
        serde_json::from_str(text).ok()
    }

    /// A `message` frame as the application sees it; `raw` is the frame's text.
    pub(crate) fn into_message(self, raw: Utf8Bytes) -> Message {
        Message {
            id: self.id.unwrap_or_default(),
            room: self.room.unwrap_or_default(),
            from: self.from.unwrap_or_default(),
            user: self.user.unwrap_or_default(),
            content: self.content.unwrap_or_default(),
            timestamp: self.timestamp.unwrap_or_default(),
            hub: self.hub.unwrap_or_default(),
            epoch: self.epoch.filter(|e| !e.is_empty()),
            offset: self.offset,
            replayed: self.replayed == Some(true),
            raw,
        }
    }

    pub(crate) fn into_broadcast(self) -> Broadcast {
        Broadcast {
            id: self.id.unwrap_or_default(),
            from: self.from.unwrap_or_default(),
            user: self.user.unwrap_or_default(),
            content: self.content.unwrap_or_default(),
            timestamp: self.timestamp.unwrap_or_default(),
            hub: self.hub.unwrap_or_default(),
        }
    }

    pub(crate) fn into_presence(self) -> Presence {
        Presence {
            room: self.room.unwrap_or_default(),
            count: self.count.unwrap_or_default(),
            members: self.members.unwrap_or_default(),
            truncated: self.truncated.unwrap_or(false),
        }
    }

    pub(crate) fn into_presence_diff(self) -> PresenceDiff {
        PresenceDiff {
            room: self.room.unwrap_or_default(),
            joins: self.joins.unwrap_or_default(),
            leaves: self.leaves.unwrap_or_default(),
        }
    }
}

/// Frames the client sends, each serialized once into the text the socket carries.
pub(crate) mod outbound {
    use serde::Serialize;

    #[derive(Serialize)]
    struct Since<'a> {
        epoch: &'a str,
        offset: u64,
    }

    #[derive(Serialize)]
    struct Join<'a> {
        r#type: &'static str,
        room: &'a str,
        #[serde(skip_serializing_if = "Option::is_none")]
        history: Option<u32>,
        #[serde(skip_serializing_if = "Option::is_none")]
        since: Option<Since<'a>>,
    }

    #[derive(Serialize)]
    struct RoomOnly<'a> {
        r#type: &'static str,
        room: &'a str,
    }

    #[derive(Serialize)]
    struct Publish<'a> {
        r#type: &'static str,
        room: &'a str,
        content: &'a str,
        #[serde(rename = "ref")]
        reference: &'a str,
    }

    #[derive(Serialize)]
    struct Auth<'a> {
        r#type: &'static str,
        token: &'a str,
    }

    fn text(frame: &impl Serialize) -> String {
        // Serializing these structs of strings and integers cannot fail.
        serde_json::to_string(frame).unwrap_or_default()
    }

    pub(crate) fn join(room: &str, history: Option<u32>, since: Option<(&str, u64)>) -> String {
        text(&Join {
            r#type: "join",
            room,
            history,
            since: since.map(|(epoch, offset)| Since { epoch, offset }),
        })
    }

    pub(crate) fn leave(room: &str) -> String {
        text(&RoomOnly {
            r#type: "leave",
            room,
        })
    }

    pub(crate) fn presence(room: &str) -> String {
        text(&RoomOnly {
            r#type: "presence",
            room,
        })
    }

    pub(crate) fn publish(room: &str, content: &str, reference: &str) -> String {
        text(&Publish {
            r#type: "message",
            room,
            content,
            reference,
        })
    }

    pub(crate) fn auth(token: &str) -> String {
        text(&Auth {
            r#type: "auth",
            token,
        })
    }

    pub(crate) fn ping() -> String {
        r#"{"type":"ping"}"#.to_owned()
    }

    /// The size of a publish frame with the longest `ref` the client gives: what the hub measures
    /// against its `max_message_bytes`.
    pub(crate) fn publish_size(room: &str, content: &str) -> usize {
        publish(room, content, "p00000000000.000").len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_message_frame_with_unknown_fields() {
        let text = r#"{"offset":42,"epoch":"9f1c","type":"message","id":"m1","room":"r","from":"c1","user":{"id":"u-17","name":"Ana"},"content":"hi","timestamp":"2026-01-01T00:00:00Z","hub":"hub1","new_field":[1,2]}"#;
        let frame = Inbound::parse(text).expect("parses");
        assert_eq!(frame.kind, Kind::Message);
        let m = frame.into_message(Utf8Bytes::from(text));
        assert_eq!(
            (m.id.as_str(), m.room.as_str(), m.offset, m.epoch.as_deref()),
            ("m1", "r", Some(42), Some("9f1c"))
        );
        assert_eq!(m.user.name.as_deref(), Some("Ana"));
        assert!(!m.replayed);
        assert_eq!(m.raw(), text);
    }

    #[test]
    fn frames_of_other_types() {
        let joined = Inbound::parse(
            r#"{"type":"joined","room":"ops","epoch":"e","offset":42,"recovered":false,"reason":"too_old"}"#,
        )
        .expect("joined");
        assert_eq!(joined.kind, Kind::Joined);
        assert_eq!(joined.recovered, Some(false));
        let presence = Inbound::parse(
            r#"{"type":"presence","room":"ops","count":1,"members":[{"user":"u","name":"Ana","connections":2}]}"#,
        )
        .expect("presence")
        .into_presence();
        assert_eq!(presence.members[0].connections, 2);
        let future = Inbound::parse(r#"{"type":"later_kind","x":1}"#).expect("unknown type");
        assert_eq!(future.kind, Kind::Other);
        let ack =
            Inbound::parse(r#"{"type":"ack","ref":"p1.1","id":"m","offset":null}"#).expect("ack");
        assert_eq!((ack.reference.as_deref(), ack.offset), (Some("p1.1"), None));
        assert!(Inbound::parse("not json").is_none());
        assert!(Inbound::parse(r#"{"no":"type"}"#).is_none());
    }

    #[test]
    fn outbound_frames() {
        assert_eq!(
            outbound::join("r", Some(20), None),
            r#"{"type":"join","room":"r","history":20}"#
        );
        assert_eq!(
            outbound::join("r", None, Some(("e", 41))),
            r#"{"type":"join","room":"r","since":{"epoch":"e","offset":41}}"#
        );
        assert_eq!(
            outbound::publish("r", "say \"hi\"", "p1.1"),
            r#"{"type":"message","room":"r","content":"say \"hi\"","ref":"p1.1"}"#
        );
        assert_eq!(outbound::leave("r"), r#"{"type":"leave","room":"r"}"#);
        assert_eq!(outbound::auth("t"), r#"{"type":"auth","token":"t"}"#);
    }
}
