#!/usr/bin/env bash
# End to end on a throwaway kind cluster: exactly the commands of README.md, "On Kubernetes" (the block
# between the BEGIN/END README markers; tests/unit/helm/test_readme_kubernetes.py keeps the two identical),
# then `helm test` (a task submitted through the API Service and its result awaited).
#
# Needs docker, kind, kubectl and helm on PATH and a reachable container registry (for the base images
# and kind's node image). NOT runnable on the project's shared build machine, which has no registry;
# there the same chart is installed into the test control plane with its pods run as containers of the
# locally built images (tests/e2e/images/test_helm_on_docker_node.py), hooks and `helm test` included.
#
# Usage: make e2e-kind   (KEEP_CLUSTER=1 keeps the cluster for debugging)
set -euxo pipefail
cd "$(dirname "$0")/../../.."

cleanup() { [ "${KEEP_CLUSTER:-0}" = 1 ] || kind delete cluster --name jobqueue; }
trap cleanup EXIT

# BEGIN README
kind create cluster --name jobqueue
docker build -f Dockerfile.worker -t jobqueue-worker:0.1.0 .
docker build -f Dockerfile.operator -t jobqueue-operator:0.1.0 .
docker build -t quickstart-worker:0.1.0 examples/quickstart
kind load docker-image --name jobqueue jobqueue-worker:0.1.0 jobqueue-operator:0.1.0 quickstart-worker:0.1.0
helm install jobqueue ./helm/jobqueue --namespace jobqueue --create-namespace --wait --timeout 10m \
  --set image.repository=jobqueue-worker --set operator.image.repository=jobqueue-operator
kubectl apply -n jobqueue -f crds/examples/
kubectl -n jobqueue rollout status deployment/email-workers --timeout 5m
kubectl -n jobqueue exec deploy/jobqueue-api -- jobqueue enqueue add --args '[2, 3]' --wait 60
# END README

kubectl -n jobqueue get pods,jobqueue-all
# No --logs: the test pod is deleted once it passes (hook-succeeded), and --logs then fails the step.
helm test jobqueue --namespace jobqueue --timeout 5m \
  || { kubectl -n jobqueue logs jobqueue-test-submit; exit 1; }
