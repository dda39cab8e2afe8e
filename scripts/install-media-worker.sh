#!/usr/bin/env bash
# Leaves a working mediasoup-worker for node_modules/mediasoup at .media/mediasoup-worker (a
# symlink; run by `npm install`/`npm ci` as postinstall). In order:
#   1. MEDIASOUP_WORKER_BIN given: .media/mediasoup-worker points at it.
#   2. A build cached for this mediasoup version and this recipe: linked, nothing else to do.
#   3. mediasoup's own install (a prebuilt download from GitHub, else its pip + meson build, both
#      online), bounded by MEDIASOUP_OWN_TIMEOUT seconds (120).
#   4. An offline build of the worker sources that the npm package ships, from Debian's archive
#      only: the -dev packages are fetched with apt-get download into a private sysroot (no root,
#      the machine's apt sources untouched), meson comes from bookworm-backports, FlatBuffers is
#      built from trixie's source package; patches and stand-in subprojects are in
#      scripts/mediasoup-worker/ (see its README.md). libuv, libsrtp2 and abseil are linked
#      statically; at run time the worker needs libssl3 and libnss3 (libsrtp2's crypto) only.
# The cache is ${XDG_CACHE_HOME:-~/.cache}/auralink/mediasoup-worker/<mediasoup version>-<hash of
# this script and scripts/mediasoup-worker/>/mediasoup-worker; FlatBuffers is cached next to it by
# its version. `--print-cache-dir` prints the cache directory for this checkout and exits.
set -euo pipefail
cd "$(dirname "$0")/.."
project=$PWD
recipe=$project/scripts/mediasoup-worker
ms=$project/node_modules/mediasoup
media=$project/.media
link=$media/mediasoup-worker
fb_version=23.5.26 # trixie's flatbuffers source package (upstream mediasoup pins 24.3.25)

say() { printf 'media worker: %s\n' "$*"; }
die() { printf 'media worker: %s\n' "$*" >&2; exit 1; }

ms_version=$(sed -n 's/^[[:space:]]*"version":[[:space:]]*"\([^"]*\)".*/\1/p' "$ms/package.json" 2>/dev/null | head -n 1)
[ -n "$ms_version" ] || die "node_modules/mediasoup/package.json not found: install the dependencies first"
# The recipe's hash: this script and every file under scripts/mediasoup-worker/ (names and contents).
recipe_hash=$(cd scripts && find install-media-worker.sh mediasoup-worker -type f -print0 | LC_ALL=C sort -z \
  | xargs -0 sha256sum | sha256sum | cut -c 1-12)
cache_root=${XDG_CACHE_HOME:-$HOME/.cache}/auralink/mediasoup-worker
cache_dir=$cache_root/$ms_version-$recipe_hash
if [ "${1:-}" = --print-cache-dir ]; then echo "$cache_dir"; exit 0; fi

link_to() {
  mkdir -p "$media"
  ln -sfn "$1" "$media/.mediasoup-worker.$$"
  mv -Tf "$media/.mediasoup-worker.$$" "$link"
  # The 3.8.4 worker that earlier versions of this script extracted under .media/usr/.
  rm -rf "$media/usr"
  say "$link -> $1"
}

# A Node.js that runs this mediasoup (>= 22): the one on PATH, else the project's `node` package.
pick_node() {
  local n
  for n in node "$project/node_modules/.bin/node"; do
    if command -v "$n" >/dev/null && [ "$("$n" -p 'process.versions.node.split(".")[0]' 2>/dev/null || echo 0)" -ge 22 ]; then
      command -v "$n"; return 0
    fi
  done
  return 1
}

# The worker starts on this machine: no missing shared library, and run without MEDIASOUP_VERSION
# it exits with 41 (main.cpp), as mediasoup's own check of a prebuilt worker expects.
worker_starts() {
  local missing status=0
  missing=$(ldd "$1" 2>&1 | grep 'not found' || true)
  if [ -n "$missing" ]; then
    printf '%s\n' "$missing" >&2
    say "missing shared libraries (above); install them, e.g. apt-get install libssl3 libnss3" >&2
    return 1
  fi
  env -i "$1" >/dev/null 2>&1 || status=$?
  if [ "$status" != 41 ]; then say "$1 does not start (exit status $status, 41 expected)" >&2; return 1; fi
}

