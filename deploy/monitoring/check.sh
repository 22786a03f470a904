#!/usr/bin/env bash
# Checks the monitoring profile's Prometheus files offline, for `make test` (through deploy/check.sh):
# promtool check config (prometheus.yml, with the rule file it names), promtool check rules, and
# promtool test rules alerts.test.yml (each alert fires when it should and stays quiet before).
# promtool comes with Debian's prometheus package (installed when missing, as root).
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")"
../../scripts/ensure-deps.sh promtool
promtool check config prometheus.yml
promtool check rules alerts.yml
promtool test rules alerts.test.yml
