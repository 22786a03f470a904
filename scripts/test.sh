#!/usr/bin/env bash
# `make test`: the module graph of every crate (no module uses one that uses it back), unit and
# integration tests of every crate against a real redis-server (and, for
# /metrics, a real Prometheus server) the tests start on free ports, the Autobahn WebSocket
# conformance cases against the hub's own accept + handshake + session code, the deployment kit's
# offline checks (Kubernetes manifests against the API schemas, Prometheus rules), then the
# real-browser tests of the pages in Debian's headless Chromium. Between them, the JS SDK's tests
# (the conformance scenarios the Rust SDK runs in `cargo test`, here in Node and in Chromium).
set -euo pipefail
cd "$(dirname "$0")/.."

scripts/ensure-deps.sh redis-server prometheus promtool chromium node npm
scripts/module-graph.test.sh
scripts/module-graph.py
cargo test --workspace --locked
clients/js/test/run.sh # the JS SDK: unit, conformance in Node and in Chromium, the reconnect spread (uses target/debug/hub-server)
# make bench-c250k, small: 20,000 connections over 3 hubs, one of them killed mid-run; fails on a
# missing figure, a loss or a duplicate.
C250K_CONNECTIONS=20000 C250K_DURATION=8s C250K_BUDGET=300 bench/c250k.sh
scripts/autobahn.sh
deploy/check.sh
tests/browser/run.sh
