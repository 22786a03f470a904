#!/usr/bin/env bash
# `make bench`: fan-out throughput, latency and memory of realtime-hub (Redis + two hubs) side by side
# with Socket.IO 4 + @socket.io/redis-adapter (the same Redis + two instances), driven by one load tool
# (hub-bench) in one run, on loopback only. Prints a Markdown table and writes JSON lines + the report
# to bench/results/<timestamp>/ (git-ignored). See BENCHMARKS.md for the workload and the figures.
#
# Knobs (environment):
#   BENCH_PIN=auto|1|0        1: Redis and the servers on CPU 0, hub-bench on CPU 1 (taskset);
#                             auto (default): pin when the machine has 2+ CPUs
#   BENCH_TARGETS="ours socketio"
#   BENCH_SUBSCRIBERS=1000    BENCH_RATES="25000 50000 …"   offered deliveries/s (= msgs/s × subscribers)
#   BENCH_BIG_SUBSCRIBERS=5000 BENCH_BIG_RATES="250000"     the many-subscribers point(s)
#   BENCH_PUBLISHERS=4  BENCH_DURATION=8s  BENCH_DRAIN=2s  BENCH_IDLE_CONNECTIONS=10000
#   BENCH_BUDGET=540          seconds after which no new point starts (the whole run stays ≤ ~10 min)
# Each target's sweep stops after two saturated points in a row (loss, drops, < 95% delivered):
# past saturation the figures say nothing more.
set -euo pipefail
cd "$(dirname "$0")/.."
root=$PWD

BENCH_PIN=${BENCH_PIN:-auto}
BENCH_TARGETS=${BENCH_TARGETS-"ours socketio"}
BENCH_SUBSCRIBERS=${BENCH_SUBSCRIBERS:-1000}
BENCH_RATES=${BENCH_RATES-"5000 10000 25000 50000 100000 200000 400000 800000"}
BENCH_BIG_SUBSCRIBERS=${BENCH_BIG_SUBSCRIBERS:-5000}
BENCH_BIG_RATES=${BENCH_BIG_RATES-"250000"}
BENCH_PUBLISHERS=${BENCH_PUBLISHERS:-4}
BENCH_DURATION=${BENCH_DURATION:-8s}
BENCH_DRAIN=${BENCH_DRAIN:-2s}
BENCH_IDLE_CONNECTIONS=${BENCH_IDLE_CONNECTIONS:-10000}
BENCH_BUDGET=${BENCH_BUDGET:-540}

say() { printf '\n== %s\n' "$*" >&2; }

# --- prerequisites ---------------------------------------------------------------------------------
scripts/ensure-deps.sh redis-server node npm
command -v taskset >/dev/null || BENCH_PIN=0
say "release build (hub-server, hub-bench)"
cargo build --release -p hub-server -p hub-bench
hub_bin=$root/target/release/hub-server
bench_bin=$root/target/release/hub-bench

peer_dir=$root/bench/peers/socketio
if [[ " $BENCH_TARGETS " == *" socketio "* ]]; then
  # npm ci only when the lock file changed since the last install.
  if [ ! -f "$peer_dir/node_modules/.package-lock.json" ] ||
    [ "$peer_dir/package-lock.json" -nt "$peer_dir/node_modules/.package-lock.json" ]; then
    say "npm ci (Socket.IO peer)"
    (cd "$peer_dir" && npm ci --no-audit --no-fund --loglevel=error)
  fi
fi

# Every connection is a file descriptor in the tool and in a server: take the hard limit.
ulimit -n "$(ulimit -Hn)" 2>/dev/null || true
fd_limit=$(ulimit -n)
if [ "$fd_limit" != unlimited ] && [ "$fd_limit" -lt $((BENCH_IDLE_CONNECTIONS + 1000)) ]; then
  echo "warning: open-files limit $fd_limit < $BENCH_IDLE_CONNECTIONS connections + margin; idle run reduced" >&2
  BENCH_IDLE_CONNECTIONS=$((fd_limit - 1000))
fi

cpus=$(nproc)
if [ "$BENCH_PIN" = auto ]; then BENCH_PIN=$([ "$cpus" -ge 2 ] && echo 1 || echo 0); fi
if [ "$BENCH_PIN" = 1 ]; then
  server_cpu=(taskset -c 0)
  tool_cpu=(taskset -c 1)
