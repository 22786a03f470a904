//! Engine.IO v4 / Socket.IO v5 text frames over a plain WebSocket: just what a benchmark client needs.
//!
//! Engine.IO packet = one type digit + data (`0` open, `1` close, `2` ping, `3` pong, `4` message).
//! A `4` message carries a Socket.IO packet: type digit (`0` connect, `1` disconnect, `2` event,
//! `4` connect error), an optional `/namespace,`, an optional ack id, then JSON.

use thiserror::Error;

#[derive(Debug, Error, PartialEq, Eq)]
pub enum FrameError {
    #[error("empty frame")]
    Empty,
    #[error("unknown engine.io packet type {0:?}")]
    EngineType(char),
    #[error("unknown socket.io packet type {0:?}")]
    SocketType(char),
    #[error("event is not a JSON array with a string name: {0:.80}")]
    Event(String),
}

/// One Engine.IO packet received as a WebSocket text frame.
#[derive(Debug, PartialEq, Eq)]
pub enum EnginePacket<'a> {
    /// `0{"sid":…,"pingInterval":…}` — the handshake data, unparsed.
    Open(&'a str),
    Close,
    /// `2` (optionally with probe data): the client must answer `3` with the same data.
    Ping(&'a str),
    Pong(&'a str),
    Message(SocketPacket<'a>),
    /// `5` upgrade / `6` noop: never sent on a websocket-only session, ignored if they are.
    Noop,
}

/// One Socket.IO packet, default namespace assumed when none is given.
#[derive(Debug, PartialEq, Eq)]
pub enum SocketPacket<'a> {
    Connect {
        namespace: &'a str,
        data: &'a str,
    },
    Disconnect {
        namespace: &'a str,
    },
    /// `2["name",payload…]`: the name and the raw JSON of the rest of the array (without brackets).
    Event {
        namespace: &'a str,
        name: &'a str,
        args: &'a str,
    },
    Ack {
        namespace: &'a str,
        data: &'a str,
    },
    ConnectError {
        namespace: &'a str,
        data: &'a str,
    },
}

/// The client's "connect to the default namespace" frame.
pub const CONNECT_DEFAULT: &str = "40";
/// The client's answer to a ping without data.
pub const PONG: &str = "3";

/// Parse one text frame. Borrowed: the hot path (one call per delivered message) allocates nothing.
pub fn parse(frame: &str) -> Result<EnginePacket<'_>, FrameError> {
    let mut chars = frame.chars();
    let kind = chars.next().ok_or(FrameError::Empty)?;
    let rest = chars.as_str();
    Ok(match kind {
        '0' => EnginePacket::Open(rest),
        '1' => EnginePacket::Close,
        '2' => EnginePacket::Ping(rest),
        '3' => EnginePacket::Pong(rest),
        '4' => EnginePacket::Message(parse_socket(rest)?),
        '5' | '6' => EnginePacket::Noop,
        other => return Err(FrameError::EngineType(other)),
    })
}

fn parse_socket(packet: &str) -> Result<SocketPacket<'_>, FrameError> {
    let mut chars = packet.chars();
    let kind = chars.next().ok_or(FrameError::Empty)?;
    let rest = chars.as_str();
    // Binary variants (5, 6) carry a "<n>-" attachment count; this client never asks for them.
    let (namespace, rest) = split_namespace(rest);
    let rest = rest.trim_start_matches(|c: char| c.is_ascii_digit()); // ack id, unused here
    Ok(match kind {
        '0' => SocketPacket::Connect {
            namespace,
            data: rest,
        },
        '1' => SocketPacket::Disconnect { namespace },
        '2' => {
            let (name, args) = split_event(rest)?;
            SocketPacket::Event {
                namespace,
                name,
                args,
            }
        }
        '3' => SocketPacket::Ack {
            namespace,
            data: rest,
        },
        '4' => SocketPacket::ConnectError {
            namespace,
            data: rest,
        },
        other => return Err(FrameError::SocketType(other)),
    })
}

/// `/chat,rest` → ("/chat", "rest"); anything else is the default namespace "/".
fn split_namespace(rest: &str) -> (&str, &str) {
    if rest.starts_with('/') {
        match rest.find(',') {
            Some(i) => (&rest[..i], &rest[i + 1..]),
            None => (rest, ""),
        }
    } else {
        ("/", rest)
    }
}

