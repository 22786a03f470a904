//! The two Lua scripts that make a room's history atomic on Redis (one round trip each), in the
//! spirit of centrifuge's history scripts.
//!
//! Keys: `KEYS[1]` the room's history, a list of stored frames, newest first (entry `i` has offset
//! `o - i`: every append pushes one and trims one off the old end, so no offset needs storing),
//! `KEYS[2]` its meta hash: `e` epoch, `o` last offset, `s:<origin>` the last `seq` each hub
//! appended (so a batch re-sent after a lost reply is not stored twice). When the meta is gone —
//! expired, a Redis restarted empty, FLUSHALL — the next call starts a new epoch with an empty
//! list, so an offset never means two messages within one epoch.
//!
//! A list rather than a Redis stream: a stream preallocates a 4 KiB listpack per room (measured:
//! 4.6 KiB for a room holding one 100-byte message), a list only what it holds, and LTRIM keeps
//! it at exactly `history_size`.

/// Append one message and publish it. ARGV: 1 the chat frame (a JSON object without offset),
/// 2 how many to keep, 3 TTL in seconds, 4 the channel, 5 the envelope head (ends with `,`),
/// 6 an epoch to use if the room has none, 7 the origin, 8 its seq.
/// Returns `{offset, epoch, receivers}`; offset 0 for a message already appended (a re-send).
/// The stored frame is `{"offset":N,"epoch":"E",` + the frame without its `{`: exactly what
/// `Frame::stored` builds in Rust.
pub const APPEND: &str = r#"
local list, meta = KEYS[1], KEYS[2]
local epoch = redis.call('HGET', meta, 'e')
if not epoch then
  epoch = ARGV[6]
  redis.call('DEL', list)
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
redis.call('LPUSH', list, frame)
redis.call('LTRIM', list, 0, tonumber(ARGV[2]) - 1)
redis.call('EXPIRE', list, ARGV[3])
redis.call('EXPIRE', meta, ARGV[3])
local receivers = redis.call('PUBLISH', ARGV[4], ARGV[5] .. '"o":' .. offset .. ',"frame":' .. frame .. '}')
return {offset, epoch, receivers}
"#;

/// Read for a join. ARGV: 1 `since` or `last`, 2 the offset after which to read / how many of the
/// newest, 3 the most to return for `since`, 4 an epoch to use if the room has none, 5 TTL.
/// Returns `{epoch, last offset, entries newest first}`; for `since` no entries when more than
/// ARGV[3] are missing (the caller answers `too_many` without moving them).
pub const READ: &str = r#"
local list, meta = KEYS[1], KEYS[2]
local epoch = redis.call('HGET', meta, 'e')
if not epoch then
  epoch = ARGV[4]
  redis.call('DEL', list)
  redis.call('HSET', meta, 'e', epoch, 'o', 0)
  redis.call('EXPIRE', meta, ARGV[5])
end
local top = tonumber(redis.call('HGET', meta, 'o'))
local n = tonumber(ARGV[2])
local entries = {}
if ARGV[1] == 'since' then
  if n < top and top - n <= tonumber(ARGV[3]) then
    entries = redis.call('LRANGE', list, 0, top - n - 1)
  end
elseif n > 0 then
  entries = redis.call('LRANGE', list, 0, n - 1)
end
return {epoch, top, entries}
"#;