else
  server_cpu=()
  tool_cpu=()
fi

stamp=$(date -u +%Y%m%dT%H%M%SZ)
out=$root/bench/results/$stamp
mkdir -p "$out"
results=$out/results.jsonl
start_time=$SECONDS

# --- processes -------------------------------------------------------------------------------------
declare -a started=()
cleanup() {
  for pid in "${started[@]}"; do kill "$pid" 2>/dev/null || true; done
  for pid in "${started[@]}"; do wait "$pid" 2>/dev/null || true; done
}
trap cleanup EXIT
trap 'exit 130' INT TERM

port_free() { ! (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }
next_port=$((20000 + RANDOM % 20000))
# Sets the named variable to a free port; not `$(…)`: a subshell would forget next_port.
alloc_port() { # var
  while ! port_free "$next_port"; do next_port=$((next_port + 1)); done
  printf -v "$1" '%s' "$next_port"
  next_port=$((next_port + 1))
}
wait_port() { # port name
  for _ in $(seq 1 100); do
    port_free "$1" || return 0
    sleep 0.1
  done
  echo "$2 did not listen on 127.0.0.1:$1; its log: $out/$2.log" >&2
  tail -20 "$out/$2.log" >&2
  exit 1
}

alloc_port redis_port
"${server_cpu[@]}" redis-server --port "$redis_port" --bind 127.0.0.1 --save '' --appendonly no \
  >"$out/redis.log" 2>&1 &
redis_pid=$!
started+=("$redis_pid")
wait_port "$redis_port" redis

# Per target: pids and WebSocket URLs of its two instances, started on demand.
declare -A pids urls
start_target() { # target
  local t=$1 p1 p2
  alloc_port p1
  alloc_port p2
  case $t in
  ours)
    for i in 1 2; do
      local port=$p1
      [ "$i" = 2 ] && port=$p2
      # Limits raised for a benchmark: publishers send far above the per-client default rate,
      # and the idle run opens more connections than a laptop test would.
      HUB_LISTEN=127.0.0.1:$port HUB_NAME=hub$i REDIS_URL=redis://127.0.0.1:$redis_port \
        HUB_ALLOWED_ORIGINS='*' HUB_MAX_CONNECTIONS=100000 \
        HUB_RATE_LIMIT_PER_SEC=10000000 HUB_RATE_LIMIT_BURST=10000000 \
        "${server_cpu[@]}" "$hub_bin" >"$out/$t$i.log" 2>&1 &
      started+=($!)
      pids[$t]="${pids[$t]:-}${pids[$t]:+,}$!"
    done
    urls[$t]="ws://127.0.0.1:$p1/ws,ws://127.0.0.1:$p2/ws"
    for port in $p1 $p2; do
      for _ in $(seq 1 100); do
        HUB_LISTEN=127.0.0.1:$port "$hub_bin" healthcheck >/dev/null 2>&1 && break
        sleep 0.1
      done
      HUB_LISTEN=127.0.0.1:$port "$hub_bin" healthcheck >/dev/null 2>&1 ||
        { echo "hub on $port not healthy; logs in $out" >&2; tail -20 "$out"/ours*.log >&2; exit 1; }
    done
    ;;
  socketio)
    for port in $p1 $p2; do
      PORT=$port REDIS_URL=redis://127.0.0.1:$redis_port \
        "${server_cpu[@]}" node "$peer_dir/server.js" >"$out/$t-$port.log" 2>&1 &
      started+=($!)
      pids[$t]="${pids[$t]:-}${pids[$t]:+,}$!"
    done
    urls[$t]="ws://127.0.0.1:$p1/socket.io/?EIO=4&transport=websocket,ws://127.0.0.1:$p2/socket.io/?EIO=4&transport=websocket"
    wait_port "$p1" "$t-$p1"
    wait_port "$p2" "$t-$p2"
    ;;
  *) echo "unknown target $t" >&2; exit 2 ;;
  esac
}
stop_target() { # target
  local t=$1 pid
  IFS=, read -ra list <<<"${pids[$t]:-}"
  for pid in "${list[@]}"; do kill "$pid" 2>/dev/null || true; done
  for pid in "${list[@]}"; do wait "$pid" 2>/dev/null || true; done
  unset "pids[$t]" "urls[$t]"
}
proto_of() { [ "$1" = ours ] && echo hub || echo socketio; }
in_budget() {
  if [ $((SECONDS - start_time)) -ge "$BENCH_BUDGET" ]; then
    echo "time budget (${BENCH_BUDGET}s) spent: skipping $*" >&2
    return 1
  fi
}

