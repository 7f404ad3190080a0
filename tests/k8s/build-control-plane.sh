#!/usr/bin/env bash
# Builds the binaries of a real Kubernetes test control plane from Go modules, once per machine:
#   etcd, kube-apiserver, kube-controller-manager, kube-scheduler, kwok (fake nodes) and kubectl.
# They go into ${JOBQUEUE_K8S_CACHE:-$HOME/.cache/jobqueue-k8s}/<kubernetes version>/bin, outside the
# repository; a binary already there that reports the expected version is kept, so reruns take a second.
#
# Why from modules: no container registry or release download is reachable here, but the Go module proxy
# is. k8s.io/kubernetes is not meant to be a dependency: its go.mod requires every k8s.io/* staging module
# at v0.0.0 and replaces it with ./staging/src/..., and replace directives of a dependency are ignored.
# A wrapper module therefore re-states those replaces, pointing each at the published v0.X.Y twin.
#
# Usage: tests/k8s/build-control-plane.sh [--print-bin-dir] [--with-kubelet]
#   --with-kubelet (or JOBQUEUE_TEST_NODE=kubelet) also builds the kubelet of the same release, for the
#   opt-in real node (tests/k8s/kubelet_node.py); nothing else needs it, so a plain build skips it.
# Builds are niced and serial (-p 1): the machine is shared.
set -euo pipefail

here="$(cd "$(dirname "$0")" && pwd)"
# shellcheck source=versions.env
source "$here/versions.env"

cache="${JOBQUEUE_K8S_CACHE:-$HOME/.cache/jobqueue-k8s}"
bin="$cache/$KUBERNETES_VERSION/bin"
src="$cache/$KUBERNETES_VERSION/src"

if [ "${1:-}" = "--print-bin-dir" ]; then
  echo "$bin"
  exit 0
fi

command -v go >/dev/null || { echo "build-control-plane: Go is required (go not on PATH)" >&2; exit 1; }
mkdir -p "$bin" "$src"
# One build at a time per cache: a second caller waits, then finds the binaries present.
if command -v flock >/dev/null; then
  exec 9>"$cache/.build.lock"
  flock 9
fi

export CGO_ENABLED=0          # static binaries, no C toolchain needed
export GOFLAGS="-buildvcs=false -mod=mod"
export GOTOOLCHAIN=local      # never download a Go toolchain behind our back
build=(nice -n 19 go build -p 1 -trimpath)

log() { echo "build-control-plane: $*" >&2; }

# has_version BINARY EXPECTED: true when the binary exists and its --version output mentions EXPECTED.
has_version() {
  [ -x "$bin/$1" ] && "$bin/$1" --version 2>/dev/null | grep -qF -- "$2"
}

# new_wrapper NAME: an empty wrapper module directory to build a release from.
new_wrapper() {
  local dir="$src/$1"
  rm -rf "$dir" && mkdir -p "$dir"
  echo "$dir"
}

# module_field MODULE@VERSION FIELD: a field of `go mod download -json` (GoMod, Dir, Origin.Hash...).
module_field() {
  go mod download -json "$1" | python3 -c '
import json, sys
value = json.load(sys.stdin)
for part in sys.argv[1].split("."):
    value = value.get(part, {}) if isinstance(value, dict) else {}
print(value if isinstance(value, str) else "")' "$2"
}

build_etcd() {
  local want="${ETCD_VERSION#v}"
  if has_version etcd "etcd Version: $want"; then log "etcd $ETCD_VERSION present"; return; fi
  log "building etcd $ETCD_VERSION"
  local dir; dir="$(new_wrapper "etcd-$ETCD_VERSION")"
  # etcd's own server/go.mod replaces its sibling modules with ../ paths, so `go install pkg@version`
  # refuses it; a wrapper requiring the tag resolves the siblings at the same tag instead.
  (cd "$dir" && go mod init jobqueue.test/etcd >/dev/null 2>&1 \
    && go get "go.etcd.io/etcd/server/v3@$ETCD_VERSION" \
    && "${build[@]}" -o "$bin/etcd.tmp" go.etcd.io/etcd/server/v3)
  mv "$bin/etcd.tmp" "$bin/etcd"
}

