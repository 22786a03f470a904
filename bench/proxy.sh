#!/usr/bin/env bash
# The publish proxy's cost (issue 23): the highest sustainable message rate in a small room and the
# p99 at each rate, with every client message first posted to a backend (`proxy_publish`) and without,
# on the same hubs. Redis and two release hub-servers on CPU 0, hub-bench on CPU 1 (as bench/run.sh);
# `hub-bench backend` (answers every call `200 {}` at once) on PROXY_BACKEND_CPU (default 1: beside
# the tool, as a backend on another machine would not take the hubs' core; 0 puts it with the hubs).
# The hubs declare two namespaces that differ only in `proxy_publish`: `pp` (on) and `np` (off); a
# point's room is `pp:…` or `np:…`. Rates are offered deliveries/s (= messages/s × subscribers), swept
# upwards until two points in a row are not sustainable; a hub pair is restarted after a point that
# was not. Prints one line per point and each mode's highest sustainable rate; JSON lines in
# bench/results/proxy-<time>.jsonl (git-ignored), logs beside them.
#   BENCH_SUBSCRIBERS=10  BENCH_RATES="50000 100000 …"  BENCH_DURATION=8s
#   BENCH_PUBLISHERS=16: a session's proxied messages of one room are posted one after the other
#     (their order is kept), so one publisher sends at most 1 / (backend round trip) messages/s;
#     the publishers are room members, so each message also goes to the other publishers.
#   BENCH_MODES="off on"  PROXY_BACKEND_CPU=1  BENCH_HUB_BIN=<hub-server binary, not rebuilt>
#   BENCH_BUILD=0: use target/release/hub-bench as it is (no cargo step)
set -euo pipefail
cd "$(dirname "$0")/.."
BENCH_SUBSCRIBERS=${BENCH_SUBSCRIBERS:-10}
BENCH_RATES=${BENCH_RATES:-"50000 100000 200000 300000 400000 500000 600000"}
BENCH_DURATION=${BENCH_DURATION:-8s}
BENCH_PUBLISHERS=${BENCH_PUBLISHERS:-16}
BENCH_MODES=${BENCH_MODES:-"off on"}
PROXY_BACKEND_CPU=${PROXY_BACKEND_CPU:-1}
if [ -n "${BENCH_HUB_BIN:-}" ]; then
  [ "${BENCH_BUILD:-1}" = 0 ] || cargo build --release -q -p hub-bench
  hub=$BENCH_HUB_BIN
else
  [ "${BENCH_BUILD:-1}" = 0 ] || cargo build --release -q -p hub-server -p hub-bench
  hub=target/release/hub-server
fi
tool=target/release/hub-bench
ulimit -n "$(ulimit -Hn)" 2>/dev/null || true
stamp=$(date -u +%Y%m%dT%H%M%SZ)
mkdir -p bench/results/proxy-$stamp
out=bench/results/proxy-$stamp
results=$out/results.jsonl
echo "{\"kind\":\"proxy-run\",\"hub\":\"${BENCH_HUB_BIN:-$(git rev-parse --short=12 HEAD)}\",\"subscribers\":$BENCH_SUBSCRIBERS,\"publishers\":$BENCH_PUBLISHERS,\"backend_cpu\":$PROXY_BACKEND_CPU,\"load\":\"$(cut -d' ' -f1-3 /proc/loadavg)\"}" >>"$results"
pids=()
cleanup() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; wait 2>/dev/null || true; }
trap cleanup EXIT
trap 'exit 130' INT TERM
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }

redis_port=$(free_port)
taskset -c 0 redis-server --port "$redis_port" --save '' --appendonly no --logfile /dev/null &
pids+=($!)
redis_pid=$!
until redis-cli -p "$redis_port" ping >/dev/null 2>&1; do sleep 0.1; done

# The backend prints its address first; its per-second counts go to the log.
taskset -c "$PROXY_BACKEND_CPU" "$tool" backend >"$out/backend.addr" 2>"$out/backend.log" &
pids+=($!)
until [ -s "$out/backend.addr" ]; do sleep 0.1; done
backend=$(sed -n 's/^listening //p' "$out/backend.addr")

hub_pids=()
start_hubs() {
  local i port urls=()
  hub_pids=()
  for i in 1 2; do
    port=$(free_port)
    env HUB_LISTEN=127.0.0.1:$port HUB_NAME=hub$i REDIS_URL=redis://127.0.0.1:$redis_port \
      HUB_ALLOWED_ORIGINS='*' HUB_MAX_CONNECTIONS=100000 \
      HUB_RATE_LIMIT_PER_SEC=10000000 HUB_RATE_LIMIT_BURST=10000000 RUST_LOG=warn \
      HUB_HOOK_SECRET=bench-hook-secret-0123456789 HUB_PROXY_PUBLISH_URL="http://$backend/publish" \
      HUB_NAMESPACES='{"pp":{"proxy_publish":true},"np":{}}' \
      taskset -c 0 "$hub" >>"$out/hub$i.log" 2>&1 &
    pids+=($!)
    hub_pids+=($!)
    until HUB_LISTEN=127.0.0.1:$port "$hub" healthcheck >/dev/null 2>&1; do sleep 0.1; done
    urls+=("ws://127.0.0.1:$port/ws")
  done
  url_list=$(IFS=,; echo "${urls[*]}")
  pid_list=$(IFS=,; echo "${hub_pids[*]}")
}
stop_hubs() {
  local p
  for p in "${hub_pids[@]}"; do kill "$p" 2>/dev/null || true; done
  for p in "${hub_pids[@]}"; do wait "$p" 2>/dev/null || true; done
}
start_hubs

declare -A best=([off]=skipped [on]=skipped)
for mode in $BENCH_MODES; do
  ns=np
  [ "$mode" = on ] && ns=pp
  best[$mode]=none
  misses=0
  for rate in $BENCH_RATES; do
    echo "$(date -u +%H:%M:%S) proxy $mode, $rate deliveries/s, load $(cut -d' ' -f1 /proc/loadavg)" >&2
    line=$(taskset -c 1 "$tool" load --target "proxy-$mode" --proto hub --url "$url_list" \
      --subscribers "$BENCH_SUBSCRIBERS" --publishers "$BENCH_PUBLISHERS" --rate "$rate" \
      --duration "$BENCH_DURATION" --drain 2s --room "$ns:bench-$rate" --hub-pid "$pid_list" \
      --redis-pid "$redis_pid" --redis-addr "127.0.0.1:$redis_port" \
      --json "$results") || { echo "proxy $mode $rate/s: the tool failed" >&2; line=''; }
    if [[ $line == *'"sustainable":true'* ]]; then
      best[$mode]=$rate
      misses=0
    else
      stop_hubs
      start_hubs
      misses=$((misses + 1))
      [ "$misses" -ge 2 ] && break
    fi
    sleep 1
  done
done
echo "highest sustainable rate, $BENCH_SUBSCRIBERS subscribers, $BENCH_PUBLISHERS publishers (deliveries/s; ÷ $BENCH_SUBSCRIBERS = messages/s): proxy off ${best[off]}, proxy on ${best[on]} (results: $results; backend: $(tail -n 1 "$out/backend.log"))"
