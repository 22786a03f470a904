#!/usr/bin/env bash
# `make bench-presence`: what the presence tick costs Redis as one hub grows. One redis-server and one
# release hub-server (heartbeat every 1 s) on loopback; hub-bench opens idle connections to it — each an
# anonymous user in `general`, so a presence member — and holds them. At PRESENCE_SMALL connections,
# then at PRESENCE_CONNECTIONS (the same hub, more connections added), a quiet window of
# PRESENCE_WINDOW seconds is read from Redis's INFO commandstats: while nobody joins or leaves, the
# heartbeat script is the only EVALSHA, so Redis time per tick = Δusec / Δcalls (checked: Δcalls ≈ the
# window's ticks). SLOWLOG gives each heartbeat's own duration (mean, max); /proc gives the hub's and
# Redis's CPU over the window. The target (issue 12): under 50 ms of Redis time per tick at 100k.
# Results and logs go to bench/results/presence-<timestamp>/ (git-ignored).
#
# Knobs (environment):
#   PRESENCE_CONNECTIONS=100000  the large point (held on one hub)
#   PRESENCE_SMALL=1000          the small point, for comparison (flat cost is the point)
#   PRESENCE_WINDOW=30           seconds measured at each point (at least 20)
#   PRESENCE_FD_LIMIT=300000     open-files limit asked for: the hub and the tool hold one descriptor
#                                per connection. The run stops when the limit cannot cover them.
#   PRESENCE_ADDRESSES=auto      loopback addresses the connections are spread over (127.0.0.1…k);
#                                auto: as many as the ephemeral port range needs (~25k connections per
#                                address). More than one runs everything in a private network namespace
#                                (unshare --net, root), where the hub listens on 0.0.0.0 and still
#                                nothing but loopback exists.
# Bounded: every wait has a deadline (connects: 60 s + 2 ms per connection; settling: 120 s).
set -euo pipefail
cd "$(dirname "$0")/.."
root=$PWD

PRESENCE_CONNECTIONS=${PRESENCE_CONNECTIONS:-100000}
PRESENCE_SMALL=${PRESENCE_SMALL:-1000}
PRESENCE_WINDOW=${PRESENCE_WINDOW:-30}
PRESENCE_FD_LIMIT=${PRESENCE_FD_LIMIT:-300000}
PRESENCE_ADDRESSES=${PRESENCE_ADDRESSES:-auto}
heartbeat_s=1
# Descriptors a process needs beside its connections (listeners, Redis, epoll, stdio, logs).
fd_margin=500

say() { printf '\n== %s\n' "$*" >&2; }
die() { printf 'bench/presence-tick.sh: %s\n' "$*" >&2; exit 1; }

[ "$PRESENCE_WINDOW" -ge 20 ] || die "PRESENCE_WINDOW=$PRESENCE_WINDOW: at least 20 s"
[ "$PRESENCE_CONNECTIONS" -gt "$PRESENCE_SMALL" ] ||
  die "PRESENCE_CONNECTIONS ($PRESENCE_CONNECTIONS) must be more than PRESENCE_SMALL ($PRESENCE_SMALL)"

# --- before the network namespace (if any): prerequisites, build, open-files limit ----------------
if [ -z "${PRESENCE_IN_NETNS:-}" ]; then
  scripts/ensure-deps.sh redis-server jq curl
  say "release build (hub-server, hub-bench)"
  cargo build --release -p hub-server -p hub-bench

  if ! ulimit -n "$PRESENCE_FD_LIMIT" 2>/dev/null; then
    ulimit -n "$(ulimit -Hn)" 2>/dev/null || true
  fi
  fd_limit=$(ulimit -n)
  need=$((PRESENCE_CONNECTIONS + fd_margin))
  if [ "$fd_limit" != unlimited ] && [ "$fd_limit" -lt "$need" ]; then
    cat >&2 <<EOF