# kubernetes_wrapper NAME: a wrapper module for k8s.io/kubernetes at KUBERNETES_VERSION whose go.mod pins
# every staging module the release replaces with ./staging/src/... to its published twin.
kubernetes_wrapper() {
  local dir; dir="$(new_wrapper "$1")"
  local gomod staging_version
  gomod="$(module_field "k8s.io/kubernetes@$KUBERNETES_VERSION" GoMod)"
  # v1.32.13 -> v0.32.13: the staging modules are published with major 0 and the same minor/patch.
  staging_version="v0.${KUBERNETES_VERSION#v1.}"
  {
    echo "module jobqueue.test/kubernetes"
    echo
    grep -E '^go [0-9.]+$' "$gomod"
    echo
    echo "require k8s.io/kubernetes $KUBERNETES_VERSION"
    echo
    echo "replace ("
    # The list comes from the release's own go.mod: every module it replaces with ./staging/src/...
    sed -nE 's#^[[:space:]]*(k8s\.io/[a-z0-9-]+) => \./staging/src/.*#\t\1 => \1 '"$staging_version"'#p' "$gomod"
    echo ")"
  } >"$dir/go.mod"
  log "wrapper go.mod pins $(grep -c '=>' "$dir/go.mod") staging modules at $staging_version"
  echo "$dir"
}

# kubernetes_ldflags: the variables hack/lib/version.sh sets, so /version and --version report the release.
kubernetes_ldflags() {
  local commit minor ldflags="-s -w" pkg
  commit="$(module_field "k8s.io/kubernetes@$KUBERNETES_VERSION" Origin.Hash)"
  minor="${KUBERNETES_VERSION#v1.}"; minor="${minor%%.*}"
  for pkg in k8s.io/client-go/pkg/version k8s.io/component-base/version; do
    ldflags+=" -X $pkg.gitVersion=$KUBERNETES_VERSION -X $pkg.gitMajor=1 -X $pkg.gitMinor=$minor"
    ldflags+=" -X $pkg.gitCommit=${commit:-unknown} -X $pkg.gitTreeState=clean"
    ldflags+=" -X $pkg.buildDate=$(date -u +%Y-%m-%dT%H:%M:%SZ)"
  done
  echo "$ldflags"
}

build_kubernetes() {
  local want="Kubernetes $KUBERNETES_VERSION"
  if has_version kube-apiserver "$want" && has_version kube-controller-manager "$want" \
    && has_version kube-scheduler "$want"; then
    log "kubernetes $KUBERNETES_VERSION present"; return
  fi
  log "building kube-apiserver, kube-controller-manager, kube-scheduler $KUBERNETES_VERSION (slow)"
  local dir ldflags pkg
  dir="$(kubernetes_wrapper "kubernetes-$KUBERNETES_VERSION")"
  ldflags="$(kubernetes_ldflags)"
  local pkgs=(k8s.io/kubernetes/cmd/kube-apiserver k8s.io/kubernetes/cmd/kube-controller-manager
    k8s.io/kubernetes/cmd/kube-scheduler)
  # @version on every package: a bare `go get pkg` would upgrade k8s.io/kubernetes to the newest release.
  (cd "$dir" && go get "${pkgs[@]/%/@$KUBERNETES_VERSION}" \
    && mkdir -p out && "${build[@]}" -ldflags "$ldflags" -o out/ "${pkgs[@]}")
  for pkg in kube-apiserver kube-controller-manager kube-scheduler; do mv "$dir/out/$pkg" "$bin/$pkg"; done
}

