//! Reads a room's history from Redis for a join (the append is the publisher's: one script per
//! message, in its pipeline). One managed connection, shared by every session and reconnected by
//! redis-rs after an outage; each read is bounded by `redis_timeout`. On a Redis Cluster the read
//! goes to the master of the room's slot (both keys carry the `{room}` hash tag).

use redis::Value;

use super::epoch::new_epoch;
use super::keys::HistoryKeys;
use super::recovery::Stored;
use super::scripts;
use crate::config::Settings;
use crate::namespace::Policy;
use crate::protocol::{Frame, Replay, Room};
use crate::redis_link::{LazyConn, Redis};

#[derive(Debug)]
pub struct RedisHistory {
    redis: Redis,
    /// Its own connection (not the shared one of one-off requests), made on first use.
    conn: LazyConn,
    read: redis::Script,
    keys: HistoryKeys,
}

impl RedisHistory {
    pub fn new(redis: &Redis, settings: &Settings) -> Self {
        RedisHistory {
            redis: redis.clone(),
            conn: LazyConn::default(),
            read: redis::Script::new(scripts::READ),
            keys: HistoryKeys::new(&settings.redis_prefix),
        }
    }

    /// What `request` needs of `room`'s history, kept as its namespace's `policy` says; `None`
    /// when Redis does not answer in time.
    pub async fn read(&self, room: &Room, policy: &Policy, request: &Replay) -> Option<Stored> {
        let (mode, n) = match request {
            Replay::None => ("last", 0),
            Replay::Last(n) => ("last", (*n).min(policy.history_size) as u64),
            Replay::Since { offset, .. } => ("since", *offset),
        };
        let (list, meta) = self.keys.of(room);
        let mut call = self.read.key(list);
        call.key(meta)
            .arg(mode)
            .arg(n)
            .arg(policy.recovery_max)
            .arg(new_epoch())
            .arg(policy.history_ttl.as_secs());
        // Once more after an error: the first command on a connection Redis dropped (a restart)
        // fails while the manager reconnects.
        for attempt in 0..2 {
            let mut conn = self
                .conn
                .get(self.redis.target(), self.redis.timeout())
                .await?;
            let reply = call.invoke_async::<Value>(&mut conn);
            match tokio::time::timeout(self.redis.timeout(), reply).await {
                Ok(Ok(value)) => {
                    let stored = parse(value);
                    if stored.is_none() {
                        tracing::warn!(%room, "history: unexpected reply from the read script");
                    }
                    return stored;
                }
                Ok(Err(err)) if attempt == 0 => {
                    tracing::debug!(%room, %err, "history: read failed, trying again")
                }
                Ok(Err(err)) => tracing::warn!(%room, %err, "history: read failed"),
                Err(_) => {
                    tracing::warn!(%room, "history: read timed out");
                    return None;
                }
            }
        }
        None
    }

    /// `room`'s epoch and last offset as they stand, without creating anything: `("", 0)` for a
    /// room with nothing stored (its first message starts an epoch); `None` when Redis does not
    /// answer in time.
    pub async fn top(&self, room: &Room) -> Option<(String, u64)> {
        let (_, meta) = self.keys.of(room);
        let mut conn = self
            .conn
            .get(self.redis.target(), self.redis.timeout())
            .await?;
        let mut cmd = redis::cmd("HMGET");
        cmd.arg(meta).arg("e").arg("o");
        let reply = cmd.query_async::<(Option<String>, Option<u64>)>(&mut conn);
        match tokio::time::timeout(self.redis.timeout(), reply).await {
            Ok(Ok((Some(epoch), offset))) => Some((epoch, offset.unwrap_or(0))),
            Ok(Ok((None, _))) => Some((String::new(), 0)),
            _ => None,
        }
    }
}

/// `{epoch, top, [frame, …]}`, newest first: entry `i` has offset `top - i`.
fn parse(value: Value) -> Option<Stored> {
    let Value::Array(mut parts) = value else {
        return None;
    };
    let (Some(Value::Array(raw)), Some(Value::Int(top)), Some(Value::BulkString(epoch))) =
        (parts.pop(), parts.pop(), parts.pop())
    else {
        return None;
    };
    let top = u64::try_from(top).ok()?;
    let epoch = String::from_utf8(epoch).ok()?;
    let mut entries = Vec::with_capacity(raw.len());
    for (i, value) in raw.into_iter().enumerate() {
        let Value::BulkString(json) = value else {
            return None;
        };
        let offset = top.checked_sub(i as u64)?;
        entries.push(Frame::stored_from(
            std::str::from_utf8(&json).ok()?,
            offset,
            &epoch,
        ));
    }
    entries.reverse();
    Some(Stored {
        epoch,
        top,
        entries,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn bulk(s: &str) -> Value {
        Value::BulkString(s.as_bytes().to_vec())
    }

    #[test]
    fn a_read_reply_becomes_frames_oldest_first_with_offset_and_epoch_in_front() {
        let reply = Value::Array(vec![
            bulk("ab12"),
            Value::Int(9),
            Value::Array(vec![
                bulk("{\"type\":\"message\",\"content\":\"b\"}"),
                // Stored by an older hub, which put offset and epoch in itself.
                bulk("{\"offset\":8,\"epoch\":\"ab12\",\"type\":\"message\"}"),
            ]),
        ]);
        let stored = parse(reply).expect("parses");
        assert_eq!((stored.epoch.as_str(), stored.top), ("ab12", 9));
        let offsets: Vec<_> = stored.entries.iter().filter_map(Frame::offset).collect();
        assert_eq!(offsets, vec![8, 9]);
        assert_eq!(
            stored.entries[0].as_str(),
            "{\"offset\":8,\"epoch\":\"ab12\",\"type\":\"message\"}"
        );
        assert_eq!(
            stored.entries[1].as_str(),
            "{\"offset\":9,\"epoch\":\"ab12\",\"type\":\"message\",\"content\":\"b\"}"
        );
        assert!(parse(Value::Int(1)).is_none());
    }
}
