#!/usr/bin/env bash
# `make bench-rooms`: 100k rooms on one hub (issue 14, item 3) — what a join and a leave cost as the
# rooms held grow, and how long the hub takes to be subscribed again after Redis restarts empty.
# One private redis-server and one release hub-server on free loopback ports, per variant (history on,
# the default; history off, HUB_HISTORY_SIZE=0). `hub-bench rooms` connects ceil(N / 99) clients
# (the hub's default max_rooms_per_client is 100, `general` included: every setting stays at its
# default) and joins N distinct rooms in timed blocks up to 1k, 10k, 50k, N held, then holds them.
# Meanwhile this script restarts Redis (SIGTERM, then a new empty redis-server on the same port) and,
# from the moment the new one answers PING, samples INFO's pubsub_channels every ~20 ms and PUBLISHes
# a probe envelope (a made-up origin, as another hub would) to the first and the last room joined
# until the client in each room has received it; the tool logs each arrival with its time. Then the
# rooms are left in timed blocks. Target: resubscribed within 10 s, costs growing no worse than linearly.
# Results and logs go to bench/results/rooms-<timestamp>/ (git-ignored).
#
# Knobs (environment):
#   ROOMS_COUNT=100000            rooms joined (and channels resubscribed)
#   ROOMS_VARIANTS="history nohistory"   history: HUB_HISTORY_SIZE default (100); nohistory: 0
#   ROOMS_PER_CLIENT=99           rooms per client (the hub's max_rooms_per_client less `general`)
#   ROOMS_RESUB_LIMIT=60          seconds after Redis is back before the resubscribe counts as failed
#   ROOMS_PRESENCE_LIMIT=60       seconds after Redis is back to wait for the hub's presence resync
#                                 (DBSIZE back to 2 keys per room) before the leaves start
#   ROOMS_KEEP_GENERAL=0          1: the clients stay in `general` (every client starts there); by
#                                 default they leave it first, see BENCHMARKS.md for why
#   ROOMS_PERF=0                  1: perf record -g on the hub from the Redis kill until resubscribed
#                                 (perf.data and a report in the results directory)
#   ROOMS_HUB_REV=<git rev>       benchmark hub-server as committed at that revision (built from
#                                 `git archive` under target/, as bench/run.sh does), not the working
#                                 tree, which others may be editing
# Bounded: joins and leaves 300 s per block, the hold 600 s, every other wait its own deadline.
set -euo pipefail
cd "$(dirname "$0")/.."
root=$PWD

ROOMS_COUNT=${ROOMS_COUNT:-100000}
ROOMS_VARIANTS=${ROOMS_VARIANTS-"history nohistory"}
ROOMS_PER_CLIENT=${ROOMS_PER_CLIENT:-99}
ROOMS_RESUB_LIMIT=${ROOMS_RESUB_LIMIT:-60}
ROOMS_PERF=${ROOMS_PERF:-0}
ROOMS_KEEP_GENERAL=${ROOMS_KEEP_GENERAL:-0}
ROOMS_PRESENCE_LIMIT=${ROOMS_PRESENCE_LIMIT:-60}
prefix=rb-
first_room=${prefix}0
last_room=${prefix}$((ROOMS_COUNT - 1))

say() { printf '\n== %s\n' "$*" >&2; }
die() { printf 'bench/rooms.sh: %s\n' "$*" >&2; exit 1; }
# shellcheck source=bench/lib.sh
source bench/lib.sh

scripts/ensure-deps.sh redis-server
command -v jq >/dev/null || die "jq is needed (apt-get install jq)"
[ "$ROOMS_PERF" = 0 ] || command -v perf >/dev/null || die "ROOMS_PERF=1 needs perf"
hub_bin=$root/target/release/hub-server
bench_bin=$root/target/release/hub-bench
if [ -n "${ROOMS_HUB_REV:-}" ]; then
  say "release build (hub-bench)"
  cargo build --release -p hub-bench
  build_hub_at_rev "$ROOMS_HUB_REV"
