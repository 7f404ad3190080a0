"""`helm install` of the chart into the test control plane with its pods running for real, as containers
of the locally built images on the docker node (tests/k8s/docker_node.py): the migration pre-install
hook migrates an empty database, the operator container reconciles the chart's example JobQueue and
WorkerPool into worker containers that process a task submitted through the API container, the recorder
writes it to PostgreSQL, `helm upgrade` runs the migration hook again as a no-op, `helm test` passes, and
`helm uninstall` leaves nothing behind (the examples' pre-delete hook).

Redis and PostgreSQL are the test servers on 127.0.0.1 (connection.existingSecret), not the in-chart
StatefulSets: their images (redis, postgres) come from a registry, and none is reachable here.
Containers use host networking, so every port is a free one chosen here and the API Service's port equals
its container port (a Service name resolves to 127.0.0.1 inside the containers).

The flow is `run_helm_flow`, shared with test_helm_on_kubelet_node.py (the same steps on the real node);
each node says through a NodeChecks where its evidence is (logs, errors, containers).
"""

from __future__ import annotations

import base64
import json
import os
import time
import urllib.request
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any, Protocol

import psycopg
import pytest
from jq_testing import wait_until
from kubernetes import client as k8s_client

from helm.fixtures import CHART, run_helm
from jobqueue import Settings
from jobqueue.embedded.postgres_server import PostgresServer
from k8s.control_plane import ControlPlane, free_port
from k8s.docker_node import DockerNode

# Image build (cached layers), install with hooks, reconcile, a task, helm test: about 3 minutes here.
pytestmark = pytest.mark.timeout(900)
RELEASE = "jobqueue"  # the name the README installs under: its Services' env links start with JOBQUEUE_


@pytest.fixture
def docker_node(
    kube_control_plane: ControlPlane, kube_namespace: str, tmp_path: Path
) -> Iterator[DockerNode]:
    # Set up after the namespace, so torn down before it: the node stops its containers and deletes its
    # pods, and the namespace can then go away.
    node = DockerNode(kube_control_plane, tmp_path / "node", tmp_path / "pod-logs").start()
    yield node
    node.stop()
    assert not node.containers()


@pytest.fixture
def empty_database(postgres_server: PostgresServer) -> Iterator[str]:
    """A database the migration hook must set up (no template)."""
    name = f"t_{uuid.uuid4().hex[:12]}"
    url = postgres_server.create_database(name)
    yield url
    if postgres_server.running:
        postgres_server.drop_database(name)


class Install:
    """The release, its values and the helm command line."""

    def __init__(self, helm: Path, plane: ControlPlane, namespace: str, work: Path) -> None:
        self.helm, self.namespace, self.work = helm, namespace, work
        self.env = {**os.environ, "KUBECONFIG": str(plane.kubeconfig), "HELM_CACHE_HOME": str(work / "helm")}

    def run(self, *args: str, check: bool = True) -> str:
        return run_helm(self.helm, *args, "--namespace", self.namespace, env=self.env, check=check)


class PlacedNode(Protocol):
    """What the chart's values need of a test node (k8s/docker_node.py and k8s/kubelet_node.py)."""

    @property
    def node_selector(self) -> dict[str, str]: ...
    @property
    def toleration(self) -> dict[str, str]: ...


def chart_values(
    images: dict[str, str], node: PlacedNode, settings: Settings, api_port: int
) -> dict[str, Any]:
    def image(tag: str) -> dict[str, str]:
        repository, _, version = tag.partition(":")
        return {"repository": repository, "tag": version, "pullPolicy": "Never"}

    return {
        "image": image(images["worker"]),
        "operator": {
            "image": image(images["operator"]),
            "metricsPort": free_port(),
            "healthPort": free_port(),
        },
        "connection": {"existingSecret": "jobqueue-stores", "keyPrefix": settings.key_prefix},
        "redis": {"enabled": False},
        "postgresql": {"enabled": False},
        # One API replica: on host networking two would want the same port.
        "api": {"replicas": 1, "port": api_port, "service": {"port": api_port}},
        "scheduler": {"replicas": 1},
        "examples": {"enabled": True, "workerPool": {"minReplicas": 1, "maxReplicas": 2}},
        "nodeSelector": node.node_selector,
        "tolerations": [node.toleration],
        "tests": {"timeoutSeconds": 90},
    }


