#!/usr/bin/env bash
# Makes a local stand-in for python:3.11-slim-bookworm on a machine that reaches the Debian and PyPI mirrors but no
# container registry: debootstrap a minimal Debian 12 with python3 (3.11), venv and pip, then `docker import` it.
# Afterwards, build the app image on top of it:
#
#   infra/build-base-image.sh local/bookworm-python
#   docker build --network host --build-arg BASE_IMAGE=local/bookworm-python -f infra/Dockerfile -t marid .
#
# Needs root, debootstrap and a running Docker engine (DOCKER_HOST is honoured). Environment:
#   DEBIAN_MIRROR  the mirror to debootstrap from (default: the first URIs: of /etc/apt/sources.list.d, else deb.debian.org)
#   TRUST_HOST_CA  1 = copy this host's CA bundle into the image and point pip at it; for networks whose TLS goes through
#                  an intercepting proxy. Such a base image is for local builds only: never publish it.
set -euo pipefail

image="${1:-local/bookworm-python}"
[ "$(id -u)" -eq 0 ] || { echo "build-base-image: run as root (debootstrap needs it)" >&2; exit 1; }
command -v debootstrap >/dev/null || { echo "build-base-image: apt-get install debootstrap" >&2; exit 1; }

mirror="${DEBIAN_MIRROR:-}"
if [ -z "$mirror" ]; then
  mirror="$(sed -n 's/^URIs:[[:space:]]*\(http[^[:space:]]*debian\)[[:space:]]*$/\1/p' /etc/apt/sources.list.d/*.sources 2>/dev/null | head -n1)"
fi
mirror="${mirror:-http://deb.debian.org/debian}"

work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
rootfs="$work/rootfs"

echo "build-base-image: debootstrap bookworm from $mirror ..." >&2
debootstrap --variant=minbase --include=python3,python3-venv,python3-pip,ca-certificates \
  bookworm "$rootfs" "$mirror" >"$work/debootstrap.log" 2>&1 \
  || { tail -n 20 "$work/debootstrap.log" >&2; exit 1; }
rm -rf "$rootfs"/var/cache/apt/archives/*.deb "$rootfs"/var/lib/apt/lists/*

changes=(--change 'ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' --change 'ENV LANG=C.UTF-8')
if [ "${TRUST_HOST_CA:-0}" = 1 ]; then
  cp /etc/ssl/certs/ca-certificates.crt "$rootfs/etc/ssl/certs/ca-certificates.crt"
  # pip vendors its own CA list; PIP_CERT makes it use the bundle that now includes this host's CAs.
  changes+=(--change 'ENV PIP_CERT=/etc/ssl/certs/ca-certificates.crt')
fi

tar -C "$rootfs" -cf "$work/rootfs.tar" .
docker import "${changes[@]}" --change 'CMD ["python3"]' "$work/rootfs.tar" "$image" >/dev/null
echo "build-base-image: imported $image" >&2
