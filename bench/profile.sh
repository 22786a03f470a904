#!/usr/bin/env bash
# Where the CPU goes at one load point: Redis + two release hubs (pinned to CPU 0 when the machine
# has 2+ CPUs, the load tool on CPU 1), one hub-bench point, `perf record` on both hubs and on Redis
# in the middle of it, then the flat profiles, a breakdown by component, and Redis's own command
# statistics for the point.
# Usage: bench/profile.sh [RATE=200000] [SUBSCRIBERS=1000] [HISTORY_SIZE=100]
#   HISTORY_SIZE 0 runs the hubs with history off (HUB_HISTORY_SIZE=0); the default is the hub's own.
#   BENCH_HUB_BIN=path profiles another hub-server binary (default: target/release/hub-server, built here).
# Needs linux-perf (apt-get install linux-perf).
set -euo pipefail
cd "$(dirname "$0")/.."
root=$PWD
rate=${1:-200000}
subs=${2:-1000}
history=${3:-100}
command -v perf >/dev/null || { echo "perf not found: apt-get install linux-perf" >&2; exit 1; }
cargo build --release -p hub-server -p hub-bench
hub_bin=${BENCH_HUB_BIN:-$root/target/release/hub-server}
ulimit -n "$(ulimit -Hn)" 2>/dev/null || true

out=$root/bench/results/profile-$(date -u +%Y%m%dT%H%M%SZ)
mkdir -p "$out"
pin_server=()
pin_tool=()
if [ "$(nproc)" -ge 2 ] && command -v taskset >/dev/null; then
  pin_server=(taskset -c 0)
  pin_tool=(taskset -c 1)
fi

declare -a started=()
cleanup() { for pid in "${started[@]}"; do kill "$pid" 2>/dev/null || true; done; wait 2>/dev/null || true; }
trap cleanup EXIT

