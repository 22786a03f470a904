#!/usr/bin/env bash
# `make bench`: fan-out throughput, latency and memory of realtime-hub (Redis + two hubs), with per-room
# history on (the default) and off, side by side with Socket.IO 4 + @socket.io/redis-adapter (the same
# Redis + two instances), driven by one load tool (hub-bench) in one run, on loopback only. Prints a Markdown table and writes JSON lines + the report
# to bench/results/<timestamp>/ (git-ignored). See BENCHMARKS.md for the workload and the figures.
#
# Knobs (environment):
#   BENCH_PIN=auto|1|0        1: Redis and the servers on CPU 0, hub-bench on CPU 1 (taskset);
#                             auto (default): pin when the machine has 2+ CPUs
#   BENCH_REDIS_CPU=1         (pinned only) Redis on CPU 1 beside the tool instead of on the servers'
#                             CPU: the hubs without Redis's work on their core (on 2 CPUs, Redis and
#                             the tool then share one)
#   BENCH_TARGETS="ours ours-nohist socketio"   ours: the hub as shipped, history on (history_size
#                             100); ours-nohist: HUB_HISTORY_SIZE=0 (pure pub/sub); socketio: the peer;
#                             ours-scraped: ours with its API listener on and GET /metrics on both hubs
#                             every second (from the tool's CPU), to set beside ours: the cost of scraping;
#                             ours-deflate: ours with the tool offering permessage-deflate (`--deflate`),
#                             so every frame of 256 bytes or more arrives compressed: set beside ours
#                             (which the tool leaves uncompressed), compression on and off
#   BENCH_SUBSCRIBERS=1000    BENCH_RATES="25000 50000 …"   offered deliveries/s (= msgs/s × subscribers)
#   BENCH_SMALL_SUBSCRIBERS=10 BENCH_SMALL_RATES="…"       the small room: many messages, each a Redis step
#   BENCH_SMALL_TARGETS="ours ours-nohist ours-deflate"
#   BENCH_DASH_RATES=25000    points with a ~2 KiB dashboard-style JSON frame instead of the chat
#                             frame, for ours-dash and ours-dash-deflate (compression off and on), at
#                             BENCH_SUBSCRIBERS: bytes and CPU per delivery of a frame that compresses
#   BENCH_REFINE=3  BENCH_REFINE_TARGETS="ours ours-nohist ours-deflate"  bisection steps between a target's highest
#                             sustainable rate and the next rate that was not (5–9 % apart after 3 steps)
#   BENCH_BIG_SUBSCRIBERS=5000 BENCH_BIG_RATES="250000"     the many-subscribers point(s)
#   BENCH_RETRIES=2           runs of a point again when it failed while other processes took the CPU
#   BENCH_PUBLISHERS=4  BENCH_DURATION=8s  BENCH_DRAIN=2s  BENCH_IDLE_CONNECTIONS=10000 (0: no idle run)
#   BENCH_HUB_REV=<git rev>   benchmark hub-server as committed at that revision (built from `git archive`
#                             under target/), not the working tree, which others may be editing
#   BENCH_HUB_BIN=<path>      benchmark this hub-server binary (labelled with its path)
#   BENCH_BUDGET=780          seconds after which no new point starts (the whole run stays ≤ ~14 min)
# Each target's sweep stops after two saturated points in a row (loss, drops, < 95% delivered):
# past saturation the figures say nothing more.
set -euo pipefail
cd "$(dirname "$0")/.."
root=$PWD

