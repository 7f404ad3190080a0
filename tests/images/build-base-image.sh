#!/usr/bin/env bash
# Makes the base image the jobqueue images are built on here, then builds both images.
#
# Why: no container registry is reachable, so the official python slim image cannot be pulled. Debian's
# own archive is: debootstrap a minimal bookworm with python3, python3-venv and tini into a cache
# directory outside the repository and `docker import` it. The Dockerfiles take the base as a build
# argument, so the same files build on python:3.12-slim wherever a registry is reachable.
#
# Usage: tests/images/build-base-image.sh [--base-only]
#   JOBQUEUE_IMAGE_CACHE  rootfs cache (default ~/.cache/jobqueue-images)
#   JOBQUEUE_BASE_IMAGE   tag of the imported base (default jobqueue-base:bookworm)
#   JOBQUEUE_IMAGE_TAG    tag of the built images (default: the chart's appVersion, the tag the chart's
#                         defaults name, so `make images` + `kind load docker-image` + `helm install` fit)
set -euo pipefail

root="$(cd "$(dirname "$0")/../.." && pwd)"
cache="${JOBQUEUE_IMAGE_CACHE:-$HOME/.cache/jobqueue-images}"
base="${JOBQUEUE_BASE_IMAGE:-jobqueue-base:bookworm}"
tag="${JOBQUEUE_IMAGE_TAG:-$(sed -nE 's/^appVersion: *"?([^"]+)"?$/\1/p' "$root/helm/jobqueue/Chart.yaml")}"
log() { echo "build-base-image: $*" >&2; }

# The mirror this machine's apt already uses (deb822 or one-line format), so nothing new is contacted.
mirror="$(grep -hoE '^URIs: *\S+' /etc/apt/sources.list.d/*.sources 2>/dev/null | awk '{print $2}' \
  | grep -v security | head -1 || true)"
if [ -z "$mirror" ]; then
  mirror="$(grep -hoE '^deb +\S+' /etc/apt/sources.list 2>/dev/null | awk '{print $2}' | head -1 || true)"
fi
mirror="${mirror:-http://deb.debian.org/debian}"

if docker image inspect "$base" >/dev/null 2>&1; then
  log "$base present"
else
  command -v debootstrap >/dev/null || { log "debootstrap is required (apt-get install debootstrap)"; exit 1; }
  mkdir -p "$cache"
  exec 9>"$cache/.lock"
  flock 9
  rootfs="$cache/bookworm-rootfs"
  if [ ! -x "$rootfs/usr/bin/python3" ]; then
    log "debootstrapping bookworm from $mirror into $rootfs"
    rm -rf "$rootfs"
    nice -n 19 debootstrap --variant=minbase --include=python3,python3-venv,tini,ca-certificates \
      bookworm "$rootfs" "$mirror" >"$cache/debootstrap.log" 2>&1 \
      || { tail -20 "$cache/debootstrap.log" >&2; exit 1; }
    # Package lists, caches and docs are not needed at run time; they only make the image bigger.
    rm -rf "$rootfs"/var/lib/apt/lists/* "$rootfs"/var/cache/apt/* "$rootfs"/usr/share/doc/* \
      "$rootfs"/usr/share/man/* "$rootfs"/usr/share/locale/*
  fi
  # The machine's CA bundle goes into this test-only base: PyPI is reached through the same TLS-inspecting
  # egress as the host, and Debian's pip trusts /etc/ssl/certs. Images built on an official base never
  # see it.
  cp /etc/ssl/certs/ca-certificates.crt "$rootfs/etc/ssl/certs/ca-certificates.crt"
  log "importing $rootfs as $base"
  tar -C "$rootfs" -c . | docker import \
    --change 'ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' \
    --change 'ENV LANG=C.UTF-8' \
    --change 'CMD ["python3"]' - "$base" >/dev/null
fi

[ "${1:-}" = "--base-only" ] && exit 0

# DOCKER_BUILDKIT=0: the classic builder needs no buildx plugin and pulls nothing to build.
for kind in worker operator; do
  log "building jobqueue-$kind:$tag"
  start=$(date +%s)
  DOCKER_BUILDKIT=0 nice -n 19 docker build --network host --build-arg "BASE_IMAGE=$base" \
    -f "$root/Dockerfile.$kind" -t "jobqueue-$kind:$tag" "$root"
  log "jobqueue-$kind:$tag built in $(( $(date +%s) - start )) s"
done
