#!/usr/bin/env bash
# Which compose command the deploy scripts use (deploy/lib.sh), with stand-in `docker` and
# `docker-compose` programs on a PATH of their own, so no engine is needed (run by deploy/check.sh in
# make test, and by make test-compose before the real stack):
#   `docker compose` (v2) when it answers, even with docker-compose installed beside it;
#   `docker-compose` (1.29) when the v2 plugin is absent;
#   neither: the command fails, naming both and how to install them.
# Also: every compose call gets the hubs' allowed origins and the compose profiles in its environment.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
tmp="$(mktemp -d)"
trap 'rm -rf "$tmp"' EXIT
fail() { printf 'error: compose command: %s\n' "$*" >&2; exit 1; }

# A PATH holding only the tools lib.sh needs, plus the stand-ins each case adds.
mkdir -p "$tmp/base"
for tool in bash dirname sed tr grep awk head tail cat env hostname; do
  ln -s "$(command -v "$tool")" "$tmp/base/$tool"
done
stand_in() { # stand_in DIR NAME: a program that logs its arguments and chosen variables to $tmp/log
  cat >"$1/$2" <<STUB
#!$(command -v bash)
if [ "$2 \$1 \$2" = "docker compose version" ]; then
  [ -n "\${FAKE_V2:-}" ] && { echo "Docker Compose version v2.29.7"; exit 0; }
  echo "docker: unknown command: docker compose" >&2; exit 1
fi
[ "$2 \$1" = "docker buildx" ] && exit 1
echo "$2 \$* | origins=\$HUB1_ALLOWED_ORIGINS profiles=\$COMPOSE_PROFILES" >>"$tmp/log"
STUB
  chmod +x "$1/$2"
}
case_dir() { # case_dir NAME PROGRAMS...: a PATH directory with the base tools and these stand-ins
  local dir="$tmp/$1"
  shift
  cp -a "$tmp/base" "$dir"
  for p in "$@"; do stand_in "$dir" "$p"; done
  printf '%s' "$dir"
}
run_compose() { # run_compose PATHDIR [VAR=value...]: source lib.sh and run `compose ps` there
  local dir=$1
  shift
  : >"$tmp/log"
  env -i PATH="$dir" HOME="$tmp" "$@" bash -c "source '$ROOT/deploy/lib.sh' && compose ps" 2>"$tmp/err"
}

dir="$(case_dir both docker docker-compose)"
run_compose "$dir" FAKE_V2=1 COMPOSE_PROFILES=monitoring || fail "v2 + 1.29: $(cat "$tmp/err")"
grep -q '^docker compose ps | origins=http://localhost:9081,http://127.0.0.1:9081 profiles=monitoring$' "$tmp/log" \
  || fail "with both installed, want 'docker compose ps' with origins and profiles; got: $(cat "$tmp/log")"

run_compose "$dir" || fail "1.29 only: $(cat "$tmp/err")"
grep -q '^docker-compose ps | ' "$tmp/log" || fail "without the v2 plugin, want 'docker-compose ps'; got: $(cat "$tmp/log")"

dir="$(case_dir docker-only docker)"
if run_compose "$dir"; then fail "with neither, compose ps succeeded"; fi
for want in "no compose command" "'docker compose' (the Compose v2 plugin of $dir/docker) is not installed" \
  "no 'docker-compose' (v1.29) is on PATH" "apt-get install docker-compose" "docker-compose-plugin"; do
  grep -qF "$want" "$tmp/err" || fail "with neither, the error does not say: $want (it says: $(cat "$tmp/err"))"
done
[ ! -s "$tmp/log" ] || fail "with neither, something was run: $(cat "$tmp/log")"

dir="$(case_dir nothing)"
if run_compose "$dir"; then fail "without docker, compose ps succeeded"; fi
grep -qF "no docker command on PATH" "$tmp/err" || fail "without docker, the error does not say so: $(cat "$tmp/err")"

printf '==> compose command: v2 preferred, 1.29 as fallback, neither named exactly when missing\n' >&2
