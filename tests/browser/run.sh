#!/usr/bin/env bash
# Real-browser test of the chat page (`make test` runs it after `cargo test`):
# builds hub-server and hub-client-web, starts a throw-away redis-server on a free loopback port, and runs
# every tests/browser/*.test.mjs in name order (e.g. local.test.mjs: anonymous chat, hubs in off mode;
# auth.test.mjs: sign-in, hubs in jwt mode; moderation.test.mjs: hub-client-web as the hubs' backend) with node's test runner. Each starts its hubs and web servers as real processes on free
# ports and drives headless Debian Chromium (/usr/bin/chromium, never downloaded) through playwright-core. Screenshots: target/browser-screenshots/. Process logs: target/browser-test-logs/.
# Exits non-zero when any check fails; every process it started is stopped on exit, Ctrl-C included.
set -euo pipefail
cd "$(dirname "$0")/../.."
root=$PWD

scripts/ensure-deps.sh chromium node npm redis-server

echo "== building hub-server, hub-client-web and the README's Rust example"
cargo build --locked -p hub-server -p hub-client-web
# readme.test.mjs runs the README's Rust example, which is this example of hub-client.
cargo build --locked -p hub-client --example readme

echo "== installing the test driver (playwright-core, from tests/browser/package-lock.json)"
# playwright-core never downloads a browser; the variable makes sure nothing else tries to either.
(cd tests/browser && PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD=1 npm ci --no-audit --no-fund --loglevel=error)

screenshots=$root/target/browser-screenshots
logs=$root/target/browser-test-logs
rm -rf "$screenshots" "$logs"
mkdir -p "$screenshots" "$logs"

redis_pid=""
test_pid=""
# A test runs in its own process group (setsid), so its hubs and web servers go with it.
# Even after node exits, a child it failed to reap would still be in that group.
stop_test_group() {
  if [ -n "$test_pid" ] && kill -0 -- "-$test_pid" 2>/dev/null; then
    kill -TERM -- "-$test_pid" 2>/dev/null || true
    sleep 1
    kill -KILL -- "-$test_pid" 2>/dev/null || true
  fi
}
cleanup() {
  stop_test_group
  if [ -n "$redis_pid" ] && kill -0 "$redis_pid" 2>/dev/null; then
    kill "$redis_pid" 2>/dev/null || true
    wait "$redis_pid" 2>/dev/null || true
  fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM

redis_port=$(node -e 'const s=require("net").createServer().listen(0,"127.0.0.1",()=>{console.log(s.address().port);s.close()})')
echo "== redis-server on 127.0.0.1:$redis_port"
redis-server --port "$redis_port" --bind 127.0.0.1 --save "" --appendonly no \
  --logfile "$logs/redis.log" &
redis_pid=$!
for _ in $(seq 1 50); do
  if (exec 3<>"/dev/tcp/127.0.0.1/$redis_port" && printf 'PING\r\n' >&3 && head -c 5 <&3 | grep -q PONG) 2>/dev/null; then
    break
  fi
  kill -0 "$redis_pid" 2>/dev/null || { echo "redis-server exited; see $logs/redis.log" >&2; exit 1; }
  sleep 0.1
done

# One file at a time (node would run them in parallel: several stacks and Chromiums on a small CI box);
# each runs even when an earlier one failed, so one report shows them all. Every tests/browser/*.test.mjs
# is run, in name order.
status=0
for test_path in tests/browser/*.test.mjs; do
  test_file=$(basename "$test_path")
  echo "== browser test $test_file (node --test)"
  file_status=0
  REDIS_URL="redis://127.0.0.1:$redis_port" BIN_DIR="$root/target/debug" \
    SCREENSHOT_DIR="$screenshots" LOG_DIR="$logs" \
    setsid node --test --test-reporter=spec "tests/browser/$test_file" &
  test_pid=$!
  wait "$test_pid" || file_status=$?
  stop_test_group
  [ "$file_status" -eq 0 ] || status=$file_status
done

echo "== screenshots in $screenshots, process logs in $logs"
if [ "$status" -ne 0 ]; then
  echo "browser test FAILED (exit $status)" >&2
fi
exit "$status"
