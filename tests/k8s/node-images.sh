#!/usr/bin/env bash
# Imports images from the local Docker engine into a containerd (CRI namespace k8s.io), for the real test
# node (tests/k8s/kubelet_node.py) and tests/k8s/probe-real-node.sh. Nothing is pulled: no registry is
# reachable here. The sandbox image is made first when Docker lacks it: a static build of tests/k8s/pause.c
# in an otherwise empty image, tagged as containerd's sandbox_image in the node's config.
#
# Usage: tests/k8s/node-images.sh CONTAINERD_SOCKET IMAGE...
#   JOBQUEUE_PAUSE_IMAGE  the sandbox image's tag (default jobqueue.test/pause:3.10)
set -euo pipefail

here="$(cd "$(dirname "$0")" && pwd)"
socket="${1:?usage: node-images.sh CONTAINERD_SOCKET IMAGE...}"
shift
pause="${JOBQUEUE_PAUSE_IMAGE:-jobqueue.test/pause:3.10}"
log() { echo "node-images: $*" >&2; }

if ! docker image inspect "$pause" >/dev/null 2>&1; then
  command -v gcc >/dev/null || { log "gcc is required to build the pause image"; exit 1; }
  work="$(mktemp -d)"
  trap 'rm -rf "$work"' EXIT
  mkdir -p "$work/rootfs"
  gcc -static -Os -o "$work/rootfs/pause" "$here/pause.c"
  tar -C "$work/rootfs" -c . | docker import --change 'ENTRYPOINT ["/pause"]' - "$pause" >/dev/null
  log "built $pause"
fi

for image in "$pause" "$@"; do
  # ctr unpacks into the default (overlayfs) snapshotter, which CRI needs to create containers.
  docker save "$image" | ctr --address "$socket" --namespace k8s.io images import - >/dev/null
  log "imported $image"
done
