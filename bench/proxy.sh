#!/usr/bin/env bash
# The publish proxy's cost (issue 23), in the shape the issue asks: a 10-subscriber room, the
# publishers outside it (each message goes to the 10 subscribers and nobody else), and at each
# offered rate the proxy off and on back to back — the same hubs, the same minutes — twice.
# Reports delivered messages/s, p99, the p99 the proxy adds (on − off, same rate, same run) and the
# messages refused, then each mode's highest sustainable rate and whether the target is met
# (≥ 20,000 proxied messages/s, p99 added ≤ 5 ms).
#
# Layout (as bench/run.sh): Redis and two release hub-servers on CPU 0, the load tool on CPU 1;
# `hub-bench backend` (answers every call `200 {}` at once over keep-alive connections) on
# PROXY_BACKEND_CPU (default 1: a backend is another service, it does not take the hubs' core; 0
# puts it with the hubs). The backend's CPU is measured apart (`backend_cpu_pct`), never counted
# as a disturbance. The hubs declare two namespaces that differ only in `proxy_publish`: `pp` (on)
# and `np` (off); a point's room is `pp:…` or `np:…`. A hub pair is restarted after a point that
# was not sustainable. JSON lines and the summary in bench/results/proxy-<time>/ (git-ignored).
#
#   BENCH_MSG_RATES="5000 10000 15000 20000 25000 30000 40000"  offered messages/s (× subscribers
#     = the tool's deliveries/s); a mode stops after a rate where none of its runs held.
#   BENCH_SUBSCRIBERS=10  BENCH_PUBLISHERS=32  BENCH_REPEAT=2  BENCH_DURATION=8s
#     A session's proxied messages to one room go to the backend one after another (that keeps
#     their order), so one publisher sends at most 1 / (backend round trip) messages/s: with too
#     few publishers the sessions' queues (64 commands) fill and messages are refused
#     `unavailable` while the hubs still have CPU to spare.
#   BENCH_MODES="off on"  PROXY_BACKEND_CPU=1  BENCH_HUB_BIN=<hub-server binary, not rebuilt>
#   BENCH_BUILD=0: use target/release/hub-bench (and hub-server) as they are (no cargo step)
#   BENCH_PROFILE_RATE=<messages/s>: after the sweep, one more point per mode at that rate with
#     `perf record` on both hubs (run 0: not in the table, sampling costs the hubs' core too), and
#     where the hubs' CPU per message goes, by component, off vs on (profile-<rate>.md).
set -euo pipefail
cd "$(dirname "$0")/.."
BENCH_SUBSCRIBERS=${BENCH_SUBSCRIBERS:-10}
BENCH_MSG_RATES=${BENCH_MSG_RATES:-"5000 10000 15000 20000 25000 30000 40000"}
BENCH_DURATION=${BENCH_DURATION:-8s}
BENCH_PUBLISHERS=${BENCH_PUBLISHERS:-32}
BENCH_REPEAT=${BENCH_REPEAT:-2}
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
out=bench/results/proxy-$(date -u +%Y%m%dT%H%M%SZ)
mkdir -p "$out"
results=$out/results.jsonl
echo "{\"kind\":\"proxy-run\",\"hub\":\"${BENCH_HUB_BIN:-$(git rev-parse --short=12 HEAD)}\",\"subscribers\":$BENCH_SUBSCRIBERS,\"publishers\":$BENCH_PUBLISHERS,\"backend_cpu\":\"$PROXY_BACKEND_CPU\",\"load\":\"$(cut -d' ' -f1-3 /proc/loadavg)\"}" >>"$results"
# shellcheck source=bench/lib.sh
source bench/lib.sh
trap stop_started EXIT
trap 'exit 130' INT TERM

start_pinned_redis 0

# The backend prints its address first; its per-second counts go to the log.
taskset -c "$PROXY_BACKEND_CPU" "$tool" backend >"$out/backend.addr" 2>"$out/backend.log" &
started+=($!)
backend_pid=$!
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
    started+=($!)
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

