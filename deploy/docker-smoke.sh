#!/usr/bin/env bash
# Builds the container image and runs `okrsync demo --days 30` in it, then checks that the
# image runs as a non-root user and that its HEALTHCHECK (`okrsync health`) turns healthy for
# a daemon with a status server. Skips (exit 0, with the reason) where Docker is unusable.
#
#   bash deploy/docker-smoke.sh            # from anywhere in the repository
set -euo pipefail
cd "$(dirname "$0")/.."

skip() { echo "SKIP docker smoke test: $*"; exit 0; }
command -v docker >/dev/null 2>&1 || skip "the docker command is not installed"
if ! info=$(docker info --format '{{.ServerVersion}}' 2>&1); then
    skip "no Docker engine is reachable (docker info: $(echo "$info" | tail -n 1))"
fi

tag="okrsync:smoke-$$"
name="okrsync-smoke-$$"
cleanup() {
    docker rm -f "$name" >/dev/null 2>&1 || true
    docker image rm -f "$tag" >/dev/null 2>&1 || true
}
trap cleanup EXIT

echo "== docker build (engine $info)"
docker build -t "$tag" .
docker image ls "$tag" --format 'image size: {{.Size}}'

echo "== okrsync demo --days 30 in the container"
out=$(docker run --rm "$tag" demo --days 30)
echo "$out" | tail -n 20
grep -q "KPI" <<<"$out" || { echo "FAIL: the demo printed no KPI table"; exit 1; }
grep -q "progress" <<<"$out" || { echo "FAIL: the demo printed no key-result table"; exit 1; }

echo "== runs as a non-root user"
uid=$(docker run --rm --entrypoint /usr/bin/id "$tag" -u)
[ "$uid" != "0" ] || { echo "FAIL: the image runs as root"; exit 1; }
echo "uid $uid"

echo "== HEALTHCHECK: a daemon on the demo's config (simulated stores kept up by --serve)"
docker run -d --name "$name" --entrypoint /bin/sh "$tag" -c '
    okrsync demo --serve --days 10 --dir /var/lib/okrsync/demo >/tmp/demo.log 2>&1 &
    while ! grep -q "press Ctrl-C" /tmp/demo.log; do sleep 1; done
    exec okrsync --config /var/lib/okrsync/demo/okrsync.toml run' >/dev/null
for _ in $(seq 1 60); do
    status=$(docker inspect --format '{{.State.Health.Status}}' "$name")
    [ "$status" = healthy ] && break
    sleep 5
done
echo "health: $status"
[ "$status" = healthy ] || { docker logs "$name" | tail -n 30; echo "FAIL: never healthy"; exit 1; }
docker exec "$name" okrsync --config /var/lib/okrsync/demo/okrsync.toml krs | tail -n 5
# SIGTERM: the daemon stops after the page in flight and exits 0.
docker stop -t 60 "$name" >/dev/null
code=$(docker inspect --format '{{.State.ExitCode}}' "$name")
[ "$code" = 0 ] || { echo "FAIL: exit $code after docker stop"; exit 1; }
echo "PASS docker smoke test"
