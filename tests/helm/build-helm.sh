#!/usr/bin/env bash
# Builds the helm binary from Go modules, once per machine, into
# ${JOBQUEUE_HELM_CACHE:-$HOME/.cache/jobqueue-helm}/<version>/bin/helm (never into the repository).
# A binary already there that reports the pinned version is kept, so reruns take a second.
#
# Why from modules: no release download or container registry is reachable here, the Go module proxy is.
# Why v3.18: it is built against the Kubernetes 1.33 client libraries, the same minor as the test control
# plane (tests/k8s/versions.env), so `helm install` there speaks the server's API version.
#
# Usage: tests/helm/build-helm.sh [--print-bin]
# Builds are niced and serial (-p 1): the machine is shared.
set -euo pipefail

HELM_VERSION="${HELM_VERSION:-v3.18.6}"
cache="${JOBQUEUE_HELM_CACHE:-$HOME/.cache/jobqueue-helm}"
bin="$cache/$HELM_VERSION/bin"
src="$cache/$HELM_VERSION/src"

if [ "${1:-}" = "--print-bin" ]; then
  echo "$bin/helm"
  exit 0
fi

log() { echo "build-helm: $*" >&2; }
command -v go >/dev/null || { log "Go is required (go not on PATH)"; exit 1; }
mkdir -p "$bin" "$src"
if command -v flock >/dev/null; then
  exec 9>"$cache/.build.lock"
  flock 9
fi

# The stamp records the full build recipe: a binary built with other flags is rebuilt.
recipe="helm $HELM_VERSION, kube capabilities from its k8s.io/client-go"
if [ -x "$bin/helm" ] && [ "$(cat "$bin/helm.recipe" 2>/dev/null)" = "$recipe" ] \
  && "$bin/helm" version --short 2>/dev/null | grep -qF "$HELM_VERSION"; then
  log "helm $HELM_VERSION present in $bin"
  exit 0
fi

export CGO_ENABLED=0
export GOFLAGS="-buildvcs=false -mod=mod"
export GOTOOLCHAIN=local
log "building helm $HELM_VERSION (takes minutes on a busy machine)"
# A wrapper module rather than `go install pkg@version`: that refuses modules with replace directives,
# and a wrapper keeps the resolved go.sum next to the build for the record.
rm -rf "$src" && mkdir -p "$src"
cd "$src"
go mod init jobqueue.test/helm >/dev/null 2>&1
go get "helm.sh/helm/v3@$HELM_VERSION"
# The release Makefile sets, through ldflags, the version `helm version` prints and the Kubernetes version
# `helm template` and `helm lint` assume without a cluster (else v1.20, which our kubeVersion refuses);
# like the Makefile, take it from the client-go the release is built with (v0.33.x -> 1.33).
client_go="$(go list -m -f '{{.Version}}' k8s.io/client-go)"
kube_minor="$(echo "$client_go" | cut -d. -f2)"
ldflags="-s -w -X helm.sh/helm/v3/internal/version.version=$HELM_VERSION"
for pkg in pkg/lint/rules pkg/chartutil; do
  ldflags+=" -X helm.sh/helm/v3/$pkg.k8sVersionMajor=1 -X helm.sh/helm/v3/$pkg.k8sVersionMinor=$kube_minor"
done
nice -n 19 go build -p 1 -trimpath -ldflags "$ldflags" -o "$bin/helm.tmp" helm.sh/helm/v3/cmd/helm
mv "$bin/helm.tmp" "$bin/helm"
echo "$recipe" > "$bin/helm.recipe"
log "built $("$bin/helm" version --short)"