def api_call(port: int, key: str, method: str, path: str, body: Any = None) -> Any:
    request = urllib.request.Request(
        f"http://127.0.0.1:{port}{path}", method=method, data=json.dumps(body).encode() if body else None,
        headers={"Authorization": f"Bearer {key}", "Content-Type": "application/json"},
    )  # fmt: skip
    with urllib.request.urlopen(request, timeout=10) as resp:
        return json.load(resp)


class NodeChecks(Protocol):
    """What the shared flow asks of the node its pods run on (each node keeps its evidence differently)."""

    name: str

    def migrate_logs(self, namespace: str) -> list[str] | None:
        """The texts of the migration hook's logs so far, or None where a deleted pod's log is gone."""

    def helm_test_log(self, namespace: str) -> str | None:
        """The `helm test` pod's log, or None where a deleted pod's log is gone."""

    def problems(self, namespace: str) -> list[str]:
        """Crashes, liveness failures or node errors seen during the flow (empty: none)."""

    def containers(self) -> list[str]:
        """Containers the node still runs."""

    def diagnostics(self) -> str:
        """Log tails to show with a failure."""


class DockerNodeChecks:
    """The docker node keeps every container's log (deleted pods' too) and records errors and events."""

    def __init__(self, node: DockerNode) -> None:
        self.node, self.name = node, node.name

    def migrate_logs(self, namespace: str) -> list[str] | None:
        paths = sorted(self.node.log_dir.glob(f"{namespace}_{RELEASE}-migrate-*_migrate.log"))
        return [path.read_text() for path in paths]

    def helm_test_log(self, namespace: str) -> str | None:
        pod = {"metadata": {"namespace": namespace, "name": f"{RELEASE}-test-submit"}}
        return self.node.log_path(pod, "submit").read_text()

    def problems(self, namespace: str) -> list[str]:
        return [*self.node.errors, *(e for e in self.node.events if "liveness" in e)]

    def containers(self) -> list[str]:
        return self.node.containers()

    def diagnostics(self) -> str:
        node = self.node
        return f"{node.log_tails()}\nnode errors: {node.errors} events: {node.events}"


def test_helm_install_runs_hooks_operator_workers_and_helm_test_on_the_docker_node(
    images: dict[str, str],
    helm_bin: Path,
    kube_control_plane: ControlPlane,
    kube_api: k8s_client.ApiClient,
    kube_namespace: str,
    docker_node: DockerNode,
    settings: Settings,
    empty_database: str,
    tmp_path: Path,
) -> None:
    values = chart_values(images, docker_node, settings, free_port())
    run_helm_flow(
        DockerNodeChecks(docker_node), values, helm_bin, kube_control_plane, kube_api, kube_namespace,
        settings, empty_database, tmp_path,
    )  # fmt: skip