bench/presence-tick.sh: the open-files limit cannot be raised to $PRESENCE_FD_LIMIT here: the hard limit
is $(ulimit -Hn) and raising it needs CAP_SYS_RESOURCE (root outside a container), or a higher nofile
limit (/etc/security/limits.conf, systemd LimitNOFILE=, docker run --ulimit nofile=…).
The hub holds one descriptor per connection: $PRESENCE_CONNECTIONS connections need $need, and this
shell may open $fd_limit. The largest point that fits here:
  PRESENCE_CONNECTIONS=$((fd_limit - fd_margin)) bench/presence-tick.sh
EOF
    exit 1
  fi
  echo "open-files limit: $fd_limit (asked for $PRESENCE_FD_LIMIT)" >&2

  read -r port_lo port_hi </proc/sys/net/ipv4/ip_local_port_range
  # One (source, destination) address pair gives a client one ephemeral port range of connections;
  # keep a tenth free for sockets in TIME_WAIT and everything else on the machine.
  per_address=$(((port_hi - port_lo + 1) * 9 / 10))
  if [ "$PRESENCE_ADDRESSES" = auto ]; then
    PRESENCE_ADDRESSES=$(((PRESENCE_CONNECTIONS + per_address - 1) / per_address))
  fi
  export PRESENCE_ADDRESSES
  if [ "$PRESENCE_ADDRESSES" -gt 1 ]; then
    say "$PRESENCE_CONNECTIONS connections over $PRESENCE_ADDRESSES loopback addresses: private network namespace"
    unshare --net true 2>/dev/null ||
      die "unshare --net failed (needs root and util-linux): lower PRESENCE_CONNECTIONS to $per_address or fewer"
    export PRESENCE_CONNECTIONS PRESENCE_SMALL PRESENCE_WINDOW PRESENCE_FD_LIMIT
    # shellcheck source=bench/lib.sh
    source bench/lib.sh
    in_private_netns env PRESENCE_IN_NETNS=1 "$root/bench/presence-tick.sh"
    exit
  fi
fi

hub_bin=$root/target/release/hub-server
bench_bin=$root/target/release/hub-bench
hub_version="$(git rev-parse --short=12 HEAD)"
if [ -n "$(git status --porcelain -- hub-server Cargo.toml Cargo.lock)" ]; then
  hub_version="$hub_version + uncommitted changes"
fi
stamp=$(date -u +%Y%m%dT%H%M%SZ)
out=$root/bench/results/presence-$stamp
mkdir -p "$out"

# --- processes: every one we start is stopped on the way out, whatever happens --------------------
# shellcheck source=bench/lib.sh
source bench/lib.sh
cleanup() { stop_started; }
trap cleanup EXIT
trap 'exit 130' INT TERM
# A long sleep in the background: a signal is handled at once, not when the sleep ends.
pause() {
  sleep "$1" &
  started+=($!)
  wait $!
}


redis_port=$(free_port)
redis-server --port "$redis_port" --bind 127.0.0.1 --save '' --appendonly no >"$out/redis.log" 2>&1 &
redis_pid=$!
started+=("$redis_pid")
rcli() { redis-cli -h 127.0.0.1 -p "$redis_port" "$@"; }
for _ in $(seq 1 100); do rcli PING >/dev/null 2>&1 && break; sleep 0.1; done
rcli PING >/dev/null 2>&1 || { tail -20 "$out/redis.log" >&2; die "redis-server did not start"; }

hub_port=$(free_port)
listen=127.0.0.1
[ "$PRESENCE_ADDRESSES" -gt 1 ] && listen=0.0.0.0 # only in the private namespace: loopback alone
env HUB_LISTEN="$listen:$hub_port" HUB_NAME=presence-bench REDIS_URL="redis://127.0.0.1:$redis_port" \
  HUB_ALLOWED_ORIGINS='*' HUB_MAX_CONNECTIONS=200000 HUB_HUB_HEARTBEAT=${heartbeat_s}s \
  "$hub_bin" >"$out/hub.log" 2>&1 &
hub_pid=$!
started+=("$hub_pid")
for _ in $(seq 1 100); do
  HUB_LISTEN=127.0.0.1:$hub_port "$hub_bin" healthcheck >/dev/null 2>&1 && break
  sleep 0.1
