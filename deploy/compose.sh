#!/usr/bin/env bash
# The stack's compose command, whichever this machine has: `docker compose` or `docker-compose`.
# Usage: deploy/compose.sh ps | logs -f | exec redis redis-cli ... (any compose subcommand)
set -euo pipefail
# shellcheck source=deploy/lib.sh
source "$(dirname "$0")/lib.sh"
require_engine
compose "$@"
