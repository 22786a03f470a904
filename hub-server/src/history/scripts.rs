//! The two Lua scripts that make a room's history atomic on Redis (one round trip each), in the
//! spirit of centrifuge's history scripts.
//!
//! Keys: `KEYS[1]` the room's history, a list of the chat frames as their hubs made them, newest
//! first (entry `i` has offset `o - i`: every append pushes one, so no offset needs storing; the
//! reader puts `offset` and `epoch` in front), `KEYS[2]` its meta hash: `e` epoch, `o` last
//! offset, `x` when the keys' TTL was last refreshed, `s:<origin>` the last `seq` each hub appended
//! (so a batch re-sent after a lost reply is not stored twice). When the meta is gone — expired, a
//! Redis restarted empty, FLUSHALL — the next call starts a new epoch with an empty list, so an
//! offset never means two messages within one epoch.
//!
//! A list rather than a Redis stream: a stream preallocates a 4 KiB listpack per room (measured:
//! 4.6 KiB for a room holding one 100-byte message), a list only what it holds.
//!
//! The append runs once per message on Redis's one thread, so every `redis.call` and every string
//! it builds counts (`bench/script-cost.sh`: 10.5 µs of Redis CPU per message for a first version
//! with nine calls, 7.3 µs for this one with four): one `HMGET` reads all it needs, one `HSET`
//! writes, the list is trimmed only when it is `trim_slack` past `history_size` (approximate
//! trimming, as `XADD MAXLEN ~` does), the TTL is refreshed once per `refresh` interval with that
//! interval twice over as margin (so keys still live at least `history_ttl` after the last
//! message, even between hubs whose clocks differ by up to one interval), and the frame is stored
//! and published as the hub made it, `offset` and `epoch` travelling beside it.

/// Append one message and publish it. ARGV: 1 the chat frame, 2 the last index to keep
/// (`history_size - 1`), 3 the list length past which to trim, 4 the keys' TTL in ms (margin
/// included), 5 the refresh interval in ms, 6 the hub's clock in ms, 7 the channel, 8 the envelope
/// head (ends with `,`), 9 an epoch to use if the room has none, 10 the origin, 11 its seq.
/// Publishes the head + `"o":<offset>,"e":"<epoch>","frame":<frame>}`.
/// Returns `{offset, epoch, receivers}`; offset 0 for a message already appended (a re-send).
pub const APPEND: &str = r#"
local list, meta = KEYS[1], KEYS[2]
local origin = 's:' .. ARGV[10]
local got = redis.call('HMGET', meta, 'e', 'o', origin, 'x')
local epoch, offset = got[1], tonumber(got[2]) or 0
if not epoch then
  epoch, offset = ARGV[9], 0
  redis.call('DEL', list)
end
local seq = ARGV[11]
if tonumber(seq) <= tonumber(got[3] or '0') then
  return {0, epoch, -1}
end
offset = offset + 1
local o = tostring(offset)
if redis.call('LPUSH', list, ARGV[1]) > tonumber(ARGV[3]) then
  redis.call('LTRIM', list, 0, ARGV[2])
end
local now, refreshed = tonumber(ARGV[6]), tonumber(got[4] or '0')
if got[4] == false or now - refreshed >= tonumber(ARGV[5]) or now < refreshed then
  redis.call('HSET', meta, 'e', epoch, 'o', o, origin, seq, 'x', ARGV[6])
  redis.call('PEXPIRE', list, ARGV[4])
  redis.call('PEXPIRE', meta, ARGV[4])
else
  redis.call('HSET', meta, 'o', o, origin, seq)
end
local receivers = redis.call('PUBLISH', ARGV[7], ARGV[8] .. '"o":' .. o .. ',"e":"' .. epoch .. '","frame":' .. ARGV[1] .. '}')
return {offset, epoch, receivers}
"#;

/// [`APPEND`] for a Redis Cluster: the same steps, published with SPUBLISH to the room's sharded
/// channel, which its `{room}` hash tag puts in the slot of `KEYS` (a script may only touch its
/// own slot; a plain PUBLISH from it would be copied to every node of the cluster).
pub fn append_sharded() -> String {
    APPEND.replacen("redis.call('PUBLISH'", "redis.call('SPUBLISH'", 1)
}

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

#[cfg(test)]
mod tests {
    #[test]
    fn the_sharded_append_differs_only_in_its_publish() {
        let sharded = super::append_sharded();
        assert_eq!(sharded.matches("SPUBLISH").count(), 1);
        assert_eq!(sharded.replace("SPUBLISH", "PUBLISH"), super::APPEND);
    }
}
