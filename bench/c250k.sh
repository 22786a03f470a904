#!/usr/bin/env bash
# `make bench-c250k` (issue 25, DESIGN section 19): 250,000 live WebSocket connections on this machine,
# over as many release hub-servers on one Redis as the per-process open-file limit requires, each
# connection in the room `all` and in its personal room. `hub-bench c250k` drives it (see
# hub-bench/src/c250k/): generator processes of at most C250K_PER_WORKER connections each, then
#   1. everyone connects (HS256 token on the upgrade; grants `all` and its own room only, so nobody
#      starts in `general`) and joins both rooms — time to connect all;
#   2. memory once settled: every hub's RSS summed, Redis's, the generator's per connection;
#   3. POST /api/broadcast on one hub's API, and POST /api/publish to `all`: time until the last
#      connection had each;
#   4. personal messages, C250K_RATE/s for C250K_DURATION through POST /api/publish spread over the
#      surviving hubs' APIs, open loop (latency from each message's due time); C250K_KILL_AFTER into
#      it one hub is `kill -9`ed and a message to `all` published at once: its clients reconnect to
#      the other hubs with jittered exponential backoff and join both rooms with `since` (epoch and
#      offset per room);
#   5. each client's count per room by offset and id against what was sent: lost, duplicated,
#      misrouted — any of them, or a figure missing, fails the run (exit 1). A client that sees a
#      room's offsets step over one asks for the gap with join + since, as the README tells clients
#      to (a hub may deliver without offset, or shed, under load): what that brings again is a
#      repeat, not a duplicate; what it cannot bring is lost.
# CPU (user + system seconds) of hubs, Redis and generator per phase. All of it runs in a network
# namespace of its own with connection tracking off (NOTRACK), so nothing of it touches the machine's
# loopback and the kernel's shared conntrack table (262,144 entries) cannot fill: root only. Inside it
# the hubs listen on fixed addresses 127.0.0.(10+i) (each its own destination address and port, well
# under the 64,512 ephemeral ports per destination the namespace is given) — nothing else lives in
# that namespace.
# Results and logs: bench/results/c250k-<UTC timestamp>/ (results.json, report.md; git-ignored).
#
# Knobs (environment):
#   C250K_CONNECTIONS=250000
#   C250K_HUBS=auto         auto: the fewest hubs of C250K_PER_HUB connections each that still hold
#                           everyone once one of them is killed
#   C250K_PER_HUB=19000     HUB_MAX_CONNECTIONS of each hub: below the open-file limit (20,000 here),
#                           with room for its listeners, Redis connections and log
#   C250K_PER_WORKER=19000  connections per generator process (one descriptor each)
#   C250K_RATE=10000  C250K_DURATION=20s   personal messages per second, and for how long
#   C250K_KILL=1  C250K_KILL_AFTER=5s      kill -9 the last hub that long into the personal messages
#   C250K_PERSONAL=user     user: the hub's own personal room user:<id>, joined at connect without
#                           a join frame (and again with `since` after a reconnect); join: each client
#                           joins a room of its own, p-<n> (how the runs before personal rooms went)
#   C250K_API_CONNECTIONS=28                keep-alive API connections the personal messages go over
#   C250K_API_BATCH=100     most personal messages per request: above 1, each request takes every
#                           message already due, in one POST /api/publish/batch, as a backend with
#                           thousands of notifications to send would (1: one POST /api/publish per
#                           message; then give it ~256 connections)
#                           (one request in flight each: enough that the API's answer time does not
#                           hold the offered rate back)
#   C250K_CONNECT_CONCURRENCY=64           first connects in flight per generator process
#   C250K_BACKOFF_BASE=500ms C250K_BACKOFF_MAX=10s   reconnect backoff (full jitter)
#   C250K_BUDGET=2400       seconds after which everything still running is stopped (the run fails)
#   C250K_HUB_BIN=<path>    this hub-server binary instead of a release build of the working tree
#   C250K_REDIS_NICE=-10    Redis's nice value. On a real deployment the hubs share no cores with
#                           Redis; here its one thread competes with 15 hubs' and 14 generator
#                           processes' (load average ~20), and a starved Redis holds every hub up
#                           (publisher lag of seconds, API 503s). 0: no priority.
#   C250K_HUB_THREADS=      each hub's tokio worker threads (TOKIO_WORKER_THREADS; empty: one per
#                           core). With many hubs on few cores, 1 spares them waking each other.
#   C250K_HUB_LOG=warn      the hubs' RUST_LOG (their logs are saved with the results)
# Small check (make test): C250K_CONNECTIONS=20000 C250K_DURATION=8s bench/c250k.sh
set -euo pipefail
cd "$(dirname "$0")/.."
root=$PWD

