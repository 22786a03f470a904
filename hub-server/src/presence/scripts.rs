//! Presence in Redis, one hash pair per room in the room's slot (`{room}`), written only when
//! something changes — never per client per tick:
//! - `presence:{room}`: field `<instance>|<user>` → `<connections on that hub>|<name>`;
//! - `presence-users:{room}`: field `<user>` → connections on all hubs together.
//!
//! Each hub owns its own fields, so a write is absolute (a hub re-sending what it knows after an
//! outage changes nothing) and the totals move by the difference, which says atomically whether
//! this was the user's first connection anywhere (a join) or the last (a leave).
//!
//! The registry of live hubs is `{hubs}` (sorted set: instance → last heartbeat, Redis time in ms)
//! with `{hubs}:hub:<instance>` (its figures, JSON, expiring) and `{hubs}:rooms:<instance>` (the
//! rooms it has entries in: what to clean when it dies).

/// ARGV: 1 instance, 2 user, 3 connections on this hub (0: none left), 4 name.
/// Returns `{event, users}`: event 1 the user's first connection anywhere, -1 the last, 0
/// neither; users: how many users the room has now.
pub const SET_COUNT: &str = r#"
local field = ARGV[1] .. '|' .. ARGV[2]
local old = redis.call('HGET', KEYS[1], field)
local before_here = 0
if old then before_here = tonumber(string.match(old, '^(%d+)')) end
local now_here = tonumber(ARGV[3])
if now_here > 0 then
  redis.call('HSET', KEYS[1], field, now_here .. '|' .. ARGV[4])
else
  redis.call('HDEL', KEYS[1], field)
end
local total = redis.call('HINCRBY', KEYS[2], ARGV[2], now_here - before_here)
if total <= 0 then redis.call('HDEL', KEYS[2], ARGV[2]) end
local before = total - (now_here - before_here)
local event = 0
if before <= 0 and total > 0 then event = 1 elseif before > 0 and total <= 0 then event = -1 end
return {event, redis.call('HLEN', KEYS[2])}
"#;

/// Removes a dead hub's entries of one room, one `HSCAN` page per call (ARGV: 1 the dead instance,
/// 2 the cursor, `0` to start): a room of 250,000 entries held Redis's one thread for up to 1.2 s
/// when reaped in one call (every hub's commands waited, and timed out). Returns `{leaves, users,
/// cursor}`: leaves as `user, name, user, name, …` for users it left with no connection anywhere;
/// done when the cursor is `0`. An entry `HSCAN` shows twice, or that another hub reaped
/// meanwhile, counts once (`HDEL` says whether it was still there).
pub const REAP: &str = r#"
local prefix = ARGV[1] .. '|'
local leaves = {}
local page = redis.call('HSCAN', KEYS[1], ARGV[2], 'MATCH', prefix .. '*', 'COUNT', 1000)
local kv = page[2]
for i = 1, #kv, 2 do
  if redis.call('HDEL', KEYS[1], kv[i]) == 1 then
    local user = string.sub(kv[i], #prefix + 1)
    local here = tonumber(string.match(kv[i + 1], '^(%d+)'))
    local name = string.match(kv[i + 1], '^%d+|(.*)$') or ''
    local total = redis.call('HINCRBY', KEYS[2], user, -here)
    if total <= 0 then
      redis.call('HDEL', KEYS[2], user)
      table.insert(leaves, user)
      table.insert(leaves, name)
    end
  end
end
return {leaves, redis.call('HLEN', KEYS[2]), page[1]}
"#;

/// The per-hub heartbeat: O(1) whatever the number of connections. KEYS: 1 `{hubs}`, 2 this
/// hub's info key. ARGV: 1 instance, 2 info JSON, 3 timeout in ms.
/// Returns `{known, dead}`: known 0 when this hub was not in the registry (Redis lost its data —
/// a restart, FLUSHALL — or the others took it for dead): then it must write all it knows again;
/// dead: the instances whose heartbeat is older than the timeout.
pub const HEARTBEAT: &str = r#"
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local known = 1
if not redis.call('ZSCORE', KEYS[1], ARGV[1]) then known = 0 end
redis.call('ZADD', KEYS[1], now, ARGV[1])
redis.call('SET', KEYS[2], ARGV[2], 'PX', tonumber(ARGV[3]) * 3)
return {known, redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', now - tonumber(ARGV[3]))}
"#;
