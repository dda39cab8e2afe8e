#!/usr/bin/env bash
# Leaves a working mediasoup-worker 3.8.4 under .media/ (run by `npm install`/`npm ci` as postinstall).
# The npm package's own build needs the internet, so the worker comes from Debian's experimental
# suite and its two runtime libraries (libsrtp2-1, libusrsctp2) from bookworm. Everything is
# extracted into the project with dpkg-deb: no root, and the machine's apt sources stay untouched.
set -euo pipefail
cd "$(dirname "$0")/.."
dest="$PWD/.media"
bin="$dest/usr/lib/x86_64-linux-gnu/mediasoup/mediasoup-worker"

missing_libs() { LD_LIBRARY_PATH="$dest/usr/lib/x86_64-linux-gnu" ldd "$bin" | grep 'not found'; }
if [ -x "$bin" ] && ! missing_libs >/dev/null; then
  echo "media worker: present at $bin"; exit 0
fi
if ! command -v apt-get >/dev/null || ! command -v dpkg-deb >/dev/null; then
  echo "media worker: apt-get/dpkg-deb not found; install mediasoup-worker 3.8.4 yourself and set MEDIASOUP_WORKER_BIN" >&2
  exit 0
fi

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
mkdir -p "$work/lists/partial" "$work/cache/archives/partial" "$work/debs"
# The archive (host, mirror or snapshot) is the one this machine's apt sources use.
archive=$(bash scripts/apt-archive.sh)
cat > "$work/sources.list" <<LIST
deb $archive bookworm main
deb $archive experimental main
LIST
apt_opts=(-q -o "Dir::Etc::sourcelist=$work/sources.list" -o Dir::Etc::sourceparts=/nonexistent
  -o "Dir::State::Lists=$work/lists" -o "Dir::Cache=$work/cache" -o Debug::NoLocking=1
  -o APT::Sandbox::User=root)
apt-get "${apt_opts[@]}" update >/dev/null
# experimental is NotAutomatic, so the two libraries resolve to bookworm's versions.
(cd "$work/debs" && apt-get "${apt_opts[@]}" download mediasoup-worker=3.8.4~dfsg1-1 libsrtp2-1 libusrsctp2 >/dev/null)
mkdir -p "$dest"
for deb in "$work"/debs/*.deb; do dpkg-deb -x "$deb" "$dest"; done
if missing_libs >&2; then
  echo "media worker: missing shared libraries (see above)" >&2; exit 1
fi
echo "media worker: installed $bin"