done
HUB_LISTEN=127.0.0.1:$hub_port "$hub_bin" healthcheck >/dev/null 2>&1 ||
  { tail -20 "$out/hub.log" >&2; die "hub-server did not become healthy"; }

urls=""
for i in $(seq 1 "$PRESENCE_ADDRESSES"); do urls="$urls${urls:+,}ws://127.0.0.$i:$hub_port/ws"; done

# --- measuring ------------------------------------------------------------------------------------
members_key='rthub:presence-users:{general}'
hub_connections() { curl -sf "http://127.0.0.1:$hub_port/health" | jq -r .connections; }
members() { rcli HLEN "$members_key"; }
# cmdstat_evalsha:calls=N,usec=N,… → "calls usec"
evalsha() {
  rcli INFO commandstats | tr -d '\r' |
    awk -F'[:,=]' '$1 == "cmdstat_evalsha" { print $3, $5; found = 1 } END { if (!found) print 0, 0 }'
}
cpu_ticks() { awk '{ print $14 + $15 }' "/proc/$1/stat"; }
rss_mib() { awk '/^VmRSS:/ { printf "%.0f", $2 / 1024 }' "/proc/$1/status"; }
clk_tck=$(getconf CLK_TCK)

# Opens `count` more idle connections and holds them until the run ends; returns once they are open.
declare -a tool_pids=()
add_connections() { # count name
  local count=$1 name=$2
  "$bench_bin" idle --target "$name" --proto hub --url "$urls" --connections "$count" \
    --settle 1s --hold 3600s --hub-pid "$hub_pid" --json "$out/$name.jsonl" \
    >/dev/null 2>"$out/$name.log" &
  started+=($!)
  tool_pids+=($!)
  wait_for_output "$!" "$out/$name.jsonl" $((60 + count / 500)) \
    "hub-bench idle ($name, $count connections)" "$out/$name.log"
  cat "$out/$name.log" >&2
}

# Waits until every connection is a presence member and the writes they caused are over: EVALSHA
# moves only with the heartbeat for 3 s in a row.
settle() { # connections
  local want=$1 deadline=$((SECONDS + 120)) quiet=0 calls last
  read -r last _ < <(evalsha)
  while [ $quiet -lt 3 ]; do
    [ $SECONDS -lt $deadline ] ||
      die "not settled in 120 s: hub has $(hub_connections) connections, $(members) presence members, want $want"
    sleep 1
    read -r calls _ < <(evalsha)
    if [ "$(members)" = "$want" ] && [ $((calls - last)) -le $((2 / heartbeat_s + 1)) ]; then
      quiet=$((quiet + 1))
    else
      quiet=0
    fi
    last=$calls
  done
}