BENCH_PIN=${BENCH_PIN:-auto}
BENCH_TARGETS=${BENCH_TARGETS-"ours ours-nohist socketio ours-deflate"}
BENCH_SUBSCRIBERS=${BENCH_SUBSCRIBERS:-1000}
BENCH_RATES=${BENCH_RATES-"5000 10000 25000 50000 100000 200000 400000 800000"}
BENCH_SMALL_SUBSCRIBERS=${BENCH_SMALL_SUBSCRIBERS:-10}
BENCH_SMALL_RATES=${BENCH_SMALL_RATES-"100000 200000 400000 600000 800000 1000000 1200000"}
BENCH_SMALL_TARGETS=${BENCH_SMALL_TARGETS-"ours ours-nohist ours-deflate"}
BENCH_REFINE=${BENCH_REFINE:-3}
BENCH_RETRIES=${BENCH_RETRIES:-2}
BENCH_REFINE_TARGETS=${BENCH_REFINE_TARGETS-"ours ours-nohist ours-deflate"}
BENCH_DASH_RATES=${BENCH_DASH_RATES-"25000"}
BENCH_BIG_SUBSCRIBERS=${BENCH_BIG_SUBSCRIBERS:-5000}
BENCH_BIG_RATES=${BENCH_BIG_RATES-"250000"}
BENCH_PUBLISHERS=${BENCH_PUBLISHERS:-4}
BENCH_DURATION=${BENCH_DURATION:-8s}
BENCH_DRAIN=${BENCH_DRAIN:-2s}
BENCH_IDLE_CONNECTIONS=${BENCH_IDLE_CONNECTIONS:-10000}
BENCH_BUDGET=${BENCH_BUDGET:-780}

say() { printf '\n== %s\n' "$*" >&2; }
# shellcheck source=bench/lib.sh
source bench/lib.sh

# --- prerequisites ---------------------------------------------------------------------------------
scripts/ensure-deps.sh redis-server node npm
command -v taskset >/dev/null || BENCH_PIN=0
build_release "${BENCH_HUB_BIN:-}${BENCH_HUB_REV:+revision $BENCH_HUB_REV}"
hub_bin=$root/target/release/hub-server
bench_bin=$root/target/release/hub-bench
if [ -n "${BENCH_HUB_BIN:-}" ]; then
  hub_bin=$BENCH_HUB_BIN
  hub_version="binary $BENCH_HUB_BIN"
elif [ -n "${BENCH_HUB_REV:-}" ]; then
  # The hub exactly as committed: its own source tree and target dir (dependencies built once).
  build_hub_at_rev "$BENCH_HUB_REV"
else
  hub_version="$(git rev-parse --short=12 HEAD)"
  if [ -n "$(git status --porcelain -- hub-server/src hub-server/Cargo.toml Cargo.toml Cargo.lock)" ]; then
    hub_version="$hub_version + uncommitted changes"
  fi
fi

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
  redis_cpu=(taskset -c "${BENCH_REDIS_CPU:-0}")
else
  server_cpu=()
  tool_cpu=()
  redis_cpu=()
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
# Listening ports below the kernel's ephemeral range: the tool's thousands of outgoing connections
# take their local ports from that range, and a port one of them holds cannot be bound.
ephemeral_low=$(cut -f1 /proc/sys/net/ipv4/ip_local_port_range 2>/dev/null || echo 32768)
next_port=$((10000 + RANDOM % (ephemeral_low - 12000)))
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
  tail -n 20 "$out/$2.log" >&2
  return 1
}

alloc_port redis_port
"${redis_cpu[@]}" redis-server --port "$redis_port" --bind 127.0.0.1 --save '' --appendonly no \
  >"$out/redis.log" 2>&1 &
redis_pid=$!
started+=("$redis_pid")
wait_port "$redis_port" redis || exit 1

