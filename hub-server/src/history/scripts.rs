//! The two Lua scripts that make a room's history atomic on Redis (one round trip each), in the
//! spirit of centrifuge's history scripts.
//!
//! Keys: `KEYS[1]` the room's stream (entries `<offset>-0`, one field `f`: the stored frame),
//! `KEYS[2]` its meta hash: `e` epoch, `o` last offset, `s:<origin>` the last `seq` each hub
//! appended (so a batch re-sent after a lost reply is not stored twice). When the meta is gone —
//! expired, a Redis restarted empty, FLUSHALL — the next call starts a new epoch with an empty
//! stream, so an offset never means two messages within one epoch.

/// Append one message and publish it. ARGV: 1 the chat frame (a JSON object without offset),
/// 2 MAXLEN (approximate), 3 TTL in seconds, 4 the channel, 5 the envelope head (ends with `,`),
/// 6 an epoch to use if the room has none, 7 the origin, 8 its seq.
/// Returns `{offset, epoch, receivers}`; offset 0 for a message already appended (a re-send).
/// The stored frame is `{"offset":N,"epoch":"E",` + the frame without its `{`: exactly what
/// `Frame::stored` builds in Rust.
pub const APPEND: &str = r#"
local stream, meta = KEYS[1], KEYS[2]
local epoch = redis.call('HGET', meta, 'e')
if not epoch then
  epoch = ARGV[6]
  redis.call('DEL', stream)
  redis.call('HSET', meta, 'e', epoch, 'o', 0)
end
local origin = 's:' .. ARGV[7]
local seq = tonumber(ARGV[8])
local seen = tonumber(redis.call('HGET', meta, origin) or '0')
if seq <= seen then
  return {0, epoch, -1}
end
redis.call('HSET', meta, origin, ARGV[8])
local offset = redis.call('HINCRBY', meta, 'o', 1)
local frame = '{"offset":' .. offset .. ',"epoch":"' .. epoch .. '",' .. string.sub(ARGV[1], 2)
redis.call('XADD', stream, 'MAXLEN', '~', ARGV[2], offset .. '-0', 'f', frame)
redis.call('EXPIRE', stream, ARGV[3])
redis.call('EXPIRE', meta, ARGV[3])
local receivers = redis.call('PUBLISH', ARGV[4], ARGV[5] .. '"o":' .. offset .. ',"frame":' .. frame .. '}')
return {offset, epoch, receivers}
"#;

/// Read for a join. ARGV: 1 `since` or `last`, 2 the offset after which to read / how many of the
/// newest, 3 the most to return for `since`, 4 an epoch to use if the room has none, 5 TTL.
/// Returns `{epoch, last offset, entries}`; for `since` no entries when more than ARGV[3] are
/// missing (the caller answers `too_many` without moving them).
pub const READ: &str = r#"
local stream, meta = KEYS[1], KEYS[2]
local epoch = redis.call('HGET', meta, 'e')
if not epoch then
  epoch = ARGV[4]
  redis.call('DEL', stream)
  redis.call('HSET', meta, 'e', epoch, 'o', 0)
  redis.call('EXPIRE', meta, ARGV[5])
end
local top = tonumber(redis.call('HGET', meta, 'o'))
local n = tonumber(ARGV[2])
local entries = {}
if ARGV[1] == 'since' then
  if n < top and top - n <= tonumber(ARGV[3]) then
    entries = redis.call('XRANGE', stream, (n + 1) .. '-0', '+', 'COUNT', ARGV[3])
  end
elseif n > 0 then
  entries = redis.call('XREVRANGE', stream, '+', '-', 'COUNT', n)
end
return {epoch, top, entries}
"#;
