#!/usr/bin/env bash
# Checks deploy/okrsync.service with systemd's own tools, offline (no running systemd needed):
#   systemd-analyze verify                    the unit parses and every setting is known and valid
#   systemd-analyze security --offline=yes    the exposure score (0 = locked down, 10 = exposed);
#                                             fails above MAX_EXPOSURE (default 2.0)
# Skips (exit 0, with the reason) where systemd-analyze is not installed.
#
#   bash deploy/check-systemd.sh
#   OKRSYNC_BIN=/usr/local/bin/okrsync MAX_EXPOSURE=1.5 bash deploy/check-systemd.sh
set -euo pipefail
cd "$(dirname "$0")/.."

command -v systemd-analyze >/dev/null 2>&1 || {
    echo "SKIP systemd check: systemd-analyze is not installed (Debian/Ubuntu: apt-get install systemd)"
    exit 0
}
max="${MAX_EXPOSURE:-2.0}"

# `verify` checks that ExecStart= is an executable: point it at a built okrsync (the unit
# names /usr/local/bin/okrsync, where the install steps put it).
bin="${OKRSYNC_BIN:-}"
if [ -z "$bin" ]; then
    for b in /usr/local/bin/okrsync target/release/okrsync target/debug/okrsync; do
        if [ -x "$b" ]; then bin="$(cd "$(dirname "$b")" && pwd)/$(basename "$b")"; break; fi
    done
fi
if [ -z "$bin" ]; then
    echo "note: no okrsync binary built (cargo build); ExecStart is checked against /bin/true"
    bin=/bin/true
fi
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
sed "s#^ExecStart=/usr/local/bin/okrsync #ExecStart=$bin #" deploy/okrsync.service >"$tmp/okrsync.service"

echo "== systemd-analyze verify ($(systemd-analyze --version | head -n 1))"
# verify exits 0 on unknown keys and unparsable values ("…, ignoring"): any message fails.
msgs=$(systemd-analyze verify "$tmp/okrsync.service" 2>&1) || { echo "$msgs"; echo "FAIL: verify"; exit 1; }
[ -z "$msgs" ] || { echo "$msgs"; echo "FAIL: systemd-analyze verify reported the lines above"; exit 1; }
echo "OK"

echo "== systemd-analyze security --offline=yes (fails above $max)"
report=$(systemd-analyze security --offline=yes "$tmp/okrsync.service" 2>&1) || true
score=$(grep -o 'exposure level for okrsync.service: [0-9.]*' <<<"$report" | grep -o '[0-9.]*$' || true)
grep '✗' <<<"$report" || true
[ -n "$score" ] || { echo "$report"; echo "FAIL: no exposure score in the report"; exit 1; }
echo "exposure score: $score (0 = locked down, 10 = fully exposed)"
awk -v s="$score" -v m="$max" 'BEGIN { exit !(s <= m) }' || {
    echo "FAIL: exposure $score is above $max"
    exit 1
}
echo "PASS systemd check"