# One load point; prints sustainable, late (nothing lost, p99 over the limit) or saturated.
load_point() { # target subscribers rate
  local line
  line=$("${tool_cpu[@]}" "$bench_bin" load --target "$1" --proto "$(proto_of "$1")" --url "${urls[$1]}" \
    --subscribers "$2" --publishers "$BENCH_PUBLISHERS" --rate "$3" --duration "$BENCH_DURATION" \
    --drain "$BENCH_DRAIN" --hub-pid "${pids[$1]}" --redis-pid "$redis_pid" --json "$results") || {
    echo "load point $1 $2 subs $3/s failed" >&2
    echo saturated
    return
  }
  if [[ $line == *'"sustainable":true'* ]]; then
    echo sustainable
  elif [[ $line == *'"saturated":false'* ]]; then
    echo late
  else
    echo saturated
  fi
}

# --- the run ---------------------------------------------------------------------------------------
{
  printf '{"kind":"machine","nproc":%s,"cpu":"%s","kernel":"%s","pinned":%s,"date":"%s",' \
    "$cpus" "$(lscpu | sed -n 's/^Model name: *//p' | head -1)" "$(uname -r)" "$BENCH_PIN" "$stamp"
  printf '"node":"%s","redis":"%s","duration":"%s","publishers":%s}\n' \
    "$(node --version)" "$(redis-server --version | sed 's/.*v=\([^ ]*\).*/\1/')" "$BENCH_DURATION" "$BENCH_PUBLISHERS"
} >>"$results"

say "idle: $BENCH_IDLE_CONNECTIONS connections per target, fresh processes"
for t in $BENCH_TARGETS; do
  start_target "$t"
  "${tool_cpu[@]}" "$bench_bin" idle --target "$t" --proto "$(proto_of "$t")" --url "${urls[$t]}" \
    --connections "$BENCH_IDLE_CONNECTIONS" --hub-pid "${pids[$t]}" --json "$results" >/dev/null ||
    echo "idle run on $t failed" >&2
  stop_target "$t"
done

say "sweep: $BENCH_SUBSCRIBERS subscribers, $BENCH_PUBLISHERS publishers, offered deliveries/s: $BENCH_RATES"
for t in $BENCH_TARGETS; do start_target "$t"; done
# A target stops after two saturated points in a row (lost or dropped deliveries, or < 95% delivered
# in the window: one can be noise on a shared machine). After any unsustainable point its processes
# are restarted, so a backlog cannot steal CPU from the other target's next point or carry over.
declare -A saturated_in_a_row=()
for rate in $BENCH_RATES; do
  for t in $BENCH_TARGETS; do
    [ "${saturated_in_a_row[$t]:-0}" -ge 2 ] && continue
    in_budget "$t at $rate/s" || continue
    verdict=$(load_point "$t" "$BENCH_SUBSCRIBERS" "$rate")
    case $verdict in
    sustainable) saturated_in_a_row[$t]=0 ;;
    late) saturated_in_a_row[$t]=0 ;;
    *) saturated_in_a_row[$t]=$((${saturated_in_a_row[$t]:-0} + 1)) ;;
    esac
    if [ "$verdict" != sustainable ]; then
      stop_target "$t"
      if [ "${saturated_in_a_row[$t]}" -lt 2 ]; then start_target "$t"; fi
    fi
    sleep 1
  done
done
for t in $BENCH_TARGETS; do stop_target "$t"; done

say "many subscribers: $BENCH_BIG_SUBSCRIBERS subscribers at $BENCH_BIG_RATES deliveries/s"
for rate in $BENCH_BIG_RATES; do
  for t in $BENCH_TARGETS; do
    in_budget "$t with $BENCH_BIG_SUBSCRIBERS subscribers" || continue
    # Fresh processes: nothing left over from the sweep.
    start_target "$t"
    load_point "$t" "$BENCH_BIG_SUBSCRIBERS" "$rate" >/dev/null
    stop_target "$t"
  done
done

say "report ($((SECONDS - start_time)) s)"
"$bench_bin" report "$results" | tee "$out/report.md"
echo
echo "results: $results"
echo "report:  $out/report.md"
