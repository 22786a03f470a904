#!/usr/bin/env bash
# `make teardown`: stops and removes the stack's containers, its network and its volumes.
# The built image stays, so the next `make setup` starts from the build cache, and so do the JWT
# secret in .secrets/jwt.env, so tokens signed before still verify after the next `make setup`, and the
# server API key in .secrets/api.env, so backends configured with it keep working.
set -euo pipefail
# shellcheck source=deploy/lib.sh
source "$(dirname "$0")/lib.sh"
require_engine
# Every profile's services too (Prometheus), whether or not the profile is on now.
compose "${ALL_PROFILES[@]/#/--profile=}" down --volumes --remove-orphans --timeout 20
say "removed the realtime-hub containers, network and volumes"
if [ -e "$JWT_SECRET_FILE" ]; then
  say "kept the JWT secret in $JWT_SECRET_FILE (delete it for a new one at the next make setup)"
fi
if [ -e "$API_KEY_FILE" ]; then
  say "kept the server API key in $API_KEY_FILE (delete it for a new one at the next make setup)"
fi
