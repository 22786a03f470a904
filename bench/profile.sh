#!/usr/bin/env bash
# Where the hub's CPU goes at one load point: Redis + two release hubs (pinned to CPU 0 when the
# machine has 2+ CPUs, the load tool on CPU 1), one hub-bench point, `perf record` on both hubs in the
# middle of it, then the flat profile and a breakdown by component.
# Usage: bench/profile.sh [RATE=200000] [SUBSCRIBERS=1000]      (needs linux-perf: apt-get install linux-perf)
set -euo pipefail
cd "$(dirname "$0")/.."
root=$PWD
rate=${1:-200000}
subs=${2:-1000}
command -v perf >/dev/null || { echo "perf not found: apt-get install linux-perf" >&2; exit 1; }
cargo build --release -p hub-server -p hub-bench
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
port=$((20000 + RANDOM % 20000))
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
    "${pin_server[@]}" target/release/hub-server >"$out/hub$i.log" 2>&1 &
  started+=($!)
  hub_pids+=($!)
done
for i in 1 2; do
  for _ in $(seq 1 100); do
    HUB_LISTEN=127.0.0.1:$((port + i)) target/release/hub-server healthcheck >/dev/null 2>&1 && break
    sleep 0.1
  done
done
pids=$(IFS=,; echo "${hub_pids[*]}")

# Record 5 s in the middle of a 10 s point (after connect + warm-up).
(sleep 5 && perf record -F 1999 -g -p "$pids" -o "$out/hubs.perf" -- sleep 5 >/dev/null 2>&1) &
perf_job=$!
"${pin_tool[@]}" target/release/hub-bench load --target ours --proto hub \
  --url "ws://127.0.0.1:$((port + 1))/ws,ws://127.0.0.1:$((port + 2))/ws" --subscribers "$subs" \
  --rate "$rate" --duration 10s --hub-pid "$pids" --redis-pid "$redis_pid" --json "$out/point.jsonl" >/dev/null
wait "$perf_job"

perf report -i "$out/hubs.perf" --no-children --sort dso,symbol --stdio 2>/dev/null |
  grep -E '^ +[0-9]' >"$out/flat.txt"
echo
echo "top symbols (both hubs):"
head -25 "$out/flat.txt" | cut -c1-120
echo
echo "by component:"
awk '
  { p = $1; sub("%", "", p); kind = $3; sym = ""; for (i = 4; i <= NF; i++) sym = sym " " $i
    if (kind == "[k]") c = "kernel: socket writes/reads, loopback TCP, wakeups"
    else if (sym ~ /mpsc|[Ss]emaphore/) c = "per-client queue (tokio mpsc try_send / recv_many)"
    else if (sym ~ /tokio::runtime|[Ww]ake|Harness|State::transition/) c = "tokio scheduling / task wake-ups"
    else if (sym ~ /tungstenite/) c = "WebSocket framing (tungstenite)"
    else if (sym ~ /bytes::|memmove|memcpy|memcmp|memset/) c = "Bytes refcounts and copies"
    else if (sym ~ /Sleep|oneshot|Interval|time::/) c = "writer select: ping timer, close oneshot"
    else if (sym ~ /[Bb]i[Ll]ock/) c = "split() BiLock"
    else if (sym ~ /hub_server/) c = "hub-server code"
    else if (sym ~ /redis::/) c = "redis client"
    else if (sym ~ /serde_json/) c = "serde_json"
    else c = "other user space"
    sum[c] += p }
  END { for (c in sum) printf "%6.1f%%  %s\n", sum[c], c }' "$out/flat.txt" | sort -rn
echo
echo "point: $(cat "$out/point.jsonl")"
echo "profile: $out/hubs.perf (perf report -i …)"
