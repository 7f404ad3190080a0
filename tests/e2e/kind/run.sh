#!/usr/bin/env bash
# End to end on a throwaway kind cluster: build both images on the official python slim base, load them
# into kind, `helm install` the chart with the example JobQueue and WorkerPool, wait for every rollout and
# run `helm test` (a task submitted through the API Service and its result awaited).
#
# Needs docker, kind, kubectl and helm on PATH and a reachable container registry (for the base images
# and kind's node image). NOT runnable on the project's shared build machine, which has no registry;
# there the same chart is installed into the test control plane with its pods run as containers of the
# locally built images (tests/e2e/images/test_helm_on_docker_node.py), hooks and `helm test` included.
#
# Usage: make e2e-kind   (KEEP_CLUSTER=1 keeps the cluster for debugging)
set -euo pipefail
cd "$(dirname "$0")/../../.."

cluster="${KIND_CLUSTER:-jobqueue-e2e}"
tag="e2e-$(git rev-parse --short HEAD 2>/dev/null || echo local)"
namespace=jobqueue

cleanup() { [ "${KEEP_CLUSTER:-0}" = 1 ] || kind delete cluster --name "$cluster"; }
trap cleanup EXIT

kind create cluster --name "$cluster" --wait 120s
for kind_ in worker operator; do
  docker build -f "Dockerfile.$kind_" -t "jobqueue-$kind_:$tag" .
  kind load docker-image --name "$cluster" "jobqueue-$kind_:$tag"
done

helm install jobqueue helm/jobqueue --namespace "$namespace" --create-namespace --wait --timeout 10m \
  --set image.tag="$tag" --set image.pullPolicy=Never \
  --set operator.image.tag="$tag" --set operator.image.pullPolicy=Never \
  --set examples.enabled=true
kubectl -n "$namespace" get pods,workerpools,jobqueues
# No --logs: the test pod is deleted once it passes (hook-succeeded), and --logs then fails the step.
helm test jobqueue --namespace "$namespace" --timeout 5m \
  || { kubectl -n "$namespace" logs jobqueue-test-submit; exit 1; }
# The operator must have reconciled the example pool into a ready Deployment.
kubectl -n "$namespace" rollout status deployment/demo-workers --timeout 5m
