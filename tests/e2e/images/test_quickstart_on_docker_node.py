"""Issue 17 end to end: a user's own worker image (examples/quickstart built FROM the freshly built worker
image) run by the chart's operator on the test control plane, with its pods as real containers on the
docker node. The WorkerPool's podTemplate adds a sidecar and a ConfigMap volume mounted into the worker;
a task submitted through the API container runs on the quickstart's code, the sidecar runs, the worker
can write /tmp under a read-only root, and with the operator scaled to zero a SIGSTOPped worker is
restarted by its liveness probe (`jobqueue worker-health`), shown by the container's restart count.
"""

from __future__ import annotations

import base64
import json
import subprocess
import time
from pathlib import Path
from typing import Any

import pytest
from jq_testing import wait_until
from kubernetes import client as k8s_client

from e2e.images.test_helm_on_docker_node import (  # the same install on the same kind of node
    RELEASE,
    Install,
    api_call,
    chart_values,
    docker_node,  # noqa: F401 (fixture, by import)
    empty_database,  # noqa: F401 (fixture, by import)
)
from helm.fixtures import CHART
from jobqueue import Settings
from k8s.control_plane import ControlPlane, free_port
from k8s.docker_node import DockerNode

pytestmark = pytest.mark.timeout(900)
POOL = "quickstart"
# Stops the worker process (not tini, PID 1, which would only stop forwarding signals).
FREEZE_WORKER = (
    "import os, signal\n"
    "for pid in filter(str.isdigit, os.listdir('/proc')):\n"
    "    argv = open(f'/proc/{pid}/cmdline', 'rb').read().split(b'\\0')\n"
    "    if int(pid) not in (1, os.getpid()) and b'worker' in argv:\n"
    "        os.kill(int(pid), signal.SIGSTOP); print(pid)\n"
)
SCRATCH = "import tempfile; f = tempfile.NamedTemporaryFile(); f.write(b'x'); f.flush(); print(f.name)"


def docker(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["docker", *args], capture_output=True, text=True, check=False, timeout=60)


def pool_body(image: str, node: DockerNode, settings: Settings) -> dict[str, Any]:
    repository_tag = image
    return {
        "apiVersion": "jobqueue.dev/v1alpha1",
        "kind": "WorkerPool",
        "metadata": {"name": POOL},
        "spec": {
            "queues": ["default", "email"],
            "image": repository_tag,
            "imagePullPolicy": "Never",
            "app": "tasks:app",
            "poolKind": "thread",
            "concurrency": 2,
            "connectionSecretName": "jobqueue-stores",
            "env": [{"name": "JOBQUEUE_KEY_PREFIX", "value": settings.key_prefix}],
            "terminationGracePeriodSeconds": 5,
            # The liveness probe's --max-age and initial delay (above the 5 s heartbeat interval).
            "health": {"heartbeatStaleSeconds": 15, "leaseOrphanSeconds": 60},
            "podTemplate": {
                "spec": {
                    "nodeSelector": node.node_selector,
                    "tolerations": [node.toleration],
                    "containers": [
                        {"name": "worker", "volumeMounts": [{"name": "shop", "mountPath": "/etc/shop"}]},
                        {
                            "name": "sidecar",
                            "image": repository_tag,
                            "imagePullPolicy": "Never",
                            "command": ["python", "-c", "import time\nwhile True: time.sleep(1)"],
                        },
                    ],
                    "volumes": [{"name": "shop", "configMap": {"name": "shop-settings"}}],
                }
            },
        },
    }


def container_of(node: DockerNode, pod: str, container: str) -> str:
    names = docker("ps", "--filter", f"name=k8s_{container}_{pod}_", "--format", "{{.Names}}").stdout.split()
    assert len(names) == 1, (names, node.containers())
    return names[0]