port_free() { ! (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }
# Below the ephemeral range, where the tool's outgoing connections take their ports.
ephemeral_low=$(cut -f1 /proc/sys/net/ipv4/ip_local_port_range 2>/dev/null || echo 32768)
port=$((10000 + RANDOM % (ephemeral_low - 12000)))
while ! port_free $port || ! port_free $((port + 1)) || ! port_free $((port + 2)); do port=$((port + 3)); done
redis_port=$port

"${pin_server[@]}" redis-server --port "$redis_port" --bind 127.0.0.1 --save '' --appendonly no >"$out/redis.log" 2>&1 &
redis_pid=$!
started+=("$redis_pid")
sleep 0.5
hub_pids=()
for i in 1 2; do
  HUB_LISTEN=127.0.0.1:$((port + i)) HUB_NAME=hub$i REDIS_URL=redis://127.0.0.1:$redis_port \
    HUB_ALLOWED_ORIGINS='*' HUB_RATE_LIMIT_PER_SEC=10000000 HUB_RATE_LIMIT_BURST=10000000 \
    HUB_HISTORY_SIZE=$history "${pin_server[@]}" "$hub_bin" >"$out/hub$i.log" 2>&1 &
  started+=($!)
  hub_pids+=($!)
done
for i in 1 2; do
  for _ in $(seq 1 100); do
    HUB_LISTEN=127.0.0.1:$((port + i)) "$hub_bin" healthcheck >/dev/null 2>&1 && break
    sleep 0.1
  done
done
pids=$(IFS=,; echo "${hub_pids[*]}")

# Record 5 s in the middle of a 10 s point (after connect + warm-up): the hubs and Redis apart.
# (-F 999: sampling costs the profiled CPU too; near a limit, a higher rate tips the point over it.)
(sleep 5 && perf record -F 999 -g -p "$pids" -o "$out/hubs.perf" -- sleep 5 >/dev/null 2>&1) &
perf_hubs=$!
(sleep 5 && perf record -F 999 -g -p "$redis_pid" -o "$out/redis.perf" -- sleep 5 >/dev/null 2>&1) &
perf_redis=$!
"${pin_tool[@]}" "$root/target/release/hub-bench" load --target "ours-history-$history" --proto hub \
  --url "ws://127.0.0.1:$((port + 1))/ws,ws://127.0.0.1:$((port + 2))/ws" --subscribers "$subs" \
  --rate "$rate" --duration 10s --hub-pid "$pids" --redis-pid "$redis_pid" \
  --redis-addr "127.0.0.1:$redis_port" --json "$out/point.jsonl" >/dev/null
wait "$perf_hubs" "$perf_redis"

flat() { # perf.data → "pct dso [k|.] symbol" lines
  perf report -i "$1" --no-children -g none --sort dso,symbol --stdio 2>/dev/null | grep -E '^ +[0-9.]+% '
}
flat "$out/hubs.perf" >"$out/hubs-flat.txt"
flat "$out/redis.perf" >"$out/redis-flat.txt"

echo
echo "top symbols (both hubs):"
head -25 "$out/hubs-flat.txt" | cut -c1-120
echo
echo "hubs by component:"
awk '
  { p = $1; sub("%", "", p); kind = $3; sym = ""; for (i = 4; i <= NF; i++) sym = sym " " $i
    if (kind == "[k]") c = "kernel: socket writes/reads, loopback TCP, wakeups"
    else if (sym ~ /mpsc|[Ss]emaphore/) c = "per-client queue (tokio mpsc try_send / recv_many)"
    else if (sym ~ /tokio::runtime|[Ww]ake|Harness|State::transition/) c = "tokio scheduling / task wake-ups"
    else if (sym ~ /tungstenite/) c = "WebSocket framing (tungstenite)"
    else if (sym ~ /bytes::|memmove|memcpy|memcmp|memset/) c = "Bytes refcounts and copies"
    else if (sym ~ /Sleep|oneshot|Interval|time::/) c = "writer select: ping timer, close oneshot"
    else if (sym ~ /[Bb]i[Ll]ock/) c = "split() BiLock"
    else if (sym ~ /bridge::unconfirmed/) c = "hub-server: unconfirmed (own stored messages)"
    else if (sym ~ /bridge::publisher|bridge::envelope/) c = "hub-server: bridge publisher / envelopes"
    else if (sym ~ /hub_server/) c = "hub-server: other code"
    else if (sym ~ /redis::/) c = "redis client (commands, pipelines, replies)"
    else if (sym ~ /serde_json/) c = "serde_json"
    else if (sym ~ /malloc|free|realloc|_int_|cfree/) c = "allocator"
    else c = "other user space"
    sum[c] += p }
  END { for (c in sum) printf "%6.1f%%  %s\n", sum[c], c }' "$out/hubs-flat.txt" | sort -rn
echo
echo "top symbols (redis-server; a stripped build shows addresses where the debug symbols are missing):"
head -25 "$out/redis-flat.txt" | cut -c1-120
echo
echo "redis-server by component:"
awk '
  { p = $1; sub("%", "", p); kind = $3; sym = ""; for (i = 4; i <= NF; i++) sym = sym " " $i
    if (kind == "[k]") c = "kernel: socket reads/writes, loopback TCP, epoll"
    else if (sym ~ / lua[A-Z_]|luaV_|luaH_|luaS_|luaD_|luaC_|luaM_|luaF_|luaK_|luaL_|luaO_|luaG_|luaT_|luaZ_|lua_/) c = "Lua interpreter (VM, tables, strings, GC)"
    else if (sym ~ /[Ss]cript|luaRedis|evalGeneric|evalSha|RedisProtocolToLua|LuaToRedis|scriptCall|callerNode/) c = "script glue (call setup, redis.call, reply conversion)"
    else if (sym ~ /je_|malloc|free|zmalloc|zfree|zcalloc|zrealloc/) c = "allocator"
    else if (sym ~ /printf_fp|hack_digit|__mpn_|vfprintf|snprintf/) c = "number formatting (Lua number → string)"
    else if (sym ~ /gettimeofday|clock_gettime/) c = "clock reads (per command timing)"
    else if (sym ~ /strcasecmp|siphash|dictFind|dictGenCaseHash|lookupCommand/) c = "command and key lookups (hash, strcasecmp)"
    else if (sym ~ /readQueryFromClient|processMultibulk|processInputBuffer|_addReply|addReply|writeToClient|sdscat|createClient|resetClient|freeClient/) c = "client I/O, parsing, replies"
    else if (sym ~ /publish|pubsub|Pubsub/) c = "PUBLISH fan-out"
    else if (sym ~ /lp[A-Z]|listType|quicklist|hashType|ltrim|lpush|hset|hget|hincrby|expire|Expire|lookupKey|dict/) c = "data structures (list, hash, keyspace, expire)"
    else if (sym ~ /call|processCommand|lookupCommand/) c = "command dispatch"
    else if (sym ~ /^ *0x/) c = "no symbol (stripped binary)"
    else c = "other"
    sum[c] += p }
  END { for (c in sum) printf "%6.1f%%  %s\n", sum[c], c }' "$out/redis-flat.txt" | sort -rn
echo
echo "point:"
"$root/target/release/hub-bench" report "$out/point.jsonl" | sed -n '1,3p'
echo
echo "redis commands over send + drain (Redis's INFO commandstats; a script's time includes its calls):"
sed 's/.*"redis_commands":\[\([^]]*\)\].*/\1/' "$out/point.jsonl" | tr '}' '\n' |
  sed -n 's/.*"command":"\([^"]*\)","calls":\([0-9]*\),"usec":\([0-9]*\),"usec_per_call":\([0-9.]*\).*/\1 \2 \3 \4/p' |
  awk '{ printf "  %-16s %9d calls %9d µs %8.2f µs/call\n", $1, $2, $3, $4 }' | head -12
echo
echo "profiles: $out/hubs.perf, $out/redis.perf (perf report -i …)"
