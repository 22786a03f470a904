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

# The compose stack's HS256 secret(s), shared by the hubs (verify) and the web servers (sign the demo
# tokens). Made by `make setup` on first run (ensure_jwt_secret), never in git, kept by `make teardown`.
# One line HUB_JWT_SECRETS=<secret>[,<older secret>...]: every one verifies, the web servers sign with
# the first. HUB_JWT_SECRETS in the environment wins over the file.
JWT_SECRET_FILE=.secrets/jwt.env

# The secret list: the environment's HUB_JWT_SECRETS, else the file's, else empty (no file yet).
jwt_secrets() {
  if [ -n "${HUB_JWT_SECRETS:-}" ]; then
    printf '%s' "$HUB_JWT_SECRETS"
  elif [ -r "$JWT_SECRET_FILE" ]; then
    sed -n 's/^HUB_JWT_SECRETS=//p' "$JWT_SECRET_FILE" | tail -n1 | tr -d '\r\n'
  fi
}

# Makes the secret file on first run: 48 random bytes, base64url (64 characters: URL-, YAML- and
# comma-safe). Never printed. Leaves an existing file (or an environment override) alone, so tokens
# signed before a re-setup still verify.
ensure_jwt_secret() {
  [ -z "${HUB_JWT_SECRETS:-}" ] || return 0
  if [ -e "$JWT_SECRET_FILE" ]; then
    [ -n "$(jwt_secrets)" ] || die "$JWT_SECRET_FILE has no HUB_JWT_SECRETS=<secret> line: fix it, or delete it and run make setup again for a new secret"
    chmod 600 "$JWT_SECRET_FILE"
    return 0
  fi
  local secret tmp
  secret="$(head -c 48 /dev/urandom | base64 | tr '+/' '-_' | tr -d '=\n')"
  [ ${#secret} -ge 64 ] || die "could not read 48 random bytes from /dev/urandom"
  (
    umask 077
    mkdir -p "$(dirname "$JWT_SECRET_FILE")"
    tmp="$JWT_SECRET_FILE.tmp.$$"
    {
      echo "# HS256 secret(s) of the compose stack, made by 'make setup'. Git-ignored; 'make teardown' keeps it."
      echo "# Comma-separated: every one is accepted by the hubs, the web servers sign with the first."
      echo "# Rotate: put a new secret first (HUB_JWT_SECRETS=new,old), make setup, later drop the old one;"
      echo "# or delete this file and run make setup (every token signed so far is then refused)."
      printf 'HUB_JWT_SECRETS=%s\n' "$secret"
    } >"$tmp"
    mv "$tmp" "$JWT_SECRET_FILE"
  )
  say "made a random JWT secret in $JWT_SECRET_FILE (mode 600, git-ignored, kept by make teardown)"
}

# Every compose call gets the secrets through its environment (not its command line): the hubs'
# HUB_JWT_SECRETS, and the web servers' WEB_JWT_SECRET, the first of them, unless the hubs run with
# HUB_AUTH_MODE=off (then the pages run anonymous). Empty when there is no file yet, so ps, logs and
# teardown work before the first setup.
compose() {
  [ ${#COMPOSE[@]} -gt 0 ] || die "neither 'docker compose' nor 'docker-compose' is installed (Debian: apt-get install docker-compose)"
  local secrets web=""
  secrets="$(jwt_secrets)"
  if [ "$(setting HUB_AUTH_MODE)" != off ]; then web="${WEB_JWT_SECRET:-${secrets%%,*}}"; fi
  HUB_JWT_SECRETS="$secrets" WEB_JWT_SECRET="$web" "${COMPOSE[@]}" "$@"
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
