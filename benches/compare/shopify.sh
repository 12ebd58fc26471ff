#!/usr/bin/env bash
# Side by side: okrsync's first sync against Singer's tap-shopify 3.13.0 (PyPI, `orders` stream
# with every field selected, start_date a day before the history) on the same simulated Shopify
# shop (`okrsync-sim shopify`: standard bucket of 2,000 points restored at 100 points/s, the
# given latency on every request, https with a self-signed certificate), alternating runs, a
# fresh simulator and a fresh database per run. Prints one line per run: wall time, peak RSS,
# CPU (user + system), requests the shop answered, orders delivered.
#
#   bash benches/compare/shopify.sh [DAYS] [ORDERS_PER_DAY] [LATENCY_MS] [RUNS]
#
# Defaults: 730 days x 21 orders (~16k orders), 100 ms per request, 3 runs each. Needs python3
# with venv and pip (PyPI), openssl and /usr/bin/time.
#
# The tap builds https://{shop}.myshopify.com/... itself (ShopifyAPI's Session and its own
# bulk-operation request), so it is pointed at the simulator through the standard HTTPS_PROXY
# setting: benches/compare/connect_proxy.py tunnels CONNECT bench.myshopify.com:443 to the
# simulator's TLS address (no root, no /etc/hosts). The certificate is made for
# bench.myshopify.com and 127.0.0.1 and trusted through SSL_CERT_FILE (urllib) and
# REQUESTS_CA_BUNDLE (requests). okrsync is given the simulator's https URL and the certificate
# as `tls_ca_file`.
#
# Environment: BULK_POLLS=N: a bulk operation completes at its Nth status read (default 1: done
# by the first read, both clients' best case; the tap sleeps 60 s after every read that finds
# one still running). The `ops` column lists the requests by operation.
set -euo pipefail
cd "$(dirname "$0")/../.."
DAYS=${1:-730}; PER_DAY=${2:-21}; LATENCY=${3:-100}; RUNS=${4:-3}
BULK_POLLS=${BULK_POLLS:-1}
WORK=target/compare; mkdir -p "$WORK"; WORK=$(cd "$WORK" && pwd)
VENV=$WORK/venv-tap
if [ ! -x "$VENV/bin/tap-shopify" ]; then
  python3 -m venv "$VENV"
  "$VENV/bin/pip" install -q tap-shopify==3.13.0
fi
cargo build --release -q -p okrsync --bin okrsync -p okrsync-sim --bin okrsync-sim
CERT=$WORK/shop-cert.pem; KEY=$WORK/shop-key.pem
if [ ! -f "$CERT" ]; then
  openssl req -x509 -newkey rsa:2048 -nodes -subj /CN=bench.myshopify.com \
    -addext "subjectAltName=DNS:bench.myshopify.com,IP:127.0.0.1" \
    -keyout "$KEY" -out "$CERT" -days 365 2>/dev/null
fi
json_field() { python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))[sys.argv[2]])' "$@"; }

SIM=; PROXY=
cleanup() {
  [ -n "$SIM" ] && kill -INT "$SIM" 2>/dev/null || true
  [ -n "$PROXY" ] && kill "$PROXY" 2>/dev/null || true
}
trap cleanup EXIT
start_sim() { # days, per_day, latency
  rm -f "$WORK/sim.json"
  target/release/okrsync-sim shopify --days "$1" --per-day "$2" --latency-ms "$3" \
    --bulk-polls "$BULK_POLLS" --tls-cert "$CERT" --tls-key "$KEY" >"$WORK/sim.json" 2>"$WORK/sim.err" &
  SIM=$!
  for _ in $(seq 1 600); do [ -s "$WORK/sim.json" ] && break; sleep 0.1; done
  URL=$(json_field "$WORK/sim.json" url)
  TOKEN=$(json_field "$WORK/sim.json" access_token)
  ORDERS=$(json_field "$WORK/sim.json" orders)
}
stop_sim() {
  kill -INT "$SIM"; wait "$SIM" || true; SIM=
  REQUESTS=$(sed -n 's/^requests: //p' "$WORK/sim.err")
  OPS=$(sed -n 's/^operations: //p' "$WORK/sim.err")
  THROTTLED=$(sed -n 's/^throttled: //p' "$WORK/sim.err")
}
start_proxy() { # the tap's way to bench.myshopify.com: HTTPS_PROXY
  rm -f "$WORK/proxy.port"
  python3 benches/compare/connect_proxy.py "${URL#https://}" >"$WORK/proxy.port" &
  PROXY=$!
  for _ in $(seq 1 100); do [ -s "$WORK/proxy.port" ] && break; sleep 0.1; done
  export HTTPS_PROXY="http://127.0.0.1:$(cat "$WORK/proxy.port")"
  export SSL_CERT_FILE="$CERT" REQUESTS_CA_BUNDLE="$CERT"
}
stop_proxy() { kill "$PROXY"; wait "$PROXY" 2>/dev/null || true; PROXY=; unset HTTPS_PROXY SSL_CERT_FILE REQUESTS_CA_BUNDLE; }
tap_config() { # start_date a day before the history
  python3 - "$WORK/tap-config.json" "$TOKEN" "$DAYS" <<'PY'
import datetime, json, sys
path, token, days = sys.argv[1], sys.argv[2], int(sys.argv[3])
start = datetime.datetime.now(datetime.timezone.utc) - datetime.timedelta(days=days + 1)
json.dump({"shop": "bench", "api_key": token, "start_date": start.strftime("%Y-%m-%dT00:00:00Z")},
          open(path, "w"))
PY
}
measure() { # the command; /usr/bin/time -v output goes to $WORK/time.txt
  /usr/bin/time -v -o "$WORK/time.txt" "$@" >"$WORK/out.txt" 2>"$WORK/err.txt" || true
  WALL=$(sed -n 's/.*Elapsed (wall clock) time (h:mm:ss or m:ss): //p' "$WORK/time.txt")
  RSS=$(sed -n 's/.*Maximum resident set size (kbytes): //p' "$WORK/time.txt")
  CPU=$(python3 -c "print(round($(sed -n 's/.*User time (seconds): //p' "$WORK/time.txt") + $(sed -n 's/.*System time (seconds): //p' "$WORK/time.txt"), 1))")
}
row() { # client run orders
  printf '%-8s %-4s %9s %7s %6s %5s %15s  %s\n' "$1" "$2" "$WALL" "$((RSS / 1024))" "$CPU" "$REQUESTS" "$3" "$OPS"
}