# Node + mediasoup drive the worker: a router and a WebRtcTransport with SCTP on 127.0.0.1.
worker_serves() {
  local node
  if ! node=$(pick_node); then
    say "no Node.js >= 22 on PATH: skipped the mediasoup smoke test" >&2; return 0
  fi
  "$node" --input-type=module -e '
    const [, index, workerBin] = process.argv
    const mediasoup = await import(index)
    const worker = await mediasoup.createWorker({ workerBin, logLevel: "warn" })
    const router = await worker.createRouter({ mediaCodecs: [{ kind: "audio", mimeType: "audio/opus", clockRate: 48000, channels: 2 }] })
    const transport = await router.createWebRtcTransport({ listenInfos: [{ protocol: "udp", ip: "127.0.0.1" }], enableSctp: true })
    if (transport.iceCandidates.length === 0) throw new Error("no ICE candidate")
    transport.close(); router.close(); worker.close()
    console.log(`media worker: mediasoup ${mediasoup.version} created a router and a WebRtcTransport (${transport.iceCandidates[0].ip}:${transport.iceCandidates[0].port})`)
  ' "$ms/node/lib/index.js" "$1"
}

# 1. Given.
if [ -n "${MEDIASOUP_WORKER_BIN:-}" ]; then
  [ -x "$MEDIASOUP_WORKER_BIN" ] || die "MEDIASOUP_WORKER_BIN=$MEDIASOUP_WORKER_BIN is not an executable file"
  say "MEDIASOUP_WORKER_BIN given"
  link_to "$MEDIASOUP_WORKER_BIN"; exit 0
fi

# 2. Cached.
if [ -x "$cache_dir/mediasoup-worker" ] && worker_starts "$cache_dir/mediasoup-worker"; then
  say "cached build for mediasoup $ms_version: $cache_dir"
  link_to "$cache_dir/mediasoup-worker"; exit 0
fi

# 3. mediasoup's own install (needs GitHub for the prebuilt worker, PyPI and the meson wraps for
#    its build). Offline it fails in about 40 s (the download at once, then pip's retries of PyPI);
#    the timeout (which kills the whole process group) keeps a stalled network from hanging `npm ci`.
own=$ms/worker/out/Release/mediasoup-worker
if [ ! -x "$own" ] && [ "${MEDIASOUP_OWN_TIMEOUT:-120}" != 0 ] && node=$(pick_node); then
  say "trying mediasoup's own install (prebuilt download, else its online build; at most ${MEDIASOUP_OWN_TIMEOUT:-120} s)"
  started=$SECONDS
  own_log=$(mktemp)
  if (cd "$ms" && timeout -k 10 "${MEDIASOUP_OWN_TIMEOUT:-120}" "$node" npm-scripts.mjs postinstall) >"$own_log" 2>&1; then
    say "mediasoup's own install finished in $((SECONDS - started)) s"
  else
    # Its first error line, else its last line (its log has colours).
    reason=$(sed 's/\x1b\[[0-9;]*m//g' "$own_log" | { grep -m 1 'ERROR' || true; })
    [ -n "$reason" ] || reason=$(sed 's/\x1b\[[0-9;]*m//g' "$own_log" | grep -v '^[[:space:]]*$' | tail -n 1)
    say "mediasoup's own install failed after $((SECONDS - started)) s: ${reason:0:200}"
  fi
  rm -f "$own_log"
fi
if [ -x "$own" ] && worker_starts "$own"; then
  link_to "$own"; exit 0
fi

# 4. The offline build.
if ! command -v apt-get >/dev/null || ! command -v dpkg-deb >/dev/null; then
  say "apt-get/dpkg-deb not found (not Debian?): build mediasoup-worker $ms_version yourself and set MEDIASOUP_WORKER_BIN" >&2
  exit 0
fi
missing=()
for tool in c++:g++ cc:gcc cmake:cmake ninja:ninja-build pkg-config:pkg-config python3:python3 patch:patch xz:xz-utils readelf:binutils flock:util-linux; do
  command -v "${tool%%:*}" >/dev/null || missing+=("${tool#*:}")