else
  say "release build (hub-server, hub-bench)"
  cargo build --release -p hub-server -p hub-bench
  hub_version="$(git rev-parse --short=12 HEAD)"
  if [ -n "$(git status --porcelain -- hub-server/src hub-server/Cargo.toml Cargo.toml Cargo.lock)" ]; then
    hub_version="$hub_version + uncommitted changes"
  fi
fi

clients=$(((ROOMS_COUNT + ROOMS_PER_CLIENT - 1) / ROOMS_PER_CLIENT))
# The hub and the tool each hold one descriptor per client, plus their own few.
need=$((clients + 200))
fd_limit=$(ulimit -n)
if [ "$fd_limit" != unlimited ] && [ "$fd_limit" -lt "$need" ]; then
  ulimit -n "$need" 2>/dev/null ||
    die "$clients clients need $need open files and this shell may open $fd_limit (ulimit -Hn: $(ulimit -Hn))"
fi

stamp=$(date -u +%Y%m%dT%H%M%SZ)
out=$root/bench/results/rooms-$stamp
mkdir -p "$out"

# --- processes: every one we start is stopped on the way out, whatever happens --------------------
cleanup() { stop_started; }
trap cleanup EXIT
trap 'exit 130' INT TERM


now_us() { echo "${EPOCHREALTIME/./}"; }
rcli() { redis-cli -h 127.0.0.1 -p "$redis_port" "$@"; }
start_redis() { # log
  redis-server --port "$redis_port" --bind 127.0.0.1 --save '' --appendonly no >>"$1" 2>&1 &
  redis_pid=$!
  started+=("$redis_pid")
  echo "$redis_pid" >"$redis_pid_file"
}
wait_redis() {
  local deadline=$((SECONDS + 10))
  until rcli PING >/dev/null 2>&1; do
    [ $SECONDS -lt $deadline ] || die "redis-server did not answer on port $redis_port"
    sleep 0.01
  done
}
pubsub_channels() { rcli INFO stats | tr -d '\r' | sed -n 's/^pubsub_channels://p'; }
rss_kib() { awk '/^VmRSS:/ { print $2 }' "/proc/$1/status"; }
# A room message as another hub would publish it: a fresh origin per probe, so sequence checks
# never take one for a duplicate.
probe() { # room → number of subscribers that got it
  local room=$1 origin id
  origin=$(cat /proc/sys/kernel/random/uuid)
  id=$(cat /proc/sys/kernel/random/uuid)
  rcli PUBLISH "rthub:room:$room" \
    "{\"v\":1,\"origin\":\"$origin\",\"seq\":1,\"n\":1,\"local\":false,\"id\":\"$id\",\"frame\":{\"type\":\"message\",\"id\":\"$id\",\"room\":\"$room\",\"from\":\"probe\",\"user\":{\"id\":\"probe\"},\"content\":\"probe\",\"timestamp\":\"2026-01-01T00:00:00.000Z\",\"hub\":\"probe\"}}"
}
# First arrival (unix µs) of a probe in `room` logged after `since` (unix µs), or nothing.
arrival() { # room since
  awk -v room="$1" -v since="$2" '$2 == room && $1 >= since { print $1; exit }' "$probe_log"
}
secs() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.2f", (b - a) / 1e6 }'; }

machine="$(nproc) CPUs ($(lscpu | sed -n 's/^Model name: *//p' | head -1)), $(free -g | awk '/^Mem:/ { print $2 }') GiB RAM, kernel $(uname -r)"
say "machine: $machine; redis $(redis-server --version | sed 's/.*v=\([^ ]*\).*/\1/'); hub $hub_version"
echo "$ROOMS_COUNT rooms over $clients clients ($ROOMS_PER_CLIENT each at most); variants: $ROOMS_VARIANTS" >&2

