#!/usr/bin/env bash
# `make test-compose`: the compose stack for real. Makes sure a Docker engine runs (installing and
# starting it when it can), makes the base images locally when no registry answers, vendors the
# crates for an offline in-container build, runs `make setup` (the user's command, same Dockerfile
# and docker-compose.yml), chats across the two hubs in headless Chromium through ports 9081/9082
# with a hub1 stop/start in the middle and a PUBLISH count in Redis, then the server API with the
# stack's key (deploy/compose.test.mjs), then runs `make teardown` and asserts that no container,
# network or volume of the stack is left.
# The stack runs in jwt mode: the browser scenario signs in first. The stack's JWT secret and its server
# API key (made by `make setup` in .secrets/jwt.env and .secrets/api.env) must show nowhere: not in make
# setup's output, not in any service's logs, not in a container's command line or healthcheck, not in
# the image; the API key not even in the environment of redis or the web servers. The API ports must be
# published on 127.0.0.1 only.
# The stack is torn down even when a step fails; its logs are printed first.
set -euo pipefail
# shellcheck source=deploy/lib.sh
source "$(dirname "$0")/lib.sh"

t0=$(date +%s)
lap() { say "$1 ($(( $(date +%s) - t0 )) s so far)"; }

deploy/engine.sh
# The engine may have been installed just now: pick the compose command again.
# shellcheck source=deploy/lib.sh
source deploy/lib.sh
lap "Docker engine up: $(docker version -f '{{.Server.Version}}' 2>/dev/null), compose: ${COMPOSE[*]}"

deploy/base-images.sh
lap "base images present"

deploy/vendor.sh
lap "crates vendored"

scripts/ensure-deps.sh chromium node npm curl
# ss and ip (the API port checks) come with iproute2.
if ! { command -v ss && command -v ip; } >/dev/null 2>&1; then scripts/ensure-deps.sh iproute2; fi
if [ ! -d tests/browser/node_modules/playwright-core ]; then
  npm ci --prefix tests/browser --no-audit --no-fund --loglevel=error
fi

project="$(setting COMPOSE_PROJECT_NAME)"
volumes_before="$(docker volume ls -q | sort)"

stack_leftovers() { # what of the stack still exists, one "kind name" a line
  docker ps -a --filter "label=com.docker.compose.project=$project" --format 'container {{.Names}}'
  docker network ls --filter "label=com.docker.compose.project=$project" --format 'network {{.Name}}'
  docker network ls --filter "name=^${project}_" --format 'network {{.Name}}'
  docker volume ls --filter "label=com.docker.compose.project=$project" --format 'volume {{.Name}}'
  # Anonymous volumes (the redis image's /data) carry no project label: anything new is a leftover.
  comm -13 <(echo "$volumes_before") <(docker volume ls -q | sort) | sed 's/^/volume /'
}

cleanup() {
  local rc=$?
  trap - EXIT
  if [ $rc -ne 0 ]; then
    say "failed (exit $rc): the stack's state and last logs"
    compose ps >&2 || true
    compose logs --no-color --tail=60 >&2 || true
    compose down --volumes --remove-orphans --timeout 20 >&2 || true
  fi
  exit $rc
}
trap cleanup EXIT

# A stack left over from an earlier run would be reused half-built: start clean.
compose down --volumes --remove-orphans --timeout 20 >/dev/null 2>&1 || true
volumes_before="$(docker volume ls -q | sort)"

# Whether stdin holds one of the values LIST prints (jwt_secrets or api_keys; fixed strings, none is
# printed). Fed from a file or here-string, never a pipe: grep -q stops early, and the writer's SIGPIPE
# would read as "no".
has_secret() { grep -qF -f <("$1" | tr ',' '\n' | grep .); }

# Everywhere a secret must not show, one file each under $evidence: make setup's output, every service's
# logs, each container's command line and healthcheck (what `docker inspect` and `docker ps` show as the
# command), docker ps, the image's history.
gather_evidence() {
  local s id
  cp "$setup_log" "$evidence/make-setup-output"
  for s in "${SERVICES[@]}"; do
    compose logs --no-color "$s" >"$evidence/logs-of-$s" 2>&1
    [ -s "$evidence/logs-of-$s" ] || die "no logs from $s"
    id="$(compose ps -q "$s" | head -n1)"
    [ -n "$id" ] || die "no container for $s"
    docker inspect -f '{{.Path}} {{json .Args}} {{json .Config.Cmd}} {{json .Config.Entrypoint}} {{json .Config.Healthcheck}}' "$id" \
      >"$evidence/command-line-or-healthcheck-of-$s"
  done
  docker ps --no-trunc --format '{{.Command}}' >"$evidence/docker-ps"
  docker history --no-trunc --format '{{.CreatedBy}}' "$(setting HUB_IMAGE)" >"$evidence/image-history"
}

