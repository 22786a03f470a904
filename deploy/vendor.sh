#!/usr/bin/env bash
# Copies the source of every crate in Cargo.lock into vendor/, so the image builds with no network
# inside the container (a container with no registry access reaches no crates.io either).
# The Dockerfile switches cargo to vendor/ only when it holds crates; an empty vendor/ (as in git)
# means an ordinary online build. The host's own cargo is left alone: no .cargo/config.toml here.
# `deploy/vendor.sh --clean` empties vendor/ again.
set -euo pipefail
# shellcheck source=deploy/lib.sh
source "$(dirname "$0")/lib.sh"

if [ "${1:-}" = --clean ]; then
  find vendor -mindepth 1 -maxdepth 1 ! -name .gitkeep -exec rm -rf {} +
  exit 0
fi
say "cargo vendor (Cargo.lock -> vendor/)"
# Like any cargo command, this brings Cargo.lock up to date with the manifests first if needed.
cargo vendor --quiet vendor >/dev/null
touch vendor/.gitkeep
say "vendor/: $(find vendor -mindepth 1 -maxdepth 1 -type d | wc -l) crates, $(du -sh vendor | cut -f1)"
