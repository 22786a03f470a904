#!/usr/bin/env bash
# WebSocket conformance: the Autobahn test cases of sections 1-10 and of 12-13 (permessage-deflate),
# run by kosoku's fuzzing client against hub-echo — the real hub (accept loop, /ws handshake with
# its permessage-deflate negotiation, session read loop, writer) in echo mode, see
# hub-server/examples/hub-echo.rs. Prints a table of results by section; exits non-zero when any
# case is not OK, NON-STRICT or INFORMATIONAL, or when the run takes longer than AUTOBAHN_TIMEOUT
# seconds (default 2400; sections 12 and 13 compress ~1 GB each way, so hub-echo is a release
# build: 17 min on 2 cores shared with other builds, ~10 s for sections 1-10 alone).
# kosoku is installed, pinned, in a virtualenv under target/ (PyPI, once).
set -euo pipefail
cd "$(dirname "$0")/.."

KOSOKU_VERSION=0.1.0
venv=target/autobahn-venv
timeout_s=${AUTOBAHN_TIMEOUT:-2400}

if ! "$venv/bin/python" -c "import kosoku, importlib.metadata as m; assert m.version('kosoku') == '$KOSOKU_VERSION'" 2>/dev/null; then
  command -v python3 >/dev/null || { echo "autobahn: python3 is missing: apt-get install -y python3 python3-venv" >&2; exit 2; }
  rm -rf "$venv"
  python3 -m venv "$venv" || { echo "autobahn: cannot make a virtualenv: apt-get install -y python3-venv" >&2; exit 2; }
  "$venv/bin/pip" install --quiet --disable-pip-version-check "kosoku==$KOSOKU_VERSION"
fi

cargo build --locked --quiet --release -p hub-server --example hub-echo
target_dir=$(cargo metadata --format-version 1 --no-deps | "$venv/bin/python" -c 'import json,sys; print(json.load(sys.stdin)["target_directory"])')

port=$("$venv/bin/python" -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
api_port=$("$venv/bin/python" -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
log=$(mktemp -t hub-echo.XXXXXX.log)
HUB_LISTEN="127.0.0.1:$port" HUB_API_LISTEN="127.0.0.1:$api_port" RUST_LOG=${RUST_LOG:-warn} \
  "$target_dir/release/examples/hub-echo" >"$log" 2>&1 &
echo_pid=$!
cleanup() { kill "$echo_pid" 2>/dev/null || true; wait "$echo_pid" 2>/dev/null || true; rm -f "$log"; }
trap cleanup EXIT

for _ in $(seq 100); do
  (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null && break
  kill -0 "$echo_pid" 2>/dev/null || { echo "autobahn: hub-echo did not start:" >&2; cat "$log" >&2; exit 1; }
  sleep 0.1
done

status=0
timeout "$timeout_s" "$venv/bin/python" scripts/autobahn.py "ws://127.0.0.1:$port/ws" 2 || status=$?
[ "$status" -eq 124 ] && echo "autobahn: no result within ${timeout_s}s" >&2
if grep -q panicked "$log"; then
  echo "autobahn: hub-echo panicked:" >&2
  grep -A5 panicked "$log" >&2
  status=1
fi
exit "$status"
