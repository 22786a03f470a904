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
# The run turns the `monitoring` profile on: Prometheus must see both hubs up, load the alerting rules
# and read realtime_hub_redis_up. The hubs' container healthcheck is liveness: with Redis paused, they
# stay healthy while unready (and Prometheus reads redis_up 0). Redis runs with a random password for
# the run, which must be on no process command line (ps, docker top, docker inspect). The stack is
# published on every interface (BIND_ADDRESS=0.0.0.0) with 127.0.0.2 standing for another machine's
# address (PUBLIC_HOSTS): the pages answer there and connect to their hub there, and each hub accepts
# its own page's origin there and no other. Each web server's status page shows both hubs up, and no
# page holds the API key (the web servers have it, as WEB_API_KEY, and nothing else does but the hubs). deploy/compose-command.test.sh first checks the choice between `docker compose` and
# `docker-compose`.
# The stack is torn down even when a step fails; its logs are printed first.
set -euo pipefail
# shellcheck source=deploy/lib.sh
source "$(dirname "$0")/lib.sh"

# This run's settings (see above). The password: letters and digits, URL-safe.
REDIS_PASSWORD="rt$(head -c 18 /dev/urandom | od -An -tx1 | tr -d ' \n')"
export REDIS_PASSWORD COMPOSE_PROFILES=monitoring BIND_ADDRESS=0.0.0.0 PUBLIC_HOSTS=127.0.0.2
# shellcheck source=deploy/lib.sh
source deploy/lib.sh

t0=$(date +%s)
lap() { say "$1 ($(( $(date +%s) - t0 )) s so far)"; }

deploy/compose-command.test.sh
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
    # A step may have failed with Redis paused.
    docker unpause "$(compose ps -q redis 2>/dev/null | head -n1)" >/dev/null 2>&1 || true
    compose "${ALL_PROFILES[@]/#/--profile=}" down --volumes --remove-orphans --timeout 20 >&2 || true
  fi
  exit $rc
}
trap cleanup EXIT

# A stack left over from an earlier run would be reused half-built: start clean.
compose "${ALL_PROFILES[@]/#/--profile=}" down --volumes --remove-orphans --timeout 20 >/dev/null 2>&1 || true
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

# The API key is handed to the hubs, and to the web servers as WEB_API_KEY alone (their status page
# reads the hubs' APIs server-side): redis's environment lacks it, and so does every other variable.
api_key_only_in_hubs() {
  local s id env
  for s in redis web1 web2; do
    id="$(compose ps -q "$s" | head -n1)"
    [ -n "$id" ] || die "no container for $s"
    env="$(docker inspect -f '{{range .Config.Env}}{{println .}}{{end}}' "$id")"
    [ "$s" = redis ] || env="$(grep -v '^WEB_API_KEY=' <<<"$env")"
    ! has_secret api_keys <<<"$env" || die "the server API key is in the environment of $s (beyond WEB_API_KEY)"
  done
}

