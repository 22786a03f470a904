#!/usr/bin/env bash
# The deployment kit's offline checks, for `make test`: the Kubernetes manifests (deploy/k8s/validate.sh),
# the monitoring profile's Prometheus configuration and alerting rules (deploy/monitoring/check.sh), and
# the choice of compose command (deploy/compose-command.test.sh). No Docker engine and no cluster needed;
# ~15 s once target/k8s-validate-venv exists.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
deploy/k8s/validate.sh
deploy/monitoring/check.sh
deploy/compose-command.test.sh
