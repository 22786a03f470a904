//! What fills a benchmark message after its stamp (`--payload-style`): `_` padding up to
//! `--payload-bytes` (the chat frame, ~300 bytes on the wire), or a dashboard-style JSON document
//! (a ~2 KiB frame: a dozen services' live figures, as a monitoring page would push them), which
//! compresses like real JSON does rather than like a run of one character.

use std::fmt::Write;

use crate::payload::{self, Stamp};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Serialize, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum PayloadStyle {
    /// The stamp, padded with `_` up to `--payload-bytes`.
    #[default]
    Padding,
    /// The stamp, `_`, then a JSON document of ~1.7 KiB with figures that change every message.
    Dashboard,
}

const SERVICES: [(&str, &str); 12] = [
    ("api-gateway", "eu-west-1"),
    ("auth", "eu-west-1"),
    ("billing", "us-east-1"),
    ("catalog", "eu-central-1"),
    ("checkout", "us-east-1"),
    ("inventory", "eu-west-1"),
    ("notifications", "ap-south-1"),
    ("orders", "us-west-2"),
    ("payments", "us-east-1"),
    ("recommendations", "eu-central-1"),
    ("search", "us-west-2"),
    ("shipping", "ap-south-1"),
];

/// The content of one message as it goes between the quotes of a frame's `"content"` (already
/// JSON-escaped, see `Protocol::message_frame`): its stamp first ([`payload::find_stamp`] reads it
/// back), then the filler.
pub fn content(stamp: Stamp, min_len: usize, style: PayloadStyle) -> String {
    match style {
        PayloadStyle::Padding => payload::encode(stamp, min_len),
        PayloadStyle::Dashboard => {
            let mut s = payload::encode(stamp, 0);
            s.push('_');
            let mut doc = String::new();
            dashboard(&mut doc, stamp);
            let quoted = serde_json::Value::from(doc).to_string();
            s.push_str(&quoted[1..quoted.len() - 1]);
            s
        }
    }
}

/// Appends the dashboard document; its figures come from a small generator seeded by the stamp,
/// so every message differs (as live figures do) and a run is reproducible.
fn dashboard(out: &mut String, stamp: Stamp) {
    let mut seed = (u64::from(stamp.publisher) << 40) ^ stamp.seq ^ 0x9e37_79b9_7f4a_7c15;
    let mut next = move |range: u64| {
        // xorshift64*
        seed ^= seed >> 12;
        seed ^= seed << 25;
        seed ^= seed >> 27;
        (seed.wrapping_mul(0x2545_f491_4f6c_dd1d) >> 32) % range
    };
    let _ = write!(
        out,
        r#"{{"dashboard":"production","window_s":10,"seq":{},"services":["#,
        stamp.seq
    );
    for (i, (name, region)) in SERVICES.iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        let status = if next(20) == 0 { "degraded" } else { "ok" };
        let _ = write!(
            out,
            r#"{{"name":"{name}","region":"{region}","status":"{status}","rps":{},"p50_ms":{}.{},"p99_ms":{}.{},"errors":{},"cpu":0.{:02},"mem_mb":{}}}"#,
            next(5000),
            next(40),
            next(10),
            40 + next(400),
            next(10),
            next(12),
            next(100),
            256 + next(3840),
        );
    }
    out.push_str("]}");
}

#[cfg(test)]
mod tests {
    use super::*;

    const STAMP: Stamp = Stamp {
        publisher: 2,
        seq: 7,
        send_ns: 123_456_789,
    };

    #[test]
    fn a_dashboard_message_is_json_after_its_stamp_and_changes_with_it() {
        use crate::client::Protocol;

        let c = content(STAMP, 0, PayloadStyle::Dashboard);
        // The frame a publisher sends is valid JSON, its content the stamp and a JSON document.
        let sent: serde_json::Value =
            serde_json::from_str(&Protocol::Hub.message_frame("r", &c)).expect("JSON frame");
        let text = sent["content"].as_str().expect("a string");
        let (stamp, doc) = text.split_once('_').expect("stamp, then the document");
        assert_eq!(payload::decode(stamp), Some(STAMP));
        let v: serde_json::Value = serde_json::from_str(doc).expect("JSON");
        assert_eq!(v["services"].as_array().map(Vec::len), Some(12));
        assert!((1500..2000).contains(&text.len()), "{} bytes", text.len());
        let next = content(Stamp { seq: 8, ..STAMP }, 0, PayloadStyle::Dashboard);
        assert_ne!(c[c.find('{').unwrap()..], next[next.find('{').unwrap()..]);
        // As the hub sends it on, escaped inside its chat frame, the stamp still reads back.
        let frame = serde_json::json!({"type": "message", "content": text}).to_string();
        assert_eq!(payload::find_stamp(&frame), Some(STAMP));
        assert_eq!(
            content(STAMP, 40, PayloadStyle::Padding),
            payload::encode(STAMP, 40)
        );
    }
}
