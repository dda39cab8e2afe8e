#!/usr/bin/env bash
# Prints the base URI of the Debian archive this machine's apt sources use for its own release
# (e.g. http://deb.debian.org/debian, or a mirror or snapshot), as apt itself reads its
# configuration (one-line sources.list and deb822 .sources alike): scripts take the archive from
# here instead of naming a host.
set -euo pipefail
codename=$(. /etc/os-release && echo "${VERSION_CODENAME:-}")
if [ -z "$codename" ]; then
  echo "apt-archive: /etc/os-release names no VERSION_CODENAME" >&2; exit 1
fi
uri=$(apt-get update --print-uris 2>/dev/null | sed -n "s|^'\(.*\)/dists/$codename/\(In\)\{0,1\}Release'.*|\1|p" | head -n 1)
if [ -z "$uri" ]; then
  echo "apt-archive: no apt source for $codename (see /etc/apt/sources.list and /etc/apt/sources.list.d/)" >&2; exit 1
fi
echo "$uri"
