//! Pub/sub on one node's connection: subscribing (SUBSCRIBE, or SSUBSCRIBE for sharded channels)
//! and counting a channel's subscribers there (NUMSUB / SHARDNUMSUB).
//!
//! redis-rs's plain connection offers SUBSCRIBE but not SSUBSCRIBE (only its cluster connection
//! does). So sharded channels go one SSUBSCRIBE per channel, pipelined: each is answered by
//! exactly one reply — its confirmation, or an error such as MOVED — which keeps replies and
//! commands paired; a SSUBSCRIBE of many channels refused with one error would leave the
//! connection waiting for confirmations that never come. A reply that is not the confirmation
//! of its own channel is an error: the caller drops the connection.

use std::collections::HashMap;

use redis::aio::{ConnectionLike, MultiplexedConnection};
use redis::{PushKind, RedisError, RedisResult, Value};

/// Subscribes `conn` (RESP3, with a push sender) to `channels`; sharded: SSUBSCRIBE.
pub async fn subscribe(
    conn: &mut MultiplexedConnection,
    channels: &[String],
    sharded: bool,
) -> RedisResult<()> {
    if !sharded {
        return conn.subscribe(channels).await;
    }
    each_confirmed(conn, "SSUBSCRIBE", PushKind::SSubscribe, channels).await
}

pub async fn unsubscribe(
    conn: &mut MultiplexedConnection,
    channels: &[String],
    sharded: bool,
) -> RedisResult<()> {
    if !sharded {
        return conn.unsubscribe(channels).await;
    }
    each_confirmed(conn, "SUNSUBSCRIBE", PushKind::SUnsubscribe, channels).await
}

async fn each_confirmed(
    conn: &mut MultiplexedConnection,
    command: &str,
    confirmation: PushKind,
    channels: &[String],
) -> RedisResult<()> {
    if channels.is_empty() {
        return Ok(());
    }
    let mut pipe = redis::pipe();
    for channel in channels {
        pipe.cmd(command).arg(channel);
    }
    let replies = conn.req_packed_commands(&pipe, 0, channels.len()).await?;
    for (channel, reply) in channels.iter().zip(&replies) {
        match reply {
            Value::Push { kind, data }
                if *kind == confirmation
                    && matches!(data.first(), Some(Value::BulkString(c)) if c == channel.as_bytes()) =>
                {}
            Value::ServerError(err) => return Err(err.clone().into()),
            other => {
                return Err(RedisError::from((
                    redis::ErrorKind::UnexpectedReturnType,
                    "not the confirmation of this channel",
                    format!("{other:?}"),
                )));
            }
        }
    }
    if replies.len() != channels.len() {
        return Err(RedisError::from((
            redis::ErrorKind::UnexpectedReturnType,
            "confirmations missing",
        )));
    }
    Ok(())
}

/// Subscribers of each channel on the node `conn` is connected to (NUMSUB; sharded:
/// SHARDNUMSUB, which counts only the node's own sharded subscribers).
pub async fn numsub<C: ConnectionLike>(
    conn: &mut C,
    channels: &[&str],
    sharded: bool,
) -> RedisResult<HashMap<String, i64>> {
    let mut cmd = redis::cmd("PUBSUB");
    cmd.arg(if sharded { "SHARDNUMSUB" } else { "NUMSUB" })
        .arg(channels);
    cmd.query_async(conn).await
}