# Per target: pids and WebSocket URLs of its two instances, started on demand.
declare -A pids urls
# Others on this machine bind ports too: one may take a port between our check and the bind. Then
# the target starts again on other ports.
start_target() { # target
  local attempt
  for attempt in 1 2 3; do
    start_target_once "$1" && return 0
    stop_target "$1"
    echo "$1 did not come up (attempt $attempt): trying other ports" >&2
  done
  echo "$1 did not start; logs in $out" >&2
  exit 1
}
# Every process of a target alive (a port taken by someone else fails the bind and ends it).
alive() { # target
  local pid
  IFS=, read -ra list <<<"${pids[$1]:-}"
  for pid in "${list[@]}"; do kill -0 "$pid" 2>/dev/null || return 1; done
}
start_target_once() { # target
  local t=$1 p1 p2
  alloc_port p1
  alloc_port p2
  case $t in
  ours | ours-nohist | ours-scraped | ours-deflate | ours-dash | ours-dash-deflate)
    # ours: the hub as shipped (history on, history_size 100); ours-nohist: HUB_HISTORY_SIZE=0,
    # wave 1's pure pub/sub path. Each under its own key prefix, so they never share a channel.
    local extra=(HUB_REDIS_PREFIX="$t:") api_ports=()
    [ "$t" = ours-nohist ] && extra+=(HUB_HISTORY_SIZE=0)
    for i in 1 2; do
      local port=$p1
      [ "$i" = 2 ] && port=$p2
      local api=()
      if [ "$t" = ours-scraped ]; then
        local api_port
        alloc_port api_port
        api_ports+=("$api_port")
        api=(HUB_API_KEYS=bench-api-key-0123456789 HUB_API_LISTEN=127.0.0.1:$api_port)
      fi
      # Limits raised for a benchmark: publishers send far above the per-client default rate,
      # and the idle run opens more connections than a laptop test would.
      env HUB_LISTEN=127.0.0.1:$port HUB_NAME=hub$i REDIS_URL=redis://127.0.0.1:$redis_port \
        HUB_ALLOWED_ORIGINS='*' HUB_MAX_CONNECTIONS=100000 \
        HUB_RATE_LIMIT_PER_SEC=10000000 HUB_RATE_LIMIT_BURST=10000000 "${extra[@]}" ${api[@]+"${api[@]}"} \
        "${server_cpu[@]}" "$hub_bin" >>"$out/$t$i.log" 2>&1 &
      started+=($!)
      pids[$t]="${pids[$t]:-}${pids[$t]:+,}$!"
    done
    urls[$t]="ws://127.0.0.1:$p1/ws,ws://127.0.0.1:$p2/ws"
    for port in $p1 $p2; do
      for _ in $(seq 1 100); do
        HUB_LISTEN=127.0.0.1:$port "$hub_bin" healthcheck >/dev/null 2>&1 && break
        alive "$t" || break
        sleep 0.1
      done
      HUB_LISTEN=127.0.0.1:$port "$hub_bin" healthcheck >/dev/null 2>&1 ||
        { echo "hub on $port not healthy; logs in $out" >&2; tail -n 5 "$out/$t"?.log >&2; return 1; }
    done
    alive "$t" || { tail -n 5 "$out/$t"?.log >&2; return 1; }
    if [ "$t" = ours-scraped ]; then
      # As Prometheus would: each hub's /metrics once a second; every answer's size is logged.
      "${tool_cpu[@]}" bash -c 'while :; do
          for p; do
            { exec 3<>"/dev/tcp/127.0.0.1/$p" &&
              printf "GET /metrics HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n" >&3 &&
              echo "$(date +%s) $p $(wc -c <&3)"; exec 3>&-; } 2>/dev/null
          done
          sleep 1
        done' scraper "${api_ports[@]}" >>"$out/$t-scrapes.log" 2>&1 &
      started+=($!)
      pids[$t]="${pids[$t]},$!"
    fi
    ;;
  socketio)
    for port in $p1 $p2; do
      PORT=$port REDIS_URL=redis://127.0.0.1:$redis_port \
        "${server_cpu[@]}" node "$peer_dir/server.js" >>"$out/$t-$port.log" 2>&1 &
      started+=($!)
      pids[$t]="${pids[$t]:-}${pids[$t]:+,}$!"
    done
    urls[$t]="ws://127.0.0.1:$p1/socket.io/?EIO=4&transport=websocket,ws://127.0.0.1:$p2/socket.io/?EIO=4&transport=websocket"
    wait_port "$p1" "$t-$p1" && wait_port "$p2" "$t-$p2" && alive "$t" || return 1
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
proto_of() { [ "$1" = socketio ] && echo socketio || echo hub; }
# The tool's flags that make a target (plain words, split on purpose): ours-deflate and
# ours-dash-deflate offer permessage-deflate, ours-dash* send the dashboard frame. The hub of all of
# them is ours, compression on as shipped.
deflate_flag() { [[ $1 == *-deflate ]] && echo --deflate || true; }
payload_flags() { [[ $1 == ours-dash* ]] && echo --payload-style dashboard || true; }
in_budget() {
  if [ $((SECONDS - start_time)) -ge "$BENCH_BUDGET" ]; then
    echo "time budget (${BENCH_BUDGET}s) spent: skipping $*" >&2
    return 1
  fi
}

