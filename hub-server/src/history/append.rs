//! The write half of the Redis history: one EVALSHA of [`scripts::APPEND`] per room message,
//! which stores it and publishes it in one atomic step. The bridge's publisher sends these
//! commands in its pipelines; what goes into them, and what comes back, is decided here.

use std::time::Duration;

use redis::Value;

use super::epoch::new_epoch;
use super::keys::HistoryKeys;
use super::scripts;
use crate::ack::StoredAt;
use crate::config::Settings;
use crate::namespace::Namespaces;
use crate::protocol::{Frame, Room};
use crate::redis_link::{Conn, load_script};

/// Builds append commands and reads their replies.
#[derive(Debug)]
pub struct Appender {
    source: String,
    script: redis::Script,
    keys: HistoryKeys,
    namespaces: Namespaces,
    /// Each namespace's retention, by [`Policy::index`](crate::namespace::Policy::index).
    retention: Vec<Retention>,
}

/// One message's part of an append, beside the frame and the room.
#[derive(Debug)]
pub struct AppendArgs<'a> {
    /// The channel to publish on.
    pub channel: &'a str,
    /// The envelope up to the frame (see `bridge::envelope::encode_head`).
    pub head: &'a str,
    /// The publishing hub and its sequence number: a re-sent batch is not stored twice.
    pub origin: &'a str,
    pub seq: u64,
    /// The hub's clock in ms, read once per batch (see [`unix_ms`]).
    pub now_ms: &'a str,
}

impl Appender {
    /// `sharded`: a Redis Cluster (the script publishes with SPUBLISH).
    pub fn new(settings: &Settings, sharded: bool) -> Self {
        let source = match sharded {
            true => scripts::append_sharded(),
            false => scripts::APPEND.to_owned(),
        };
        Appender {
            script: redis::Script::new(&source),
            source,
            keys: HistoryKeys::new(&settings.redis_prefix),
            namespaces: settings.namespaces.clone(),
            retention: settings
                .namespaces
                .all()
                .iter()
                .map(|p| Retention::new(p.history_size, p.history_ttl))
                .collect(),
        }
    }

    /// Loads the script on a fresh connection: a restarted Redis has forgotten it.
    pub async fn load(&self, conn: Conn, timeout: Duration) -> bool {
        load_script(conn, &self.script, &self.source, timeout).await
    }

    /// The EVALSHA that stores and publishes `frame` in `room`, kept as its namespace says.
    pub fn command(&self, room: &Room, frame: &Frame, args: &AppendArgs<'_>) -> redis::Cmd {
        let (list, meta) = self.keys.of(room);
        let r = &self.retention[self.namespaces.policy(room).index];
        let mut cmd = redis::cmd("EVALSHA");
        cmd.arg(self.script.get_hash())
            .arg(2)
            .arg(list)
            .arg(meta)
            .arg(frame.as_str())
            .arg(&r.last_index)
            .arg(&r.trim_at)
            .arg(&r.ttl_ms)
            .arg(&r.refresh_ms)
            .arg(args.now_ms)
            .arg(args.channel)
            .arg(args.head)
            .arg(new_epoch())
            .arg(args.origin)
            .arg(args.seq);
        cmd
    }
}

/// Where an append's reply `{offset, epoch, receivers}` says the message was stored (no offset for
/// a re-sent append, which stored nothing), and how many subscribers received it.
pub fn append_reply(reply: &Value) -> (StoredAt, Option<i64>) {
    let Value::Array(parts) = reply else {
        return (StoredAt::nowhere(), None);
    };
    let offset = match parts.first() {
        Some(Value::Int(o)) if *o > 0 => u64::try_from(*o).ok(),
        _ => None,
    };
    let epoch = match parts.get(1) {
        Some(Value::BulkString(e)) => String::from_utf8(e.clone()).ok(),
        _ => None,
    };
    let receivers = match parts.get(2) {
        Some(Value::Int(r)) if *r >= 0 => Some(*r),
        _ => None,
    };
    (StoredAt { offset, epoch }, receivers)
}

/// How rooms keep their history: how many messages, and for how long (the append script's
/// arguments, worked out once; see [`scripts`] for the slack and the margin).
#[derive(Debug, Clone)]
struct Retention {
    last_index: String,
    trim_at: String,
    ttl_ms: String,
    refresh_ms: String,
}

impl Retention {
    fn new(size: usize, ttl: Duration) -> Self {
        let refresh = (ttl.as_millis() / 16).max(1);
        Retention {
            last_index: size.saturating_sub(1).to_string(),
            trim_at: (size + (size / 16).max(1)).to_string(),
            ttl_ms: (ttl.as_millis() + 2 * refresh).to_string(),
            refresh_ms: refresh.to_string(),
        }
    }
}

/// The hub's wall clock in ms, as the append script takes it (for its TTL refresh).
pub fn unix_ms() -> String {
    (crate::clock::unix_micros() / 1000).to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_reply_says_where_the_message_landed_and_who_received_it() {
        let reply = Value::Array(vec![
            Value::Int(42),
            Value::BulkString(b"ab12cd34".to_vec()),
            Value::Int(3),
        ]);
        let (at, receivers) = append_reply(&reply);
        assert_eq!(at.offset, Some(42));
        assert_eq!(at.epoch.as_deref(), Some("ab12cd34"));
        assert_eq!(receivers, Some(3));
        // A re-sent append: stored nothing, so no offset for the ack.
        let resent = Value::Array(vec![
            Value::Int(0),
            Value::BulkString(b"ab12cd34".to_vec()),
            Value::Int(-1),
        ]);
        let (at, receivers) = append_reply(&resent);
        assert_eq!((at.offset, receivers), (None, None));
    }

    #[test]
    fn each_room_is_kept_as_its_namespace_says() {
        let settings = Settings::load_from(
            None,
            [(
                "HUB_NAMESPACES",
                r#"{"chat":{"history_size":1000,"history_ttl":"1h"}}"#,
            )],
        )
        .expect("valid");
        let appender = Appender::new(&settings, false);
        let user = crate::protocol::User {
            id: "u",
            name: None,
        };
        let args = AppendArgs {
            channel: "c",
            head: "{",
            origin: "o",
            seq: 1,
            now_ms: "0",
        };
        // ARGV 2 and 4 (after EVALSHA, the hash, the key count and the two keys): the last index
        // kept and the keys' TTL.
        let kept = |room: &str| {
            let room = Room::parse(room).expect("room");
            let frame = Frame::chat("i", Some(&room), "c", user, "x", "h");
            let cmd = appender.command(&room, &frame, &args);
            let args: Vec<String> = cmd
                .args_iter()
                .filter_map(|a| match a {
                    redis::Arg::Simple(bytes) => Some(String::from_utf8_lossy(bytes).into_owned()),
                    _ => None,
                })
                .collect();
            (args[6].clone(), args[8].clone())
        };
        assert_eq!(kept("general"), ("99".into(), "675000".into()));
        assert_eq!(kept("chat:a"), ("999".into(), "4050000".into()));
        assert_eq!(kept("user:u"), ("9".into(), "135000".into()));
    }

    #[test]
    fn retention_trims_with_slack_and_keeps_keys_past_the_ttl() {
        let r = Retention::new(100, Duration::from_secs(600));
        assert_eq!(r.last_index, "99");
        assert_eq!(r.trim_at, "106");
        assert_eq!(r.refresh_ms, "37500");
        assert_eq!(r.ttl_ms, "675000");
    }
}