def test_quickstart_pool_with_sidecar_config_tmp_and_liveness_on_the_docker_node(
    images: dict[str, str],
    quickstart_image: str,
    helm_bin: Path,
    kube_control_plane: ControlPlane,
    kube_api: k8s_client.ApiClient,
    kube_namespace: str,
    docker_node: DockerNode,  # noqa: F811
    settings: Settings,
    empty_database: str,  # noqa: F811
    tmp_path: Path,
) -> None:
    core, apps = k8s_client.CoreV1Api(kube_api), k8s_client.AppsV1Api(kube_api)
    ns = kube_namespace
    stores = {
        "JOBQUEUE_REDIS_URL": settings.redis_url.get_secret_value(),
        "JOBQUEUE_DATABASE_URL": empty_database,
    }
    core.create_namespaced_secret(
        ns, k8s_client.V1Secret(metadata=k8s_client.V1ObjectMeta(name="jobqueue-stores"), string_data=stores)
    )
    core.create_namespaced_config_map(
        ns,
        k8s_client.V1ConfigMap(metadata=k8s_client.V1ObjectMeta(name="shop-settings"), data={"name": "acme"}),
    )
    api_port = free_port()
    values = chart_values(images, docker_node, settings, api_port)
    values["examples"] = {"enabled": False}
    (tmp_path / "values.json").write_text(json.dumps(values))
    helm = Install(helm_bin, kube_control_plane, ns, tmp_path)
    try:
        helm.run(
            "install", RELEASE, str(CHART), "-f", str(tmp_path / "values.json"), "--wait", "--timeout", "300s"
        )
        k8s_client.CustomObjectsApi(kube_api).create_namespaced_custom_object(
            "jobqueue.dev", "v1alpha1", ns, "workerpools", pool_body(quickstart_image, docker_node, settings)
        )

        def pod() -> Any:
            pods = core.list_namespaced_pod(ns, label_selector=f"jobqueue.dev/pool={POOL}").items
            running = [
                p for p in pods if p.status.phase == "Running" and p.metadata.deletion_timestamp is None
            ]
            return running[0] if len(running) == 1 else None

        wait_until(
            lambda: pod() is not None and all(s.ready for s in pod().status.container_statuses), 180, 1
        )
        name = pod().metadata.name
        assert {s.name for s in pod().status.container_statuses} == {"worker", "sidecar"}

        # A task through the API container, run by the quickstart's code in the worker container.
        secret = core.read_namespaced_secret(f"{RELEASE}-api-key", ns)
        key = base64.b64decode(secret.data["API_KEY"]).decode()
        task_id = api_call(api_port, key, "POST", "/api/v1/tasks", {"name": "add", "args": [2, 3]})["ids"][0]
        task: dict[str, Any] = {}

        def succeeded() -> bool:
            task.update(api_call(api_port, key, "GET", f"/api/v1/tasks/{task_id}"))
            return task["status"] == "SUCCESS"

        wait_until(succeeded, timeout=90, interval=0.5)
        assert (task["result"], task["worker"]) == (5, name)

        # The ConfigMap is mounted into the worker; /tmp is writable while the root is read-only.
        worker = container_of(docker_node, name, "worker")
        assert docker("exec", worker, "cat", "/etc/shop/name").stdout == "acme"
        scratch = docker("exec", worker, "python", "-c", SCRATCH)
        assert scratch.returncode == 0 and scratch.stdout.startswith("/tmp/"), scratch.stderr
        assert docker("exec", worker, "touch", "/app/written").returncode != 0

        # The kubelet's own check, with the operator gone: scale it to zero, then freeze the worker.
        apps.patch_namespaced_deployment_scale(f"{RELEASE}-operator", ns, {"spec": {"replicas": 0}})
        wait_until(
            lambda: (
                not core.list_namespaced_pod(ns, label_selector="app.kubernetes.io/component=operator").items
            ),
            120,
            1,
        )
        frozen = docker("exec", worker, "python", "-c", FREEZE_WORKER)
        assert frozen.returncode == 0 and frozen.stdout.strip(), frozen.stderr
        stopped_at = time.monotonic()

        def restarts() -> int:
            current = core.read_namespaced_pod(name, ns)
            status = {s.name: s for s in current.status.container_statuses}
            return int(status["worker"].restart_count)

        wait_until(lambda: restarts() >= 1, timeout=120, interval=1)
        print(f"liveness restart {time.monotonic() - stopped_at:.0f}s after SIGSTOP")
        assert any(f"{name}/worker: liveness probe failed" in e for e in docker_node.events), (
            docker_node.events
        )
        # Same pod (not replaced by the operator, which is down), a fresh worker container that serves again.
        wait_until(lambda: pod() is not None and pod().status.container_statuses[0].ready, 60, 1)
        assert pod().metadata.name == name
        again = api_call(api_port, key, "POST", "/api/v1/tasks", {"name": "add", "args": [20, 22]})["ids"][0]
        wait_until(
            lambda: api_call(api_port, key, "GET", f"/api/v1/tasks/{again}")["status"] == "SUCCESS", 90, 0.5
        )
        assert not docker_node.errors, docker_node.errors
    except BaseException:
        print(docker_node.log_tails())
        print("node errors:", docker_node.errors, "events:", docker_node.events)
        raise
    finally:
        helm.run("uninstall", RELEASE, "--wait", "--timeout", "120s", check=False)
