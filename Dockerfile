# okrsync in a container: a small runtime image with the single release binary.
#
#   docker build -t okrsync .
#   docker run --rm okrsync demo --days 30                      # try it (simulated stores)
#   docker compose -f deploy/docker-compose.yml up -d           # the daemon (docs/deploy.md)
#
# Builder: the toolchain this project is built and tested with (rust-version in Cargo.toml is
# the minimum). Bundled SQLite and ring need a C compiler, which the rust image has.
FROM rust:1.95-slim-bookworm AS builder
WORKDIR /src
COPY . .
# --locked: exactly the dependency versions in Cargo.lock. The cache mounts keep downloaded
# crates and compiled dependencies between builds (BuildKit, the default builder).
RUN --mount=type=cache,target=/usr/local/cargo/registry \
    --mount=type=cache,target=/src/target \
    cargo build --release --locked -p okrsync \
 && install -m 0755 target/release/okrsync /okrsync

# Runtime: Debian slim (same glibc as the builder) with the CA certificates okrsync trusts
# for HTTPS stores; no shell tools are needed by okrsync itself.
FROM debian:bookworm-slim
RUN apt-get update \
 && apt-get install -y --no-install-recommends ca-certificates \
 && rm -rf /var/lib/apt/lists/* \
 && useradd --system --uid 10001 --user-group --home-dir /var/lib/okrsync \
        --shell /usr/sbin/nologin okrsync \
 && install -d -o okrsync -g okrsync -m 0700 /var/lib/okrsync \
 && install -d -m 0755 /etc/okrsync
COPY --from=builder /okrsync /usr/local/bin/okrsync

# Not root. The database lives on a volume; the config is mounted at /etc/okrsync/okrsync.toml
# (readable by uid 10001; keep secrets in the environment or in 0600 files owned by 10001).
USER okrsync
WORKDIR /var/lib/okrsync
VOLUME ["/var/lib/okrsync"]
ENV OKRSYNC_CONFIG=/etc/okrsync/okrsync.toml \
    OKRSYNC__DATABASE__PATH=/var/lib/okrsync/okrsync.db \
    OKRSYNC__HTTP__LISTEN=127.0.0.1:8080
# The status server (/healthz, /readyz, /metrics). It listens on the container's loopback by
# default, which the health check reaches; to publish it, listen on 0.0.0.0:8080 with a
# bearer token (deploy/docker-compose.yml does).
EXPOSE 8080
# `okrsync health` sends GET /healthz itself: the image needs no curl.
HEALTHCHECK --interval=30s --timeout=10s --start-period=30s --retries=3 \
    CMD ["okrsync", "health", "--url", "http://127.0.0.1:8080/healthz"]
# SIGTERM stops the daemon after the page in flight (exit 0); give it time (docker stop -t 60).
STOPSIGNAL SIGTERM
ENTRYPOINT ["okrsync"]
CMD ["run"]
