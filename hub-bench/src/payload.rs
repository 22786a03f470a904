//! The benchmark message: publisher id, sequence number and scheduled send time, as a compact string.
//!
//! Content is `<publisher>.<seq>.<send_ns>` followed by optional `_` padding; `send_ns` counts from the
//! tool's own start `Instant`, so senders and receivers (one process) share one clock.

/// What a subscriber needs from one delivery.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Stamp {
    pub publisher: u32,
    pub seq: u64,
    pub send_ns: u64,
}

/// The content string for one message, padded with `_` up to `min_len` bytes.
pub fn encode(stamp: Stamp, min_len: usize) -> String {
    let mut s = format!("{}.{}.{}", stamp.publisher, stamp.seq, stamp.send_ns);
    while s.len() < min_len {
        s.push('_');
    }
    s
}

/// Decode a content string made by [`encode`]; `None` for anything else (another client's text).
pub fn decode(content: &str) -> Option<Stamp> {
    let content = content.trim_end_matches('_');
    let mut parts = content.splitn(3, '.');
    let publisher = parts.next()?.parse().ok()?;
    let seq = parts.next()?.parse().ok()?;
    // Only the digits: what follows is filler (see `filler`), or where an escaped quote ended it.
    let rest = parts.next()?;
    let digits = rest
        .find(|c: char| !c.is_ascii_digit())
        .unwrap_or(rest.len());
    let send_ns = rest[..digits].parse().ok()?;
    Some(Stamp {
        publisher,
        seq,
        send_ns,
    })
}

/// The stamp inside a delivered frame of either protocol, without parsing the whole JSON:
/// both ours (`{"type":"message",…,"content":"…",…}`) and the Socket.IO peer's
/// (`42["message",{"room":…,"content":"…"}]`) carry it as the string value of `"content"`.
/// The content alphabet (digits, `.`, `_`) never needs JSON escapes, so the value ends at the next quote.
pub fn find_stamp(frame: &str) -> Option<Stamp> {
    const KEY: &str = "\"content\":\"";
    let start = frame.find(KEY)? + KEY.len();
    let rest = &frame[start..];
    let end = rest.find('"')?;
    decode(&rest[..end])
}

#[cfg(test)]
mod tests {
    use super::*;

    const STAMP: Stamp = Stamp {
        publisher: 3,
        seq: 41,
        send_ns: 1_234_567_890,
    };

    #[test]
    fn round_trips_with_and_without_padding() {
        assert_eq!(encode(STAMP, 0), "3.41.1234567890");
        assert_eq!(decode(&encode(STAMP, 0)), Some(STAMP));
        let padded = encode(STAMP, 64);
        assert_eq!(padded.len(), 64);
        assert_eq!(decode(&padded), Some(STAMP));
    }

    #[test]
    fn foreign_text_is_not_a_stamp() {
        assert_eq!(decode("hello"), None);
        assert_eq!(decode("1.2"), None);
        assert_eq!(decode("1.2.x"), None);
        assert_eq!(decode("-1.2.3"), None);
    }

    #[test]
    fn finds_the_stamp_in_both_protocols() {
        let ours = r#"{"type":"message","id":"u","room":"bench","from":"c","content":"3.41.1234567890","timestamp":"t","hub":"hub1"}"#;
        assert_eq!(find_stamp(ours), Some(STAMP));
        let peer = r#"42["message",{"room":"bench","content":"3.41.1234567890__"}]"#;
        assert_eq!(find_stamp(peer), Some(STAMP));
        assert_eq!(find_stamp(r#"{"type":"joined","room":"bench"}"#), None);
        assert_eq!(find_stamp(r#"{"content":"3.41.12"#), None);
    }
}
