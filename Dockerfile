# syntax=docker/dockerfile:1
# AuraLink Ingress-Egress. Node 24 runs src/*.ts as-is (type stripping); only the browser demo is built (stage `demo`).
ARG NODE_IMAGE=node:24-bookworm-slim

# --- production node_modules -------------------------------------------------------------
FROM ${NODE_IMAGE} AS deps
WORKDIR /app
COPY package.json package-lock.json ./
# --ignore-scripts skips our postinstall (.media/ worker; the `worker` stage below runs it),
# mediasoup's worker build (MEDIASOUP_WORKER_BIN replaces it) and protobufjs's version check.
RUN npm ci --omit=dev --ignore-scripts && npm cache clean --force

# --- the browser demo, prebuilt (esbuild and mediasoup-client are devDependencies) ------------
FROM ${NODE_IMAGE} AS demo
WORKDIR /app
COPY package.json package-lock.json ./
RUN npm ci --ignore-scripts
COPY tsconfig.json ./
COPY scripts/build-demo.ts ./scripts/
COPY src ./src
# Writes dist/demo/; the runtime serves it only when DEMO_ENABLED=true (production default: off).
RUN node scripts/build-demo.ts

# --- mediasoup-worker for node_modules/mediasoup, built by the same script as `npm ci`'s postinstall --
# It tries mediasoup's own install first (a prebuilt worker from GitHub, bounded to 120 s) and
# otherwise builds the npm package's worker sources offline from the Debian archive the image's
# apt sources use (see scripts/mediasoup-worker/README.md). The cache mount keeps FlatBuffers and
# the worker between image builds (keyed by mediasoup's version and the recipe's hash).
FROM ${NODE_IMAGE} AS worker
RUN apt-get update \
 && apt-get install -y --no-install-recommends g++ cmake ninja-build pkg-config patch xz-utils python3 \
 && rm -rf /var/lib/apt/lists/*
WORKDIR /app
COPY --from=deps /app/node_modules ./node_modules
COPY scripts/install-media-worker.sh scripts/apt-archive.sh ./scripts/
COPY scripts/mediasoup-worker ./scripts/mediasoup-worker
ENV XDG_CACHE_HOME=/cache
RUN --mount=type=cache,target=/cache \
    bash scripts/install-media-worker.sh \
 && install -D -m 0755 "$(readlink -f .media/mediasoup-worker)" /opt/mediasoup/mediasoup-worker

# --- runtime -------------------------------------------------------------------------------
FROM ${NODE_IMAGE} AS runtime
COPY --from=worker /opt/mediasoup/mediasoup-worker /usr/local/lib/mediasoup/mediasoup-worker
# The worker links libuv, libsrtp2 and abseil statically; OpenSSL and NSS (libsrtp2's crypto) come
# from bookworm here (a prebuilt worker from mediasoup's own install needs neither). Run without
# MEDIASOUP_VERSION the worker exits with 41: it starts, no library is missing.
RUN apt-get update \
 && apt-get install -y --no-install-recommends tini libssl3 libnss3 \
 && rm -rf /var/lib/apt/lists/* \
 && { /usr/local/lib/mediasoup/mediasoup-worker >/dev/null 2>&1; test $? -eq 41; } \
 && install -d -o node -g node -m 0750 /var/lib/auralink

# workerEnv.ts uses MEDIASOUP_WORKER_BIN instead of .media/mediasoup-worker.
# NODE_COMPILE_CACHE: see src/config/node-flags.ts (relative to WORKDIR).
ENV NODE_ENV=production \
    MEDIASOUP_WORKER_BIN=/usr/local/lib/mediasoup/mediasoup-worker \
    DATA_DIR=/var/lib/auralink \
    NODE_COMPILE_CACHE=node_modules/.cache/node-compile-cache

WORKDIR /app
COPY --from=deps /app/node_modules ./node_modules
# package.json is needed at run time ("type": "module"); proto/ is loaded relative to src/.
COPY package.json ./
COPY proto ./proto
COPY src ./src
COPY --from=demo /app/dist/demo ./dist/demo
COPY scripts/warm-compile-cache.ts ./scripts/
RUN install -d -o 1000 -g 1000 node_modules/.cache

# The base image's `node` user (1000), numeric so Kubernetes runAsNonRoot can verify it.
USER 1000:1000
# The compile cache, filled as the user that runs the service (Node keys it by user; entries are
# 0600): the service starts without stripping types. A read-only root filesystem only reads it.
RUN node scripts/warm-compile-cache.ts

# HTTP (PORT), gRPC (GRPC_PORT), WebRTC media (worker i's WebRtcServer on RTC_PORT + i, UDP and TCP;
# four workers shown), plain RTP (RTC_MIN_PORT-RTC_MAX_PORT).
EXPOSE 8080 50051 40000-40003/udp 40000-40003/tcp 10000-10100/udp

# No curl in slim: probe /health with node's fetch.
HEALTHCHECK --interval=15s --timeout=3s --start-period=20s --retries=3 \
  CMD ["node", "-e", "fetch('http://127.0.0.1:'+(process.env.PORT||8080)+'/health').then(r=>process.exit(r.ok?0:1),()=>process.exit(1))"]

# tini as PID 1 forwards SIGTERM to node and reaps exited mediasoup workers.
# The service drains within SHUTDOWN_TIMEOUT_MS (30 s default): give `docker stop -t 35` / stop_grace_period: 35s.
STOPSIGNAL SIGTERM
ENTRYPOINT ["/usr/bin/tini", "--"]
# The flags: see src/config/node-flags.ts.
CMD ["node", "--max-semi-space-size=16", "--heap-growing-percent=50", "--no-allocation-site-pretenuring", "src/main.ts"]