# One load point; prints its JSON line (nothing when the tool failed).
load_point() { # target subscribers rate
  # shellcheck disable=SC2046
  "${tool_cpu[@]}" "$bench_bin" load --target "$1" --proto "$(proto_of "$1")" --url "${urls[$1]}" \
    $(deflate_flag "$1") $(payload_flags "$1") \
    --subscribers "$2" --publishers "$BENCH_PUBLISHERS" --rate "$3" --duration "$BENCH_DURATION" \
    --drain "$BENCH_DRAIN" --hub-pid "${pids[$1]}" --redis-pid "$redis_pid" \
    --redis-addr "127.0.0.1:$redis_port" --json "$results" || echo "load point $1 $2 subs $3/s failed" >&2
}

# sustainable, late (nothing lost, p99 over the limit) or saturated.
verdict_of() { # json line
  if [[ $1 == *'"sustainable":true'* ]]; then
    echo sustainable
  elif [[ $1 == *'"saturated":false'* ]]; then
    echo late
  else
    echo saturated
  fi
}

# --- the run ---------------------------------------------------------------------------------------
{
  printf '{"kind":"machine","nproc":%s,"cpu":"%s","kernel":"%s","pinned":%s,"redis_cpu":"%s","date":"%s",' \
    "$cpus" "$(lscpu | sed -n 's/^Model name: *//p' | head -1)" "$(uname -r)" "$BENCH_PIN" \
    "$([ "$BENCH_PIN" = 1 ] && echo "${BENCH_REDIS_CPU:-0}" || echo any)" "$stamp"
  printf '"node":"%s","redis":"%s","duration":"%s","publishers":%s,"hub":"%s"}\n' \
    "$(node --version)" "$(redis-server --version | sed 's/.*v=\([^ ]*\).*/\1/')" "$BENCH_DURATION" "$BENCH_PUBLISHERS" \
    "$hub_version"
} >>"$results"

[ "$BENCH_IDLE_CONNECTIONS" -gt 0 ] && say "idle: $BENCH_IDLE_CONNECTIONS connections per target, fresh processes"
for t in $BENCH_TARGETS; do
  [ "$BENCH_IDLE_CONNECTIONS" -gt 0 ] || break
  start_target "$t"
  # shellcheck disable=SC2046
  "${tool_cpu[@]}" "$bench_bin" idle --target "$t" --proto "$(proto_of "$t")" --url "${urls[$t]}" $(deflate_flag "$t") \
    --connections "$BENCH_IDLE_CONNECTIONS" --hub-pid "${pids[$t]}" --json "$results" >/dev/null ||
    echo "idle run on $t failed" >&2
  stop_target "$t"
done

# Every verdict of a series, per target: "rate:verdict …".
declare -A verdicts=()
# One point, its verdict in $verdict; restarts the target's processes after an unsustainable one,
# so a backlog cannot steal CPU from the next point or carry over. A point that failed while other
# processes (or the hypervisor) took CPU is run again, up to BENCH_RETRIES times: the report keeps
# the last run. (Not called as `$(point …)`: a subshell would forget the restarted processes.)
point() { # target subscribers rate
  local line attempt
  for attempt in $(seq 0 "$BENCH_RETRIES"); do
    [ -n "${pids[$1]:-}" ] || start_target "$1"
    line=$(load_point "$1" "$2" "$3")
    verdict=$(verdict_of "$line")
    if [ "$verdict" != sustainable ]; then
      stop_target "$1"
      start_target "$1"
    fi
    sleep 1
    if [ "$verdict" = sustainable ] || [[ $line != *'"disturbed":true'* ]] ||
      [ "$attempt" -ge "$BENCH_RETRIES" ] || ! in_budget "a repeat of $1 at $3/s"; then
      break
    fi
    echo "  … other processes took the CPU during that point: running it again" >&2
    sleep 5
  done
  verdicts[$1]="${verdicts[$1]:-}$3:$verdict "
}