# The tap's catalog: `--discover` once, on a small shop (not measured), orders selected.
start_sim 2 1 0; start_proxy; tap_config
"$VENV/bin/tap-shopify" --config "$WORK/tap-config.json" --discover >"$WORK/tap-discovered.json" 2>"$WORK/err.txt" \
  || { echo "tap-shopify --discover failed:"; tail -20 "$WORK/err.txt"; exit 1; }
python3 benches/compare/select_orders.py <"$WORK/tap-discovered.json" >"$WORK/tap-catalog.json"
stop_proxy; stop_sim

echo "shop: $DAYS days x $PER_DAY orders/day, ${LATENCY} ms per request, bulk operations done at status read $BULK_POLLS; load: $(cut -d' ' -f1-3 /proc/loadavg)"
printf '%-8s %-4s %9s %7s %6s %5s %15s  %s\n' client run wall rss_mb cpu_s reqs orders ops
for run in $(seq 1 "$RUNS"); do
  # okrsync: first sync into a new database.
  start_sim "$DAYS" "$PER_DAY" "$LATENCY"
  rm -rf "$WORK/okrsync-shop" && mkdir -p "$WORK/okrsync-shop"
  cat >"$WORK/okrsync-shop/okrsync.toml" <<TOML
[database]
path = "$WORK/okrsync-shop/okrsync.db"
[[stores]]
name = "bench"
platform = "shopify"
shop = "$URL"
access_token = "$TOKEN"
tls_ca_file = "$CERT"
TOML
  chmod 600 "$WORK/okrsync-shop/okrsync.toml"
  measure target/release/okrsync --config "$WORK/okrsync-shop/okrsync.toml" sync
  stop_sim
  GOT=$(python3 -c 'import sqlite3, sys; print(sqlite3.connect(sys.argv[1]).execute("SELECT COUNT(*) FROM orders").fetchone()[0])' "$WORK/okrsync-shop/okrsync.db")
  row okrsync "$run" "$GOT (of $ORDERS)"
  grep -q ": ok (" "$WORK/out.txt" || { echo "okrsync run did not end ok:"; tail -20 "$WORK/out.txt" "$WORK/err.txt"; }

  # tap-shopify: orders, every field, from a day before the history.
  start_sim "$DAYS" "$PER_DAY" "$LATENCY"; start_proxy; tap_config
  measure "$VENV/bin/tap-shopify" --config "$WORK/tap-config.json" --catalog "$WORK/tap-catalog.json"
  stop_proxy; stop_sim
  GOT=$(python3 -c '
import json, sys
ids = set()
for line in open(sys.argv[1]):
    try: m = json.loads(line)
    except ValueError: continue
    if m.get("type") == "RECORD" and m.get("stream") == "orders": ids.add(m["record"]["id"])
print(len(ids))' "$WORK/out.txt")
  row tap "$run" "$GOT (of $ORDERS)"
  grep -q "INFO orders: " "$WORK/err.txt" || { echo "tap-shopify run did not end ok:"; tail -20 "$WORK/err.txt"; }
done
echo "load after: $(cut -d' ' -f1-3 /proc/loadavg)"