declare -a rows=()
# One quiet window at the current number of connections; appends a result row.
measure() { # connections
  local want=$1 c0 u0 c1 u1 t0 t1 h0 h1 r0 r1 conn0 conn1 slow
  conn0=$(hub_connections)
  rcli CONFIG SET slowlog-max-len 10000 >/dev/null
  rcli SLOWLOG RESET >/dev/null
  rcli CONFIG SET slowlog-log-slower-than 0 >/dev/null # every command, with its duration
  rcli INFO commandstats >"$out/commandstats-$want-start.txt"
  read -r c0 u0 < <(evalsha)
  h0=$(cpu_ticks "$hub_pid")
  r0=$(cpu_ticks "$redis_pid")
  t0=$(date +%s.%N)
  pause "$PRESENCE_WINDOW"
  read -r c1 u1 < <(evalsha)
  rcli INFO commandstats >"$out/commandstats-$want-end.txt"
  h1=$(cpu_ticks "$hub_pid")
  r1=$(cpu_ticks "$redis_pid")
  t1=$(date +%s.%N)
  rcli CONFIG SET slowlog-log-slower-than 10000 >/dev/null
  conn1=$(hub_connections)
  # The heartbeat's own calls: EVALSHA sha 2 <prefix>{hubs} … (entry: id, time, µs, args, …).
  slow=$(rcli --json SLOWLOG GET 10000 |
    jq -r '[.[] | select((.[3][0] | ascii_downcase) == "evalsha" and (.[3][3] | endswith("{hubs}"))) | .[2]]
           | if length == 0 then "0 0 0" else "\(length) \(add / length) \(max)" end')
  local line
  line=$(awk -v want="$want" -v conn0="$conn0" -v conn1="$conn1" -v members="$(members)" \
    -v dc=$((c1 - c0)) -v du=$((u1 - u0)) -v t0="$t0" -v t1="$t1" -v hb="$heartbeat_s" \
    -v dh=$((h1 - h0)) -v dr=$((r1 - r0)) -v tck="$clk_tck" -v slow="$slow" -v rss="$(rss_mib "$hub_pid")" '
    BEGIN {
      split(slow, s, " "); w = t1 - t0; ticks = w / hb
      ok = (dc >= ticks - 2 && dc <= ticks + 2 && conn0 == want && conn1 == want && members == want)
      printf "%d|%d|%.1f|%d|%.0f|%.1f|%d|%.1f|%d|%.1f|%.1f|%d|%s\n", want, members, w, dc, ticks,
        dc ? du / dc : 0, s[1], s[2], s[3], 100 * dh / tck / w, 100 * dr / tck / w, rss,
        ok ? "ok" : "CHECK: connections " conn0 "→" conn1 ", members " members ", " dc " calls for " int(ticks + 0.5) " ticks"
    }')
  rows+=("$line")
  IFS='|' read -r _ _ w dc ticks mean n smean smax hcpu rcpu rss verdict <<<"$line"
  printf '  %s connections: %s EVALSHA in %s s (%s ticks expected), %s µs of Redis time per tick (slowlog: %s heartbeats, mean %s µs, max %s µs); CPU hub %s%% redis %s%%; hub RSS %s MiB; %s\n' \
    "$want" "$dc" "$w" "$ticks" "$mean" "$n" "$smean" "$smax" "$hcpu" "$rcpu" "$rss" "$verdict" >&2
}

machine="$(nproc) CPUs ($(lscpu | sed -n 's/^Model name: *//p' | head -1)), $(free -g | awk '/^Mem:/ { print $2 }') GiB RAM, kernel $(uname -r)"
say "machine: $machine; redis $(redis-server --version | sed 's/.*v=\([^ ]*\).*/\1/'); hub $hub_version"
echo "hub: one hub-server on $listen:$hub_port, HUB_HUB_HEARTBEAT=${heartbeat_s}s, connections over $urls" >&2

big_rest=$((PRESENCE_CONNECTIONS - PRESENCE_SMALL))
say "$PRESENCE_SMALL connections"
add_connections "$PRESENCE_SMALL" small
settle "$PRESENCE_SMALL"
measure "$PRESENCE_SMALL"

say "$PRESENCE_CONNECTIONS connections ($big_rest more on the same hub)"
add_connections "$big_rest" large
settle "$PRESENCE_CONNECTIONS"
measure "$PRESENCE_CONNECTIONS"

for pid in "${tool_pids[@]}"; do
  kill -0 "$pid" 2>/dev/null || die "a hub-bench holding connections stopped early; see $out/*.log"
done

say "presence tick, $PRESENCE_WINDOW s windows, heartbeat every ${heartbeat_s} s"
{
  echo "machine: $machine; hub $hub_version"
  echo
  echo "| connections | presence members | window | EVALSHA calls (ticks) | Redis µs per tick (commandstats) | heartbeat mean / max µs (slowlog) | hub CPU | Redis CPU | hub RSS | check |"
  echo "|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|"
  for line in "${rows[@]}"; do
    IFS='|' read -r want members w dc ticks mean n smean smax hcpu rcpu rss verdict <<<"$line"
    echo "| $want | $members | $w s | $dc ($ticks) | $mean | $smean / $smax | $hcpu % | $rcpu % | $rss MiB | $verdict |"
  done
  echo
  echo "target: < 50000 µs of Redis time per tick at 100000 connections"
} | tee "$out/report.md"
echo
echo "logs and report: $out"
