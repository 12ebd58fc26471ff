#!/usr/bin/env bash
# okrsync's own CPU (user + sys, /usr/bin/time -v) against a simulated WooCommerce store
# (crates/okrsync-sim, plain http, no latency): a first sync into an empty database, then
# `sync --full` over the stored rows, then a sync with nothing new. One line per step: CPU,
# wall, peak RSS, requests okrsync made (from its sync log).
#
#   bash benches/sync_cpu.sh [DAYS] [ORDERS_PER_DAY] [OKRSYNC_BINARY]
#
# Defaults: 730 days x 22 orders (~16k orders), target/release/okrsync. Needs sqlite3, python3
# and /usr/bin/time. 730 x 134 gives ~98k orders.
set -euo pipefail
cd "$(dirname "$0")/.."
DAYS=${1:-730}; PER_DAY=${2:-22}; BIN=${3:-target/release/okrsync}
cargo build --release -q -p okrsync --bin okrsync -p okrsync-sim --bin okrsync-sim
W=target/sync-cpu; rm -rf "$W"; mkdir -p "$W"; W=$(cd "$W" && pwd)
target/release/okrsync-sim woocommerce --days "$DAYS" --per-day "$PER_DAY" --latency-ms 0 \
  >"$W/sim.json" 2>"$W/sim.err" &
SIM=$!
trap 'kill -INT $SIM 2>/dev/null || true' EXIT
for _ in $(seq 1 600); do [ -s "$W/sim.json" ] && break; sleep 0.1; done
j() { python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))[sys.argv[2]])' "$W/sim.json" "$1"; }
cat >"$W/okrsync.toml" <<TOML
[database]
path = "$W/okrsync.db"
[[stores]]
name = "bench"
platform = "woocommerce"
url = "$(j url)"
consumer_key = "$(j consumer_key)"
consumer_secret = "$(j consumer_secret)"
TOML
chmod 600 "$W/okrsync.toml"
echo "store: $(j orders) orders ($DAYS days x $PER_DAY), binary $BIN"
for step in first full nothing-new; do
  args=(sync); [ "$step" = full ] && args=(sync --full)
  /usr/bin/time -v -o "$W/time.txt" "$BIN" --config "$W/okrsync.toml" "${args[@]}" >"$W/out.txt" 2>"$W/err.txt" \
    || { echo "$step failed:"; cat "$W/out.txt" "$W/err.txt"; exit 1; }
  U=$(sed -n 's/.*User time (seconds): //p' "$W/time.txt")
  S=$(sed -n 's/.*System time (seconds): //p' "$W/time.txt")
  WALL=$(sed -n 's/.*Elapsed (wall clock) time (h:mm:ss or m:ss): //p' "$W/time.txt")
  RSS=$(sed -n 's/.*Maximum resident set size (kbytes): //p' "$W/time.txt")
  REQ=$(sqlite3 "$W/okrsync.db" "SELECT requests FROM sync_runs ORDER BY id DESC LIMIT 1")
  printf '%-11s cpu %6.2f s (user %s, sys %s)  wall %s  rss %s MB  requests %s\n' \
    "$step" "$(python3 -c "print($U + $S)")" "$U" "$S" "$WALL" "$((RSS / 1024))" "$REQ"
done
