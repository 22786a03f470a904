#!/usr/bin/env bash
# The SSE fallback's highest sustainable delivery rate at 1000 subscribers, beside WebSocket's, on
# the same hubs: Redis and two release hub-servers on CPU 0, hub-bench on CPU 1 (as bench/run.sh),
# one room of BENCH_SUBSCRIBERS subscribers (WebSocket, then SSE; publishers on WebSocket), rates
# swept upwards until two points in a row are not sustainable. Prints one line per point and the
# highest sustainable rate of each; JSON lines in bench/results/sse-<time>.jsonl (git-ignored).
#   BENCH_SUBSCRIBERS=1000  BENCH_RATES="25000 50000 …"  BENCH_DURATION=8s  BENCH_PUBLISHERS=4
#   BENCH_TRANSPORTS="ws sse" (one of them: its sweep only)
set -euo pipefail
cd "$(dirname "$0")/.."
BENCH_SUBSCRIBERS=${BENCH_SUBSCRIBERS:-1000}
BENCH_RATES=${BENCH_RATES:-"25000 50000 100000 150000 200000 300000 400000 600000"}
BENCH_DURATION=${BENCH_DURATION:-8s}
BENCH_PUBLISHERS=${BENCH_PUBLISHERS:-4}
cargo build --release -q -p hub-server -p hub-bench
hub=target/release/hub-server
tool=target/release/hub-bench
mkdir -p bench/results
results=bench/results/sse-$(date -u +%Y%m%dT%H%M%SZ).jsonl
# shellcheck source=bench/lib.sh
source bench/lib.sh
trap stop_started EXIT
trap 'exit 130' INT TERM

start_pinned_redis 0
urls=() hub_pids=()
for i in 1 2; do
  port=$(free_port)
  env HUB_LISTEN=127.0.0.1:$port HUB_NAME=hub$i REDIS_URL=redis://127.0.0.1:$redis_port \
    HUB_ALLOWED_ORIGINS='*' HUB_MAX_CONNECTIONS=100000 \
    HUB_RATE_LIMIT_PER_SEC=10000000 HUB_RATE_LIMIT_BURST=10000000 RUST_LOG=warn \
    taskset -c 0 "$hub" &
  started+=($!)
  hub_pids+=($!)
  until HUB_LISTEN=127.0.0.1:$port "$hub" healthcheck >/dev/null 2>&1; do sleep 0.1; done
  urls+=("ws://127.0.0.1:$port/ws")
done
url_list=$(IFS=,; echo "${urls[*]}")
pid_list=$(IFS=,; echo "${hub_pids[*]}")

declare -A best=([ws]=skipped [sse]=skipped)
for transport in ${BENCH_TRANSPORTS:-ws sse}; do
  best[$transport]=none
  misses=0
  for rate in $BENCH_RATES; do
    line=$(taskset -c 1 "$tool" load --target "ours-$transport" --proto hub --url "$url_list" \
      --subscriber-transport "$transport" --subscribers "$BENCH_SUBSCRIBERS" \
      --publishers "$BENCH_PUBLISHERS" --rate "$rate" --duration "$BENCH_DURATION" --drain 2s \
      --room "bench-$transport-$rate" --hub-pid "$pid_list" --redis-pid "$redis_pid" \
      --json "$results") || { echo "$transport $rate/s: the tool failed" >&2; line=''; }
    if [[ $line == *'"sustainable":true'* ]]; then
      best[$transport]=$rate
      misses=0
    else
      misses=$((misses + 1))
      [ "$misses" -ge 2 ] && break
    fi
  done
done
echo "highest sustainable delivery rate at $BENCH_SUBSCRIBERS subscribers: WebSocket ${best[ws]}/s, SSE ${best[sse]}/s (results: $results)"
