#!/usr/bin/env bash
# What one history append costs Redis, apart from the hubs: a private redis-server (pinned to CPU 0
# when the machine has 2+ CPUs) with two subscribers on the room's channel (two hubs), fed N calls
# back to back by `redis-cli --pipe`, then Redis's CPU per call (/proc) and Redis's own µs per call
# (INFO commandstats) for each variant:
#   publish   a plain PUBLISH of the same envelope: the history-off path
#   empty     EVALSHA of `return 1` with the append's arguments: the price of calling a script at all
#   append    the append script as hub-server runs it (APPEND in hub-server/src/history/scripts.rs)
#   v1        the first append hub-server shipped (nine redis.call per message: two HGETs, HSET,
#             HINCRBY, LPUSH, LTRIM, two EXPIREs, PUBLISH; the frame rebuilt with offset and epoch),
#             for comparison; its own ARGV layout (frame, size, ttl s, channel, head, epoch, origin, seq)
#   FILE.lua  any script taking the append's KEYS and ARGV (to try another)
#   batchK    a sketch of one call appending and publishing K messages of a room (the publisher
#             pipelines up to 512 messages already); figures are per message
# Usage: bench/script-cost.sh [N=200000] [VARIANT …]     (default: publish empty v1 append batch16)
set -euo pipefail
cd "$(dirname "$0")/.."
root=$PWD
n=${1:-200000}
shift || true
variants=("$@")
[ ${#variants[@]} -gt 0 ] || variants=(publish empty v1 append batch16)
command -v redis-server >/dev/null && command -v redis-cli >/dev/null ||
  { echo "needs redis-server and redis-cli (scripts/ensure-deps.sh redis-server)" >&2; exit 1; }

work=$(mktemp -d)
redis_pid=
cleanup() {
  [ -n "$redis_pid" ] && kill "$redis_pid" 2>/dev/null || true
  wait 2>/dev/null || true
  rm -rf "$work"
}
trap cleanup EXIT
pin_redis=()
pin_client=()
if [ "$(nproc)" -ge 2 ] && command -v taskset >/dev/null; then
  pin_redis=(taskset -c 0)
  pin_client=(taskset -c 1)
fi
port_free() { ! (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }
ephemeral_low=$(cut -f1 /proc/sys/net/ipv4/ip_local_port_range 2>/dev/null || echo 32768)
port=$((10000 + RANDOM % (ephemeral_low - 12000)))
while ! port_free "$port"; do port=$((port + 1)); done

# The production script, from the hub's source: what is measured is what runs.
sed -n '/^pub const APPEND: &str = r#"/,/^"#;/p' "$root/hub-server/src/history/scripts.rs" |
  sed '1d;$d' >"$work/append.lua"
[ -s "$work/append.lua" ] || { echo "APPEND not found in hub-server/src/history/scripts.rs" >&2; exit 1; }
echo 'return 1' >"$work/empty.lua"
cat >"$work/v1.lua" <<'LUA'
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
LUA
# The batch sketch: the append's steps once per call where they can be (epoch and duplicate check,
# offset, one LPUSH of all frames, LTRIM, EXPIREs), a PUBLISH per message.
# ARGV: 1 size, 2 ttl, 3 channel, 4 new epoch, 5 origin, then per message: seq, envelope head, frame.
cat >"$work/batch.lua" <<'LUA'
local list, meta = KEYS[1], KEYS[2]
local origin = 's:' .. ARGV[5]
local got = redis.call('HMGET', meta, 'e', origin, 'o')
local epoch, seen, offset = got[1], tonumber(got[2] or '0'), tonumber(got[3] or '0')
if not epoch then
  epoch, offset = ARGV[4], 0
  redis.call('DEL', list)
end
local frames, offsets, last = {}, {}, seen
for i = 6, #ARGV, 3 do
  local seq = tonumber(ARGV[i])
  if seq > seen then
    offset, last = offset + 1, seq
    local frame = '{"offset":' .. offset .. ',"epoch":"' .. epoch .. '",' .. string.sub(ARGV[i + 2], 2)
    frames[#frames + 1] = frame
    redis.call('PUBLISH', ARGV[3], ARGV[i + 1] .. '"o":' .. offset .. ',"frame":' .. frame .. '}')
    offsets[#offsets + 1] = offset
  else
    offsets[#offsets + 1] = 0
  end
end
if #frames > 0 then
  redis.call('HSET', meta, 'e', epoch, 'o', offset, origin, last)
  redis.call('LPUSH', list, unpack(frames))
  redis.call('LTRIM', list, 0, tonumber(ARGV[1]) - 1)
  redis.call('EXPIRE', list, ARGV[2])
  redis.call('EXPIRE', meta, ARGV[2])
end
return {epoch, offsets}
LUA

# N commands as RESP. The frame and envelope head are what a hub sends for a benchmark message;
# the origin's seq goes up by one per call, so the script's duplicate check never short-cuts.
resp() { # mode sha [messages per call]
  awk -v n="$n" -v mode="$1" -v sha="$2" -v per="${3:-1}" 'BEGIN {
    frame = "{\"type\":\"message\",\"id\":\"7f023c93-352c-4eec-a006-2ba65d1a3f40\",\"room\":\"bench\",\"from\":\"c9518391-a046-48fd-b02e-f5c5a5f0b891\",\"user\":{\"id\":\"c9518391-a046-48fd-b02e-f5c5a5f0b891\"},\"content\":\"0.9.1920000000\",\"timestamp\":\"2026-11-25T21:41:36.76831014Z\",\"hub\":\"hub\"}"
    origin = "dc56cc96-d250-46a4-b561-232a5b7b003b"
    for (i = 1; i <= n; i++) {
      head = sprintf("{\"v\":1,\"origin\":\"%s\",\"seq\":%d,\"n\":%d,\"local\":false,\"id\":\"7f023c93-352c-4eec-a006-2ba65d1a3f40\",", origin, i, i)
      if (mode == "publish") {
        k = 0; a[++k] = "PUBLISH"; a[++k] = "rthub:room:bench"; a[++k] = head "\"frame\":" frame "}"
      } else if (mode == "batch") {
        if ((i - 1) % per == 0) {
          k = 0; a[++k] = "EVALSHA"; a[++k] = sha; a[++k] = "2"; a[++k] = "rthub:history:{bench}"
          a[++k] = "rthub:meta:{bench}"; a[++k] = "100"; a[++k] = "600"; a[++k] = "rthub:room:bench"
          a[++k] = "8ad48dac"; a[++k] = origin
        }
        a[++k] = i; a[++k] = head; a[++k] = frame
        if (i % per != 0 && i != n) continue
      } else if (mode == "eval1") {
        k = 0; a[++k] = "EVALSHA"; a[++k] = sha; a[++k] = "2"; a[++k] = "rthub:history:{bench}"
        a[++k] = "rthub:meta:{bench}"; a[++k] = frame; a[++k] = "100"; a[++k] = "600"
        a[++k] = "rthub:room:bench"; a[++k] = head; a[++k] = "8ad48dac"; a[++k] = origin; a[++k] = i
      } else {
        # What hub-server sends (publisher.rs): history_size 100, history_ttl 10m, the hub clock
        # in ms advancing 10 µs per message (a refresh every 37.5 s of it: 3 in 10^6 messages).
        k = 0; a[++k] = "EVALSHA"; a[++k] = sha; a[++k] = "2"; a[++k] = "rthub:history:{bench}"
        a[++k] = "rthub:meta:{bench}"; a[++k] = frame; a[++k] = "99"; a[++k] = "106"
        a[++k] = "675000"; a[++k] = "37500"; a[++k] = sprintf("%d", 1764000000000 + i / 100)
        a[++k] = "rthub:room:bench"; a[++k] = head; a[++k] = "8ad48dac"; a[++k] = origin; a[++k] = i
      }
      printf "*%d\r\n", k
      for (j = 1; j <= k; j++) printf "$%d\r\n%s\r\n", length(a[j]), a[j]
    }
  }'
}

printf '%-28s %12s %14s %12s\n' variant "messages/s" "redis CPU/msg" "µs/msg"
for v in "${variants[@]}"; do
  "${pin_redis[@]}" redis-server --port "$port" --bind 127.0.0.1 --save '' --appendonly no \
    >"$work/redis.log" 2>&1 &
  redis_pid=$!
  for _ in $(seq 1 50); do redis-cli -p "$port" ping >/dev/null 2>&1 && break; sleep 0.1; done
  for _ in 1 2; do
    "${pin_client[@]}" redis-cli -p "$port" subscribe rthub:room:bench >/dev/null 2>&1 &
  done
  case $v in
  publish) resp publish - >"$work/cmds" ;;
  empty | append) resp eval "$(redis-cli -p "$port" script load "$(cat "$work/$v.lua")")" >"$work/cmds" ;;
  v1) resp eval1 "$(redis-cli -p "$port" script load "$(cat "$work/v1.lua")")" >"$work/cmds" ;;
  *.lua) resp eval "$(redis-cli -p "$port" script load "$(cat "$v")")" >"$work/cmds" ;;
  batch[0-9]*) resp batch "$(redis-cli -p "$port" script load "$(cat "$work/batch.lua")")" "${v#batch}" >"$work/cmds" ;;
  *) echo "unknown variant $v" >&2; exit 2 ;;
  esac
  cpu_before=$(awk '{ print $14 + $15 }' "/proc/$redis_pid/stat")
  start=$(date +%s%N)
  "${pin_client[@]}" redis-cli -p "$port" --pipe <"$work/cmds" >"$work/pipe.log"
  end=$(date +%s%N)
  cpu_after=$(awk '{ print $14 + $15 }' "/proc/$redis_pid/stat")
  grep -q 'errors: 0' "$work/pipe.log" || { echo "$v: Redis answered errors:" >&2; cat "$work/pipe.log" >&2; }
  command=$([ "$v" = publish ] && echo publish || echo evalsha)
  per_call=$(redis-cli -p "$port" info commandstats | tr -d '\r' |
    sed -n "s/^cmdstat_$command:.*usec_per_call=\([0-9.]*\).*/\1/p")
  per_msg=1
  [[ $v == batch[0-9]* ]] && per_msg=${v#batch}
  awk -v v="$v" -v n="$n" -v ns=$((end - start)) -v ticks=$((cpu_after - cpu_before)) -v pc="$per_call" \
    -v per="$per_msg" \
    'BEGIN { printf "%-28s %12.0f %11.2f µs %9.2f µs\n", v, n / (ns / 1e9), ticks * 1e4 / n, pc / per }'
  redis-cli -p "$port" shutdown nosave >/dev/null 2>&1 || true
  wait "$redis_pid" 2>/dev/null || true
  redis_pid=
  wait 2>/dev/null || true
done
echo
awk -v n="$n" 'BEGIN { printf "redis CPU/msg: utime + stime of redis-server over the run ÷ messages (10 ms ticks: ±%.2f µs at N=%d);\n", 1e4 / n, n }'
echo "µs/msg: Redis's own INFO commandstats per call ÷ messages per call (execution only: parsing and replies left out)."
