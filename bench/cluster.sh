#!/usr/bin/env bash
# bench/cluster.sh: realtime-hub on one Redis vs. a 3-master Redis Cluster (issue 15), driven by
# `hub-bench load` as bench/run.sh does, on loopback. Two parts:
#
#  shards  The same fan-out workload on one Redis and on the cluster: 2 hubs, 3 rooms (on the cluster
#          one room per master, chosen by CLUSTER KEYSLOT; on one Redis the same names), each room
#          BENCH_SUBSCRIBERS/3 subscribers and 4 publishers, driven by three `hub-bench load` at once,
#          each at rate/3. Per offered rate: deliveries/s, p99, hub CPU and Redis CPU (all Redis
#          processes: 1 or 6) per message.
#  hubs    The cost of one room's message as the number of hubs grows: one room of
#          BENCH_HUB_SUBSCRIBERS subscribers spread over H hubs (H in BENCH_HUB_COUNTS), a fixed
#          rate, on the cluster (and on one Redis with BENCH_HUB_MODES="cluster single"): hub CPU
#          (all hubs) and Redis CPU per message. Each message is one append (EVALSHA + SPUBLISH) and
#          H pushes from Redis, H envelope decodes: what grows with H.
#
# Knobs (environment; defaults are for a quiet machine, a few minutes plus the build):
#   BENCH_PARTS="shards hubs"
#   BENCH_SUBSCRIBERS=3000  BENCH_RATES="30000 150000 300000 600000"   (shards; deliveries/s in all)
#   BENCH_HUB_COUNTS="1 2 4 8"  BENCH_HUB_SUBSCRIBERS=800  BENCH_HUB_RATE=80000  BENCH_HUB_MODES=cluster
#   BENCH_DURATION=8s  BENCH_DRAIN=2s  BENCH_PUBLISHERS=4 (per load process)
#   BENCH_HUB_BIN=<path>   this hub-server binary instead of a release build of the working tree
# Results: bench/results/cluster-<UTC timestamp>/ (results.jsonl, report.md, logs); git-ignored.
# Small check run (seconds, not figures):
#   BENCH_HUB_BIN=target/debug/hub-server BENCH_SUBSCRIBERS=60 BENCH_RATES=3000 BENCH_DURATION=2s \
#     BENCH_HUB_COUNTS="1 2" BENCH_HUB_SUBSCRIBERS=40 BENCH_HUB_RATE=2000 bench/cluster.sh
set -euo pipefail
cd "$(dirname "$0")/.."
root=$PWD

BENCH_PARTS=${BENCH_PARTS-"shards hubs"}
BENCH_SUBSCRIBERS=${BENCH_SUBSCRIBERS:-3000}
BENCH_RATES=${BENCH_RATES-"30000 150000 300000 600000"}
BENCH_HUB_COUNTS=${BENCH_HUB_COUNTS-"1 2 4 8"}
BENCH_HUB_SUBSCRIBERS=${BENCH_HUB_SUBSCRIBERS:-800}
BENCH_HUB_RATE=${BENCH_HUB_RATE:-80000}
BENCH_HUB_MODES=${BENCH_HUB_MODES-"cluster"}
BENCH_DURATION=${BENCH_DURATION:-8s}
BENCH_DRAIN=${BENCH_DRAIN:-2s}
BENCH_PUBLISHERS=${BENCH_PUBLISHERS:-4}

say() { printf '\n== %s\n' "$*" >&2; }
if ! command -v redis-server >/dev/null || ! command -v redis-cli >/dev/null; then
  echo "needs redis-server and redis-cli (apt-get install redis-server)" >&2; exit 1
fi
command -v jq >/dev/null || { echo "needs jq" >&2; exit 1; }

# shellcheck source=bench/lib.sh
source bench/lib.sh
build_release "${BENCH_HUB_BIN:-}"
hub_bin=$root/target/release/hub-server
[ -n "${BENCH_HUB_BIN:-}" ] && hub_bin=$(realpath "$BENCH_HUB_BIN")
bench_bin=$root/target/release/hub-bench
ulimit -n "$(ulimit -Hn)" 2>/dev/null || true

out=$root/bench/results/cluster-$(date -u +%Y%m%dT%H%M%SZ)
mkdir -p "$out"
results=$out/results.jsonl
work=$(mktemp -d)
pids=()
cleanup() {
  for p in ${pids[@]+"${pids[@]}"}; do kill -9 "$p" 2>/dev/null || true; done
  wait 2>/dev/null || true
  rm -rf "$work"
}
trap cleanup EXIT

