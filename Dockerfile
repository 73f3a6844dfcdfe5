# syntax=docker/dockerfile:1
#
# Container image for the bounty server.
#   docker build -t bounty .
#   docker run --rm -p 8080:8080 -e DATABASE_URL=postgres://... bounty
# (or `docker compose up`, see docker-compose.yml)

# ---- build ------------------------------------------------------------------
FROM rust:1.95-slim-bookworm AS builder

# C/C++ toolchain, cmake and libclang for native dependencies (llama.cpp, bindgen).
# Unpinned on purpose: bookworm point releases replace old package versions.
# hadolint ignore=DL3008
RUN apt-get update \
    && apt-get install -y --no-install-recommends \
        build-essential cmake clang libclang-dev pkg-config \
    && rm -rf /var/lib/apt/lists/*

WORKDIR /src
COPY . .

# The registry and target/ live in BuildKit cache mounts, so rebuilds reuse
# compiled dependencies; the binary is copied out of the mount in the same step.
RUN --mount=type=cache,target=/usr/local/cargo/registry \
    --mount=type=cache,target=/usr/local/cargo/git \
    --mount=type=cache,target=/src/target \
    cargo build --release --locked --bin bounty \
    && install -D -m 0755 target/release/bounty /out/bounty

# ---- runtime ----------------------------------------------------------------
FROM debian:bookworm-slim

# hadolint ignore=DL3008
RUN apt-get update \
    && apt-get install -y --no-install-recommends ca-certificates curl \
    && rm -rf /var/lib/apt/lists/*

RUN groupadd --system --gid 10001 bounty \
    && useradd --system --uid 10001 --gid bounty --home-dir /var/lib/bounty \
        --shell /usr/sbin/nologin bounty \
    && install -d -o bounty -g bounty -m 0750 /var/lib/bounty

COPY --from=builder /out/bounty /usr/local/bin/bounty

# user "bounty", numeric so that runtimes can check it is not root
USER 10001:10001
WORKDIR /var/lib/bounty

ENV BOUNTY_SERVER__LISTEN=0.0.0.0:8080
EXPOSE 8080

HEALTHCHECK --interval=10s --timeout=5s --start-period=30s --retries=3 \
    CMD ["curl", "-fsS", "-o", "/dev/null", "http://127.0.0.1:8080/readyz"]

ENTRYPOINT ["bounty"]
CMD ["serve"]