C250K_CONNECTIONS=${C250K_CONNECTIONS:-250000}
C250K_HUBS=${C250K_HUBS:-auto}
C250K_PER_HUB=${C250K_PER_HUB:-19000}
C250K_PER_WORKER=${C250K_PER_WORKER:-19000}
C250K_RATE=${C250K_RATE:-10000}
C250K_DURATION=${C250K_DURATION:-20s}
C250K_KILL=${C250K_KILL:-1}
C250K_KILL_AFTER=${C250K_KILL_AFTER:-5s}
C250K_PERSONAL=${C250K_PERSONAL:-user}
C250K_CONNECT_CONCURRENCY=${C250K_CONNECT_CONCURRENCY:-64}
C250K_API_CONNECTIONS=${C250K_API_CONNECTIONS:-28}
C250K_API_BATCH=${C250K_API_BATCH:-100}
C250K_BACKOFF_BASE=${C250K_BACKOFF_BASE:-500ms}
C250K_BACKOFF_MAX=${C250K_BACKOFF_MAX:-10s}
C250K_REDIS_NICE=${C250K_REDIS_NICE:--10}
C250K_BUDGET=${C250K_BUDGET:-2400}

say() { printf '\n== %s\n' "$*" >&2; }
die() { printf 'bench/c250k.sh: %s\n' "$*" >&2; exit 1; }
# shellcheck source=bench/lib.sh
source bench/lib.sh

hub_bin=${C250K_HUB_BIN:-$root/target/release/hub-server}
bench_bin=$root/target/release/hub-bench

# --- outside the namespace: checks, build, secrets, then the run under a time bound ----------------
if [ -z "${C250K_IN_NETNS:-}" ]; then
  [ "$(id -u)" = 0 ] || die "needs root: the run has a network namespace of its own with NOTRACK rules"
  scripts/ensure-deps.sh redis-server iptables unshare jq
  ulimit -n "$(ulimit -Hn)" 2>/dev/null || true
  fd_limit=$(ulimit -n)
  [ "$fd_limit" = unlimited ] || [ "$fd_limit" -ge $((C250K_PER_HUB + 200)) ] ||
    die "open-files limit $fd_limit: C250K_PER_HUB=$C250K_PER_HUB does not fit (leave 200 spare)"
  [ "$fd_limit" = unlimited ] || [ "$fd_limit" -ge $((C250K_PER_WORKER + 200)) ] ||
    die "open-files limit $fd_limit: C250K_PER_WORKER=$C250K_PER_WORKER does not fit (leave 200 spare)"
  need=$(((C250K_CONNECTIONS + C250K_PER_HUB - 1) / C250K_PER_HUB))
  [ "$C250K_KILL" = 1 ] && need=$((need + 1)) # the survivors of the kill must hold everyone
  [ "$need" -ge 2 ] || need=2
  if [ "$C250K_HUBS" = auto ]; then
    C250K_HUBS=$need
  elif [ "$C250K_HUBS" -lt "$need" ]; then
    die "C250K_HUBS=$C250K_HUBS: $C250K_CONNECTIONS connections at $C250K_PER_HUB per hub need $need hubs$([ "$C250K_KILL" = 1 ] && echo ' (one of them killed)')"
  fi
  [ "$C250K_HUBS" -le 200 ] || die "C250K_HUBS=$C250K_HUBS: at most 200 (127.0.0.10-209)"
  build_release "${C250K_HUB_BIN:-}"
  hub_version="$(git rev-parse --short=12 HEAD)"
  [ -z "$(git status --porcelain -- hub-server Cargo.lock)" ] || hub_version="$hub_version + uncommitted changes"
  [ -n "${C250K_HUB_BIN:-}" ] && hub_version="binary $C250K_HUB_BIN"
  out=$root/bench/results/c250k-$(date -u +%Y%m%dT%H%M%SZ)
  mkdir -p "$out"
  # Fresh secrets for this run, in the environment only (never on a command line or in a log).
  C250K_JWT_SECRET=$(head -c 33 /dev/urandom | base64 | tr -d '/+=\n')
  C250K_API_KEY=$(head -c 24 /dev/urandom | base64 | tr -d '/+=\n')
  export C250K_JWT_SECRET C250K_API_KEY C250K_HUBS hub_version out
  export C250K_CONNECTIONS C250K_PER_HUB C250K_PER_WORKER C250K_RATE C250K_DURATION C250K_KILL \
    C250K_KILL_AFTER C250K_PERSONAL C250K_CONNECT_CONCURRENCY C250K_API_CONNECTIONS C250K_API_BATCH C250K_BACKOFF_BASE \
    C250K_BACKOFF_MAX C250K_HUB_THREADS C250K_REDIS_NICE C250K_HUB_LOG
  say "$C250K_CONNECTIONS connections over $C250K_HUBS hubs; results in $out (at most $C250K_BUDGET s)"
  # `timeout` puts the run in a process group of its own and signals the whole group when the budget
  # is spent (TERM, then KILL 20 s later): nothing the run started outlives it. A Ctrl-C here is
  # passed on the same way.
  timeout --kill-after=20 "$C250K_BUDGET" \
    bash -c 'source bench/lib.sh && in_private_netns env C250K_IN_NETNS=1 bash bench/c250k.sh' &
  run_pid=$!
  trap 'kill -TERM "$run_pid" 2>/dev/null || true' INT TERM
  rc=0
  wait "$run_pid" || rc=$?
  # A trapped signal interrupts the first wait: wait for the run to end.
  while kill -0 "$run_pid" 2>/dev/null; do wait "$run_pid" || rc=$?; done
  [ "$rc" = 124 ] && echo "bench/c250k.sh: the run took longer than C250K_BUDGET=${C250K_BUDGET}s and was stopped" >&2
  echo "results: $out" >&2
  exit "$rc"