# Ports below the ephemeral range (the tool's connections take theirs from it); a cluster node
# also needs port + 10000 free (its bus).
port_free() { ! (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }
next_port=17000
# Sets $port (not printed: a $(…) subshell would not move next_port on).
take_port() {
  while ! port_free "$next_port" || ! port_free $((next_port + 10000)); do next_port=$((next_port + 1)); done
  port=$next_port
  next_port=$((next_port + 1))
}

wait_redis() {
  for _ in $(seq 100); do redis-cli -p "$1" ping >/dev/null 2>&1 && return 0; sleep 0.05; done
  echo "redis on $1 did not start" >&2; exit 1
}

start_single() {
  take_port; single_port=$port
  redis-server --port "$single_port" --bind 127.0.0.1 --save '' --appendonly no \
    --logfile "$out/redis-single.log" &
  pids+=($!); single_pid=$!
  wait_redis "$single_port"
}

start_cluster() {
  cluster_ports=() cluster_pids=()
  mkdir -p "$work/cluster"
  for _ in 1 2 3 4 5 6; do
    take_port; local p=$port
    redis-server --port "$p" --bind 127.0.0.1 --cluster-enabled yes \
      --cluster-config-file "nodes-$p.conf" --cluster-node-timeout 5000 --save '' --appendonly no \
      --dir "$work/cluster" --logfile "$out/redis-cluster-$p.log" &
    pids+=($!); cluster_pids+=($!); cluster_ports+=("$p")
  done
  for p in "${cluster_ports[@]}"; do wait_redis "$p"; done
  local addrs=()
  for p in "${cluster_ports[@]}"; do addrs+=("127.0.0.1:$p"); done
  redis-cli --cluster create "${addrs[@]}" \
    --cluster-replicas 1 --cluster-yes >"$out/cluster-create.log"
  for _ in $(seq 200); do
    local ok=1
    for p in "${cluster_ports[@]}"; do
      redis-cli -p "$p" cluster info | grep -q cluster_state:ok || ok=0
    done
    [ $ok = 1 ] && break
    sleep 0.1
  done
  cluster_nodes=$(printf 'redis://127.0.0.1:%s,' "${cluster_ports[@]}"); cluster_nodes=${cluster_nodes%,}
}

# The master (port) serving `slot`, from CLUSTER NODES.
master_of_slot() {
  redis-cli -p "${cluster_ports[0]}" cluster nodes | awk -v s="$1" '
    $3 ~ /master/ && $3 !~ /fail/ {
      for (i = 9; i <= NF; i++) { split($i, r, "-"); if (r[2] == "") r[2] = r[1];
        if (s + 0 >= r[1] + 0 && s + 0 <= r[2] + 0) { split($2, a, "[:@]"); print a[2]; exit } } }'
}

# Three room names, each on a different master.
pick_rooms() {
  rooms=()
  local used=" "
  for i in $(seq 1000); do
    local name="bench$i" slot master
    slot=$(redis-cli -p "${cluster_ports[0]}" cluster keyslot "{$name}")
    master=$(master_of_slot "$slot")
    case "$used" in *" $master "*) continue ;; esac
    used="$used$master "; rooms+=("$name")
    [ ${#rooms[@]} = 3 ] && return 0
  done
  echo "no three rooms on three masters" >&2; exit 1
}

# start_hubs MODE N PREFIX: N hubs on one Redis or the cluster; sets hub_urls, hub_pids.
start_hubs() {
  local mode=$1 n=$2 prefix=$3 redis_env
  if [ "$mode" = single ]; then redis_env="REDIS_URL=redis://127.0.0.1:$single_port"
  else redis_env="REDIS_CLUSTER_NODES=$cluster_nodes"; fi
  hub_urls="" hub_pids=""
  for i in $(seq "$n"); do
    take_port
    env -i PATH="$PATH" HUB_LISTEN="127.0.0.1:$port" HUB_NAME="hub$i" "$redis_env" HUB_REDIS_PREFIX="$prefix" \
      HUB_ALLOWED_ORIGINS='*' HUB_MAX_CONNECTIONS=100000 \
      HUB_RATE_LIMIT_PER_SEC=10000000 HUB_RATE_LIMIT_BURST=10000000 \
      "$hub_bin" >"$out/$prefix-hub$i.log" 2>&1 &
    pids+=($!)
    hub_pids="$hub_pids${hub_pids:+,}$!"
    hub_urls="$hub_urls${hub_urls:+,}ws://127.0.0.1:$port/ws"
    for _ in $(seq 200); do
      HUB_LISTEN=127.0.0.1:$port "$hub_bin" healthcheck >/dev/null 2>&1 && break
      sleep 0.05
    done
    HUB_LISTEN=127.0.0.1:$port "$hub_bin" healthcheck >/dev/null 2>&1 ||
      { echo "hub $i ($mode) not healthy:" >&2; tail -5 "$out/$prefix-hub$i.log" >&2; exit 1; }
  done
}

stop_hubs() {
  IFS=, read -ra hp <<<"$hub_pids"
  for p in "${hp[@]}"; do kill "$p" 2>/dev/null || true; done
  for p in "${hp[@]}"; do wait "$p" 2>/dev/null || true; done
}

redis_pids_of() { if [ "$1" = single ]; then echo "$single_pid"; else (IFS=,; echo "${cluster_pids[*]}"); fi; }

# load TARGET ROOM SUBSCRIBERS RATE MODE: one hub-bench load point, JSON line to $results.
load() {
  "$bench_bin" load --target "$1" --proto hub --url "$hub_urls" --room "$2" --subscribers "$3" \
    --publishers "$BENCH_PUBLISHERS" --rate "$4" --duration "$BENCH_DURATION" --drain "$BENCH_DRAIN" \
    --hub-pid "$hub_pids" --redis-pid "$(redis_pids_of "$5")" --json "$results" >>"$out/tool.log" 2>&1 ||
    echo "load point $1 $3 subs $4/s failed (see $out/tool.log)" >&2
}

say "Redis: one server and a 6-node cluster (3 masters + 3 replicas)"
start_single
start_cluster
pick_rooms
say "rooms ${rooms[*]} (one per master on the cluster)"
printf '# realtime-hub: one Redis vs. a 3-master Redis Cluster\n\n%s, %s cores, redis %s, hub %s\n' \
  "$(date -u +%FT%TZ)" "$(nproc)" "$(redis-server --version | sed 's/.*v=\([^ ]*\).*/\1/')" \
  "${BENCH_HUB_BIN:-$(git rev-parse --short=12 HEAD)$([ -n "$(git status --porcelain -- hub-server/src)" ] && echo ' + uncommitted changes')}" >"$out/report.md"

if [[ " $BENCH_PARTS " == *" shards "* ]]; then
  per_room=$((BENCH_SUBSCRIBERS / 3))
  for mode in single cluster; do
    start_hubs "$mode" 2 "s-$mode"
    for rate in $BENCH_RATES; do
      say "shards: $mode, 2 hubs, 3 rooms x $per_room subscribers, $rate deliveries/s in all"
      loads=()
      for i in 0 1 2; do
        load "shards-$mode-$rate-r$i" "${rooms[$i]}" "$per_room" $((rate / 3)) "$mode" &
        loads+=($!)
      done
      for j in "${loads[@]}"; do wait "$j" || true; done
    done
    stop_hubs
  done
  {
    printf '\n## shards: the same 3-room fan-out on one Redis and on the cluster (2 hubs)\n\n'
    printf '| redis | offered del/s | delivered del/s | msgs/s | p99 ms (worst room) | lost | hub CPU %% | hub µs/msg | redis CPU %% (all nodes) | redis µs/msg |\n|---|---|---|---|---|---|---|---|---|---|\n'
    jq -rs '
      map(select(.target | startswith("shards-")))
      | group_by(.target | sub("-r[0-9]+$"; ""))
      | map({t: (.[0].target | sub("-r[0-9]+$"; "")), offered: (map(.offered_deliveries_per_s) | add),
             delivered: (map(.delivered_per_s) | add), msgs: (map(.offered_msgs_per_s) | add),
             p99: (map(.latency.p99_ms // 0) | max), lost: (map(.lost // 0) | add),
             hub: (map(.hub_cpu_pct) | max), redis: (map(.redis_cpu_pct) | max)})
      | sort_by([(.t | split("-")[1]), .offered])[]
      | "| \(.t | split("-")[1]) | \(.offered | floor) | \(.delivered | floor) | \(.msgs | floor) | \(.p99 * 100 | round / 100) | \(.lost) | \(.hub | round) | \(if .msgs > 0 then (.hub * 10000 / .msgs * 10 | round / 10) else 0 end) | \(.redis | round) | \(if .msgs > 0 then (.redis * 10000 / .msgs * 10 | round / 10) else 0 end) |"' \
      "$results"
  } >>"$out/report.md"
fi

if [[ " $BENCH_PARTS " == *" hubs "* ]]; then
  for mode in $BENCH_HUB_MODES; do
    for n in $BENCH_HUB_COUNTS; do
      say "hubs: $mode, $n hubs, one room of $BENCH_HUB_SUBSCRIBERS subscribers, $BENCH_HUB_RATE deliveries/s"
      start_hubs "$mode" "$n" "h-$mode-$n"
      load "hubs-$mode-$n" "${rooms[0]}" "$BENCH_HUB_SUBSCRIBERS" "$BENCH_HUB_RATE" "$mode"
      stop_hubs
    done
  done
  {
    printf '\n## hubs: one room, %s subscribers over H hubs, %s deliveries/s\n\n' "$BENCH_HUB_SUBSCRIBERS" "$BENCH_HUB_RATE"
    printf '| redis | hubs | msgs/s | delivered del/s | p99 ms | lost | hub CPU %% (all) | hub µs/msg | hub µs/del | redis CPU %% | redis µs/msg |\n|---|---|---|---|---|---|---|---|---|---|---|\n'
    jq -rs '
      map(select(.target | startswith("hubs-")))[]
      | "| \(.target | split("-")[1]) | \(.hubs) | \(.offered_msgs_per_s | floor) | \(.delivered_per_s | floor) | \((.latency.p99_ms // 0) * 100 | round / 100) | \(.lost // 0) | \(.hub_cpu_pct | round) | \(.hub_cpu_us_per_msg * 10 | round / 10) | \(.hub_cpu_us_per_delivery * 100 | round / 100) | \(.redis_cpu_pct | round) | \(.redis_cpu_us_per_msg * 10 | round / 10) |"' \
      "$results"
  } >>"$out/report.md"
fi

cat "$out/report.md"
say "results: $out"
