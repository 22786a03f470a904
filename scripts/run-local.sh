#!/usr/bin/env bash
# `make run`: the whole topology as local processes, no Docker (the web servers also being the demo
# backend the hubs call: publish proxy of moderated:… rooms, webhooks).
#   redis-server (if installed: on 6379 when free, else a free port) → hub1 :8080, hub2 :8081 → web1 :9081, web2 :9082
# Without redis-server the hubs run standalone (no cross-hub delivery) and this script says so.
# Ctrl-C (or SIGTERM) stops every process it started: each runs in its own process group, killed as a group.
set -euo pipefail
cd "$(dirname "$0")/.."
root=$PWD

HUB1_PORT=${HUB1_PORT:-8080}
HUB2_PORT=${HUB2_PORT:-8081}
WEB1_PORT=${WEB1_PORT:-9081}
WEB2_PORT=${WEB2_PORT:-9082}
PROFILE=${PROFILE:-debug}

port_busy() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

for port in "$HUB1_PORT" "$HUB2_PORT" "$WEB1_PORT" "$WEB2_PORT"; do
  if port_busy "$port"; then
    echo "port $port is already in use (is \`make setup\` running? then \`make teardown\` first)" >&2
    exit 1
  fi
done

echo "== building hub-server and hub-client-web ($PROFILE)"
if [ "$PROFILE" = release ]; then
  cargo build --release -p hub-server -p hub-client-web
else
  cargo build -p hub-server -p hub-client-web
fi
bin=$root/target/$PROFILE

# Job control: every background job gets its own process group (pgid = its pid), so stopping a group
# also stops anything it spawned, and a terminal Ctrl-C reaches only this script, whose trap stops them.
set -m
pids=()
names=()
stopping=0

cleanup() {
  stopping=1
  trap - INT TERM EXIT
  [ ${#pids[@]} -eq 0 ] && return
  echo
  echo "== stopping ${names[*]}"
  for pid in "${pids[@]}"; do kill -TERM -- "-$pid" 2>/dev/null || true; done
  # Hubs close their clients and drain within their shutdown grace; do not leave stragglers behind.
  for _ in $(seq 1 120); do
    alive=0
    for pid in "${pids[@]}"; do kill -0 -- "-$pid" 2>/dev/null && alive=1; done
    [ $alive -eq 0 ] && break
    sleep 0.1
  done
  for pid in "${pids[@]}"; do kill -KILL -- "-$pid" 2>/dev/null || true; done
  echo "== all stopped"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# start NAME CMD...: runs CMD in the background with its output prefixed by [NAME].
start() {
  local name=$1
  shift
  "$@" > >(sed -u "s/^/[$name] /") 2>&1 &
  pids+=("$!")
  names+=("$name")
}

redis_url=""
if command -v redis-server >/dev/null 2>&1; then
  redis_port=6379
  if port_busy "$redis_port"; then
    redis_port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])' 2>/dev/null ||
      node -e 'const s=require("net").createServer().listen(0,"127.0.0.1",()=>{console.log(s.address().port);s.close()})')
    echo "== 6379 is taken: starting our own redis-server on $redis_port"
  fi
  # No persistence: this Redis only carries pub/sub and short-lived presence keys.
  start redis redis-server --port "$redis_port" --bind 127.0.0.1 --save "" --appendonly no
  redis_url="redis://127.0.0.1:$redis_port"
else
  echo "== redis-server is not installed: hubs run STANDALONE, so hub1 and hub2 do not see each other's"
  echo "   messages. Install it (scripts/ensure-deps.sh redis-server) to bridge them."
fi

# Names on the page: the hubs check JWTs (auth_mode = jwt) signed by the web servers' demo identity
# provider with a secret made for this run only (never written anywhere; exported, so it is on no
# command line). RUN_AUTH_MODE=off runs anonymous hubs and pages instead.
if [ "${RUN_AUTH_MODE:-jwt}" = jwt ]; then
  secret=$(head -c 48 /dev/urandom | base64 | tr '+/' '-_' | tr -d '=\n')
  export HUB_AUTH_MODE=jwt HUB_JWT_SECRETS="$secret" WEB_JWT_SECRET="$secret"
  unset secret
  echo "== auth_mode=jwt: sign in with a name on each page (RUN_AUTH_MODE=off for anonymous chat)"
fi