declare -a resub_rows=()
run_variant() { # name history_size
  local name=$1 history=$2 dir=$out/$1
  mkdir -p "$dir"
  redis_pid_file=$dir/redis.pid
  probe_log=$dir/probes.log
  : >"$probe_log"
  redis_port=$(free_port)
  start_redis "$dir/redis.log"
  wait_redis
  local hub_port
  hub_port=$(free_port)
  env HUB_LISTEN="127.0.0.1:$hub_port" HUB_NAME="rooms-$name" REDIS_URL="redis://127.0.0.1:$redis_port" \
    HUB_ALLOWED_ORIGINS='*' HUB_HISTORY_SIZE="$history" RUST_LOG=info \
    "$hub_bin" >"$dir/hub.log" 2>&1 &
  local hub_pid=$!
  started+=("$hub_pid")
  local deadline=$((SECONDS + 20))
  until HUB_LISTEN=127.0.0.1:$hub_port "$hub_bin" healthcheck >/dev/null 2>&1; do
    [ $SECONDS -lt $deadline ] || { tail -20 "$dir/hub.log" >&2; die "hub-server did not become healthy"; }
    sleep 0.1
  done

  say "$name (HUB_HISTORY_SIZE=$history): joins; load: $(uptime | sed 's/.*load average: //')"
  local load_before
  load_before=$(uptime | sed 's/.*load average: //')
  "$bench_bin" rooms --target "$name" --url "ws://127.0.0.1:$hub_port/ws" --rooms "$ROOMS_COUNT" \
    --per-client "$ROOMS_PER_CLIENT" --prefix "$prefix" --hold-until "$dir/go" --hold-max 600s \
    --keep-general "$([ "$ROOMS_KEEP_GENERAL" = 0 ] && echo false || echo true)" \
    --ready "$dir/ready" --probe-log "$probe_log" --hub-pid "$hub_pid" \
    --redis-pid-file "$redis_pid_file" --json "$out/rooms.jsonl" >/dev/null 2>"$dir/bench.log" &
  local tool_pid=$!
  started+=("$tool_pid")
  wait_for_output "$tool_pid" "$dir/ready" 1500 "hub-bench rooms ($name) joining its rooms" "$dir/bench.log"
  cat "$dir/bench.log" >&2
  local want rss_held
  want=$(pubsub_channels)
  rss_held=$(rss_kib "$hub_pid")
  [ "$want" -ge "$ROOMS_COUNT" ] || die "hub subscribed to $want channels with $ROOMS_COUNT rooms joined"
  echo "Redis has $want channels subscribed (the rooms, broadcast, control, general if kept); hub RSS $rss_held KiB" >&2

  # The probe path works before the restart (else a missing arrival below would mean nothing).
  local t0 room
  t0=$(now_us)
  for room in "$first_room" "$last_room"; do probe "$room" >/dev/null; done
  deadline=$((SECONDS + 10))
  until [ -n "$(arrival "$first_room" "$t0")" ] && [ -n "$(arrival "$last_room" "$t0")" ]; do
    [ $SECONDS -lt $deadline ] || die "probes published before the restart never reached the clients"
    sleep 0.05
  done

  say "$name: Redis restart (SIGTERM, new empty redis-server on port $redis_port)"
  local perf_pid=""
  if [ "$ROOMS_PERF" != 0 ]; then
    perf record -g -F 999 -p "$hub_pid" -o "$dir/perf.data" >"$dir/perf.log" 2>&1 &
    perf_pid=$!
    started+=("$perf_pid")
    sleep 1
  fi
  local t_kill t_up
  t_kill=$(now_us)
  kill "$redis_pid"
  wait "$redis_pid" 2>/dev/null || true
  start_redis "$dir/redis.log"
  wait_redis
  t_up=$(now_us)
  local t_all="" t_first="" t_last="" t_sub_first="" t_sub_last="" channels=0 n now
  deadline=$((SECONDS + ROOMS_RESUB_LIMIT))
  while [ $SECONDS -lt $deadline ]; do
    now=$(now_us)
    channels=$(pubsub_channels)
    [ -z "$t_all" ] && [ "${channels:-0}" -ge "$want" ] && t_all=$now
    if [ -z "$t_first" ]; then
      t_first=$(arrival "$first_room" "$t_up")
      if [ -z "$t_first" ]; then
        n=$(probe "$first_room")
        [ -z "$t_sub_first" ] && [ "$n" -ge 1 ] && t_sub_first=$now
      fi
    fi
    if [ -z "$t_last" ]; then
      t_last=$(arrival "$last_room" "$t_up")
      if [ -z "$t_last" ]; then
        n=$(probe "$last_room")
        [ -z "$t_sub_last" ] && [ "$n" -ge 1 ] && t_sub_last=$now
      fi
    fi
    [ -n "$t_all" ] && [ -n "$t_first" ] && [ -n "$t_last" ] && break
    sleep 0.02
  done
  if [ -n "$perf_pid" ]; then
    kill -INT "$perf_pid" 2>/dev/null || true
    wait "$perf_pid" 2>/dev/null || true
    perf report -i "$dir/perf.data" --no-children --percent-limit 1 --stdio >"$dir/perf.txt" 2>/dev/null || true
    echo "perf profile of the resubscribe: $dir/perf.txt" >&2
  fi
  local rss_after
  rss_after=$(rss_kib "$hub_pid")
  local s_all=FAILED s_first=FAILED s_last=FAILED
  [ -n "$t_all" ] && s_all=$(secs "$t_up" "$t_all")
  [ -n "$t_first" ] && s_first=$(secs "$t_up" "$t_first")
  [ -n "$t_last" ] && s_last=$(secs "$t_up" "$t_last")
  local verdict=ok
  if [ -z "$t_all" ] || [ -z "$t_first" ] || [ -z "$t_last" ] ||
    [ "$(awk -v s="$s_all" 'BEGIN { print (s > 10) }')" = 1 ]; then
    verdict="OVER 10 s"
  fi
  echo "Redis down $(secs "$t_kill" "$t_up") s; from Redis answering: all $want channels subscribed after $s_all s" \
    "(Redis saw $channels), probe in $first_room received after $s_first s (subscribed by $(
      [ -n "$t_sub_first" ] && secs "$t_up" "$t_sub_first" || echo '?') s), in $last_room after $s_last s" \
    "(subscribed by $([ -n "$t_sub_last" ] && secs "$t_up" "$t_sub_last" || echo '?') s); hub RSS $rss_held → $rss_after KiB; $verdict" >&2
  # The hub also writes its presence again after Redis came back (every room's entries and totals:
  # two keys per room); the leaves wait for it, or for ROOMS_PRESENCE_LIMIT, so they are timed on a
  # hub that is done with the restart.
  local t_presence="" keys=0 rss_peak=$rss_after rss
  deadline=$((SECONDS + ROOMS_PRESENCE_LIMIT))
  while [ $SECONDS -lt $deadline ]; do
    keys=$(rcli DBSIZE)
    rss=$(rss_kib "$hub_pid")
    [ "$rss" -gt "$rss_peak" ] && rss_peak=$rss
    if [ "${keys:-0}" -ge $((2 * ROOMS_COUNT)) ]; then
      t_presence=$(now_us)
      break
    fi
    sleep 0.25
  done
  local s_presence="not in $ROOMS_PRESENCE_LIMIT s"
  [ -n "$t_presence" ] && s_presence="$(secs "$t_up" "$t_presence") s"
  local failed_writes
  failed_writes=$(grep -c 'presence: redis write failed' "$dir/hub.log" || true)
  echo "presence rebuilt in Redis after $s_presence ($keys keys; $failed_writes failed presence writes in the hub log);" \
    "hub RSS peak $rss_peak KiB" >&2
  local load_after
  load_after=$(uptime | sed 's/.*load average: //')
  resub_rows+=("$name|$history|$want|$(secs "$t_kill" "$t_up")|$s_all|$s_first|$s_last|$s_presence|$rss_held → $rss_peak|$load_before|$load_after|$verdict")
  jq -nc --arg target "$name" --argjson channels "$want" --arg all "$s_all" --arg first "$s_first" \
    --arg last "$s_last" --arg presence "$s_presence" --argjson rss_held "$rss_held" --argjson rss_peak "$rss_peak" --arg down "$(secs "$t_kill" "$t_up")" --arg load "$load_after" '
    {kind: "rooms-resubscribe", target: $target, channels: $channels, redis_down_s: ($down | tonumber),
     all_subscribed_s: ($all | tonumber? // null), first_room_message_s: ($first | tonumber? // null),
     last_room_message_s: ($last | tonumber? // null), presence_rebuilt: $presence,
     hub_rss_held_kib: $rss_held, hub_rss_peak_after_restart_kib: $rss_peak, load_average: $load}' >>"$out/rooms.jsonl"

  say "$name: leaves"
  : >"$dir/go"
  deadline=$((SECONDS + 1500))
  while kill -0 "$tool_pid" 2>/dev/null; do
    [ $SECONDS -lt $deadline ] || die "hub-bench rooms ($name): leaves not done in 1500 s"
    sleep 0.5
  done
  wait "$tool_pid" || { tail -5 "$dir/bench.log" >&2; die "hub-bench rooms ($name) failed"; }
  grep ' leave ' "$dir/bench.log" >&2 || true
  tail -1 "$dir/bench.log" >&2
  local warnings
  warnings=$(grep -c 'subscription not confirmed in time' "$dir/hub.log" || true)
  [ "$warnings" = 0 ] || echo "hub log: $warnings joins answered before their subscription was confirmed" >&2
  warnings=$(grep -c 'bridge buffer full' "$dir/hub.log" || true)
  [ "$warnings" = 0 ] || echo "hub log: $warnings times the bridge buffer was full (presence_diff publishes dropped)" >&2
  cleanup
}

for variant in $ROOMS_VARIANTS; do
  case $variant in
    history) run_variant history 100 ;;
    nohistory) run_variant nohistory 0 ;;
    *) die "unknown variant $variant (history, nohistory)" ;;
  esac
