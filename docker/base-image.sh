#!/usr/bin/env bash
# Build a Python 3.11 base image from Debian packages, for machines that reach Debian's
# archive but no image registry: debootstrap a minimal bookworm (its python3 is 3.11) and
# `docker import` it. Pass the tag as the Dockerfile's PYTHON_IMAGE build argument.
#
#   docker/base-image.sh [TAG]        (default batchml-base:bookworm; kept if it exists)
#
# REBUILD=1 rebuilds an existing tag. debootstrap is installed from Debian's archive when
# missing and this runs as root. MIRROR defaults to the first Debian archive in this
# machine's apt sources. The host's extra CA certificates (/usr/local/share/ca-certificates)
# are trusted in the image too, so a build behind a TLS-inspecting proxy can reach PyPI.
set -euo pipefail

TAG=${1:-batchml-base:bookworm}
SUITE=${SUITE:-bookworm}

if [ -z "${REBUILD:-}" ] && docker image inspect "$TAG" >/dev/null 2>&1; then
  echo "base image $TAG exists (REBUILD=1 to rebuild)"
  exit 0
fi

mirror() {
  local uri
  uri=$(awk '/^URIs:/ && $2 !~ /security/ {print $2; exit}' /etc/apt/sources.list.d/*.sources 2>/dev/null || true)
  [ -n "$uri" ] || uri=$(awk '$1 == "deb" && $0 !~ /security/ {for (i = 2; i <= NF; i++) if ($i ~ /:\/\//) {print $i; exit}}' /etc/apt/sources.list 2>/dev/null || true)
  echo "$uri"
}
MIRROR=${MIRROR:-$(mirror)}
[ -n "$MIRROR" ] || { echo "no Debian mirror found in the apt sources; set MIRROR" >&2; exit 2; }
if ! command -v debootstrap >/dev/null; then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
    { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq debootstrap; } >/dev/null
  else
    echo "debootstrap is missing (apt-get install debootstrap, as root)" >&2
    exit 2
  fi
fi

rootfs=$(mktemp -d /var/tmp/batchml-rootfs.XXXXXX)
trap 'rm -rf "$rootfs"' EXIT

debootstrap --variant=minbase --include=python3,python3-venv,ca-certificates "$SUITE" "$rootfs" "$MIRROR"

if compgen -G "/usr/local/share/ca-certificates/*.crt" >/dev/null; then
  cp /usr/local/share/ca-certificates/*.crt "$rootfs/usr/local/share/ca-certificates/"
  chroot "$rootfs" update-ca-certificates >/dev/null
fi

# What a base image does not need: package lists and caches, documentation, locales.
rm -rf "$rootfs"/var/lib/apt/lists/* "$rootfs"/var/cache/apt/* "$rootfs"/var/log/* \
  "$rootfs"/usr/share/doc/* "$rootfs"/usr/share/man/* "$rootfs"/usr/share/info/* \
  "$rootfs"/usr/share/locale/* "$rootfs"/tmp/* "$rootfs"/dev/*

tar --numeric-owner -C "$rootfs" -c . |
  docker import \
    --change 'ENV LANG=C.UTF-8' \
    --change 'ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' \
    --change 'CMD ["python3"]' \
    --message "debootstrap $SUITE with python3, python3-venv, ca-certificates" \
    - "$TAG"
docker run --rm "$TAG" python3 -c 'import sys; print("base image", sys.version.split()[0])'