# One point: a line saying which (mode, rate, run, load average), then the tool's result line.
# Run 0 is a profiled point: perf records both hubs for 5 s in the middle of the send window.
point() { # mode msgs/s run
  local mode=$1 msgs=$2 run=$3 ns=np line perf_pid=''
  [ "$mode" = on ] && ns=pp
  local load
  load=$(cut -d' ' -f1 /proc/loadavg)
  if [ "$run" = 0 ]; then
    (sleep 4 && perf record -F 999 -g -p "$pid_list" -o "$out/hubs-$mode-$msgs.perf" -- sleep 5 \
      >/dev/null 2>&1) &
    perf_pid=$!
  fi
  echo "{\"kind\":\"proxy-point\",\"mode\":\"$mode\",\"msgs_per_s\":$msgs,\"run\":$run,\"load1\":$load}" >>"$results"
  echo "$(date -u +%H:%M:%S) proxy $mode, $msgs messages/s, run $run, load $load" >&2
  line=$(taskset -c 1 "$tool" load --target "proxy-$mode" --proto hub --url "$url_list" \
    --subscribers "$BENCH_SUBSCRIBERS" --publishers "$BENCH_PUBLISHERS" --publishers-outside \
    --rate $((msgs * BENCH_SUBSCRIBERS)) --duration "$BENCH_DURATION" --drain 2s \
    --room "$ns:bench-$msgs-$run" --hub-pid "$pid_list" --backend-pid "$backend_pid" \
    --redis-pid "$redis_pid" --redis-addr "127.0.0.1:$redis_port" \
    --json "$results") || { echo "proxy $mode $msgs/s: the tool failed" >&2; line=''; }
  [ -z "$perf_pid" ] || wait "$perf_pid" || true
  if [[ $line == *'"sustainable":true'* ]]; then
    return 0
  fi
  stop_hubs
  start_hubs
  return 1
}

# A mode stops after a rate where none of its runs held; the other goes on.
declare -A done_with=()
for msgs in $BENCH_MSG_RATES; do
  declare -A held=()
  live=0
  for run in $(seq 1 "$BENCH_REPEAT"); do
    for mode in $BENCH_MODES; do
      [ -z "${done_with[$mode]:-}" ] || continue
      live=1
      if point "$mode" "$msgs" "$run"; then held[$mode]=1; fi
      sleep 1
    done
  done
  [ "$live" = 1 ] || break
  for mode in $BENCH_MODES; do
    [ -n "${held[$mode]:-}" ] || done_with[$mode]=1
  done
  unset held
done

if [ -n "${BENCH_PROFILE_RATE:-}" ]; then
  command -v perf >/dev/null || { echo "perf not found: apt-get install linux-perf" >&2; exit 1; }
  for mode in $BENCH_MODES; do
    point "$mode" "$BENCH_PROFILE_RATE" 0 || true
    perf report -i "$out/hubs-$mode-$BENCH_PROFILE_RATE.perf" --no-children -g none \
      --sort dso,symbol --stdio 2>/dev/null | grep -E '^ +[0-9.]+% ' >"$out/hubs-$mode-flat.txt" || true
  done
  python3 - "$results" "$out" "$BENCH_PROFILE_RATE" >"$out/profile-$BENCH_PROFILE_RATE.md" <<'PY'
import json, re, sys
from collections import defaultdict
path, out, rate = sys.argv[1], sys.argv[2], int(sys.argv[3])
per_msg, point = {}, None
for line in open(path):
    r = json.loads(line)
    if r.get("kind") == "proxy-point":
        point = r
    elif r.get("kind") == "load" and point:
        if point["run"] == 0 and point["msgs_per_s"] == rate:
            per_msg[point["mode"]] = r["hub_cpu_us_per_msg"]
        point = None
# Most specific first: a symbol counts in the first component whose pattern it matches.
components = [
    ("kernel: sockets (WebSocket, Redis, backend), loopback TCP, epoll", lambda k, s: k == "[k]"),
    ("HTTP client to the backend (hyper, hyper-util pool, h1 codec)", lambda k, s: re.search(r"hyper|want::|httparse|http_body|h1::", s)),
    ("hub-server hooks / proxies (request, verdict)", lambda k, s: re.search(r"hooks::|proxies::", s)),
    ("HMAC-SHA256 signature", lambda k, s: re.search(r"sha2|hmac|compress256|sha256", s)),
    ("serde_json", lambda k, s: "serde_json" in s),
    ("WebSocket framing (tungstenite)", lambda k, s: "tungstenite" in s),
    ("redis client", lambda k, s: re.search(r"redis::", s)),
    ("tokio scheduling, timers, channels", lambda k, s: re.search(r"tokio::|[Ww]ake|Harness|mpsc|oneshot|[Ss]emaphore", s)),
    ("allocator", lambda k, s: re.search(r"malloc|free|realloc|_int_|cfree", s)),
    ("copies (memcpy, memmove, Bytes)", lambda k, s: re.search(r"bytes::|memmove|memcpy|memcmp|memset", s)),
    ("hub-server: other code", lambda k, s: "hub_server" in s),
    ("other user space", lambda k, s: True),
]
share = {}
for mode in ("off", "on"):
    share[mode] = defaultdict(float)
    try:
        lines = open(f"{out}/hubs-{mode}-flat.txt").read().splitlines()
    except OSError:
        continue
    for line in lines:
        f = line.split()
        pct, kind, sym = float(f[0].rstrip("%")), f[2], " ".join(f[3:])
        for name, test in components:
            if test(kind, sym):
                share[mode][name] += pct
                break
