#!/usr/bin/env bash
# Side by side: okrsync's first sync against Airbyte's WooCommerce connector (PyPI
# airbyte-source-woocommerce 0.4.12, orders stream, incremental from 2020-01-01) on the same
# simulated store (crates/okrsync-sim, over https with a self-signed certificate), alternating
# runs, a fresh simulator and a fresh database per run. Prints one line per run: wall time,
# peak RSS, requests the store answered, orders delivered.
#
#   bash benches/compare/woocommerce.sh [DAYS] [ORDERS_PER_DAY] [LATENCY_MS] [RUNS]
#
# Defaults: 730 days x 22 orders (~16k orders), 100 ms per request, 3 runs each. Needs python3
# with venv and pip (PyPI), openssl and /usr/bin/time. Airbyte's refunds stream reads one
# request per order and is left out; okrsync also reads trash and refunds (in its count).
# The `ids` column counts the requests of okrsync's deleted-order reconciliation (id listing),
# included in `requests`.
#
# Environment: MAX_CONCURRENCY=N adds `max_concurrency = N` to okrsync's store (default: not
# set, okrsync's default of 4); OKRSYNC_ONLY=1 skips Airbyte (for scaling tables).
set -euo pipefail
cd "$(dirname "$0")/../.."
DAYS=${1:-730}; PER_DAY=${2:-22}; LATENCY=${3:-100}; RUNS=${4:-3}
WORK=target/compare; mkdir -p "$WORK"; WORK=$(cd "$WORK" && pwd)
VENV=$WORK/venv-airbyte
if [ ! -x "$VENV/bin/source-woocommerce" ]; then
  python3 -m venv "$VENV"
  "$VENV/bin/pip" install -q airbyte-source-woocommerce==0.4.12
fi
cargo build --release -q -p okrsync --bin okrsync -p okrsync-sim --bin okrsync-sim
if [ ! -f "$WORK/cert.pem" ]; then
  openssl req -x509 -newkey rsa:2048 -nodes -subj /CN=127.0.0.1 -addext subjectAltName=IP:127.0.0.1 \
    -keyout "$WORK/key.pem" -out "$WORK/cert.pem" -days 365 2>/dev/null
  # Airbyte's HTTP session trusts certifi's bundle only: add the simulator's certificate there.
  cat "$WORK/cert.pem" >> "$("$VENV/bin/python" -c 'import certifi; print(certifi.where())')"
fi

start_sim() {
  rm -f "$WORK/sim.json"
  target/release/okrsync-sim woocommerce --days "$DAYS" --per-day "$PER_DAY" --latency-ms "$LATENCY" \
    --tls-cert "$WORK/cert.pem" --tls-key "$WORK/key.pem" >"$WORK/sim.json" 2>"$WORK/sim.err" &
  SIM=$!
  for _ in $(seq 1 600); do [ -s "$WORK/sim.json" ] && break; sleep 0.1; done
  URL=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["url"])' "$WORK/sim.json")
  CK=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["consumer_key"])' "$WORK/sim.json")
  CS=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["consumer_secret"])' "$WORK/sim.json")
  ORDERS=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["orders"])' "$WORK/sim.json")
}
stop_sim() {
  kill -INT "$SIM"; wait "$SIM" || true
  REQUESTS=$(sed -n 's/^requests: //p' "$WORK/sim.err")
  ID_REQUESTS=$(sed -n 's/^id-listing requests: //p' "$WORK/sim.err")
}
measure() { # label, then the command; /usr/bin/time -v output goes to $WORK/time.txt
  local label=$1; shift
  /usr/bin/time -v -o "$WORK/time.txt" "$@" >"$WORK/out.txt" 2>"$WORK/err.txt" || true
  WALL=$(sed -n 's/.*Elapsed (wall clock) time (h:mm:ss or m:ss): //p' "$WORK/time.txt")
  RSS=$(sed -n 's/.*Maximum resident set size (kbytes): //p' "$WORK/time.txt")
  CPU_U=$(sed -n 's/.*User time (seconds): //p' "$WORK/time.txt")
  CPU_S=$(sed -n 's/.*System time (seconds): //p' "$WORK/time.txt")
}