done

say "report"
{
  echo "machine: $machine; hub $hub_version; $ROOMS_COUNT rooms over $clients clients"
  echo
  echo "| variant | op | rooms held | ops | µs per op (wall) | latency p50 / p99 / max µs | CPU µs per op: hub / Redis / tool | other processes' CPU | hub RSS | errors |"
  echo "|---|---|---|---:|---:|---:|---:|---:|---:|---:|"
  jq -r 'select(.kind == "rooms") |
    "| \(.target) | \(.op) | \(.rooms_before) → \(.rooms_after) | \(.ops) | \(.us_per_op * 10 | round / 10) | \(.latency_p50_us) / \(.latency_p99_us) / \(.latency_max_us) | \(.hub_cpu_us_per_op | round) / \(.redis_cpu_us_per_op | round) / \(.tool_cpu_us_per_op | round) | \(.other_cpu_pct | round) % | \(.hub_rss_kib / 1024 | round) MiB | \(.errors) |"' \
    "$out/rooms.jsonl"
  echo
  jq -r 'select(.kind == "rooms-summary") |
    "\(.target): hub RSS \(.rss_connected_kib / 1024 | round) MiB with \(.clients) clients, \(.rss_held_kib / 1024 | round) MiB with \(.rooms) rooms = \(.rss_per_room_bytes | round) bytes per room; \(.rss_left_kib / 1024 | round) MiB after leaving"' \
    "$out/rooms.jsonl"
  echo
  echo "| variant | channels | Redis down | all subscribed | message in first room | message in last room | presence rebuilt | hub RSS held → peak after, KiB | load average before / after | check |"
  echo "|---|---:|---:|---:|---:|---:|---:|---:|---|---|"
  for row in "${resub_rows[@]}"; do
    IFS='|' read -r name _ want down all first last presence rss lb la verdict <<<"$row"
    echo "| $name | $want | $down s | $all s | $first s | $last s | $presence | $rss | $lb / $la | $verdict |"
  done
  echo
  echo "resubscribe times from the moment the new Redis answered PING; target: within 10 s"
} | tee "$out/report.md"
echo
echo "logs and report: $out"
