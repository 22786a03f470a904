#!/usr/bin/env bash
# Makes sure the programs the tests and `make run` use are installed.
# Usage: scripts/ensure-deps.sh redis-server [prometheus] [chromium] [node]
# Installs Debian packages itself when it runs as root or with password-less sudo;
# otherwise stops and prints the exact command to run.
set -euo pipefail

declare -A package_of=(
  [redis-server]=redis-server
  [prometheus]=prometheus
  [promtool]=prometheus
  [chromium]=chromium
  [node]=nodejs
  [npm]=npm
  [docker]=docker.io
  [dockerd]=docker.io
  [debootstrap]=debootstrap
)

missing_pkgs=()
for prog in "$@"; do
  # Daemons live in /usr/sbin, which a user's PATH may lack.
  command -v "$prog" >/dev/null 2>&1 || [ -x "/usr/sbin/$prog" ] || missing_pkgs+=("${package_of[$prog]:-$prog}")
done
[ ${#missing_pkgs[@]} -eq 0 ] && exit 0

cmd="apt-get update && apt-get install -y ${missing_pkgs[*]}"
if [ "$(id -u)" -eq 0 ]; then
  echo "installing ${missing_pkgs[*]} (apt-get)" >&2
  sh -c "DEBIAN_FRONTEND=noninteractive $cmd" >&2
elif command -v sudo >/dev/null 2>&1 && sudo -n true 2>/dev/null; then
  echo "installing ${missing_pkgs[*]} (sudo apt-get)" >&2
  sudo sh -c "DEBIAN_FRONTEND=noninteractive $cmd" >&2
else
  echo "missing: ${missing_pkgs[*]}" >&2
  echo "install them with:  sudo sh -c '$cmd'" >&2
  exit 1
fi
