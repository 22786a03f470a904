//! The hub's JSON frames as the c250k clients read and write them, and the contents the
//! coordinator publishes: each carries what it is, its number and when it was due, so a client
//! can tell its latency and whether it was meant for it.

use std::fmt::Write as _;

use serde::Deserialize;

/// The fields of a hub frame the clients look at; borrowed, the rest skipped.
#[derive(Debug, Deserialize)]
pub struct Inbound<'a> {
    #[serde(rename = "type")]
    pub kind: &'a str,
    pub room: Option<&'a str>,
    pub id: Option<&'a str>,
    pub epoch: Option<&'a str>,
    pub offset: Option<u64>,
    pub content: Option<&'a str>,
    #[serde(default)]
    pub replayed: bool,
    pub recovered: Option<bool>,
    pub reason: Option<&'a str>,
    pub code: Option<&'a str>,
    /// `welcome`: the rooms the connection starts in.
    #[serde(default)]
    pub rooms: Vec<&'a str>,
}

pub fn parse(frame: &[u8]) -> Option<Inbound<'_>> {
    serde_json::from_slice(frame).ok()
}

/// How a connection enters a room.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Resume<'a> {
    /// A first join.
    Fresh,
    /// After a reconnect: everything after `offset`.
    Since { epoch: &'a str, offset: u64 },
    /// After a reconnect to a room whose epoch was never learnt: the last `n` stored.
    History(u32),
}

/// A `join` frame; room names and epochs never need JSON escapes (`[A-Za-z0-9_.:-]`, hex).
pub fn join(room: &str, resume: Resume<'_>) -> String {
    let mut f = format!(r#"{{"type":"join","room":"{room}""#);
    match resume {
        Resume::Fresh => {}
        Resume::Since { epoch, offset } => {
            let _ = write!(f, r#","since":{{"epoch":"{epoch}","offset":{offset}}}"#);
        }
        Resume::History(n) => {
            let _ = write!(f, r#","history":{n}"#);
        }
    }
    f.push('}');
    f
}

/// What the coordinator publishes, as content: `<kind><number>.<due unix µs>`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Stamp {
    pub kind: Kind,
    pub number: u64,
    pub due_us: u64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// `POST /api/broadcast` (to every connection, no room).
    Broadcast,
    /// `POST /api/publish` to the room every connection is in.
    All,
    /// `POST /api/publish` to one user's room.
    Personal,
}

impl Kind {
    fn letter(self) -> char {
        match self {
            Kind::Broadcast => 'b',
            Kind::All => 'a',
            Kind::Personal => 'p',
        }
    }
}

impl Stamp {
    pub fn content(self) -> String {
        format!("{}{}.{}", self.kind.letter(), self.number, self.due_us)
    }

    pub fn parse(content: &str) -> Option<Stamp> {
        let mut chars = content.chars();
        let kind = match chars.next()? {
            'b' => Kind::Broadcast,
            'a' => Kind::All,
            'p' => Kind::Personal,
            _ => return None,
        };
        let (number, due) = chars.as_str().split_once('.')?;
        Some(Stamp {
            kind,
            number: number.parse().ok()?,
            due_us: due.parse().ok()?,
        })
    }
}

/// Microseconds since the Unix epoch: the one clock every process of the run shares.
pub fn unix_us() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_micros() as u64)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_the_frames_it_needs() {
        let m = parse(br#"{"replayed":true,"offset":42,"epoch":"9f1c2a3b","type":"message","id":"i","room":"p-7","from":"api","user":{"id":"api","name":"a \"b\""},"content":"p3.17","timestamp":"t","hub":"hub1"}"#)
            .expect("message");
        assert_eq!(
            (m.kind, m.room, m.offset, m.epoch),
            ("message", Some("p-7"), Some(42), Some("9f1c2a3b"))
        );
        assert!(m.replayed);
        let j = parse(br#"{"type":"joined","room":"all","epoch":"e","offset":0,"recovered":false,"reason":"too_old"}"#)
            .expect("joined");
        assert_eq!((j.recovered, j.reason), (Some(false), Some("too_old")));
        let w = parse(br#"{"type":"welcome","client_id":"c","hub":"h","instance_id":"i","rooms":["user:u1"],"user":{"id":"u1"}}"#)
            .expect("welcome");
        assert_eq!(w.rooms, ["user:u1"]);
        let e = parse(br#"{"type":"error","code":"forbidden","room":"x","message":"no \"x\""}"#)
            .expect("error");
        assert_eq!(e.code, Some("forbidden"));
        assert!(parse(b"not json").is_none());
    }

    #[test]
    fn join_frames_parse_as_json() {
        for (f, want) in [
            (
                join("all", Resume::Fresh),
                serde_json::json!({"type":"join","room":"all"}),
            ),
            (
                join(
                    "p-1",
                    Resume::Since {
                        epoch: "e1",
                        offset: 41,
                    },
                ),
                serde_json::json!({"type":"join","room":"p-1","since":{"epoch":"e1","offset":41}}),
            ),
            (
                join("user:u1", Resume::History(100)),
                serde_json::json!({"type":"join","room":"user:u1","history":100}),
            ),
        ] {
            assert_eq!(
                serde_json::from_str::<serde_json::Value>(&f).expect("json"),
                want
            );
        }
    }

    #[test]
    fn stamps_round_trip() {
        for kind in [Kind::Broadcast, Kind::All, Kind::Personal] {
            let s = Stamp {
                kind,
                number: 12,
                due_us: 1_700_000_000_000_000,
            };
            assert_eq!(Stamp::parse(&s.content()), Some(s));
        }
        assert_eq!(Stamp::parse("hello"), None);
        assert_eq!(Stamp::parse("p1"), None);
        assert_eq!(Stamp::parse("x1.2"), None);
    }
}
