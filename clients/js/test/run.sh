#!/usr/bin/env bash
# Every test of the JavaScript SDK (clients/js), in one command:
#   unit.test.mjs                 the SDK's pure parts (ordering, backoff, token timing, pacing)
#   api.test.mjs                  src/ against index.d.ts
#   conformance.node.test.mjs     clients/conformance/scenarios.json, the SDK in Node
#   conformance.chromium.test.mjs the same scenarios, the SDK in headless Chromium (Debian's)
#   spread.test.mjs               10,000 clients of a killed hub: the spread of their reconnects
#   sse.node.test.mjs             WebSocket blocked: the SSE fallback across two hubs, a hub restart, a JWT
#                                 over SSE (accepted; refused as over WebSocket), back on WebSocket once it works (Node)
#   sse.chromium.test.mjs         the same in headless Chromium (EventSource), WebSocket replaced by a failing one
#   personal.node.test.mjs        a personal-room notification reaches the SDK without a subscription or a join
#   features.node.test.mjs        room.history(n), a token function answering null, publish {resend: false},
#                                 a room subscribed from the connected event, the offline/online events
# against a real redis-server and real hub-server processes (target/debug/hub-server: this script
# builds no Rust; build it first with `cargo build -p hub-server`, or set HUB_SERVER_BIN).
# SDK_TESTS="unit api node features chromium spread" picks some; SCENARIO=name[,name…] narrows the
# conformance scenarios. Logs of every process: target/sdk-test-logs/. Exits non-zero when any
# test fails; every process it started is stopped on exit, Ctrl-C included.
set -euo pipefail
cd "$(dirname "$0")/../../.."
root=$PWD

hub_bin=${HUB_SERVER_BIN:-$root/target/debug/hub-server}
if [ ! -x "$hub_bin" ]; then
  echo "no hub-server binary at $hub_bin: build it with 'cargo build -p hub-server' (this script builds no Rust)" >&2
  exit 1
fi
export HUB_SERVER_BIN=$hub_bin

tests=${SDK_TESTS:-unit api node sse-node personal features chromium sse-chromium spread}
needs=(node npm redis-server)
case " $tests " in *" chromium "* | *" sse-chromium "*) needs+=(chromium) ;; esac
scripts/ensure-deps.sh "${needs[@]}"
node_major=$(node -p 'process.versions.node.split(".")[0]')
if [ "$node_major" -lt 20 ]; then
  echo "the SDK and its tests need Node >= 20 (found $(node --version)); e.g. apt-get install nodejs from a Node 20 source" >&2
  exit 1
fi

echo "== installing the test dependencies (ws, playwright-core; clients/js/test/package-lock.json)"
# playwright-core never downloads a browser (Debian's chromium is used); the variable makes sure.
(cd clients/js/test && PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD=1 npm ci --no-audit --no-fund --loglevel=error)

rm -rf target/sdk-test-logs
mkdir -p target/sdk-test-logs

test_pid=""
# Each test file runs in its own process group (setsid): hubs, Redis and Chromium go with it.
stop_group() {
  if [ -n "$test_pid" ] && kill -0 -- "-$test_pid" 2>/dev/null; then
    kill -TERM -- "-$test_pid" 2>/dev/null || true
    sleep 1
    kill -KILL -- "-$test_pid" 2>/dev/null || true
  fi
  test_pid=""
}
trap stop_group EXIT
trap 'exit 130' INT TERM

declare -A file_of=(
  [unit]=unit.test.mjs
  [api]=api.test.mjs
  [node]=conformance.node.test.mjs
  [chromium]=conformance.chromium.test.mjs
  [spread]=spread.test.mjs
  [sse-node]=sse.node.test.mjs
  [personal]=personal.node.test.mjs
  [features]=features.node.test.mjs
  [sse-chromium]=sse.chromium.test.mjs
)

# One file at a time (hubs, a Chromium and 10,000 clients at once would be too much for a small
# box); each runs even when an earlier one failed, so one report shows them all.
status=0
for t in $tests; do
  file=${file_of[$t]:-}
  if [ -z "$file" ]; then
    echo "unknown test '$t' (known: ${!file_of[*]})" >&2
    exit 2
  fi
  echo "== $t: node --test clients/js/test/$file"
  file_status=0
  (cd clients/js/test && exec setsid node --test --test-reporter=spec "$file") &
  test_pid=$!
  wait "$test_pid" || file_status=$?
  stop_group
  if [ "$file_status" -ne 0 ]; then
    echo "== $t FAILED (exit $file_status)" >&2
    status=$file_status
  fi
done
echo "== process logs in target/sdk-test-logs/"
exit "$status"
