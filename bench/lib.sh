# Shared by the bench scripts (sourced after `cd` to the repository root and `root=$PWD`, with
# `say` and `die` functions defined).

# Release build of hub-bench, and of hub-server from the working tree unless the run uses another
# hub-server (named by $1: a binary, a revision).
build_release() { # [other hub-server]
  if [ -n "${1:-}" ]; then
    say "release build (hub-bench); hub-server: $1"
    cargo build --release -p hub-bench
  else
    say "release build (hub-server, hub-bench)"
    cargo build --release -p hub-server -p hub-bench
  fi
}

# Builds hub-server as committed at revision $1 (its own source tree from `git archive` under
# target/bench-src, one shared target dir so dependencies build once); sets hub_bin and hub_version.
build_hub_at_rev() {
  local hub_rev hub_src
  hub_rev=$(git rev-parse --short=12 "$1^{commit}")
  hub_src=$root/target/bench-src/$hub_rev
  if [ ! -f "$hub_src/Cargo.toml" ]; then
    rm -rf "$hub_src.tmp"
    mkdir -p "$hub_src.tmp"
    git archive "$hub_rev" | tar -x -C "$hub_src.tmp"
    mv "$hub_src.tmp" "$hub_src"
  fi
  say "release build of hub-server at $hub_rev"
  # Every revision shares one target dir (dependencies built once), but cargo copies a binary to
  # release/hub-server only when it compiles it: a revision built before would be "fresh" and
  # leave another revision's binary there. Touching its main makes it compile (this crate only).
  touch "$hub_src/hub-server/src/main.rs"
  CARGO_TARGET_DIR=$root/target/bench-rev cargo build --release -p hub-server \
    --manifest-path "$hub_src/Cargo.toml"
  hub_bin=$root/target/bench-rev/release/hub-server
  hub_version=$hub_rev
}

# Every process a script starts goes into `started`; stop_started stops them all (TERM, then KILL
# after 15 s at most) and empties the list. Scripts call it on EXIT, and between runs.
declare -a started=()
stop_started() {
  local pid deadline=$((SECONDS + 15))
  for pid in "${started[@]}"; do kill "$pid" 2>/dev/null || true; done
  for pid in "${started[@]}"; do
    while kill -0 "$pid" 2>/dev/null && [ $SECONDS -lt $deadline ]; do sleep 0.2; done
    kill -KILL "$pid" 2>/dev/null || true
    wait "$pid" 2>/dev/null || true
  done
  started=()
}

# A loopback port nothing listens on. Below the ephemeral range: a port there may be an outgoing
# connection's, which no connect test sees.
port_free() { ! (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }
free_port() {
  local p=$((10000 + RANDOM % 10000))
  while ! port_free "$p"; do p=$((p + 1)); done
  echo "$p"
}

# A throw-away redis-server (no persistence) on CPU $1 and a free port; sets redis_port and
# redis_pid (in `started`) and returns once it answers.
start_pinned_redis() { # cpu
  redis_port=$(free_port)
  taskset -c "$1" redis-server --port "$redis_port" --save '' --appendonly no --logfile /dev/null &
  redis_pid=$!
  started+=("$redis_pid")
  until redis-cli -p "$redis_port" ping >/dev/null 2>&1; do sleep 0.1; done
}

# Waits until a tool started in the background has written FILE (not empty), checking every half
# second that it still runs; dies (showing its LOG) when it stopped or SECONDS passed.
wait_for_output() { # pid file seconds what log
  local deadline=$((SECONDS + $3))
  until [ -s "$2" ]; do
    kill -0 "$1" 2>/dev/null || { cat "$5" >&2; die "$4 failed"; }
    [ $SECONDS -lt $deadline ] || die "$4: nothing in $2 after $3 s"
    sleep 0.5
  done
}

# Runs a command in a network namespace of its own (unshare --net: it disappears with its last
# process, whatever happens), with loopback up and connection tracking off in it: raw-table NOTRACK
# for everything. Hundreds of thousands of loopback connections would otherwise fill the kernel's
# conntrack table, which is shared by every namespace (262,144 entries on a machine with Docker's
# netfilter modules loaded), and the kernel would drop new connections. Needs root.
in_private_netns() { # command…
  # shellcheck disable=SC2016 # expanded by the inner shell
  unshare --net -- bash -c 'set -e
    ip link set lo up
    iptables -t raw -A PREROUTING -j NOTRACK
    iptables -t raw -A OUTPUT -j NOTRACK
    exec "$@"' private-netns "$@"
}
