#!/usr/bin/env bash
# The module-graph check must be able to fail: a throwaway crate whose two modules use each other
# (one through a re-export) is refused, and the same crate with the arrow removed passes.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
mkdir -p "$tmp/demo/src/net"
touch "$tmp/demo/Cargo.toml"
cat > "$tmp/demo/src/lib.rs" <<'RS'
pub mod net;
pub mod store;
RS
cat > "$tmp/demo/src/net/mod.rs" <<'RS'
mod link;
pub use link::Link;
RS
cat > "$tmp/demo/src/net/link.rs" <<'RS'
use crate::store::Store;
pub struct Link(Store);
RS
cat > "$tmp/demo/src/store.rs" <<'RS'
use crate::net::Link; // through the re-export: store -> net::link
pub struct Store;
pub fn keep(_: &Link) {}
RS
if out=$(python3 "$here/module-graph.py" "$tmp/demo" 2>&1); then
  echo "module-graph.py passed a crate with a cycle:"; echo "$out"; exit 1
fi
grep -q "files use each other: net::link, store" <<<"$out" || { echo "cycle not named: $out"; exit 1; }
grep -q "modules use each other: net, store" <<<"$out" || { echo "module cycle not named: $out"; exit 1; }
sed -i 's/^use crate::net::Link.*$//; s/^pub fn keep.*$//' "$tmp/demo/src/store.rs"
python3 "$here/module-graph.py" "$tmp/demo" >/dev/null
echo "module-graph check: refuses a cycle, passes without it"