# kubectl of the same release, for end-to-end tests of what users type (name and category resolution
# happens in kubectl, not in the API server). Built separately so a cache with the server binaries only
# gains kubectl without rebuilding them.
build_kubectl() {
  if [ -x "$bin/kubectl" ] && "$bin/kubectl" version --client 2>/dev/null | grep -qF "$KUBERNETES_VERSION"; then
    log "kubectl $KUBERNETES_VERSION present"; return
  fi
  log "building kubectl $KUBERNETES_VERSION"
  local dir ldflags
  dir="$(kubernetes_wrapper "kubectl-$KUBERNETES_VERSION")"
  ldflags="$(kubernetes_ldflags)"
  (cd "$dir" && go get "k8s.io/kubernetes/cmd/kubectl@$KUBERNETES_VERSION" \
    && "${build[@]}" -ldflags "$ldflags" -o "$bin/kubectl.tmp" k8s.io/kubernetes/cmd/kubectl)
  mv "$bin/kubectl.tmp" "$bin/kubectl"
}

# kwok needs Stage objects (how fake nodes and pods move through their lifecycle) in its config; kwokctl
# normally supplies them. The release's own stage files are copied next to the binary: nodes become Ready
# and heartbeat, pods become Running, complete and go away when deleted.
write_kwok_stages() {
  local dir stage
  dir="$(module_field "sigs.k8s.io/kwok@$KWOK_VERSION" Dir)"
  for stage in node/fast/node-initialize node/heartbeat/node-heartbeat \
    pod/fast/pod-ready pod/fast/pod-complete pod/fast/pod-delete; do
    echo "---"
    cat "$dir/kustomize/stage/$stage.yaml"
  done >"$bin/kwok-stages.yaml.tmp"
  mv "$bin/kwok-stages.yaml.tmp" "$bin/kwok-stages.yaml"
}

build_kwok() {
  # kwok --version does not carry the tag unless stamped; the stamp file records what was built.
  if [ -x "$bin/kwok" ] && [ "$(cat "$bin/.kwok-version" 2>/dev/null)" = "$KWOK_VERSION" ] \
    && [ -s "$bin/kwok-stages.yaml" ]; then
    log "kwok $KWOK_VERSION present"; return
  fi
  write_kwok_stages
  log "building kwok $KWOK_VERSION"
  local dir; dir="$(new_wrapper "kwok-$KWOK_VERSION")"
  (cd "$dir" && go mod init jobqueue.test/kwok >/dev/null 2>&1 \
    && go get "sigs.k8s.io/kwok/cmd/kwok@$KWOK_VERSION" \
    && "${build[@]}" -ldflags "-s -w -X sigs.k8s.io/kwok/pkg/consts.Version=$KWOK_VERSION" \
      -o "$bin/kwok.tmp" sigs.k8s.io/kwok/cmd/kwok)
  mv "$bin/kwok.tmp" "$bin/kwok"
  echo "$KWOK_VERSION" >"$bin/.kwok-version"
}

# The kubelet of the same release, for the real node (containerd through CRI). Built apart from the server
# binaries so that a cache holding them only gains the kubelet.
build_kubelet() {
  if has_version kubelet "Kubernetes $KUBERNETES_VERSION"; then log "kubelet $KUBERNETES_VERSION present"; return; fi
  log "building kubelet $KUBERNETES_VERSION"
  local dir ldflags kstart
  kstart=$(date +%s)
  dir="$(kubernetes_wrapper "kubelet-$KUBERNETES_VERSION")"
  ldflags="$(kubernetes_ldflags)"
  (cd "$dir" && go get "k8s.io/kubernetes/cmd/kubelet@$KUBERNETES_VERSION" \
    && "${build[@]}" -ldflags "$ldflags" -o "$bin/kubelet.tmp" k8s.io/kubernetes/cmd/kubelet)
  mv "$bin/kubelet.tmp" "$bin/kubelet"
  log "kubelet built in $(( $(date +%s) - kstart ))s"
}

with_kubelet=0
if [ "${1:-}" = "--with-kubelet" ] || [ "${JOBQUEUE_TEST_NODE:-}" = "kubelet" ]; then with_kubelet=1; fi

start=$(date +%s)
build_etcd
build_kubernetes
build_kwok
build_kubectl
if [ "$with_kubelet" = 1 ]; then build_kubelet; fi
log "done in $(( $(date +%s) - start ))s: $bin"