/// `["name",a,b]` → ("name", "a,b"). Event names with escapes are not used by the bench: rejected.
fn split_event(json: &str) -> Result<(&str, &str), FrameError> {
    let bad = || FrameError::Event(json.to_owned());
    let inner = json
        .strip_prefix("[\"")
        .and_then(|s| s.strip_suffix(']'))
        .ok_or_else(bad)?;
    let end = inner.find('"').ok_or_else(bad)?;
    let name = &inner[..end];
    if name.contains('\\') {
        return Err(bad());
    }
    let after = &inner[end + 1..];
    let args = match after.strip_prefix(',') {
        Some(args) => args,
        None if after.is_empty() => "",
        None => return Err(bad()),
    };
    Ok((name, args))
}

/// `42["name",<json>]` for the default namespace.
pub fn event(name: &str, json_arg: &str) -> String {
    let mut s = String::with_capacity(name.len() + json_arg.len() + 8);
    s.push_str("42[\"");
    s.push_str(name);
    s.push_str("\",");
    s.push_str(json_arg);
    s.push(']');
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn handshake_frames() {
        assert_eq!(
            parse(r#"0{"sid":"abc","pingInterval":25000}"#),
            Ok(EnginePacket::Open(r#"{"sid":"abc","pingInterval":25000}"#))
        );
        assert_eq!(
            parse(r#"40{"sid":"xyz"}"#),
            Ok(EnginePacket::Message(SocketPacket::Connect {
                namespace: "/",
                data: r#"{"sid":"xyz"}"#
            }))
        );
        assert_eq!(
            parse(r#"40/admin,{"sid":"xyz"}"#),
            Ok(EnginePacket::Message(SocketPacket::Connect {
                namespace: "/admin",
                data: r#"{"sid":"xyz"}"#
            }))
        );
        assert_eq!(
            parse(r#"44{"message":"nope"}"#),
            Ok(EnginePacket::Message(SocketPacket::ConnectError {
                namespace: "/",
                data: r#"{"message":"nope"}"#
            }))
        );
    }

    #[test]
    fn heartbeat_frames() {
        assert_eq!(parse("2"), Ok(EnginePacket::Ping("")));
        assert_eq!(parse("2probe"), Ok(EnginePacket::Ping("probe")));
        assert_eq!(parse("3"), Ok(EnginePacket::Pong("")));
        assert_eq!(parse("1"), Ok(EnginePacket::Close));
        assert_eq!(parse("6"), Ok(EnginePacket::Noop));
    }

    #[test]
    fn events_split_name_and_arguments() {
        assert_eq!(
            parse(r#"42["message",{"room":"bench","content":"1.2.3"}]"#),
            Ok(EnginePacket::Message(SocketPacket::Event {
                namespace: "/",
                name: "message",
                args: r#"{"room":"bench","content":"1.2.3"}"#
            }))
        );
        assert_eq!(
            parse(r#"4212["joined","bench"]"#),
            Ok(EnginePacket::Message(SocketPacket::Event {
                namespace: "/",
                name: "joined",
                args: r#""bench""#
            }))
        );
        assert_eq!(
            parse(r#"42["tick"]"#),
            Ok(EnginePacket::Message(SocketPacket::Event {
                namespace: "/",
                name: "tick",
                args: ""
            }))
        );
    }

    #[test]
    fn bad_frames_are_errors_not_panics() {
        assert_eq!(parse(""), Err(FrameError::Empty));
        assert_eq!(parse("4"), Err(FrameError::Empty));
        assert_eq!(parse("9x"), Err(FrameError::EngineType('9')));
        assert_eq!(parse("47"), Err(FrameError::SocketType('7')));
        assert!(matches!(
            parse(r#"42{"not":"array"}"#),
            Err(FrameError::Event(_))
        ));
        assert!(matches!(
            parse(r#"42["unterminated]"#),
            Err(FrameError::Event(_))
        ));
        assert!(matches!(parse(r#"42["a"x]"#), Err(FrameError::Event(_))));
        assert!(matches!(parse("42é"), Err(FrameError::Event(_))));
    }

    #[test]
    fn event_encoding_round_trips() {
        let frame = event("message", r#"{"room":"bench","content":"x"}"#);
        assert_eq!(frame, r#"42["message",{"room":"bench","content":"x"}]"#);
        assert!(matches!(
            parse(&frame),
            Ok(EnginePacket::Message(SocketPacket::Event {
                name: "message",
                ..
            }))
        ));
    }
}
