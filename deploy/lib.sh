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

# The stack's secrets, each in a file of .secrets/ (git-ignored, mode 600) as one line VAR=<value>,
# made by `make setup` on first run, never in git, kept by `make teardown`. VAR set in the environment
# wins over its file (and no file is written then). Every compose call hands them to compose through its
# environment (compose() below), never on a command line.
#
# The HS256 secret(s) shared by the hubs (verify) and the web servers (sign the demo tokens):
# HUB_JWT_SECRETS=<secret>[,<older secret>...]; every one verifies, the web servers sign with the first.
JWT_SECRET_FILE=.secrets/jwt.env
# The key(s) of the hubs' server API: HUB_API_KEYS=<key>[,<older key>...]; the hubs accept every one.
API_KEY_FILE=.secrets/api.env

# secret_value VAR FILE: the environment's VAR, else FILE's last VAR= line, else empty (no file yet).
secret_value() {
  local var=$1 file=$2
  if [ -n "${!var:-}" ]; then
    printf '%s' "${!var}"
  elif [ -r "$file" ]; then
    sed -n "s/^$var=//p" "$file" | tail -n1 | tr -d '\r\n'
  fi
}

jwt_secrets() { secret_value HUB_JWT_SECRETS "$JWT_SECRET_FILE"; }
api_keys() { secret_value HUB_API_KEYS "$API_KEY_FILE"; }

# ensure_secret_file VAR FILE WHAT COMMENT...: makes FILE on first run: the COMMENT lines, then
# VAR=<48 random bytes, base64url> (64 characters: URL-, YAML- and comma-safe). Never printed. Leaves an
# existing file (or VAR set in the environment) alone, so what was signed or configured with it before
# a re-setup still works.
ensure_secret_file() {
  local var=$1 file=$2 what=$3
  shift 3
  [ -z "${!var:-}" ] || return 0
  if [ -e "$file" ]; then
    [ -n "$(secret_value "$var" "$file")" ] || die "$file has no $var=<value> line: fix it, or delete it and run make setup again for a new $what"
    chmod 600 "$file"
    return 0
  fi
  local value tmp line
  value="$(head -c 48 /dev/urandom | base64 | tr '+/' '-_' | tr -d '=\n')"
  [ ${#value} -ge 64 ] || die "could not read 48 random bytes from /dev/urandom"
  (
    umask 077
    mkdir -p "$(dirname "$file")"
    tmp="$file.tmp.$$"
    {
      for line in "$@"; do printf '# %s\n' "$line"; done
      printf '%s=%s\n' "$var" "$value"
    } >"$tmp"
    mv "$tmp" "$file"
  )
  say "made a random $what in $file (mode 600, git-ignored, kept by make teardown)"
}

ensure_jwt_secret() {
  ensure_secret_file HUB_JWT_SECRETS "$JWT_SECRET_FILE" "JWT secret" \
    "HS256 secret(s) of the compose stack, made by 'make setup'. Git-ignored; 'make teardown' keeps it." \
    "Comma-separated: every one is accepted by the hubs, the web servers sign with the first." \
    "Rotate: put a new secret first (HUB_JWT_SECRETS=new,old), make setup, later drop the old one;" \
    "or delete this file and run make setup (every token signed so far is then refused)."
}

ensure_api_key() {
  ensure_secret_file HUB_API_KEYS "$API_KEY_FILE" "server API key" \
    "Key(s) of the compose stack's server API (Authorization: Bearer <key>), made by 'make setup'." \
    "Git-ignored; 'make teardown' keeps it. Comma-separated: the hubs accept every one." \
    "Rotate: put a new key first (HUB_API_KEYS=new,old), make setup, move the callers, drop the old one." \
    "For curl: KEY=\$(sed -n 's/^HUB_API_KEYS=//p' $API_KEY_FILE | cut -d, -f1)"
}

# Every compose call gets the secrets through its environment (not its command line): the hubs'
# HUB_JWT_SECRETS and HUB_API_KEYS, and the web servers' WEB_JWT_SECRET, the first JWT secret, unless
# the hubs run with HUB_AUTH_MODE=off (then the pages run anonymous). Empty when there is no file yet,
# so ps, logs and teardown work before the first setup (a hub with no API key serves no API).
compose() {
  [ ${#COMPOSE[@]} -gt 0 ] || die "neither 'docker compose' nor 'docker-compose' is installed (Debian: apt-get install docker-compose)"
  local secrets web="" keys
  secrets="$(jwt_secrets)"
  keys="$(api_keys)"
  if [ "$(setting HUB_AUTH_MODE)" != off ]; then web="${WEB_JWT_SECRET:-${secrets%%,*}}"; fi
  HUB_JWT_SECRETS="$secrets" WEB_JWT_SECRET="$web" HUB_API_KEYS="$keys" "${COMPOSE[@]}" "$@"
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