echo "store: $DAYS days x $PER_DAY orders/day, ${LATENCY} ms per request, max_concurrency ${MAX_CONCURRENCY:-default}"
printf '%-9s %-4s %10s %10s %8s %9s %5s %9s\n' client run wall rss_mb cpu_s requests ids orders
for run in $(seq 1 "$RUNS"); do
  # okrsync: first sync into a new database.
  start_sim
  rm -rf "$WORK/okrsync" && mkdir -p "$WORK/okrsync"
  cat >"$WORK/okrsync/okrsync.toml" <<TOML
[database]
path = "$WORK/okrsync/okrsync.db"
[[stores]]
name = "bench"
platform = "woocommerce"
url = "$URL"
consumer_key = "$CK"
consumer_secret = "$CS"
tls_ca_file = "$WORK/cert.pem"
TOML
  if [ -n "${MAX_CONCURRENCY:-}" ]; then
    echo "max_concurrency = $MAX_CONCURRENCY" >>"$WORK/okrsync/okrsync.toml"
  fi
  chmod 600 "$WORK/okrsync/okrsync.toml"
  measure okrsync target/release/okrsync --config "$WORK/okrsync/okrsync.toml" sync
  stop_sim
  GOT=$(python3 -c 'import sqlite3, sys; print(sqlite3.connect(sys.argv[1]).execute("SELECT COUNT(*) FROM orders").fetchone()[0])' "$WORK/okrsync/okrsync.db")
  printf '%-9s %-4s %10s %10s %8s %9s %5s %9s\n' okrsync "$run" "$WALL" "$((RSS / 1024))" \
    "$(python3 -c "print(round($CPU_U + $CPU_S, 1))")" "$REQUESTS" "$ID_REQUESTS" "$GOT (of $ORDERS)"
  grep -q ": ok (" "$WORK/out.txt" || { echo "okrsync run did not end ok:"; cat "$WORK/out.txt" "$WORK/err.txt"; }
  [ -n "${OKRSYNC_ONLY:-}" ] && continue

  # Airbyte: orders stream, incremental from 2020-01-01.
  start_sim
  python3 - "$WORK" "$URL" "$CK" "$CS" <<'PY'
import json, sys
work, url, ck, cs = sys.argv[1:]
json.dump({"api_key": ck, "api_secret": cs, "shop": url.removeprefix("https://"),
           "start_date": "2020-01-01"}, open(f"{work}/airbyte-config.json", "w"))
json.dump({"streams": [{"stream": {"name": "orders", "json_schema": {},
           "supported_sync_modes": ["full_refresh", "incremental"], "source_defined_cursor": True,
           "default_cursor_field": ["date_modified_gmt"]}, "sync_mode": "incremental",
           "cursor_field": ["date_modified_gmt"], "destination_sync_mode": "append"}]},
          open(f"{work}/airbyte-catalog.json", "w"))
PY
  measure airbyte "$VENV/bin/source-woocommerce" read --config "$WORK/airbyte-config.json" \
    --catalog "$WORK/airbyte-catalog.json"
  stop_sim
  GOT=$(python3 -c '
import json, sys
ids = set()
for line in open(sys.argv[1]):
    try: m = json.loads(line)
    except ValueError: continue
    if m.get("type") == "RECORD": ids.add(m["record"]["data"]["id"])
print(len(ids))' "$WORK/out.txt")
  printf '%-9s %-4s %10s %10s %8s %9s %5s %9s\n' airbyte "$run" "$WALL" "$((RSS / 1024))" \
    "$(python3 -c "print(round($CPU_U + $CPU_S, 1))")" "$REQUESTS" "-" "$GOT (of $ORDERS)"
done
