#!/usr/bin/env bash
# Makes sure a Docker engine answers: installs Debian's docker.io + docker-compose when missing (root
# or password-less sudo, via scripts/ensure-deps.sh), and starts dockerd when installed but not
# running (CI containers and sandboxes have no systemd). Used by `make test-compose`.
# Log of a dockerd started here: ${DOCKERD_LOG:-/tmp/realtime-hub-dockerd.log}.
set -euo pipefail
# shellcheck source=deploy/lib.sh
source "$(dirname "$0")/lib.sh"

scripts/ensure-deps.sh docker
# A compose command: the v2 plugin when the docker client has it, else Debian's docker-compose (1.29).
docker compose version >/dev/null 2>&1 || scripts/ensure-deps.sh docker-compose
engine_up && exit 0
# A docker client alone (some images ship one) cannot start an engine: the daemon comes with docker.io.
scripts/ensure-deps.sh dockerd

[ "$(id -u)" -eq 0 ] || die "the Docker engine is not running; start it (sudo systemctl start docker) and retry"
log="${DOCKERD_LOG:-/tmp/realtime-hub-dockerd.log}"

start_dockerd() { # start_dockerd [extra dockerd flags]: 0 once `docker info` answers
  say "starting dockerd $*"
  setsid /usr/sbin/dockerd "$@" >"$log" 2>&1 </dev/null &
  local pid=$!
  for _ in $(seq 1 60); do
    engine_up && return 0
    kill -0 "$pid" 2>/dev/null || return 1
    sleep 1
  done
  kill "$pid" 2>/dev/null || true
  return 1
}

if command -v systemctl >/dev/null 2>&1 && [ -d /run/systemd/system ]; then
  systemctl start docker && for _ in $(seq 1 30); do engine_up && exit 0; sleep 1; done
fi
start_dockerd && exit 0
tail -n 20 "$log" >&2 || true
# Nested or restricted kernels: no overlayfs, or no iptables. The slower, always-working settings.
# (Containers then reach each other on the compose network, and published ports still work through
# docker-proxy.)
start_dockerd --storage-driver=vfs --iptables=false && exit 0
tail -n 30 "$log" >&2 || true
die "dockerd did not start (log: $log)"