done
[ ${#missing[@]} -eq 0 ] || die "the offline build needs: apt-get install --no-install-recommends ${missing[*]}"

mkdir -p "$cache_root"
# One build at a time per cache (a concurrent `npm ci` waits, then finds the result).
exec 9>"$cache_root/.lock"
if ! flock -n 9; then say "another build holds $cache_root/.lock: waiting"; flock 9; fi
if [ -x "$cache_dir/mediasoup-worker" ] && worker_starts "$cache_dir/mediasoup-worker"; then
  say "built meanwhile by another run: $cache_dir"
  link_to "$cache_dir/mediasoup-worker"; exit 0
fi

# Work directories of builds killed outright (the lock is ours: no build of this cache is running).
rm -rf "$cache_root"/.build-*

started=$SECONDS
phase() { say "[$((SECONDS - started)) s] $*"; }
# Built next to the cache (same file system), moved into place whole only when it works.
work=$(mktemp -d "$cache_root/.build-XXXXXX")
trap 'rm -rf "$work"' EXIT
jobs=${MEDIASOUP_WORKER_JOBS:-$(nproc)}
fb_dir=$cache_root/flatbuffers-$fb_version

phase "offline build of mediasoup-worker $ms_version (work dir $work)"
mkdir -p "$work/apt/lists/partial" "$work/apt/cache/archives/partial" "$work/debs" "$work/fb" "$work/pkgconfig"
# The archive (host, mirror or snapshot) is the one this machine's apt sources use.
archive=$(bash scripts/apt-archive.sh)
{
  echo "deb $archive bookworm main"
  echo "deb $archive bookworm-backports main"
  [ -x "$fb_dir/bin/flatc" ] || echo "deb-src $archive trixie main"
} >"$work/apt/sources.list"
apt_opts=(-q -o "Dir::Etc::sourcelist=$work/apt/sources.list" -o Dir::Etc::sourceparts=/nonexistent
  -o "Dir::State::Lists=$work/apt/lists" -o "Dir::Cache=$work/apt/cache" -o Debug::NoLocking=1
  -o APT::Sandbox::User=root)
phase "apt-get update ($archive: bookworm, bookworm-backports$([ -x "$fb_dir/bin/flatc" ] || echo ', trixie sources'))"
apt-get "${apt_opts[@]}" update >"$work/apt.log" 2>&1 || { cat "$work/apt.log" >&2; die "apt-get update failed"; }

# Static libuv, libsrtp2 and abseil; OpenSSL, and NSS (libsrtp2's crypto), are linked dynamically
# against their runtime packages' libraries. meson >= 1.1 comes from bookworm-backports (pure Python).
debs=(libuv1-dev libsrtp2-dev libabsl-dev libssl-dev libssl3 libnss3 libnspr4 meson/bookworm-backports)
phase "apt-get download ${debs[*]}"
(cd "$work/debs" && apt-get "${apt_opts[@]}" download "${debs[@]}" >"$work/apt.log" 2>&1) \
  || { cat "$work/apt.log" >&2; die "apt-get download failed"; }
sysroot=$work/sysroot
for deb in "$work"/debs/*.deb; do
  case "$deb" in */meson_*) dpkg-deb -x "$deb" "$work/meson" ;; *) dpkg-deb -x "$deb" "$sysroot" ;; esac
done
# The .pc files name /usr: point them into the sysroot.
find "$sysroot" -name '*.pc' -exec sed -i -E "s#^([A-Za-z_]+)=/usr(/|\$)#\\1=$sysroot/usr\\2#" {} +
meson=(env "PYTHONPATH=$work/meson/usr/lib/python3/dist-packages" python3 "$work/meson/usr/bin/meson")
phase "meson $("${meson[@]}" --version)"

if [ ! -x "$fb_dir/bin/flatc" ]; then
  phase "FlatBuffers $fb_version: trixie's source package"
  (cd "$work/fb" && apt-get "${apt_opts[@]}" source --download-only "flatbuffers/trixie" >"$work/apt.log" 2>&1) \
    || { cat "$work/apt.log" >&2; die "apt-get source flatbuffers failed"; }
  orig=$(ls "$work"/fb/flatbuffers_*.orig.tar.*)
  case "${orig##*/}" in
    "flatbuffers_$fb_version"[+.]*) ;;
    *) die "trixie now has ${orig##*/}, not FlatBuffers $fb_version: update fb_version in $0" ;;
  esac
  tar -xf "$orig" -C "$work/fb"
  phase "FlatBuffers $fb_version: cmake + ninja (flatc and the library)"
  (nice -n 10 cmake -S "$(ls -d "$work"/fb/flatbuffers-*/)" -B "$work/fb/build" -G Ninja -DCMAKE_BUILD_TYPE=Release \
      -DFLATBUFFERS_BUILD_TESTS=OFF -DFLATBUFFERS_BUILD_FLATHASH=OFF -DCMAKE_INSTALL_PREFIX="$work/fb/install" \
    && nice -n 10 ninja -C "$work/fb/build" -j "$jobs" install) >"$work/fb/build.log" 2>&1 \
    || { tail -n 40 "$work/fb/build.log" >&2; die "FlatBuffers build failed"; }
  rm -rf "$fb_dir"
  mv -T "$work/fb/install" "$fb_dir"
  phase "FlatBuffers $fb_version cached in $fb_dir"
