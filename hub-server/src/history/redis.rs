//! Reads a room's history from Redis for a join (the append is the publisher's: one script per
//! message, in its pipeline). One managed connection, shared by every session and reconnected by
//! redis-rs after an outage; each read is bounded by `redis_timeout`.

use std::time::Duration;

use redis::Value;
use redis::aio::{ConnectionManager, ConnectionManagerConfig};
use tokio::sync::OnceCell;

use super::{Stored, new_epoch, scripts};
use crate::bridge::Channels;
use crate::config::Settings;
use crate::protocol::{Frame, Replay, Room};

#[derive(Debug)]
pub struct RedisHistory {
    client: redis::Client,
    /// Made on first use, so a hub starts while Redis is still down.
    conn: OnceCell<ConnectionManager>,
    read: redis::Script,
    channels: Channels,
    /// `history_size`: the stream's approximate MAXLEN.
    pub size: usize,
    pub ttl_secs: u64,
    recovery_max: usize,
    timeout: Duration,
}

impl RedisHistory {
    pub fn new(url: &str, settings: &Settings) -> redis::RedisResult<Self> {
        Ok(RedisHistory {
            client: redis::Client::open(url)?,
            conn: OnceCell::new(),
            read: redis::Script::new(scripts::READ),
            channels: Channels::new(&settings.redis_prefix),
            size: settings.history_size,
            ttl_secs: settings.history_ttl.as_secs(),
            recovery_max: settings.recovery_max,
            timeout: settings.redis_timeout,
        })
    }

    async fn connection(&self) -> Option<ConnectionManager> {
        let config = ConnectionManagerConfig::new()
            .set_connection_timeout(Some(self.timeout))
            .set_response_timeout(Some(self.timeout))
            .set_number_of_retries(1);
        let make = || ConnectionManager::new_with_config(self.client.clone(), config);
        match tokio::time::timeout(self.timeout, self.conn.get_or_try_init(make)).await {
            Ok(Ok(conn)) => Some(conn.clone()),
            Ok(Err(err)) => {
                tracing::debug!(%err, "history: redis connect failed");
                None
            }
            Err(_) => None,
        }
    }

    /// What `request` needs of `room`'s history; `None` when Redis does not answer in time.
    pub async fn read(&self, room: &Room, request: &Replay) -> Option<Stored> {
        let mut conn = self.connection().await?;
        let (mode, n) = match request {
            Replay::None => ("last", 0),
            Replay::Last(n) => ("last", (*n).min(self.size) as u64),
            Replay::Since { offset, .. } => ("since", *offset),
        };
        let (stream, meta) = self.channels.history_keys(room);
        let mut call = self.read.key(stream);
        call.key(meta)
            .arg(mode)
            .arg(n)
            .arg(self.recovery_max)
            .arg(new_epoch())
            .arg(self.ttl_secs);
        let reply = tokio::time::timeout(self.timeout, call.invoke_async::<Value>(&mut conn)).await;
        match reply {
            Ok(Ok(value)) => {
                let stored = parse(value, mode == "last");
                if stored.is_none() {
                    tracing::warn!(%room, "history: unexpected reply from the read script");
                }
                stored
            }
            Ok(Err(err)) => {
                tracing::warn!(%room, %err, "history: read failed");
                None
            }
            Err(_) => {
                tracing::warn!(%room, "history: read timed out");
                None
            }
        }
    }
}

/// `{epoch, top, [[id, ["f", frame]], …]}`; `newest_first` for XREVRANGE.
fn parse(value: Value, newest_first: bool) -> Option<Stored> {
    let Value::Array(mut parts) = value else {
        return None;
    };
    let (Some(Value::Array(raw)), Some(Value::Int(top)), Some(Value::BulkString(epoch))) =
        (parts.pop(), parts.pop(), parts.pop())
    else {
        return None;
    };
    let mut entries = raw.into_iter().map(entry).collect::<Option<Vec<_>>>()?;
    if newest_first {
        entries.reverse();
    }
    Some(Stored {
        epoch: String::from_utf8(epoch).ok()?,
        top: u64::try_from(top).ok()?,
        entries,
    })
}

fn entry(value: Value) -> Option<Frame> {
    let Value::Array(mut pair) = value else {
        return None;
    };
    let (Some(Value::Array(mut fields)), Some(Value::BulkString(id))) = (pair.pop(), pair.pop())
    else {
        return None;
    };
    let offset = std::str::from_utf8(&id)
        .ok()?
        .split('-')
        .next()?
        .parse()
        .ok()?;
    let Some(Value::BulkString(json)) = fields.pop() else {
        return None;
    };
    Some(Frame::from_stored(
        String::from_utf8(json).ok()?,
        Some(offset),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn bulk(s: &str) -> Value {
        Value::BulkString(s.as_bytes().to_vec())
    }

    fn entry_value(offset: u64) -> Value {
        Value::Array(vec![
            bulk(&format!("{offset}-0")),
            Value::Array(vec![bulk("f"), bulk(&format!("{{\"offset\":{offset}}}"))]),
        ])
    }

    #[test]
    fn a_read_reply_becomes_frames_oldest_first() {
        let reply = Value::Array(vec![
            bulk("ab12"),
            Value::Int(9),
            Value::Array(vec![entry_value(9), entry_value(8)]),
        ]);
        let stored = parse(reply, true).expect("parses");
        assert_eq!((stored.epoch.as_str(), stored.top), ("ab12", 9));
        let offsets: Vec<_> = stored.entries.iter().filter_map(Frame::offset).collect();
        assert_eq!(offsets, vec![8, 9]);
        assert_eq!(stored.entries[0].as_str(), "{\"offset\":8}");
        assert!(parse(Value::Int(1), false).is_none());
    }
}
