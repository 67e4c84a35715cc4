# syntax=docker/dockerfile:1
#
# dobrobot as a container: built with the toolchain image, run on a slim Debian of the same
# release (the binary links glibc dynamically; SQLite is bundled, TLS is rustls, so the runtime
# needs only CA certificates, for EventStoreDB/KurrentDB over TLS).
#
#   docker build -t dobrobot .
#   docker run --rm -e DOBROBOT_STORE='esdb://host:2113?tls=false' dobrobot
#   docker run --rm -e DOBROBOT_HTTP_ADDR=0.0.0.0:8080 -p 127.0.0.1:8080:8080 dobrobot
#
# Configuration comes from the environment (DOBROBOT_STORE, DOBROBOT_ENVIRONMENT,
# DOBROBOT_APPROVERS, ...; see the README) or from a TOML file mounted and named by
# DOBROBOT_CONFIG. Unless DOBROBOT_STORE names another store, the ledger is the embedded SQLite
# file in the /var/lib/dobrobot volume. The HTTP server (/health, /ready, the read API) listens
# on DOBROBOT_HTTP_ADDR, loopback by default, so a container that is to answer from outside sets
# it to 0.0.0.0:8080 and publishes the port. The runtime has bash but no curl: the compose
# files' healthcheck asks /ready through bash's /dev/tcp.

FROM rust:1.95-slim-trixie AS builder
WORKDIR /src
# The whole workspace: the root manifest names tests/esdb-double as a member, and cargo loads
# every member (and benches/ for the declared bench) before it builds anything.
COPY . .
# The registry and target/ live in cache mounts, so a rebuild after a source change recompiles
# only dobrobot. The binary is copied out because the cache mount is not part of the image.
RUN --mount=type=cache,target=/usr/local/cargo/registry \
    --mount=type=cache,target=/src/target \
    cargo build --release --locked --bin dobrobot \
    && cp target/release/dobrobot /usr/local/bin/dobrobot

FROM debian:trixie-slim
RUN apt-get update \
    && apt-get install -y --no-install-recommends ca-certificates \
    && rm -rf /var/lib/apt/lists/* \
    && useradd --system --uid 10001 --user-group --create-home --home-dir /var/lib/dobrobot dobrobot
COPY --from=builder /usr/local/bin/dobrobot /usr/local/bin/dobrobot
USER dobrobot
WORKDIR /var/lib/dobrobot
ENV DOBROBOT_STORE=sqlite:///var/lib/dobrobot/ledger.db
VOLUME ["/var/lib/dobrobot"]
ENTRYPOINT ["dobrobot"]
CMD ["serve"]
