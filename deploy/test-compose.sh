#!/usr/bin/env bash
# `make test-compose`: the compose stack for real. Makes sure a Docker engine runs (installing and
# starting it when it can), makes the base images locally when no registry answers, vendors the
# crates for an offline in-container build, runs `make setup` (the user's command, same Dockerfile
# and docker-compose.yml), chats across the two hubs in headless Chromium through ports 9081/9082
# with a hub1 stop/start in the middle and a PUBLISH count in Redis (deploy/compose.test.mjs), then
# runs `make teardown` and asserts that no container, network or volume of the stack is left.
# The stack runs in jwt mode: the browser scenario signs in first, and the stack's JWT secret (made by
# `make setup` in .secrets/jwt.env) must show nowhere: not in make setup's output, not in any
# service's logs, not in a container's command line or healthcheck, not in the image.
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

scripts/ensure-deps.sh chromium node npm
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

# Whether a text holds one of the stack's JWT secrets (fixed strings; none is printed). Fed from a
# here-string or file, never a pipe: grep -q stops early, and the writer's SIGPIPE would read as "no".
has_secret() { grep -qF -f <(jwt_secrets | tr ',' '\n' | grep .); }

secret_shows_nowhere() {
  [ -n "$(jwt_secrets)" ] || die "no JWT secret after make setup ($JWT_SECRET_FILE)"
  if [ -z "${HUB_JWT_SECRETS:-}" ]; then
    [ "$(stat -c %a "$JWT_SECRET_FILE")" = 600 ] || die "$JWT_SECRET_FILE is not mode 600"
    git check-ignore -q "$JWT_SECRET_FILE" || die "$JWT_SECRET_FILE is not git-ignored"
  fi
  ! has_secret <"$setup_log" || die "make setup printed the JWT secret"
  local s id text
  for s in "${SERVICES[@]}"; do
    text="$(compose logs --no-color "$s" 2>&1)"
    [ -n "$text" ] || die "no logs from $s"
    ! has_secret <<<"$text" || die "the JWT secret is in the logs of $s"
    id="$(compose ps -q "$s" | head -n1)"
    [ -n "$id" ] || die "no container for $s"
    # What `docker inspect` and `docker ps` show as the command, and the healthcheck's command.
    text="$(docker inspect -f '{{.Path}} {{json .Args}} {{json .Config.Cmd}} {{json .Config.Entrypoint}} {{json .Config.Healthcheck}}' "$id")"
    ! has_secret <<<"$text" || die "the JWT secret is on the command line or in the healthcheck of $s"
  done
  text="$(docker ps --no-trunc --format '{{.Command}}')"
  ! has_secret <<<"$text" || die "the JWT secret is in docker ps"
  text="$(docker history --no-trunc --format '{{.CreatedBy}}' "$(setting HUB_IMAGE)")"
  ! has_secret <<<"$text" || die "the JWT secret is in the image's history"
}

setup_log="$(mktemp)"
build_start=$(date +%s)
make --no-print-directory setup 2>&1 | tee "$setup_log"
lap "make setup done: build + start + healthy in $(( $(date +%s) - build_start )) s"

node --test deploy/compose.test.mjs
lap "jwt checks and browser scenario passed"

secret_shows_nowhere
rm -f "$setup_log"
lap "the JWT secret is in no log, command line, healthcheck or image history, nor in make setup's output"

make --no-print-directory teardown
left="$(stack_leftovers | sort -u)"
[ -z "$left" ] || { printf '%s\n' "$left" >&2; die "make teardown left the above behind"; }
lap "make teardown left no container, network or volume behind"
say "test-compose passed in $(( $(date +%s) - t0 )) s"