# The web servers are the demo backend the hubs call (README, "Backend hooks", "Webhooks"), as in
# the compose stack: the same namespaces (read from docker-compose.yml), so messages to moderated:…
# rooms go through each hub's own web server's word check, and every hub sends the webhook events
# to web1, whose status page lists them. Signed with a hook secret made for this run only (exported,
# on no command line, never written anywhere).
HUB_NAMESPACES=$(sed -n "s/^ *HUB_NAMESPACES: '\(.*\)'\$/\1/p" docker-compose.yml)
[ -n "$HUB_NAMESPACES" ] || { echo "docker-compose.yml sets no HUB_NAMESPACES" >&2; exit 1; }
# Exported to the hubs and web servers alone (start_hub, start_web): the healthchecks below load the
# same settings, and a moderated namespace without its hub's proxy URL is refused.
hook_secret=$(head -c 48 /dev/urandom | base64 | tr '+/' '-_' | tr -d '=\n')
echo "== moderated:… rooms (e.g. moderated:lobby) refuse messages with a listed word; webhook events on http://localhost:$WEB1_PORT/status"

start_hub() { # name port web_port
  HUB_HOOK_SECRET="$hook_secret" start "$1" env HUB_NAME="$1" HUB_LISTEN="127.0.0.1:$2" REDIS_URL="$redis_url" \
    HUB_ALLOWED_ORIGINS="http://localhost:$3,http://127.0.0.1:$3" HUB_NAMESPACES="$HUB_NAMESPACES" \
    HUB_PROXY_PUBLISH_URL="http://127.0.0.1:$3/hooks/publish" \
    HUB_WEBHOOK_URL="http://127.0.0.1:$WEB1_PORT/hooks/webhooks" "$bin/hub-server"
}
start_web() { # name port hub_port hub_name
  WEB_HOOK_SECRET="$hook_secret" start "$1" env WEB_LISTEN="127.0.0.1:$2" HUB_URL="ws://localhost:$3/ws" WEB_HUB_LABEL="$4" \
    WEB_TITLE="realtime-hub chat ($1 → $4)" "$bin/hub-client-web"
}

if [ -n "$redis_url" ]; then
  for _ in $(seq 1 50); do port_busy "$redis_port" && break; sleep 0.1; done
fi
start_hub hub1 "$HUB1_PORT" "$WEB1_PORT"
start_hub hub2 "$HUB2_PORT" "$WEB2_PORT"
start_web web1 "$WEB1_PORT" "$HUB1_PORT" hub1
start_web web2 "$WEB2_PORT" "$HUB2_PORT" hub2

# Each binary answers its own healthcheck; hubs are healthy once their Redis bridge is up.
ready=0
for _ in $(seq 1 100); do
  if HUB_LISTEN="127.0.0.1:$HUB1_PORT" "$bin/hub-server" healthcheck >/dev/null 2>&1 &&
    HUB_LISTEN="127.0.0.1:$HUB2_PORT" "$bin/hub-server" healthcheck >/dev/null 2>&1 &&
    WEB_LISTEN="127.0.0.1:$WEB1_PORT" "$bin/hub-client-web" healthcheck >/dev/null 2>&1 &&
    WEB_LISTEN="127.0.0.1:$WEB2_PORT" "$bin/hub-client-web" healthcheck >/dev/null 2>&1; then
    ready=1
    break
  fi
  sleep 0.2
done
if [ $ready -ne 1 ]; then
  echo "== not healthy after 20 s; see the log lines above" >&2
  exit 1
fi

mode="standalone hubs: no cross-hub delivery"
[ -n "$redis_url" ] && mode="hubs bridged through $redis_url"
cat <<EOF

== ready ($mode)
   open  http://localhost:$WEB1_PORT   (page → hub1 ws://localhost:$HUB1_PORT/ws)
   and   http://localhost:$WEB2_PORT   (page → hub2 ws://localhost:$HUB2_PORT/ws)
   Ctrl-C stops everything.

EOF

# Run until Ctrl-C, or until one of the processes dies (then stop the rest and say which).
while true; do
  set +e
  wait -n "${pids[@]}"
  set -e
  [ $stopping -eq 1 ] && break
  for i in "${!pids[@]}"; do
    if ! kill -0 "${pids[$i]}" 2>/dev/null; then
      echo "== ${names[$i]} exited unexpectedly; stopping the rest" >&2
      exit 1
    fi
  done
done