# shows_nowhere WHAT LIST FILE VAR: the stack has such a secret, its file (unless VAR came from the
# environment) is mode 600 and git-ignored, and no evidence file holds it.
shows_nowhere() {
  local what=$1 list=$2 file=$3 var=$4 f
  [ -n "$("$list")" ] || die "no $what after make setup ($file)"
  if [ -z "${!var:-}" ]; then
    [ "$(stat -c %a "$file")" = 600 ] || die "$file is not mode 600"
    git check-ignore -q "$file" || die "$file is not git-ignored"
  fi
  for f in "$evidence"/*; do
    ! has_secret "$list" <"$f" || die "the $what is in the ${f##*/}"
  done
}

# The API key is handed to the hubs alone: the environment of redis and the web servers lacks it.
api_key_only_in_hubs() {
  local s id env
  for s in redis web1 web2; do
    id="$(compose ps -q "$s" | head -n1)"
    [ -n "$id" ] || die "no container for $s"
    env="$(docker inspect -f '{{json .Config.Env}}' "$id")"
    ! has_secret api_keys <<<"$env" || die "the server API key is in the environment of $s"
  done
}

# Each hub's API port is published on 127.0.0.1 only: docker says so, no host socket listens on that
# port at another address, and nothing answers there at any other address of this machine.
api_on_loopback_only() {
  local s port id published addrs ip code
  for s in hub1 hub2; do
    port="$(setting "${s^^}_API_PORT")"
    id="$(compose ps -q "$s" | head -n1)"
    published="$(docker port "$id" 8090/tcp | sort -u)"
    [ "$published" = "127.0.0.1:$port" ] || die "$s's API (8090/tcp) is published on: ${published//$'\n'/, } (want 127.0.0.1:$port only)"
    # docker-proxy's sockets (none with the proxy off: then docker port and the probe below decide).
    addrs="$(ss -Hltn "sport = :$port" | awk '{print $4}' | sort -u)"
    if [ -n "$addrs" ] && grep -qv "^127\.0\.0\.1:$port\$" <<<"$addrs"; then die "a host socket listens on port $port beyond 127.0.0.1: ${addrs//$'\n'/, }"; fi
    for ip in $(ip -o addr show | awk '$3 == "inet" || $3 == "inet6" {sub(/\/.*/, "", $4); print $4}'); do
      case "$ip" in 127.* | ::1 | fe80:*) continue ;; *:*) ip="[$ip]" ;; esac
      code="$(curl -s -o /dev/null -w '%{http_code}' --max-time 3 "http://$ip:$port/metrics" || true)"
      [ "$code" = 000 ] || die "$s's API answered $code at http://$ip:$port/metrics (want no answer off 127.0.0.1)"
    done
    say "$s's API: published on 127.0.0.1:$port only ($(wc -w <<<"$addrs") host socket(s), none elsewhere; no answer at this machine's other addresses)"
  done
}

setup_log="$(mktemp)"
build_start=$(date +%s)
make --no-print-directory setup 2>&1 | tee "$setup_log"
lap "make setup done: build + start + healthy in $(( $(date +%s) - build_start )) s"

node --test deploy/compose.test.mjs
lap "jwt checks, browser scenario and server API checks passed"

api_on_loopback_only
lap "the API ports are bound to 127.0.0.1 only"

evidence="$(mktemp -d)"
gather_evidence
shows_nowhere "JWT secret" jwt_secrets "$JWT_SECRET_FILE" HUB_JWT_SECRETS
shows_nowhere "server API key" api_keys "$API_KEY_FILE" HUB_API_KEYS
api_key_only_in_hubs
rm -rf "$setup_log" "$evidence"
lap "the JWT secret and the API key are in no log, command line, healthcheck or image history, nor in make setup's output; the API key only in the hubs' environment"

make --no-print-directory teardown
left="$(stack_leftovers | sort -u)"
[ -z "$left" ] || { printf '%s\n' "$left" >&2; die "make teardown left the above behind"; }
lap "make teardown left no container, network or volume behind"
say "test-compose passed in $(( $(date +%s) - t0 )) s"
