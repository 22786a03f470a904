#!/usr/bin/env bash
# `make setup`: builds the image, starts redis, hub1, hub2, web1, web2 in Docker, waits until every
# service is healthy, then prints the pages to open. Idempotent: run it again after a code change.
# SETUP_TIMEOUT (seconds, default 180) bounds the wait for health, not the build.
# First run: makes the stack's random JWT secret in .secrets/jwt.env and its server API key in
# .secrets/api.env (git-ignored, reused later, never printed).
set -euo pipefail
# shellcheck source=deploy/lib.sh
source "$(dirname "$0")/lib.sh"
require_engine

# vendor/ with crates means an offline build (see deploy/vendor.sh): it must match Cargo.lock.
if find vendor -mindepth 1 -maxdepth 1 -type d 2>/dev/null | grep -q . && [ Cargo.lock -nt vendor/.gitkeep ]; then
  if command -v cargo >/dev/null 2>&1; then
    deploy/vendor.sh
  else
    say "vendor/ is older than Cargo.lock and cargo is absent: run 'deploy/vendor.sh --clean' for an online build"
  fi
fi

# Before any compose call that starts something: the hubs run in jwt mode and refuse to start without
# a secret, and serve no API without a key.
ensure_jwt_secret
ensure_api_key
ensure_hook_secret

say "building the image (${COMPOSE[*]} build)"
# Build first and only then start: the four services share the one image hub1 builds, and `up` alone
# would try to pull that tag for the others.
compose build
say "starting ${SERVICES[*]}"
compose up -d --remove-orphans

say "waiting for every service to be healthy: ${SERVICES[*]}"
deadline=$(( $(date +%s) + ${SETUP_TIMEOUT:-180} ))
while :; do
  pending=()
  for s in "${SERVICES[@]}"; do
    h="$(service_health "$s")"
    [ "$h" = healthy ] || pending+=("$s:$h")
  done
  [ ${#pending[@]} -eq 0 ] && break
  if [ "$(date +%s)" -ge "$deadline" ]; then
    compose ps >&2 || true
    compose logs --tail=30 >&2 || true
    die "not healthy after ${SETUP_TIMEOUT:-180}s: ${pending[*]} (logs above; 'make logs' to follow)"
  fi
  sleep 2
done
# The hubs' container healthcheck is liveness; ready (/health: the Redis bridge is up) is what a user
# needs before chatting across them: `hub-server healthcheck` asks it.
for s in hub1 hub2; do
  until compose exec -T "$s" hub-server healthcheck >/dev/null 2>&1; do
    if [ "$(date +%s)" -ge "$deadline" ]; then
      compose logs --tail=30 "$s" >&2 || true
      die "$s is live but not ready (its Redis bridge is down) after ${SETUP_TIMEOUT:-180}s"
    fi
    sleep 1
  done
done

HUB1_PORT="$(setting HUB1_PORT)" HUB2_PORT="$(setting HUB2_PORT)"
WEB1_PORT="$(setting WEB1_PORT)" WEB2_PORT="$(setting WEB2_PORT)"
HUB1_API_PORT="$(setting HUB1_API_PORT)" HUB2_API_PORT="$(setting HUB2_API_PORT)"
# Other machines reach the pages at these hosts when BIND_ADDRESS is widened (deploy/lib.sh, page_hosts).
mapfile -t remote_hosts < <(page_hosts | grep -vx 'localhost\|127.0.0.1')
remote=""
if [ ${#remote_hosts[@]} -gt 0 ]; then
  remote="From other machines (BIND_ADDRESS=$(setting BIND_ADDRESS); the hubs allow these pages):"$'\n'
  for h in "${remote_hosts[@]}"; do
    case "$h" in *:*) h="[$h]" ;; esac
    remote+="    http://$h:${WEB1_PORT}    http://$h:${WEB2_PORT}"$'\n'
  done
  remote+=$'\n'
fi
monitoring=""
if profile_on monitoring; then
  monitoring="Prometheus (monitoring profile; on 127.0.0.1 only): http://127.0.0.1:$(setting PROMETHEUS_PORT)  (targets: /targets, alerts: /alerts)"$'\n\n'
fi
# Where the key is, never the key: from the file make setup wrote, or the caller's own HUB_API_KEYS.
if [ -n "${HUB_API_KEYS:-}" ]; then
  key_from='KEY=<a key of your HUB_API_KEYS>'
else
  key_from="KEY=\$(sed -n 's/^HUB_API_KEYS=//p' $API_KEY_FILE | cut -d, -f1)"
fi
cat <<MSG

realtime-hub is up: redis, hub1 (ws://localhost:${HUB1_PORT}/ws), hub2 (ws://localhost:${HUB2_PORT}/ws), web1, web2.
Open these two pages, in two tabs or two browsers, sign in with a name on each, and chat across the hubs:

    http://localhost:${WEB1_PORT}    (connected to hub1)
    http://localhost:${WEB2_PORT}    (connected to hub2)

Status of both hubs, live: http://localhost:${WEB1_PORT}/status

${remote}${monitoring}Server API (README, "Server API"; on 127.0.0.1 only): hub1 http://127.0.0.1:${HUB1_API_PORT}, hub2 http://127.0.0.1:${HUB2_API_PORT}

    ${key_from}
    curl -s -H "Authorization: Bearer \$KEY" http://127.0.0.1:${HUB1_API_PORT}/api/hubs

make ps  - status    make logs  - follow the logs    make teardown  - remove everything
MSG