def run_helm_flow(
    node: NodeChecks,
    chart: dict[str, Any],
    helm_bin: Path,
    kube_control_plane: ControlPlane,
    kube_api: k8s_client.ApiClient,
    kube_namespace: str,
    settings: Settings,
    empty_database: str,
    tmp_path: Path,
) -> None:
    """install → migration hook → operator → WorkerPool workers → a task through the API → the record →
    upgrade (the hook again, a no-op) → `helm test` → uninstall, with ``chart`` as the release's values."""
    core = k8s_client.CoreV1Api(kube_api)
    custom = k8s_client.CustomObjectsApi(kube_api)
    ns = kube_namespace
    stores = {
        "JOBQUEUE_REDIS_URL": settings.redis_url.get_secret_value(),
        "JOBQUEUE_DATABASE_URL": empty_database,
    }
    core.create_namespaced_secret(
        ns, k8s_client.V1Secret(metadata=k8s_client.V1ObjectMeta(name="jobqueue-stores"), string_data=stores)
    )
    api_port = int(chart["api"]["port"])
    values = tmp_path / "values.json"
    values.write_text(json.dumps(chart))
    helm = Install(helm_bin, kube_control_plane, ns, tmp_path)
    started = time.monotonic()
    uninstalled = False
    try:
        # --wait: every Deployment's pods Ready on the node (readiness probes answered for real).
        helm.run("install", RELEASE, str(CHART), "-f", str(values), "--wait", "--timeout", "300s")
        installed = time.monotonic() - started

        # The pre-install hook ran `jobqueue migrate` in the worker image against the empty database.
        with psycopg.connect(empty_database) as conn:
            assert conn.execute("SELECT to_regclass('public.tasks')").fetchone() == ("tasks",)
        migrate_logs = node.migrate_logs(ns)
        assert migrate_logs is None or migrate_logs, node.diagnostics()

        # The operator container reconciles the example pool into a worker pod running here.
        def pool_ready() -> bool:
            pool = custom.get_namespaced_custom_object(
                "jobqueue.dev", "v1alpha1", ns, "workerpools", "demo-workers"
            )
            return int((pool.get("status") or {}).get("readyReplicas") or 0) >= 1

        wait_until(pool_ready, timeout=120, interval=1)
        workers = core.list_namespaced_pod(ns, label_selector="jobqueue.dev/pool=demo-workers").items
        worker_pods = {p.metadata.name for p in workers if p.status.phase == "Running"}
        assert worker_pods and all(p.spec.node_name == node.name for p in workers)

        # A task through the API container, run by a worker container, recorded by the recorder container.
        secret = core.read_namespaced_secret(f"{RELEASE}-api-key", ns)
        key = base64.b64decode(secret.data["API_KEY"]).decode()
        task_id = api_call(
            api_port, key, "POST", "/api/v1/tasks", {"name": "add", "args": [2, 3], "queue": "demo"}
        )["ids"][0]
        task: dict[str, Any] = {}

        def succeeded() -> bool:
            task.update(api_call(api_port, key, "GET", f"/api/v1/tasks/{task_id}"))
            return task["status"] == "SUCCESS"

        wait_until(succeeded, timeout=90, interval=0.5)
        assert task["result"] == 5
        assert task["worker"] in worker_pods, task
        with psycopg.connect(empty_database) as conn:
            recorded = "SELECT status FROM tasks WHERE id = %s"
            wait_until(
                lambda: conn.execute(recorded, (task_id,)).fetchone() == ("SUCCESS",),
                timeout=60,
                interval=0.5,
            )

        # `helm upgrade` runs the migration again as a pre-upgrade hook: on a migrated database, a no-op
        # (helm fails the upgrade if the hook's Job fails).
        helm.run("upgrade", RELEASE, str(CHART), "-f", str(values), "--wait", "--timeout", "300s")
        migrate_logs = node.migrate_logs(ns)
        if migrate_logs is not None:
            assert len(migrate_logs) == 2, migrate_logs
            assert any("database is up to date" in log for log in migrate_logs), node.diagnostics()

        # `helm test`: its pod submits through the API Service name and waits for its own worker.
        # (No --logs: the pod is deleted once it succeeds, hook-succeeded; its log is the node's.)
        output = helm.run("test", RELEASE, "--timeout", "180s")
        assert "Phase: Succeeded" in " ".join(output.split()), output
        submit_log = node.helm_test_log(ns)
        assert submit_log is None or "succeeded with 5" in submit_log, submit_log
        assert not node.problems(ns), node.problems(ns)

        # Uninstall: the pre-delete hook removes the examples while the operator still runs, so nothing
        # is left Terminating and the pool's workers stop with the release.
        helm.run("uninstall", RELEASE, "--wait", "--timeout", "180s")
        uninstalled = True
        for plural in ("workerpools", "jobqueues"):
            assert not custom.list_namespaced_custom_object("jobqueue.dev", "v1alpha1", ns, plural)["items"]
        wait_until(lambda: not core.list_namespaced_pod(ns).items, timeout=60, interval=0.5)
        wait_until(lambda: not node.containers(), timeout=60, interval=0.5)
        print(f"installed in {installed:.0f}s, whole flow {time.monotonic() - started:.0f}s")
    except BaseException:
        print(node.diagnostics())  # shown with the failure
        raise
    finally:
        if not uninstalled:
            helm.run("uninstall", RELEASE, "--wait", "--timeout", "120s", check=False)
