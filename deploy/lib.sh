# shellcheck shell=bash
# Sourced by every deploy script: the repository root, the compose command of this machine
# (`docker compose` when the plugin exists, else `docker-compose`), and the classic image builder
# when buildx is absent (BuildKit needs buildx; the Dockerfile works with both builders).

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT" || exit 1

say() { printf '==> %s\n' "$*" >&2; }
die() { printf 'error: %s\n' "$*" >&2; exit 1; }

if ! docker buildx version >/dev/null 2>&1; then
  export DOCKER_BUILDKIT=0
  # Compose 1.29 builds through the API (docker-py), never through a BuildKit-only CLI.
  export COMPOSE_DOCKER_CLI_BUILD=0
fi

# The compose command as an array: compose up -d ...
if docker compose version >/dev/null 2>&1; then
  COMPOSE=(docker compose)
elif command -v docker-compose >/dev/null 2>&1; then
  COMPOSE=(docker-compose)
else
  COMPOSE=()
fi

compose() {
  [ ${#COMPOSE[@]} -gt 0 ] || die "neither 'docker compose' nor 'docker-compose' is installed (Debian: apt-get install docker-compose)"
  "${COMPOSE[@]}" "$@"
}

engine_up() { docker info >/dev/null 2>&1; }

require_engine() {
  command -v docker >/dev/null 2>&1 || die "docker is not installed (Debian: apt-get install docker.io docker-compose)"
  engine_up || die "the Docker engine does not answer: start it (e.g. 'sudo systemctl start docker') and retry"
}

# Every service of the stack, in start order.
# shellcheck disable=SC2034 # used by the scripts that source this file
SERVICES=(redis hub1 hub2 web1 web2)

# Health of one service's container: healthy, starting, unhealthy, exited, or missing.
service_health() {
  local id
  id="$(compose ps -q "$1" 2>/dev/null | head -n1)"
  [ -n "$id" ] || { echo missing; return; }
  docker inspect -f '{{if .State.Health}}{{.State.Health.Status}}{{else}}{{.State.Status}}{{end}}' "$id" 2>/dev/null || echo missing
}

# A stack setting as compose sees it: the environment first, else its default in .env.
setting() {
  local v="${!1:-}"
  [ -n "$v" ] || v="$(sed -n "s/^$1=//p" .env | tail -n1)"
  printf '%s' "$v"
}