fi

# --- inside the namespace ----------------------------------------------------------------------------
cleanup() { stop_started; }
trap cleanup EXIT
trap 'exit 130' INT TERM

conntrack_count() { cat /proc/sys/net/netfilter/nf_conntrack_count 2>/dev/null || echo 0; }
# The machine is shared: what else ran shows in the load average (1 min) before and after.
load_before=$(cut -d' ' -f1 /proc/loadavg)
iptables -t raw -S OUTPUT | grep -q -- '-j NOTRACK' || die "no NOTRACK rule in this namespace"
# Every generator connection comes from 127.0.0.1 to one of a few hub addresses: with the default
# 28,232 ephemeral ports, connect()'s search for a free one dominated the generator's CPU (perf:
# the kernel's __inet_check_established). The range is this namespace's own.
echo "1024 65535" >/proc/sys/net/ipv4/ip_local_port_range

nice -n "$C250K_REDIS_NICE" redis-server --bind 127.0.0.1 --port 6379 --save '' --appendonly no \
  --slowlog-log-slower-than 50000 --slowlog-max-len 1024 --latency-monitor-threshold 100 \
  >"$out/redis.log" 2>&1 &
redis_pid=$!
started+=("$redis_pid")
for _ in $(seq 1 100); do redis-cli -p 6379 PING >/dev/null 2>&1 && break; sleep 0.1; done
redis-cli -p 6379 PING >/dev/null 2>&1 || { tail -20 "$out/redis.log" >&2; die "redis-server did not start"; }

urls=() apis=() pids=()
threads=()
[ -n "${C250K_HUB_THREADS:-}" ] && threads=(TOKIO_WORKER_THREADS="$C250K_HUB_THREADS")
for i in $(seq 0 $((C250K_HUBS - 1))); do
  addr=127.0.0.$((10 + i))
  env HUB_NAME="hub$i" HUB_LISTEN="$addr:9000" HUB_API_LISTEN="$addr:9100" \
    REDIS_URL=redis://127.0.0.1:6379 HUB_ALLOWED_ORIGINS='*' HUB_MAX_CONNECTIONS="$C250K_PER_HUB" \
    HUB_AUTH_MODE=jwt HUB_JWT_SECRETS="$C250K_JWT_SECRET" HUB_API_KEYS="$C250K_API_KEY" \
    RUST_LOG="${C250K_HUB_LOG:-warn}" "${threads[@]}" "$hub_bin" >"$out/hub$i.log" 2>&1 &
  started+=($!)
  pids+=($!)
  # Out of bash's job table: the hub the run kills on purpose is not reported as "Killed" (it is
  # still stopped and reaped like the others on the way out).
  disown "$!"
  urls+=("ws://$addr:9000/ws")
  apis+=("$addr:9100")