else
  phase "FlatBuffers $fb_version: cached in $fb_dir"
fi
cat >"$work/pkgconfig/flatbuffers.pc" <<PC
Name: FlatBuffers
Description: FlatBuffers $fb_version built from Debian's source package
Version: $fb_version
Libs: -L$fb_dir/lib -lflatbuffers
Cflags: -I$fb_dir/include
PC
cp -a "$recipe/include" "$work/include"
cat >"$work/pkgconfig/unordered_dense.pc" <<PC
Name: unordered_dense
Description: stand-in for ankerl::unordered_dense over the standard containers
Version: 4.8.1
Cflags: -I$work/include
PC

phase "worker sources from node_modules/mediasoup/worker, patched"
mkdir "$work/src"
(cd "$ms/worker" && tar --exclude=./out --exclude=./prebuild --exclude=./pip_invoke --exclude=./subprojects -cf - .) \
  | tar -xf - -C "$work/src"
for p in "$recipe"/patches/*.patch; do
  say "  ${p##*/}"
  patch -d "$work/src" -p1 --forward --batch --quiet <"$p" || die "${p##*/} does not apply to mediasoup $ms_version"
done
# Local subprojects that hand meson the sysroot's libraries instead of the wraps' downloads.
cp -a "$recipe/subprojects" "$work/src/subprojects"

multiarch=$(cc -print-multiarch)
export PKG_CONFIG_LIBDIR=$sysroot/usr/lib/$multiarch/pkgconfig:$sysroot/usr/share/pkgconfig:$work/pkgconfig
export PATH=$fb_dir/bin:$PATH
phase "meson setup"
"${meson[@]}" setup --buildtype release -Db_ndebug=true --wrap-mode=nodownload "$work/src" "$work/out" \
  >"$work/meson.log" 2>&1 || { tail -n 40 "$work/meson.log" >&2; die "meson setup failed"; }
phase "ninja -j $jobs (the log's [n/N] progress every 10 %)"
if ! nice -n 10 ninja -C "$work/out" -j "$jobs" mediasoup-worker 2>&1 | tee "$work/ninja.log" | awk -v started="$started" '
    /^\[[0-9]+\/[0-9]+\]/ {
      split(substr($1, 2, length($1) - 2), a, "/"); n = a[1] + 0; total = a[2] + 0
      pct = int(n * 100 / total)
      if (pct >= next_pct || n == total) {
        printf "media worker:   [%d/%d] %d %%\n", n, total, pct; fflush()
        while (next_pct <= pct) next_pct += 10
      }
      next
    }
    /FAILED|error:/ { print; fflush() }'; then
  tail -n 60 "$work/ninja.log" >&2; die "the worker build failed (above)"
fi

# `meson install` drops the build's RUNPATH (the sysroot) and strips the binary.
"${meson[@]}" install -C "$work/out" --no-rebuild --tags mediasoup-worker --strip --destdir "$work/install" \
  >"$work/install.log" 2>&1 || { cat "$work/install.log" >&2; die "meson install failed"; }
mkdir "$work/dist"
mv "$(find "$work/install" -name mediasoup-worker -type f)" "$work/dist/mediasoup-worker"
if readelf -d "$work/dist/mediasoup-worker" | grep -E 'RPATH|RUNPATH'; then die "the worker still has a RUNPATH"; fi
phase "built and stripped: $(du -k "$work/dist/mediasoup-worker" | cut -f 1) KiB; checking it"
worker_starts "$work/dist/mediasoup-worker" || die "the built worker does not start"
worker_serves "$work/dist/mediasoup-worker" || die "the built worker fails mediasoup's smoke test"
rm -rf "$cache_dir" # a broken one (it did not start, above)
mv -T "$work/dist" "$cache_dir"
phase "cached in $cache_dir"
link_to "$cache_dir/mediasoup-worker"
