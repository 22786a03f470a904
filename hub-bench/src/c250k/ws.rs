//! A WebSocket client codec small enough for a quarter of a million idle connections: the upgrade
//! request and its answer, the server's frames (never masked) and the client's (always masked).
//! tungstenite keeps a read buffer and a write buffer per socket (kilobytes each, for ever); here a
//! worker reads every socket into one scratch buffer and a connection keeps bytes only while a frame
//! is cut by a read boundary.

use std::fmt::Write as _;

pub const OP_CONTINUATION: u8 = 0x0;
pub const OP_TEXT: u8 = 0x1;
pub const OP_BINARY: u8 = 0x2;
pub const OP_CLOSE: u8 = 0x8;
pub const OP_PING: u8 = 0x9;
pub const OP_PONG: u8 = 0xA;

/// The `GET` that asks for the upgrade, with the token as `Authorization: Bearer` (the hub reads it
/// from the upgrade; no `auth` frame needed). The key is fixed: the client does not check the
/// answer's `Sec-WebSocket-Accept` (it talks to its own hubs), so it need not be unpredictable.
pub fn upgrade_request(host: &str, path: &str, bearer: &str) -> String {
    let mut r = String::with_capacity(256 + bearer.len());
    let _ = write!(
        r,
        "GET {path} HTTP/1.1\r\nHost: {host}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
         Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\
         Authorization: Bearer {bearer}\r\n\r\n"
    );
    r
}

/// What the bytes read so far say about the upgrade.
#[derive(Debug, PartialEq, Eq)]
pub enum Answer {
    /// The header is not complete yet.
    Incomplete,
    /// `101 Switching Protocols`; frames start after `header_len` bytes.
    Switched { header_len: usize },
    /// Any other status (the hub's `503` when full, `401`, …): its status line.
    Refused(String),
}

/// Longest upgrade answer accepted; anything longer is refused.
pub const MAX_ANSWER: usize = 8 * 1024;

pub fn parse_answer(buf: &[u8]) -> Answer {
    let Some(end) = buf.windows(4).position(|w| w == b"\r\n\r\n") else {
        return if buf.len() > MAX_ANSWER {
            Answer::Refused("upgrade answer too long".into())
        } else {
            Answer::Incomplete
        };
    };
    let head = String::from_utf8_lossy(&buf[..end]);
    let status = head.lines().next().unwrap_or_default();
    if status.starts_with("HTTP/1.1 101") {
        Answer::Switched {
            header_len: end + 4,
        }
    } else {
        Answer::Refused(status.chars().take(80).collect())
    }
}

#[derive(Debug, PartialEq, Eq)]
pub struct Frame<'a> {
    pub fin: bool,
    pub opcode: u8,
    pub payload: &'a [u8],
}

#[derive(Debug, PartialEq, Eq, thiserror::Error)]
pub enum FrameError {
    #[error("masked frame from the server")]
    Masked,
    #[error("frame of {0} bytes, over the limit")]
    TooLarge(u64),
}

/// The first frame in `buf`, and how many bytes it took; `None` while it is incomplete.
pub fn parse_frame(
    buf: &[u8],
    max_payload: usize,
) -> Result<Option<(Frame<'_>, usize)>, FrameError> {
    if buf.len() < 2 {
        return Ok(None);
    }
    let (b0, b1) = (buf[0], buf[1]);
    if b1 & 0x80 != 0 {
        return Err(FrameError::Masked);
    }
    let (len, head) = match b1 & 0x7F {
        126 if buf.len() >= 4 => (u64::from(u16::from_be_bytes([buf[2], buf[3]])), 4),
        127 if buf.len() >= 10 => {
            let mut b = [0u8; 8];
            b.copy_from_slice(&buf[2..10]);
            (u64::from_be_bytes(b), 10)
        }
        126 | 127 => return Ok(None),
        n => (u64::from(n), 2),
    };
    if len > max_payload as u64 {
        return Err(FrameError::TooLarge(len));
    }
    let total = head + len as usize;
    if buf.len() < total {
        return Ok(None);
    }
    Ok(Some((
        Frame {
            fin: b0 & 0x80 != 0,
            opcode: b0 & 0x0F,
            payload: &buf[head..total],
        },
        total,
    )))
}

/// Appends one final client frame, masked with `mask` as RFC 6455 requires of clients.
pub fn encode_client(opcode: u8, payload: &[u8], mask: [u8; 4], out: &mut Vec<u8>) {
    out.push(0x80 | opcode);
    match payload.len() {
        n if n < 126 => out.push(0x80 | n as u8),
        n if n <= usize::from(u16::MAX) => {
            out.push(0x80 | 126);
            out.extend_from_slice(&(n as u16).to_be_bytes());
        }
        n => {
            out.push(0x80 | 127);
            out.extend_from_slice(&(n as u64).to_be_bytes());
        }
    }
    out.extend_from_slice(&mask);
    out.extend(payload.iter().enumerate().map(|(i, b)| b ^ mask[i % 4]));
}