print(f"Hub CPU per message at {rate:,} messages/s (both hubs; perf shares × hub µs/msg of the profiled point):")
print()
print("| component | proxy off µs/msg | proxy on µs/msg | added |")
print("|---|---:|---:|---:|")
rows = []
for name, _ in components:
    us = {m: share[m][name] / 100 * per_msg.get(m, 0.0) for m in ("off", "on")}
    rows.append((us["on"] - us["off"], name, us))
for d, name, us in sorted(rows, reverse=True):
    print(f"| {name} | {us['off']:.1f} | {us['on']:.1f} | {d:+.1f} |")
print(f"| **total** | {per_msg.get('off', 0):.1f} | {per_msg.get('on', 0):.1f} | {per_msg.get('on', 0) - per_msg.get('off', 0):+.1f} |")
PY
fi

python3 - "$results" "$BENCH_SUBSCRIBERS" >"$out/summary.md" <<'PY'
import json, sys
from collections import defaultdict
path, subs = sys.argv[1], int(sys.argv[2])
runs, point = {}, None
for line in open(path):
    r = json.loads(line)
    if r.get("kind") == "proxy-point":
        point = r
    elif r.get("kind") == "load" and point:
        if point["run"] > 0:
            runs[(point["msgs_per_s"], point["run"], point["mode"])] = (r, point["load1"])
        point = None
def cell(key):
    if key not in runs:
        return "—"
    r, _ = runs[key]
    refused = r.get("publisher_error_frames", 0)
    flags = [f"{refused:,} refused" if refused else "", f"{r['lost']:,} lost" if r['lost'] else "",
             "disturbed" if r["disturbed"] else "", "" if r["sustainable"] else "✗"]
    extra = ", ".join(f for f in flags if f)
    return f"{r['delivered_per_s'] / subs:,.0f}, {r['latency']['p99_ms']:.2f} ms" + (f", {extra}" if extra else "")
rates = sorted({k[0] for k in runs})
print("| messages/s offered | run | proxy off: delivered msgs/s, p99 | proxy on: delivered msgs/s, p99 | p99 added | hub CPU µs/msg off → on | backend CPU | tool CPU | load |")
print("|---:|---:|---|---|---:|---|---:|---:|---:|")
best = defaultdict(int)
added = defaultdict(list)
for rate in rates:
    for run in sorted({k[1] for k in runs if k[0] == rate}):
        off, on = runs.get((rate, run, "off")), runs.get((rate, run, "on"))
        plus = "—"
        if off and on and off[0]["sustainable"] and on[0]["sustainable"]:
            d = on[0]["latency"]["p99_ms"] - off[0]["latency"]["p99_ms"]
            added[rate].append(d)
            plus = f"{d:+.2f} ms"
        cpu = " → ".join(f"{x[0]['hub_cpu_us_per_msg']:.1f}" if x else "—" for x in (off, on))
        backend = f"{on[0]['backend_cpu_pct']:.0f} %" if on else "—"
        tool = " / ".join(f"{x[0]['tool_cpu_pct']:.0f} %" for x in (off, on) if x)
        load = " / ".join(f"{x[1]}" for x in (off, on) if x)
        print(f"| {rate:,} | {run} | {cell((rate, run, 'off'))} | {cell((rate, run, 'on'))} | {plus} | {cpu} | {backend} | {tool} | {load} |")
for mode in ("off", "on"):
    for rate in rates:
        mine = [v for k, v in runs.items() if k[0] == rate and k[2] == mode]
        if mine and all(r["sustainable"] for r, _ in mine):
            best[mode] = max(best[mode], rate)
print()
print(f"Highest rate every run sustained: proxy off {best['off']:,} messages/s, proxy on {best['on']:,} messages/s.")
target = 20000
adds = added.get(target, [])
met = best["on"] >= target and adds and max(adds) <= 5.0
shown = ", ".join(f"{a:+.2f}" for a in adds) or "—"
print(f"Target (≥ {target:,} proxied messages/s, p99 added ≤ 5 ms): {'met' if met else 'NOT met'} "
      f"(p99 added at {target:,}: {shown} ms).")
PY
cat "$out/summary.md"
[ -z "${BENCH_PROFILE_RATE:-}" ] || { echo; cat "$out/profile-$BENCH_PROFILE_RATE.md"; }
echo "results: $results; backend: $(tail -n 1 "$out/backend.log")"
