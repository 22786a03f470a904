//! What travels through Redis: the envelope around a client frame.
//!
//! `{"v":1,"origin":"<instance uuid>","seq":42,"n":7,"local":true,"id":"<message id>",
//! "t":1764000000123456,"o":12,"frame":{…}}` — `origin` is the publishing hub's per-process id, `seq` its
//! publish counter over all channels (dedup and order), `n` its publish counter on this channel,
//! which lets a receiver count the messages it missed. `local` says whether the origin hub already
//! delivered the frame to its own clients: a stored room message is delivered by every hub,
//! the origin included, from this one ordered stream (so each hub delivers a room in offset
//! order), recognizing it by `id`. `o` and `e` are the room offset and epoch of a stored message,
//! added by the history's append script (`"o":12,"e":"ab12cd34","frame":…`).
//! `t` is when the origin hub's publisher sent it to Redis, in microseconds since the Unix epoch
//! by that hub's clock: a receiver measures the cross-hub lag with it (`metrics`). Hubs older than
//! `t` send none and ignore it (serde skips unknown fields), so mixed versions still talk.
//! The frame is the exact JSON the clients get, copied in as bytes, never re-serialized.

use serde::Deserialize;
use serde_json::value::RawValue;
use uuid::Uuid;

use crate::protocol::Frame;

pub const VERSION: u32 = 1;

/// Who published an envelope and how it was handled at the origin.
#[derive(Debug, Clone, Copy)]
pub struct Header<'a> {
    pub origin: Uuid,
    pub seq: u64,
    pub n: u64,
    /// Already delivered to the origin hub's clients.
    pub local: bool,
    /// The message id (UUID text).
    pub id: &'a str,
}

/// Everything of the envelope before the frame, ending in a comma: the append script adds the
/// offset, the epoch and the frame.
pub fn encode_head(h: &Header<'_>) -> String {
    // Every part is already valid JSON (a UUID, integers, a bool, a UUID-shaped client id): plain
    // concatenation is exact and avoids re-serializing the frame.
    format!(
        r#"{{"v":{VERSION},"origin":"{}","seq":{},"n":{},"local":{},"id":"{}","t":{},"#,
        h.origin,
        h.seq,
        h.n,
        h.local,
        h.id,
        crate::clock::unix_micros()
    )
}

pub fn encode(h: &Header<'_>, frame: &Frame) -> String {
    format!(r#"{}"frame":{}}}"#, encode_head(h), frame.as_str())
}

#[derive(Debug, Deserialize)]
pub struct Envelope<'a> {
    pub v: u32,
    pub origin: Uuid,
    pub seq: u64,
    pub n: u64,
    #[serde(default = "already_delivered")]
    pub local: bool,
    #[serde(default, borrow)]
    pub id: Option<&'a str>,
    /// When the origin published it (see the module doc); `None` from older hubs.
    #[serde(default)]
    pub t: Option<u64>,
    #[serde(default)]
    pub o: Option<u64>,
    /// The room's epoch beside `o`: the frame is the chat frame as its hub made it, and the
    /// receiver puts `offset` and `epoch` in front (an older hub's append put them in the frame
    /// and sent no `e`).
    #[serde(default, borrow)]
    pub e: Option<&'a str>,
    #[serde(borrow)]
    pub frame: &'a RawValue,
}

/// Envelopes without `local` come from hubs that always delivered locally first.
fn already_delivered() -> bool {
    true
}

#[derive(Debug, thiserror::Error)]
pub enum EnvelopeError {
    #[error("undecodable envelope: {0}")]
    Json(#[from] serde_json::Error),
    #[error("unsupported envelope version {0}")]
    Version(u32),
}

pub fn decode(payload: &[u8]) -> Result<Envelope<'_>, EnvelopeError> {
    let envelope: Envelope<'_> = serde_json::from_slice(payload)?;
    if envelope.v != VERSION {
        return Err(EnvelopeError::Version(envelope.v));
    }
    Ok(envelope)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::protocol::Room;

    #[test]
    fn an_envelope_round_trips_with_the_frame_bytes_intact() {
        let frame = Frame::chat(
            "id",
            Some(&Room::parse("r").expect("room")),
            "c",
            crate::protocol::User {
                id: "u",
                name: Some("Zoë \"Z\""),
            },
            "\"quoted\" ü",
            "h",
        );
        let origin = Uuid::new_v4();
        let header = Header {
            origin,
            seq: 7,
            n: 5,
            local: false,
            id: "m1",
        };
        let text = encode(&header, &frame);
        let env = decode(text.as_bytes()).expect("decodes");
        assert_eq!((env.origin, env.seq, env.n), (origin, 7, 5));
        assert_eq!((env.local, env.o), (false, None));
        assert_eq!(env.id, Some("m1"));
        assert_eq!(env.frame.get(), frame.as_str());
        let old = format!(r#"{{"v":1,"origin":"{origin}","seq":1,"n":1,"frame":{{}}}}"#);
        assert!(
            decode(old.as_bytes()).expect("decodes").local,
            "wave 1 envelopes"
        );
    }

    #[test]
    fn the_publish_time_travels_and_envelopes_without_it_still_decode() {
        let origin = Uuid::new_v4();
        let header = Header {
            origin,
            seq: 1,
            n: 1,
            local: false,
            id: "m1",
        };
        let before = crate::clock::unix_micros();
        let text = encode(&header, &Frame::pong());
        let t = decode(text.as_bytes()).expect("decodes").t.expect("t");
        assert!(
            (before..=crate::clock::unix_micros()).contains(&t),
            "{t} not now: {text}"
        );
        // An older hub's envelope (no `t`), and one from a newer hub with fields we do not know.
        let old = format!(
            r#"{{"v":1,"origin":"{origin}","seq":2,"n":2,"local":false,"id":"m2","o":3,"frame":{{}}}}"#
        );
        let env = decode(old.as_bytes()).expect("an older hub's envelope decodes");
        assert_eq!((env.t, env.o), (None, Some(3)));
        let newer = format!(
            r#"{{"v":1,"origin":"{origin}","seq":3,"n":3,"t":5,"later":[1],"frame":{{}}}}"#
        );
        assert_eq!(decode(newer.as_bytes()).expect("decodes").t, Some(5));
    }

    #[test]
    fn foreign_versions_and_garbage_are_refused() {
        assert!(decode(b"not json").is_err());
        let other = format!(
            r#"{{"v":2,"origin":"{}","seq":1,"n":1,"frame":{{}}}}"#,
            Uuid::new_v4()
        );
        assert!(matches!(
            decode(other.as_bytes()),
            Err(EnvelopeError::Version(2))
        ));
    }
}