/// The status code and reason of a close frame's payload.
pub fn close_reason(payload: &[u8]) -> String {
    match payload {
        [a, b, reason @ ..] => format!(
            "closed {} {}",
            u16::from_be_bytes([*a, *b]),
            String::from_utf8_lossy(reason)
        ),
        _ => "closed without a code".into(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A server frame as tungstenite writes it (unmasked).
    fn server_frame(opcode: u8, payload: &[u8]) -> Vec<u8> {
        let mut v = Vec::with_capacity(payload.len() + 10);
        crate::wire::plain_frame(opcode, payload, &mut v);
        v
    }

    #[test]
    fn frames_of_every_length_class_and_cut_anywhere() {
        for len in [0, 5, 125, 126, 300, 65535, 65536, 70000] {
            let payload: Vec<u8> = (0..len).map(|i| (i % 251) as u8).collect();
            let mut bytes = server_frame(OP_TEXT, &payload);
            bytes.extend_from_slice(&server_frame(OP_PING, b"p"));
            for cut in [0, 1, 2, 3, 9, bytes.len() - 4] {
                if cut < bytes.len() - 3 && cut < 2 + payload.len() {
                    assert_eq!(
                        parse_frame(&bytes[..cut], 1 << 20),
                        Ok(None),
                        "len {len} cut {cut}"
                    );
                }
            }
            let (frame, used) = parse_frame(&bytes, 1 << 20).expect("valid").expect("whole");
            assert_eq!(
                (frame.fin, frame.opcode, frame.payload),
                (true, OP_TEXT, &payload[..])
            );
            let (ping, rest) = parse_frame(&bytes[used..], 1 << 20)
                .expect("valid")
                .expect("whole");
            assert_eq!(
                (ping.opcode, ping.payload, used + rest),
                (OP_PING, &b"p"[..], bytes.len())
            );
        }
    }

    #[test]
    fn masked_or_oversized_server_frames_are_errors() {
        assert_eq!(
            parse_frame(&[0x81, 0x85, 0, 0, 0, 0], 100),
            Err(FrameError::Masked)
        );
        let big = server_frame(OP_TEXT, &[b'x'; 200]);
        assert_eq!(parse_frame(&big, 100), Err(FrameError::TooLarge(200)));
    }

    #[test]
    fn client_frames_are_masked_and_decode_back() {
        for len in [3usize, 125, 126, 65535, 65536] {
            let payload: Vec<u8> = (0..len).map(|i| (i % 7) as u8 + b'a').collect();
            let mask = [1, 2, 3, 4];
            let mut out = Vec::new();
            encode_client(OP_TEXT, &payload, mask, &mut out);
            assert_eq!(out[0], 0x81);
            assert_ne!(out[1] & 0x80, 0, "mask bit");
            let head = match out[1] & 0x7F {
                126 => 4,
                127 => 10,
                _ => 2,
            };
            assert_eq!(&out[head..head + 4], &mask);
            let unmasked: Vec<u8> = out[head + 4..]
                .iter()
                .enumerate()
                .map(|(i, b)| b ^ mask[i % 4])
                .collect();
            assert_eq!(unmasked, payload);
        }
    }

    #[test]
    fn upgrade_answers() {
        let ok = b"HTTP/1.1 101 Switching Protocols\r\nupgrade: websocket\r\n\r\n\x81\x02hi";
        assert_eq!(
            parse_answer(ok),
            Answer::Switched {
                header_len: ok.len() - 4
            }
        );
        assert_eq!(parse_answer(&ok[..20]), Answer::Incomplete);
        let full = b"HTTP/1.1 503 Service Unavailable\r\ncontent-length: 0\r\n\r\n";
        assert_eq!(
            parse_answer(full),
            Answer::Refused("HTTP/1.1 503 Service Unavailable".into())
        );
        assert!(matches!(
            parse_answer(&[b'a'; MAX_ANSWER + 1]),
            Answer::Refused(_)
        ));
        let req = upgrade_request("127.0.0.1:9000", "/ws", "tok");
        assert!(req.starts_with("GET /ws HTTP/1.1\r\nHost: 127.0.0.1:9000\r\n"));
        assert!(req.contains("\r\nAuthorization: Bearer tok\r\n") && req.ends_with("\r\n\r\n"));
    }

    #[test]
    fn close_reasons() {
        assert_eq!(close_reason(&[0x0F, 0xA0, b'x']), "closed 4000 x");
        assert_eq!(close_reason(&[]), "closed without a code");
    }
}
