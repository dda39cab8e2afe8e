#!/usr/bin/env bash
# What the test suite needs from the machine besides `npm ci` (which installs the media worker):
# promtool (Debian `prometheus`, for the /metrics check), redis-server (a private instance in the
# shutdown test), ffmpeg/ffprobe (real Opus RTP and WAV checks in the media tests), tshark (decodes
# the AIC pipeline's RTP and its header extension), chromium (the
# browser demo's end-to-end test, driven by playwright-core; never a downloaded browser), python3-aiortc
# (Debian's, for /usr/bin/python3: the WHIP/WHEP test clients in test/support/aiortc/), Debian's
# simple-whip-client with the GStreamer plugins it checks for at start-up (webrtcbin, nice, opus, vpx, x264),
# gcc + libc6-dev (its gupnp-igd stub, test/support/whip-client.ts), iproute2 (its network namespaces), kubectl
# (Debian's kubernetes-client: `kubectl kustomize` renders deploy/kubernetes in test/unit/deploy-kubernetes.test.ts), and
# the local Postgres (127.0.0.1:5432) and Redis (127.0.0.1:6379) running.
# Installs or starts what is missing when it can (root); otherwise says what is missing.
set -euo pipefail

missing=()
command -v promtool >/dev/null || missing+=(prometheus)
command -v redis-server >/dev/null || missing+=(redis-server)
command -v pg_isready >/dev/null || missing+=(postgresql-client)
command -v ffmpeg >/dev/null || missing+=(ffmpeg)
command -v tshark >/dev/null || missing+=(tshark)
command -v chromium >/dev/null || missing+=(chromium)
/usr/bin/python3 -c 'import aiortc' 2>/dev/null || missing+=(python3-aiortc)
command -v whip-client >/dev/null || missing+=(simple-whip-client)
if command -v gst-inspect-1.0 >/dev/null; then
  gst-inspect-1.0 webrtcbin >/dev/null 2>&1 || missing+=(gstreamer1.0-plugins-bad)
  gst-inspect-1.0 nicesrc >/dev/null 2>&1 || missing+=(gstreamer1.0-nice)
  gst-inspect-1.0 opusenc >/dev/null 2>&1 || missing+=(gstreamer1.0-plugins-base)
  gst-inspect-1.0 vp8enc >/dev/null 2>&1 || missing+=(gstreamer1.0-plugins-good)
  gst-inspect-1.0 x264enc >/dev/null 2>&1 || missing+=(gstreamer1.0-plugins-ugly)
else
  missing+=(gstreamer1.0-tools gstreamer1.0-plugins-bad gstreamer1.0-nice gstreamer1.0-plugins-base gstreamer1.0-plugins-good gstreamer1.0-plugins-ugly)
fi
command -v gcc >/dev/null || missing+=(gcc)
dpkg-query -W -f '${Status}' libc6-dev 2>/dev/null | grep -q 'ok installed' || missing+=(libc6-dev)
command -v ip >/dev/null || missing+=(iproute2)
command -v kubectl >/dev/null || missing+=(kubernetes-client)
if [ ${#missing[@]} -gt 0 ]; then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
    echo "test prerequisites: installing ${missing[*]}"
    apt-get update -q >/dev/null
    DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends "${missing[@]}" >/dev/null
  else
    echo "test prerequisites: missing ${missing[*]} (install them with apt-get)" >&2
    exit 1
  fi
fi

if ! pg_isready -q -h 127.0.0.1 -p 5432; then
  echo "test prerequisites: starting PostgreSQL"
  pg_ctlcluster --skip-systemctl-redirect "$(ls /etc/postgresql | head -1)" main start
fi
if ! redis-cli -h 127.0.0.1 -p 6379 ping >/dev/null 2>&1; then
  echo "test prerequisites: starting Redis"
  mkdir -p /var/lib/redis /var/log/redis
  redis-server --daemonize yes --bind 127.0.0.1 -::1 --port 6379 --save "" --appendonly no --dir /var/lib/redis --logfile /var/log/redis/ci.log
fi
for _ in $(seq 1 50); do
  pg_isready -q -h 127.0.0.1 -p 5432 && redis-cli -h 127.0.0.1 -p 6379 ping >/dev/null 2>&1 && exit 0
  sleep 0.2
done
echo "test prerequisites: PostgreSQL or Redis did not come up on 127.0.0.1" >&2
exit 1
