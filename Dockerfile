# syntax=docker/dockerfile:1
# AuraLink Ingress-Egress. Node 24 runs src/*.ts as-is (type stripping); only the browser demo is built (stage `demo`).
ARG NODE_IMAGE=node:24-bookworm-slim

# --- production node_modules -------------------------------------------------------------
FROM ${NODE_IMAGE} AS deps
WORKDIR /app
COPY package.json package-lock.json ./
# --ignore-scripts skips our postinstall (.media/ worker; the image installs it system-wide below),
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

# --- mediasoup-worker 3.8.4 .deb (only Debian experimental has it) ------------------------
FROM ${NODE_IMAGE} AS worker-deb
WORKDIR /tmp/debs
COPY scripts/apt-archive.sh /tmp/apt-archive.sh
# experimental is enabled in this throwaway stage only, on the archive the image's own apt sources
# use; the runtime's apt sources never see it.
RUN echo "deb $(bash /tmp/apt-archive.sh) experimental main" > /etc/apt/sources.list.d/experimental.list \
 && apt-get update \
 && apt-get download mediasoup-worker=3.8.4~dfsg1-1

# --- runtime -------------------------------------------------------------------------------
FROM ${NODE_IMAGE} AS runtime
COPY --from=worker-deb /tmp/debs/ /tmp/debs/
# The .deb's dependencies (libsrtp2-1, libusrsctp2, libssl3, libuv1) all come from bookworm.
RUN apt-get update \
 && apt-get install -y --no-install-recommends tini /tmp/debs/mediasoup-worker_*.deb \
 && rm -rf /var/lib/apt/lists/* /tmp/debs \
 && install -d -o node -g node -m 0750 /var/lib/auralink

# The worker path is the amd64 one (x86_64-linux-gnu); workerEnv.ts uses it instead of .media/.
ENV NODE_ENV=production \
    MEDIASOUP_WORKER_BIN=/usr/lib/x86_64-linux-gnu/mediasoup/mediasoup-worker \
    DATA_DIR=/var/lib/auralink

WORKDIR /app
COPY --from=deps /app/node_modules ./node_modules
# package.json is needed at run time ("type": "module"); proto/ is loaded relative to src/.
COPY package.json ./
COPY proto ./proto
COPY src ./src
COPY --from=demo /app/dist/demo ./dist/demo

# The base image's `node` user (1000), numeric so Kubernetes runAsNonRoot can verify it.
USER 1000:1000

# HTTP (PORT), gRPC (GRPC_PORT), RTC media (RTC_MIN_PORT-RTC_MAX_PORT).
EXPOSE 8080 50051 10000-10100/udp

# No curl in slim: probe /health with node's fetch.
HEALTHCHECK --interval=15s --timeout=3s --start-period=20s --retries=3 \
  CMD ["node", "-e", "fetch('http://127.0.0.1:'+(process.env.PORT||8080)+'/health').then(r=>process.exit(r.ok?0:1),()=>process.exit(1))"]

# tini as PID 1 forwards SIGTERM to node and reaps exited mediasoup workers.
# The service drains within SHUTDOWN_TIMEOUT_MS (30 s default): give `docker stop -t 35` / stop_grace_period: 35s.
STOPSIGNAL SIGTERM
ENTRYPOINT ["/usr/bin/tini", "--"]
CMD ["node", "src/main.ts"]