# The next rate to try between a target's highest sustainable rate and the lowest higher rate that
# was not sustainable (geometric middle, 2 significant digits); nothing when there is no such pair
# or they are as close as that rounding allows.
next_probe() { # target
  tr ' ' '\n' <<<"${verdicts[$1]:-}" | awk -F: '
    NF < 2 { next }
    $2 == "sustainable" && $1 > ok { ok = $1 }
    { rate[NR] = $1; verdict[NR] = $2 }
    END {
      if (!ok) exit
      for (i in rate) if (verdict[i] != "sustainable" && rate[i] > ok && (!bad || rate[i] < bad)) bad = rate[i]
      if (!bad) exit
      mid = sqrt(ok * bad); scale = 10 ^ (int(log(mid) / log(10)) - 1)
      mid = int(mid / scale + 0.5) * scale
      if (mid > ok && mid < bad) printf "%d\n", mid
    }'
}

# A series: every rate for every target, interleaved so slow drift of the machine hits them alike;
# then, for the targets being compared, bisection steps (also interleaved) towards the highest
# sustainable rate. A target stops after two saturated points in a row (lost or dropped deliveries,
# or < 95% delivered in the window: one can be noise on a shared machine).
series() { # subscribers "rates" "targets"
  local subs=$1 rates=$2 targets=$3 rate t step probe
  say "$subs subscribers, $BENCH_PUBLISHERS publishers, offered deliveries/s: $rates; targets: $targets"
  verdicts=()
  declare -A saturated_in_a_row=()
  for t in $targets; do start_target "$t"; done
  for rate in $rates; do
    for t in $targets; do
      [ "${saturated_in_a_row[$t]:-0}" -ge 2 ] && continue
      in_budget "$t with $subs subscribers at $rate/s" || continue
      point "$t" "$subs" "$rate"
      case $verdict in
      sustainable | late) saturated_in_a_row[$t]=0 ;;
      *) saturated_in_a_row[$t]=$((${saturated_in_a_row[$t]:-0} + 1)) ;;
      esac
    done
  done
  for step in $(seq 1 "$BENCH_REFINE"); do
    for t in $targets; do
      [[ " $BENCH_REFINE_TARGETS " == *" $t "* ]] || continue
      probe=$(next_probe "$t")
      [ -n "$probe" ] || continue
      in_budget "$t with $subs subscribers at $probe/s (bisection step $step)" || continue
      point "$t" "$subs" "$probe"
    done
  done
  for t in $targets; do stop_target "$t"; done
}

if [ -n "$BENCH_RATES" ]; then
  series "$BENCH_SUBSCRIBERS" "$BENCH_RATES" "$BENCH_TARGETS"
fi
if [ -n "$BENCH_SMALL_RATES" ] && [ -n "$BENCH_SMALL_TARGETS" ]; then
  series "$BENCH_SMALL_SUBSCRIBERS" "$BENCH_SMALL_RATES" "$BENCH_SMALL_TARGETS"
fi

[ -n "$BENCH_DASH_RATES" ] && say "dashboard frames: $BENCH_SUBSCRIBERS subscribers at $BENCH_DASH_RATES deliveries/s"
for rate in $BENCH_DASH_RATES; do
  for t in ours-dash ours-dash-deflate; do
    in_budget "$t with $BENCH_SUBSCRIBERS subscribers" || continue
    start_target "$t"
    point "$t" "$BENCH_SUBSCRIBERS" "$rate"
    stop_target "$t"
  done
done

[ -n "$BENCH_BIG_RATES" ] && say "many subscribers: $BENCH_BIG_SUBSCRIBERS subscribers at $BENCH_BIG_RATES deliveries/s"
for rate in $BENCH_BIG_RATES; do
  for t in $BENCH_TARGETS; do
    in_budget "$t with $BENCH_BIG_SUBSCRIBERS subscribers" || continue
    # Fresh processes: nothing left over from the sweep.
    start_target "$t"
    point "$t" "$BENCH_BIG_SUBSCRIBERS" "$rate"
    stop_target "$t"
  done
done

say "report ($((SECONDS - start_time)) s)"
"$bench_bin" report "$results" | tee "$out/report.md"
echo
echo "results: $results"
echo "report:  $out/report.md"
