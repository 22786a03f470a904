#!/usr/bin/env bash
# `make teardown`: stops and removes the stack's containers, its network and its volumes.
# The built image stays, so the next `make setup` starts from the build cache.
set -euo pipefail
# shellcheck source=deploy/lib.sh
source "$(dirname "$0")/lib.sh"
require_engine
compose down --volumes --remove-orphans --timeout 20
say "removed the realtime-hub containers, network and volumes"