# Each web server's status page (/status) reads both hubs through their APIs inside the network: its
# data names hub1 and hub2, both up; neither the page, its data nor the chat page holds the API key.
status_page_sees_both_hubs() {
  local n web path file
  for n in 1 2; do
    web="http://localhost:$(setting "WEB${n}_PORT")"
    # Asking is what starts the reading (the hubs are read only while someone watches).
    both_up() {
      LAST="$(curl -sf --max-time 3 "$web/status/data" | node -e '
        const d = JSON.parse(require("fs").readFileSync(0, "utf8"));
        console.log(d.configured, d.hubs.map(h => `${h.name}=${h.state}`).sort().join(" "))' 2>&1 || true)"
      [ "$LAST" = "true hub1=up hub2=up" ]
    }
    until_true 30 "web$n's status page shows hub1 and hub2 up ($web/status/data)" both_up
    for path in /status/data /status /; do
      file="$evidence_pages/web$n${path//\//_}"
      curl -sf --max-time 3 "$web$path" >"$file" || die "$web$path did not answer 200"
      ! has_secret api_keys <"$file" || die "the server API key is in $web$path"
    done
  done
  say "status pages: web1 and web2 show hub1 and hub2 up; the API key in none of /, /status, /status/data"
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

# A JSON answer of Prometheus's HTTP API, reduced by a JS expression over `d` (its data) to one line.
prom() { # prom PATH JS
  local body
  body="$(curl -sf --max-time 3 "http://127.0.0.1:$(setting PROMETHEUS_PORT)$1")" || return 1
  node -e 'const d = JSON.parse(require("fs").readFileSync(0, "utf8")).data; console.log(eval(process.argv[1]))' "$2" <<<"$body"
}
# until_true SECONDS WHAT COMMAND...: COMMAND succeeds within SECONDS, or the test fails saying WHAT
# and what COMMAND last saw (it may put that in LAST).
LAST=""
until_true() {
  local limit=$1 what=$2 end
  shift 2
  end=$(( $(date +%s) + limit ))
  LAST=""
  until "$@"; do
    [ "$(date +%s)" -lt "$end" ] || die "not within ${limit}s: $what (last seen: ${LAST:-nothing})"
    sleep 1
  done
}
# redis_up_is "hub1:8090=V hub2:8090=V": realtime_hub_redis_up as Prometheus last read it from each hub.
redis_up_is() {
  LAST="$(prom '/api/v1/query?query=realtime_hub_redis_up' \
    'd.result.map(r => `${r.metric.instance}=${r.value[1]}`).sort().join(" ")' || echo 'no answer')"
  [ "$LAST" = "$1" ]
}

# Prometheus (monitoring profile) scrapes both hubs, has loaded every alerting rule, fires none.
prometheus_sees_both_hubs() {
  local want_rules got
  targets_up() {
    LAST="$(prom '/api/v1/targets?state=active' \
      'd.activeTargets.filter(t => t.labels.job === "realtime-hub").map(t => `${t.labels.instance}=${t.health} ${t.lastError}`).sort().join(", ")' \
      || echo 'no answer')"
    [ "$LAST" = "hub1:8090=up , hub2:8090=up " ]
  }
  until_true 60 "Prometheus sees hub1:8090 and hub2:8090 up (/api/v1/targets)" targets_up
  want_rules="$(sed -n 's/^ *- alert: //p' deploy/monitoring/alerts.yml | sort | tr '\n' ' ')"
  got="$(prom /api/v1/rules 'd.groups.flatMap(g => g.rules).filter(r => r.type === "alerting" && r.health === "ok").map(r => r.name).sort().join(" ")') "
  [ "$got" = "$want_rules" ] || die "Prometheus's alerting rules: '$got', want '$want_rules' (all healthy)"
  until_true 30 "Prometheus reads realtime_hub_redis_up 1 from both hubs" redis_up_is "hub1:8090=1 hub2:8090=1"
  got="$(prom /api/v1/alerts 'd.alerts.filter(a => a.state === "firing").map(a => a.labels.alertname).join(" ")')"
  [ -z "$got" ] || die "alerts firing on a healthy stack: $got"
  say "Prometheus: hub1:8090 and hub2:8090 up, rules loaded ($want_rules), realtime_hub_redis_up 1 on both, nothing firing"
}

# With Redis paused, each hub is unready (/health 503, what `hub-server healthcheck` asks) but stays
# healthy for its container healthcheck (/health/live) well past interval x retries, and so do the
# web servers; Prometheus reads redis_up 0. Then Redis comes back and the hubs are ready again.
liveness_not_readiness() {
  local redis s h
  redis="$(compose ps -q redis | head -n1)"
  ready() { compose exec -T "$1" hub-server healthcheck >/dev/null 2>&1; }
  not_ready() { ! ready "$1"; }
  both_unready() { not_ready hub1 && not_ready hub2; }
  docker pause "$redis" >/dev/null
  until_true 20 "hub1 and hub2 unready with Redis paused" both_unready
  until_true 30 "Prometheus reads realtime_hub_redis_up 0 from both hubs" redis_up_is "hub1:8090=0 hub2:8090=0"
  # Healthcheck every 5 s, 3 retries: a readiness healthcheck would turn unhealthy within ~15 s.
  sleep 20
  for s in hub1 hub2 web1 web2; do
    h="$(service_health "$s")"
    [ "$h" = healthy ] || { docker unpause "$redis" >/dev/null; die "$s is $h after 20 s of Redis paused (its healthcheck must be liveness)"; }
  done
  not_ready hub1 || { docker unpause "$redis" >/dev/null; die "hub1 became ready with Redis still paused"; }
  docker unpause "$redis" >/dev/null
  for s in hub1 hub2; do until_true 30 "$s ready again after Redis came back" ready "$s"; done
  say "Redis paused 20+ s: hubs unready, still healthy (liveness), redis_up 0 in Prometheus; ready again once it was back"
}

# The process command lines of the whole machine (every container's processes included) and of each
# container as docker shows them hold no Redis password; the control: redis's environment does.
redis_password_on_no_command_line() {
  local s id
  id="$(compose ps -q redis | head -n1)"
  docker inspect -f '{{json .Config.Env}}' "$id" | grep -qF "$REDIS_PASSWORD" \
    || die "control failed: the Redis password is not even in redis's environment"
  ps -eo args >"$evidence/ps-of-this-machine"
  grep -q '[r]edis-server' "$evidence/ps-of-this-machine" || die "control failed: no redis-server in ps"
  for s in "${SERVICES[@]}"; do
    id="$(compose ps -q "$s" | head -n1)"
    docker top "$id" -eo pid,args >"$evidence/docker-top-of-$s"
  done
  for f in "$evidence"/*; do
    ! grep -qF "$REDIS_PASSWORD" "$f" || die "the Redis password is in the ${f##*/}"
  done
}