done
for i in "${!urls[@]}"; do
  addr=127.0.0.$((10 + i))
  for _ in $(seq 1 100); do
    HUB_LISTEN=$addr:9000 "$hub_bin" healthcheck >/dev/null 2>&1 && break
    kill -0 "${pids[$i]}" 2>/dev/null || break
    sleep 0.1
  done
  HUB_LISTEN=$addr:9000 "$hub_bin" healthcheck >/dev/null 2>&1 ||
    { tail -20 "$out/hub$i.log" >&2; die "hub $i did not become healthy"; }
done

join() { local IFS=,; echo "$*"; }
kill_args=()
[ "$C250K_KILL" = 1 ] && kill_args=(--kill-hub $((C250K_HUBS - 1)) --kill-after "$C250K_KILL_AFTER")
rc=0
"$bench_bin" c250k --url "$(join "${urls[@]}")" --api "$(join "${apis[@]}")" \
  --hub-pid "$(join "${pids[@]}")" --redis-pid "$redis_pid" --connections "$C250K_CONNECTIONS" \
  --per-worker "$C250K_PER_WORKER" --rate "$C250K_RATE" --duration "$C250K_DURATION" \
  --personal "$C250K_PERSONAL" --connect-concurrency "$C250K_CONNECT_CONCURRENCY" \
  --api-connections "$C250K_API_CONNECTIONS" --api-batch "$C250K_API_BATCH" \
  --backoff-base "$C250K_BACKOFF_BASE" --backoff-max "$C250K_BACKOFF_MAX" "${kill_args[@]}" \
  --json "$out/results.json" --markdown "$out/report.md" 2> >(tee "$out/coordinator.log" >&2) || rc=$?

# Each surviving hub's own account of what the bridge lost, shed or caught up (/health), summed
# into the report: a lost message the hubs know of shows here.
health() { # addr: GET /health over bash's /dev/tcp (no curl needed), the body only, at most 5 s
  timeout 5 bash -c 'exec 3<>"/dev/tcp/$1/9000" &&
    printf "GET /health HTTP/1.0\r\nHost: %s\r\n\r\n" "$1" >&3 && cat <&3' _ "$1" |
    sed '1,/^\r\{0,1\}$/d' | jq -e . 2>/dev/null
}
for i in "${!urls[@]}"; do
  health "127.0.0.$((10 + i))" >"$out/hub$i-health.json" 2>/dev/null || true
  [ -s "$out/hub$i-health.json" ] || rm -f "$out/hub$i-health.json" # the killed one
done

# Redis's own account of what took it longest (a command that holds its one thread for seconds
# stalls every hub): every command of 50 ms or more (the slow log), and the command statistics.
redis-cli -p 6379 SLOWLOG GET 1024 >"$out/redis-slowlog.txt" 2>&1 || true
redis-cli -p 6379 INFO commandstats >"$out/redis-commandstats.txt" 2>&1 || true
# Redis's own stalls of 100 ms and more (its event loop, by cause): a hub's timeout with none
# here was the hub's own lateness.
redis-cli -p 6379 LATENCY LATEST >"$out/redis-latency.txt" 2>&1 || true

# What the report cannot see from inside the tool: connection tracking in this namespace (NOTRACK
# keeps it at 0), the machine, the hub build.
if [ -s "$out/results.json" ]; then
  load_after=$(cut -d' ' -f1 /proc/loadavg)
  jq --argjson conntrack "$(conntrack_count)" --arg hub "$hub_version" --arg kernel "$(uname -r)" \
    --argjson nproc "$(nproc)" --argjson load_before "$load_before" --argjson load_after "$load_after" \
    '. + {conntrack_entries: $conntrack, hub_version: $hub, kernel: $kernel, nproc: $nproc,
          load_average_before: $load_before, load_average_after: $load_after}' \
    "$out/results.json" >"$out/results.json.tmp" && mv "$out/results.json.tmp" "$out/results.json"
  if compgen -G "$out/hub*-health.json" >/dev/null; then
    jq -rs 'map(.redis // {}) | [ "missed", "inbound_shed", "overflowed", "failed",
        "duplicates_dropped", "caught_up", "catch_up_failed" ] as $k
      | "\nThe surviving hubs'"'"' bridge counters, summed (/health): " +
        ([ $k[] as $n | "\($n) \(map(.[$n] // 0) | add)" ] | join(", "))' \
      "$out"/hub*-health.json | tee -a "$out/report.md"
  fi
  printf '\nhub-server %s; %s CPUs, load average %s before the run and %s after; connection-tracking entries in the bench namespace: %s\n' \
    "$hub_version" "$(nproc)" "$load_before" "$load_after" "$(conntrack_count)" | tee -a "$out/report.md"
fi
exit "$rc"
