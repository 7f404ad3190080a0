#!/usr/bin/env bash
# Makes a Docker engine available for the image tests: installs Debian's docker.io when missing (root
# only) and starts dockerd when nothing answers on its socket.
#
# Why these flags: no container registry or outside network is reachable here and nothing may leave
# loopback, so dockerd runs without its bridge and without touching iptables; builds and containers use
# --network host. Its log goes to $JOBQUEUE_DOCKER_LOG (default /tmp/jobqueue-dockerd.log), its pid to
# /tmp/jobqueue-dockerd.pid so whoever started it can stop exactly that process.
set -euo pipefail

log() { echo "ensure-docker: $*" >&2; }

if docker info >/dev/null 2>&1; then
  log "a Docker engine is already answering"
  exit 0
fi
if ! command -v dockerd >/dev/null 2>&1; then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
    log "installing docker.io and debootstrap"
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq docker.io debootstrap >/dev/null
  else
    log "dockerd is missing and cannot be installed without root and apt-get"
    exit 1
  fi
fi
if [ "$(id -u)" != 0 ]; then
  log "dockerd is not running and starting it needs root"
  exit 1
fi

logfile="${JOBQUEUE_DOCKER_LOG:-/tmp/jobqueue-dockerd.log}"
# setsid: the daemon outlives this script and the CI step that ran it.
setsid dockerd --bridge=none --iptables=false --ip6tables=false >"$logfile" 2>&1 < /dev/null &
echo $! > /tmp/jobqueue-dockerd.pid
for _ in $(seq 1 60); do
  if docker info >/dev/null 2>&1; then
    log "dockerd started (pid $(cat /tmp/jobqueue-dockerd.pid), log $logfile)"
    exit 0
  fi
  sleep 1
done
log "dockerd did not answer within 60 s; see $logfile"
tail -20 "$logfile" >&2
exit 1
