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

# The compose command as an array: compose up -d ... `docker compose` (v2, the plugin) when it answers,
# else `docker-compose` (1.29, Debian's package). Both read docker-compose.yml and .env the same way.
# COMPOSE_MISSING says exactly what was looked for when neither is there.
COMPOSE=()
COMPOSE_MISSING=""
if command -v docker >/dev/null 2>&1 && docker compose version >/dev/null 2>&1; then
  COMPOSE=(docker compose)
elif command -v docker-compose >/dev/null 2>&1; then
  COMPOSE=(docker-compose)
else
  if command -v docker >/dev/null 2>&1; then
    COMPOSE_MISSING="'docker compose' (the Compose v2 plugin of $(command -v docker)) is not installed"
  else
    COMPOSE_MISSING="'docker compose' is not available (no docker command on PATH)"
  fi
  COMPOSE_MISSING+=" and no 'docker-compose' (v1.29) is on PATH ($PATH). Install either: Debian's"
  COMPOSE_MISSING+=" 'apt-get install docker-compose', or Docker's docker-compose-plugin package"
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
# The secret the hubs sign their backend hook requests with (HUB_HOOK_SECRET) and the web servers, the
# demo backend, check them with (WEB_HOOK_SECRET, the same value): HUB_HOOK_SECRET=<secret>.
HOOK_SECRET_FILE=.secrets/hook.env

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
hook_secret() { secret_value HUB_HOOK_SECRET "$HOOK_SECRET_FILE"; }

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

ensure_hook_secret() {
  ensure_secret_file HUB_HOOK_SECRET "$HOOK_SECRET_FILE" "hook secret" \
    "Secret the compose stack's hubs sign their backend hook requests with (publish proxy, webhooks)," \
    "and the web servers (the demo backend) check them with. Made by 'make setup'. Git-ignored;" \
    "'make teardown' keeps it. Rotate: delete this file and run make setup (hubs and web servers restart together)."
}

# Every compose call gets the secrets through its environment (not its command line): the hubs'
# HUB_JWT_SECRETS and HUB_API_KEYS, and the web servers' WEB_JWT_SECRET, the first JWT secret, unless
# the hubs run with HUB_AUTH_MODE=off (then the pages run anonymous), and WEB_API_KEY, the first API
# key, with which their status page reads the hubs' APIs server-side, and HUB_HOOK_SECRET (compose gives
# it to the web servers as WEB_HOOK_SECRET). Empty when there is no file yet,
# so ps, logs and teardown work before the first setup (a hub with no API key serves no API).
# Each hub's allowed origins follow where its page can be opened (page_origins), unless
# HUB1_ALLOWED_ORIGINS / HUB2_ALLOWED_ORIGINS are set in the environment.
compose() {
  [ ${#COMPOSE[@]} -gt 0 ] || die "no compose command: $COMPOSE_MISSING"
  local secrets web="" keys hook origins1 origins2
  secrets="$(jwt_secrets)"
  keys="$(api_keys)"
  hook="$(hook_secret)"
  if [ "$(setting HUB_AUTH_MODE)" != off ]; then web="${WEB_JWT_SECRET:-${secrets%%,*}}"; fi
  origins1="${HUB1_ALLOWED_ORIGINS:-$(page_origins "$(setting WEB1_PORT)")}"
  origins2="${HUB2_ALLOWED_ORIGINS:-$(page_origins "$(setting WEB2_PORT)")}"
  HUB_JWT_SECRETS="$secrets" WEB_JWT_SECRET="$web" HUB_API_KEYS="$keys" WEB_API_KEY="${keys%%,*}" \
    HUB_HOOK_SECRET="$hook" \
    HUB1_ALLOWED_ORIGINS="$origins1" HUB2_ALLOWED_ORIGINS="$origins2" \
    COMPOSE_PROFILES="$(setting COMPOSE_PROFILES)" "${COMPOSE[@]}" "$@"
}

# The hosts a browser may load the pages from: localhost and 127.0.0.1 always; with BIND_ADDRESS
# widened, PUBLIC_HOSTS when set, else this machine's names and IPv4 addresses for 0.0.0.0 (what
# Docker publishes on), its names and every address for ::, or BIND_ADDRESS itself. One a line.
page_hosts() {
  local bind public
  bind="$(setting BIND_ADDRESS)"
  public="$(setting PUBLIC_HOSTS)"
  {
    printf '%s\n' localhost 127.0.0.1
    case "$bind" in
      "" | 127.* | localhost | ::1 | "[::1]") ;;
      *)
        if [ -n "$public" ]; then
          tr ', ' '\n\n' <<<"$public"
        elif [ "$bind" = 0.0.0.0 ] || [ "$bind" = :: ] || [ "$bind" = "[::]" ]; then
          hostname 2>/dev/null || true
          hostname -f 2>/dev/null || true
          for ip in $(hostname -I 2>/dev/null); do
            case "$ip" in fe80:*) ;; *:*) [ "$bind" = 0.0.0.0 ] || echo "$ip" ;; *) echo "$ip" ;; esac
          done
        else
          echo "$bind"
        fi
        ;;
    esac
  } | tr -d '[]' | grep -v '^$' | awk '!seen[$0]++'
}

# page_origins PORT: the pages' origins on PORT, comma-separated: http://host:PORT, http://[v6]:PORT.
page_origins() {
  local port=$1 host out=""
  while read -r host; do
    case "$host" in *:*) host="[$host]" ;; esac
    out+="${out:+,}http://$host:$port"
  done < <(page_hosts)
  printf '%s' "$out"
}

# The compose profiles in use (COMPOSE_PROFILES, from the environment or .env; compose reads the same).
profile_on() { [[ ",$(setting COMPOSE_PROFILES)," == *",$1,"* ]]; }

engine_up() { docker info >/dev/null 2>&1; }

require_engine() {
  command -v docker >/dev/null 2>&1 || die "docker is not installed (Debian: apt-get install docker.io docker-compose)"
  engine_up || die "the Docker engine does not answer: start it (e.g. 'sudo systemctl start docker') and retry"
}

# Every service of the stack, in start order; prometheus with the monitoring profile.
# shellcheck disable=SC2034 # used by the scripts that source this file
SERVICES=(redis hub1 hub2 web1 web2)
# Every optional profile docker-compose.yml defines: teardown removes their services too.
# shellcheck disable=SC2034
ALL_PROFILES=(monitoring)

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

if profile_on monitoring; then SERVICES+=(prometheus); fi