# 127.0.0.2 plays another machine (PUBLIC_HOSTS): with BIND_ADDRESS=0.0.0.0 each page answers there,
# and its hub accepts a WebSocket from that page's origin, and refuses the other page's and a stranger's.
origins_follow_bind_address() {
  local n hub web other code origin want
  for n in 1 2; do
    hub="$(setting "HUB${n}_PORT")" web="$(setting "WEB${n}_PORT")" other="$(setting "WEB$((3 - n))_PORT")"
    curl -sf --max-time 5 "http://127.0.0.2:$web/" >"$evidence_pages/remote-page" || die "web$n's page at http://127.0.0.2:$web/ did not answer 200"
    # The page connects to its hub at the host it was loaded from.
    grep -qF "ws://127.0.0.2:$hub/ws" "$evidence_pages/remote-page" || die "web$n's page loaded from 127.0.0.2 does not name ws://127.0.0.2:$hub/ws"
    for origin in "http://127.0.0.2:$web=101" "http://127.0.0.2:$other=403" "http://127.0.0.3:$web=403"; do
      want="${origin##*=}" origin="${origin%=*}"
      code="$(curl -s -o /dev/null -w '%{http_code}' --max-time 2 -H 'Connection: Upgrade' -H 'Upgrade: websocket' \
        -H 'Sec-WebSocket-Version: 13' -H 'Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==' -H "Origin: $origin" \
        "http://127.0.0.2:$hub/ws" || true)"
      [ "$code" = "$want" ] || die "hub$n at 127.0.0.2:$hub answered $code to a page of $origin (want $want)"
    done
  done
  say "from 127.0.0.2 (PUBLIC_HOSTS): both pages answer and connect to ws://127.0.0.2:<their hub's port>/ws, each hub takes its page's origin (101) and refuses others (403)"
}

setup_log="$(mktemp)"
build_start=$(date +%s)
make --no-print-directory setup 2>&1 | tee "$setup_log"
lap "make setup done: build + start + healthy in $(( $(date +%s) - build_start )) s"

evidence_pages="$(mktemp -d)"
prometheus_sees_both_hubs
status_page_sees_both_hubs
origins_follow_bind_address
rm -rf "$evidence_pages"
lap "monitoring profile, status pages and widened BIND_ADDRESS checked"
# The hubs send the cluster's webhook events to web1 (HUB_WEBHOOK_URL, signed with the hook secret):
# after the browser scenario's pages joined #general, web1's /status/webhooks lists a member_added
# for it (a refused signature would leave the list empty: web1 answers 401 and the hubs retry).
web1_lists_webhook_events() {
  local web
  web="http://localhost:$(setting WEB1_PORT)"
  has_member_added() {
    LAST="$(curl -sf --max-time 3 "$web/status/webhooks" | node -e '
      const d = JSON.parse(require("fs").readFileSync(0, "utf8"));
      console.log(d.configured, d.events.some(e => e.name === "member_added" && e.room === "general"))' 2>&1 || true)"
    [ "$LAST" = "true true" ]
  }
  until_true 30 "web1's /status/webhooks lists a member_added in #general" has_member_added
}

node --test deploy/compose.test.mjs
lap "jwt checks, browser scenario and server API checks passed"

web1_lists_webhook_events
lap "the hubs' webhooks reach web1 (the demo backend), signed: its status page lists them"

liveness_not_readiness
lap "the hubs' container healthcheck is liveness"

api_on_loopback_only
lap "the API ports are bound to 127.0.0.1 only"

evidence="$(mktemp -d)"
gather_evidence
shows_nowhere "JWT secret" jwt_secrets "$JWT_SECRET_FILE" HUB_JWT_SECRETS
shows_nowhere "server API key" api_keys "$API_KEY_FILE" HUB_API_KEYS
shows_nowhere "hook secret" hook_secret "$HOOK_SECRET_FILE" HUB_HOOK_SECRET
api_key_only_in_hubs
redis_password_on_no_command_line
rm -rf "$setup_log" "$evidence"
lap "the JWT secret and the API key are in no log, command line, healthcheck or image history, nor in make setup's output; the API key only in the hubs' environment and the web servers' WEB_API_KEY; the Redis password on no command line (ps, docker top, docker inspect) nor in any log"

make --no-print-directory teardown
left="$(stack_leftovers | sort -u)"
[ -z "$left" ] || { printf '%s\n' "$left" >&2; die "make teardown left the above behind"; }
lap "make teardown left no container, network or volume behind"
say "test-compose passed in $(( $(date +%s) - t0 )) s"
