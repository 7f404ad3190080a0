#!/usr/bin/env bash
# Can this machine run a real Kubernetes node (kubelet + containerd)? Prints what the kernel offers
# (cgroups, overlayfs, capabilities, namespaces), starts a private containerd under a temporary
# directory, imports a locally built image from Docker and runs one container with host networking.
# Exits 0 when the container ran, else 1 with the exact error of the step that failed.
#
# Usage: tests/k8s/probe-real-node.sh [IMAGE]   (root; IMAGE default jobqueue-base:bookworm, see
#        tests/images/build-base-image.sh). Needs Debian's containerd, runc, containernetworking-plugins.
# Everything it starts is stopped by pid at exit; the temporary directory is removed.
set -euo pipefail

here="$(cd "$(dirname "$0")" && pwd)"
image="${1:-jobqueue-base:bookworm}"
work="$(mktemp -d /tmp/jobqueue-probe-node.XXXXXX)"
containerd_pid=""
cgroup_parent="jobqueue-probe-$$"
say() { echo "probe-real-node: $*"; }
blocked() {
  say "BLOCKED: $*"
  exit 1
}
cleanup() {
  if [ -n "$containerd_pid" ]; then
    ctr --address "$work/containerd.sock" -n k8s.io tasks kill -s SIGKILL probe >/dev/null 2>&1 || true
    ctr --address "$work/containerd.sock" -n k8s.io containers delete probe >/dev/null 2>&1 || true
    kill "$containerd_pid" 2>/dev/null || true
    wait "$containerd_pid" 2>/dev/null || true
  fi
  # The container's cgroups (runc mirrors them into the unified hierarchy too), deepest first.
  find /sys/fs/cgroup/*/"$cgroup_parent" -depth -type d -exec rmdir {} \; 2>/dev/null || true
  # Snapshots are overlay mounts under the root directory: unmount before removing it.
  grep -F " $work/" /proc/self/mounts | awk '{print $2}' | sort -r | xargs -r -n1 umount -l 2>/dev/null || true
  rm -rf "$work"
}
trap cleanup EXIT

[ "$(id -u)" = 0 ] || blocked "must run as root"
say "kernel: $(uname -r)"
say "/sys/fs/cgroup is $(stat -fc %T /sys/fs/cgroup) (cgroup2fs = v2 only; tmpfs = v1 or hybrid)"
say "/proc/self/cgroup: $(tr '\n' ' ' </proc/self/cgroup)"
probe_cgroup="/sys/fs/cgroup/memory/jobqueue-probe-$$"
if [ -d /sys/fs/cgroup/memory ]; then
  if err="$(mkdir "$probe_cgroup" 2>&1)"; then
    say "cgroup v1 memory hierarchy is writable (made and removed $probe_cgroup)"
    rmdir "$probe_cgroup"
  else
    blocked "mkdir $probe_cgroup: $err"
  fi
fi
grep -qw overlay /proc/filesystems && say "overlay filesystem: available" || say "overlay filesystem: missing"
say "capabilities: $(grep CapEff /proc/self/status | awk '{print $2}') (000001ffffffffff = all)"
# Pod sandboxes get oom_score_adj -998; lowering it needs CAP_SYS_RESOURCE. Without it runc fails every
# sandbox ("can't get final child's PID from pipe: EOF") unless containerd restricts the score.
if err="$(bash -c 'echo -998 > /proc/self/oom_score_adj' 2>&1)"; then
  say "oom_score_adj can be lowered"
else
  say "oom_score_adj cannot be lowered (${err##*: }): containerd needs restrict_oom_score_adj = true"
fi
say "swap: $(awk 'NR > 1' /proc/swaps | wc -l) device(s)"
say "containerd: $(containerd --version 2>&1 || echo missing)"
say "runc: $(runc --version 2>&1 | head -1 || echo missing)"
say "cni plugins: $(ls /usr/lib/cni 2>/dev/null | tr '\n' ' ' || echo missing)"
command -v containerd >/dev/null || blocked "containerd missing: apt-get install containerd runc containernetworking-plugins"
docker image inspect "$image" >/dev/null 2>&1 \
  || blocked "image $image is not in the local Docker engine (bash tests/images/build-base-image.sh --base-only)"

start_containerd() {
  local snapshotter="$1"
  cat >"$work/containerd.toml" <<EOF
version = 2
root = "$work/root"
state = "$work/state"
[grpc]
  address = "$work/containerd.sock"
[plugins."io.containerd.grpc.v1.cri".containerd]
  snapshotter = "$snapshotter"
EOF
  containerd --config "$work/containerd.toml" >"$work/containerd.log" 2>&1 </dev/null &
  containerd_pid=$!
  for _ in $(seq 1 30); do
    ctr --address "$work/containerd.sock" version >/dev/null 2>&1 && return 0
    kill -0 "$containerd_pid" 2>/dev/null || break
    sleep 1
  done
  blocked "containerd did not answer: $(tail -5 "$work/containerd.log")"
}

start_containerd overlayfs
if ctr --address "$work/containerd.sock" plugins ls | grep -E 'snapshotter.*overlayfs' | grep -qw ok; then
  snapshotter=overlayfs
else
  say "overlayfs snapshotter not loaded: $(grep -i overlayfs "$work/containerd.log" | tail -1)"
  snapshotter=native
fi
say "containerd running (pid $containerd_pid), snapshotter $snapshotter"

if ! err="$(docker save "$image" | ctr --address "$work/containerd.sock" -n k8s.io images import \
  --snapshotter "$snapshotter" - 2>&1)"; then
  blocked "docker save $image | ctr images import: $err"
fi
ref="$(ctr --address "$work/containerd.sock" -n k8s.io images ls -q | grep -v '^sha256:' | head -1)"
say "imported $image as $ref"

if ! out="$(timeout 60 ctr --address "$work/containerd.sock" -n k8s.io run --rm --net-host \
  --cgroup "/$cgroup_parent/probe" --snapshotter "$snapshotter" "$ref" probe sh -c 'echo ran as pid $$ in $(cat /proc/self/cgroup | head -1)' 2>&1)"; then
  blocked "ctr run --net-host $ref: $out"
fi
say "container output: $out"
say "OK: a container runs under containerd here ($snapshotter snapshotter, runc, host network)"
if [ -x "$("$here/build-control-plane.sh" --print-bin-dir)/kubelet" ]; then
  say "kubelet: $("$("$here/build-control-plane.sh" --print-bin-dir)/kubelet" --version)"
else
  say "kubelet not built yet: tests/k8s/build-control-plane.sh --with-kubelet"
fi
