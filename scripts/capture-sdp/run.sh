#!/usr/bin/env bash
# Captures browser SDP offers into test/fixtures/sdp/ (maintenance tool, not run by the tests).
# Usage: bash scripts/capture-sdp/run.sh chromium|firefox|libdatachannel [out-dir]   (from the repository root, Node 24 on PATH)
# Needs /usr/bin/chromium (apt-get install -y chromium) or firefox-esr (apt-get install -y --no-install-recommends
# firefox-esr). Starts server.ts, opens capture-page.html headless with fake capture devices and a fresh profile,
# waits for the page to report /done, then kills the browser it started. Files are named <browser>-<major>-<case>.
# `libdatachannel` instead installs node-datachannel into a temporary folder and writes two OBS-shaped offers
# (libdatachannel-obs.js says what they are and are not).
set -euo pipefail
browser="${1:?usage: run.sh chromium|firefox|libdatachannel [out-dir]}"
out="${2:-test/fixtures/sdp}"
port="${CAPTURE_PORT:-8765}"
here="$(cd "$(dirname "$0")" && pwd)"
profile="$(mktemp -d)"
# The browser log ($profile.browser.log) stays; the profile (or node-datachannel install) goes.
trap 'rm -rf "$profile"' EXIT
mkdir -p "$out"

if [ "$browser" = libdatachannel ]; then
  npm install --prefix "$profile" --no-audit --no-fund --silent node-datachannel@0.33.4
  # .mjs there: the temporary folder has no package.json saying "type": "module".
  cp "$here/libdatachannel-obs.js" "$profile/libdatachannel-obs.mjs"
  version="$(cd "$profile" && node -e 'console.log(require("node-datachannel").getLibraryVersion())')"
  node "$profile/libdatachannel-obs.mjs" gathering >"$out/libdatachannel-${version%.*}-obs-whip.sdp"
  node "$profile/libdatachannel-obs.mjs" no-gathering >"$out/libdatachannel-${version%.*}-obs-whip-no-candidates.sdp"
  ls -l "$out"/libdatachannel-*
  exit 0
fi

case "$browser" in
  chromium)
    version="$(chromium --version 2>/dev/null | grep -oE '[0-9]+(\.[0-9]+)+' | head -1)"
    cases="whep-recvonly,audio,audio-video,simulcast,trickle"
    launch=(chromium --headless --no-sandbox --disable-gpu --disable-quic --no-first-run --disable-background-networking
      --disable-component-update --disable-sync --use-fake-ui-for-media-stream --use-fake-device-for-media-stream
      --disable-dev-shm-usage "--user-data-dir=$profile")
    ;;
  firefox)
    version="$(firefox-esr --version | grep -oE '[0-9]+(\.[0-9]+)+' | head -1)"
    cases="whep-recvonly,audio,audio-video,simulcast"
    # Fake devices, no permission prompt, and no background traffic from a fresh profile.
    cat >"$profile/user.js" <<'EOF'
user_pref("media.navigator.streams.fake", true);
user_pref("media.navigator.permission.disabled", true);
user_pref("browser.shell.checkDefaultBrowser", false);
user_pref("browser.startup.homepage_override.mstone", "ignore");
user_pref("datareporting.policy.dataSubmissionEnabled", false);
user_pref("datareporting.healthreport.uploadEnabled", false);
user_pref("toolkit.telemetry.enabled", false);
user_pref("app.update.enabled", false);
user_pref("app.normandy.enabled", false);
user_pref("browser.safebrowsing.malware.enabled", false);
user_pref("browser.safebrowsing.phishing.enabled", false);
user_pref("network.captive-portal-service.enabled", false);
user_pref("network.connectivity-service.enabled", false);
EOF
    launch=(firefox-esr --headless --no-remote --profile "$profile")
    ;;
  *) echo "unknown browser: $browser" >&2; exit 2 ;;
esac

echo "$browser $version, profile $profile"
node "$here/server.ts" --out "$out" --prefix "$browser-${version%%.*}" --port "$port" &
server=$!
sleep 1
# Own process group, so the kill below reaches the browser's helper processes too.
setsid "${launch[@]}" "http://127.0.0.1:$port/?cases=$cases" >"$profile.browser.log" 2>&1 &
browser_pid=$!
status=0
wait "$server" || status=$?
kill -- "-$browser_pid" 2>/dev/null || true
wait "$browser_pid" 2>/dev/null || true
echo "server exit $status; browser log: $profile.browser.log"
exit "$status"
