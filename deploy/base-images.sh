#!/usr/bin/env bash
# Makes sure the base images the Dockerfile and docker-compose.yml name exist in the local engine.
# A tag already present is kept; a missing one is pulled; only when no registry answers (CI and
# development machines here reach Debian's mirror but no container registry) is a stand-in made
# locally under the very same tag, so the same Dockerfile and compose file run in both worlds:
#   debian:bookworm-slim  debootstrap --variant=minbase, imported
#   rust:1-bookworm       debootstrap + gcc/libc6-dev + this machine's stable Rust toolchain
#   redis (compose tag)   debootstrap + Debian's redis-server, CMD ["redis-server"] like the official image
#   prometheus (compose tag, monitoring profile)  debootstrap + Debian's prometheus, run as nobody in
#                         /prometheus like the official image (compose sets its entrypoint and flags)
# Needs root and debootstrap (installed when missing) for the stand-ins.
set -euo pipefail
# shellcheck source=deploy/lib.sh
source "$(dirname "$0")/lib.sh"

MIRROR="${DEBIAN_MIRROR:-http://deb.debian.org/debian}"
SUITE=bookworm
WORK="${TMPDIR:-/tmp}/realtime-hub-base-images"

# The tags, read from the files that use them so they cannot drift apart.
mapfile -t FROM_TAGS < <(awk 'toupper($1)=="FROM" {print $2}' Dockerfile | sort -u)
# The Redis tag as docker-compose.yml reads it: REDIS_IMAGE from the environment, else from .env.
REDIS_TAG="$(setting REDIS_IMAGE)"
PROMETHEUS_TAG="$(setting PROMETHEUS_IMAGE)"

have() { docker image inspect "$1" >/dev/null 2>&1; }

pull() {
  say "pulling $1"
  timeout "${PULL_TIMEOUT:-300}" docker pull -q "$1" >/dev/null 2>&1
}

rootfs() { # rootfs DIR [--include=...]: a minimal Debian tree, made once per run
  local dir="$1"; shift
  say "debootstrap $SUITE into $dir $*"
  rm -rf "$dir"
  debootstrap --variant=minbase "$@" "$SUITE" "$dir" "$MIRROR" >"$dir.log" 2>&1 \
    || { tail -n 30 "$dir.log" >&2; die "debootstrap failed (log: $dir.log)"; }
  # Same mirror as the image itself uses, and no package lists left behind (as in the official images).
  echo "deb $MIRROR $SUITE main" >"$dir/etc/apt/sources.list"
  rm -rf "$dir"/var/lib/apt/lists/* "$dir"/var/cache/apt/*.bin "$dir"/var/cache/apt/archives/*.deb
}

import() { # import DIR TAG [--change ...]
  local dir="$1" tag="$2"; shift 2
  say "docker import $tag"
  tar --numeric-owner -C "$dir" -c . | docker import "$@" - "$tag" >/dev/null
  rm -rf "$dir"
}

make_debian_slim() {
  rootfs "$WORK/debian"
  import "$WORK/debian" "$1" --change 'CMD ["bash"]'
}

make_rust() {
  local toolchain
  toolchain="$(readlink -f "${RUSTUP_HOME:-$HOME/.rustup}/toolchains/stable-x86_64-unknown-linux-gnu" 2>/dev/null || true)"
  [ -x "$toolchain/bin/cargo" ] || die "no stable Rust toolchain on this machine to make $1 from (rustup toolchain install stable)"
  rootfs "$WORK/rust" --include=ca-certificates,gcc,libc6-dev,pkg-config,make
  # The official image's layout: toolchain under RUSTUP_HOME, cargo & rustc on PATH, CARGO_HOME writable.
  mkdir -p "$WORK/rust/usr/local/rustup/toolchains/stable" "$WORK/rust/usr/local/cargo/bin"
  tar -C "$toolchain" --exclude=./share/doc -c . | tar -C "$WORK/rust/usr/local/rustup/toolchains/stable" -x
  for b in cargo rustc rustdoc; do
    ln -s "/usr/local/rustup/toolchains/stable/bin/$b" "$WORK/rust/usr/local/cargo/bin/$b"
  done
  import "$WORK/rust" "$1" \
    --change 'ENV RUSTUP_HOME=/usr/local/rustup' \
    --change 'ENV CARGO_HOME=/usr/local/cargo' \
    --change 'ENV PATH=/usr/local/cargo/bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' \
    --change 'CMD ["bash"]'
}

make_redis() {
  rootfs "$WORK/redis" --include=redis-server,redis-tools
  mkdir -p "$WORK/redis/data"
  chroot "$WORK/redis" chown redis:redis /data
  # Like the official image: /data is the working directory and a volume, redis-server the command,
  # run as the unprivileged "redis" user (the official entrypoint switches to it).
  import "$WORK/redis" "$1" \
    --change 'USER redis' \
    --change 'WORKDIR /data' \
    --change 'VOLUME /data' \
    --change 'EXPOSE 6379' \
    --change 'CMD ["redis-server"]'
}

make_prometheus() {
  rootfs "$WORK/prometheus" --include=prometheus
  # The official image's layout: data in /prometheus owned by nobody, who runs it.
  mkdir -p "$WORK/prometheus/prometheus"
  chown 65534:65534 "$WORK/prometheus/prometheus"
  import "$WORK/prometheus" "$1" \
    --change 'USER nobody' \
    --change 'WORKDIR /prometheus' \
    --change 'VOLUME /prometheus' \
    --change 'EXPOSE 9090' \
    --change 'ENTRYPOINT ["/usr/bin/prometheus"]' \
    --change 'CMD ["--config.file=/etc/prometheus/prometheus.yml", "--storage.tsdb.path=/prometheus"]'
}

# Tags to make locally, with their maker; made in parallel (debootstrap waits on the mirror a lot).
to_make=()

ensure() { # ensure TAG MAKER
  local tag="$1" maker="$2"
  if have "$tag"; then say "$tag: present"; return; fi
  if [ "${NO_PULL:-0}" != 1 ] && pull "$tag"; then say "$tag: pulled"; return; fi
  say "$tag: no registry answered; making a local stand-in"
  to_make+=("$tag=$maker")
}

require_engine
for tag in "${FROM_TAGS[@]}"; do
  case "$tag" in
    rust:*) ensure "$tag" make_rust ;;
    debian:*) ensure "$tag" make_debian_slim ;;
    *) have "$tag" || pull "$tag" || die "base image $tag is missing and cannot be pulled" ;;
  esac
done
[ -n "$REDIS_TAG" ] || die "REDIS_IMAGE is set neither in the environment nor in .env"
ensure "$REDIS_TAG" make_redis
[ -n "$PROMETHEUS_TAG" ] || die "PROMETHEUS_IMAGE is set neither in the environment nor in .env"
ensure "$PROMETHEUS_TAG" make_prometheus

[ ${#to_make[@]} -gt 0 ] || exit 0
command -v debootstrap >/dev/null 2>&1 || scripts/ensure-deps.sh debootstrap
mkdir -p "$WORK"
pids=()
for item in "${to_make[@]}"; do
  "${item#*=}" "${item%%=*}" &
  pids+=($!)
done
failed=0
for pid in "${pids[@]}"; do wait "$pid" || failed=1; done
[ $failed -eq 0 ] || die "making the local base images failed (see above)"
