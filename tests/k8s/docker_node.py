"""A test-only kubelet that runs pods with Docker, for the test control plane (tests/k8s/control_plane.py).

kwok's nodes make pods Running without running anything; this node runs them for real. It registers a
Node of its own (kwok only manages nodes annotated ``kwok.x-k8s.io/node``, and this one is not), keeps
its Ready condition and its Lease fresh, and carries a NoSchedule taint, so only pods that tolerate it
(and select it) land here. For every pod bound to it, a thread (:class:`PodWorker`) does what a kubelet
does with a container runtime:

- makes the pod's volumes as host directories (k8s/docker_volumes.py), the service-account token from
  the TokenRequest API, and resolves its environment (k8s/docker_pod.py);
- runs its init containers in order, then its containers, each as an attached ``docker run --rm
  --network host`` whose output streams to ``<log_dir>/<namespace>_<pod>_<container>.log``;
- restarts containers per restartPolicy (back-off 1 s doubling to 30 s, shorter than a kubelet's so
  tests stay fast), runs readiness and liveness probes, and reports the pod's status: Pending, Running
  with containerStatuses and Ready, Succeeded / Failed with exit codes;
- on deletion stops the containers (``docker stop -t <grace>``: SIGTERM, the grace period, SIGKILL),
  then removes the pod from the API.

What it does not do: image pulls (images must be in the local engine), hostPath / PVC volumes, startup
probes, token rotation (tokens last an hour), DNS for Services created after a pod started.
"""

from __future__ import annotations

import base64
import datetime
import json
import subprocess
import threading
import time
import traceback
import uuid
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from k8s.control_plane import ControlPlane, ControlPlaneError, wait_until
from k8s.docker_pod import ApiServer, PodConfigError, Service
from k8s.docker_pod_worker import PodWorker

NODE_LABEL = "jobqueue.test/docker-node"
LEASE_SECONDS = 40
MERGE_PATCH = {"Content-Type": "application/merge-patch+json"}


def now_rfc3339(micro: bool = False) -> str:
    """The API's timestamp format (MicroTime for Leases)."""
    stamp = datetime.datetime.now(datetime.UTC)
    return stamp.strftime("%Y-%m-%dT%H:%M:%S.%fZ" if micro else "%Y-%m-%dT%H:%M:%SZ")


class DockerNode:
    """Start with :meth:`start`; pods that tolerate :attr:`toleration` and select :attr:`node_selector`
    run here; :meth:`stop` stops every container and removes this node's pods and the Node."""

    def __init__(self, plane: ControlPlane, work_dir: Path, log_dir: Path, poll_seconds: float = 0.5) -> None:
        self.plane = plane
        self.name = f"docker-node-{uuid.uuid4().hex[:6]}"
        self.work_dir = work_dir
        self.log_dir = log_dir
        self.poll_seconds = poll_seconds
        self.api_server = ApiServer("127.0.0.1", int(plane.server.rsplit(":", 1)[1]))
        # Problems a test should see: worker crashes, liveness failures, API errors.
        self.errors: list[str] = []
        self.events: list[str] = []
        self._workers: dict[str, PodWorker] = {}
        self._finished: set[str] = set()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, name=self.name, daemon=True)
        self._last_status = 0.0
        self._last_lease = 0.0

    # -- what tests use ---------------------------------------------------------------------------------

    @property
    def toleration(self) -> dict[str, str]:
        return {"key": NODE_LABEL, "operator": "Equal", "value": self.name, "effect": "NoSchedule"}

    @property
    def node_selector(self) -> dict[str, str]:
        return {NODE_LABEL: self.name}

    def start(self) -> DockerNode:
        """Register the Node and its Lease, wait until it is Ready, then start running pods."""
        self.work_dir.mkdir(parents=True, exist_ok=True)
        self.log_dir.mkdir(parents=True, exist_ok=True)
        node = {
            "apiVersion": "v1",
            "kind": "Node",
            "metadata": {
                "name": self.name,
                "labels": {
                    NODE_LABEL: self.name,
                    "kubernetes.io/hostname": self.name,
                    "kubernetes.io/os": "linux",
                    "type": "docker",
                },
            },
            "spec": {"taints": [{"key": NODE_LABEL, "value": self.name, "effect": "NoSchedule"}]},
            # A node's status may be set on create; the heartbeat keeps its conditions fresh.
            "status": {
                "capacity": {"cpu": "8", "memory": "16Gi", "pods": "50"},
                "allocatable": {"cpu": "8", "memory": "16Gi", "pods": "50"},
                "conditions": self._conditions(),
                "addresses": [
                    {"type": "InternalIP", "address": "127.0.0.1"},
                    {"type": "Hostname", "address": self.name},
                ],
                "nodeInfo": {
                    "kubeletVersion": "docker-node",
                    "containerRuntimeVersion": "docker",
                    "operatingSystem": "linux",
                    "architecture": "amd64",
                    "machineID": "",
                    "systemUUID": "",
                    "bootID": "",
                    "kernelVersion": "",
                    "osImage": "",
                    "kubeProxyVersion": "",
                },
            },
        }
        self._call("POST", "/api/v1/nodes", node, ok=(201,))
        self._renew_lease()
        self._thread.start()
        wait_until(self._ready, 60, f"node {self.name} to become Ready")
        return self

    def stop(self) -> None:
        """Stop every pod's containers, delete the pods and the Node; remove any container left behind."""
        self._stop.set()
        self._thread.join(15)
        workers = list(self._workers.values())
        for worker in workers:
            worker.request_delete(grace=2)
        for worker in workers:
            worker.join(60)
        leftovers = subprocess.run(
            ["docker", "ps", "-aq", "--filter", f"label={NODE_LABEL}={self.name}"],
            capture_output=True, text=True, check=False,
        ).stdout.split()  # fmt: skip
        if leftovers:
            subprocess.run(["docker", "rm", "-f", *leftovers], capture_output=True, check=False, timeout=120)
        self.plane.request(
            "DELETE", f"/apis/coordination.k8s.io/v1/namespaces/kube-node-lease/leases/{self.name}"
        )
        self.plane.request("DELETE", f"/api/v1/nodes/{self.name}")

    def containers(self) -> list[str]:
        """Names of the Docker containers this node runs right now."""
        out = subprocess.run(
            ["docker", "ps", "--format", "{{.Names}}", "--filter", f"label={NODE_LABEL}={self.name}"],
            capture_output=True, text=True, check=False,
        )  # fmt: skip
        return out.stdout.split()

    def log_tails(self, lines: int = 40) -> str:
        """The last lines of every container log, for assertion messages."""
        parts = []
        for path in sorted(self.log_dir.glob("*.log")):
            text = path.read_text(errors="replace").splitlines()
            parts.append(f"--- {path.name} ---\n" + "\n".join(text[-lines:]))
        return "\n".join(parts)

    # -- for the pod workers ----------------------------------------------------------------------------

    def lookup_secret(self, namespace: str, name: str) -> dict[str, str] | None:
        status, body = self.plane.request("GET", f"/api/v1/namespaces/{namespace}/secrets/{name}")
        if status == 404:
            return None
        self._check(status, body, f"reading secret {namespace}/{name}")
        return {k: base64.b64decode(v).decode(errors="replace") for k, v in (body.get("data") or {}).items()}

    def lookup_config_map(self, namespace: str, name: str) -> dict[str, str] | None:
        status, body = self.plane.request("GET", f"/api/v1/namespaces/{namespace}/configmaps/{name}")
        if status == 404:
            return None
        self._check(status, body, f"reading configmap {namespace}/{name}")
        return dict(body.get("data") or {})

    def services(self) -> list[Service]:
        status, body = self.plane.request("GET", "/api/v1/services")
        self._check(status, body, "listing services")
        return [
            Service(
                s["metadata"]["namespace"],
                s["metadata"]["name"],
                tuple(
                    (p.get("name", ""), int(p["port"]), p.get("protocol", "TCP"))
                    for p in s["spec"].get("ports") or []
                ),
            )
            for s in body["items"]
            if s["metadata"]["name"] != "kubernetes"
        ]

    def request_token(self, pod: Mapping[str, Any], account: str, audience: str, seconds: int) -> str:
        meta = pod["metadata"]
        request = {
            "apiVersion": "authentication.k8s.io/v1",
            "kind": "TokenRequest",
            "spec": {
                "audiences": [audience] if audience else [],
                "expirationSeconds": seconds,
                "boundObjectRef": {
                    "apiVersion": "v1",
                    "kind": "Pod",
                    "name": meta["name"],
                    "uid": meta["uid"],
                },
            },
        }
        path = f"/api/v1/namespaces/{meta['namespace']}/serviceaccounts/{account}/token"
        status, body = self.plane.request("POST", path, request)
        if status == 404:
            raise PodConfigError(f'serviceaccount "{account}" not found')
        self._check(status, body, f"requesting a token for {account}")
        return str(body["status"]["token"])

    def patch_pod_status(self, namespace: str, name: str, status: Mapping[str, Any]) -> None:
        path = f"/api/v1/namespaces/{namespace}/pods/{name}/status"
        code, body = self.plane.request("PATCH", path, {"status": status}, MERGE_PATCH)
        if code != 404:
            self._check(code, body, f"updating the status of pod {namespace}/{name}")

    def delete_pod(self, namespace: str, name: str, uid: str) -> None:
        options = {
            "apiVersion": "v1",
            "kind": "DeleteOptions",
            "gracePeriodSeconds": 0,
            "preconditions": {"uid": uid},
        }
        code, body = self.plane.request("DELETE", f"/api/v1/namespaces/{namespace}/pods/{name}", options)
        if code not in (404, 409):
            self._check(code, body, f"deleting pod {namespace}/{name}")

    # -- the loop ---------------------------------------------------------------------------------------

    def _loop(self) -> None:
        while not self._stop.is_set():
            try:
                self._heartbeat()
                self._sync_pods()
            except Exception as exc:  # keep running through API hiccups; tests see the errors
                self.record(f"node loop: {exc!r}", error=True)
            self._stop.wait(self.poll_seconds)

    def _sync_pods(self) -> None:
        status, body = self.plane.request("GET", f"/api/v1/pods?fieldSelector=spec.nodeName%3D{self.name}")
        self._check(status, body, "listing pods")
        seen = set()
        for pod in body["items"]:
            uid = pod["metadata"]["uid"]
            seen.add(uid)
            worker = self._workers.get(uid)
            deleting = pod["metadata"].get("deletionTimestamp") is not None
            if worker is None and uid not in self._finished:
                if pod["status"].get("phase") in ("Succeeded", "Failed") or deleting:
                    # Finished or deleted before this node ran it (or by an earlier node of the same name).
                    if deleting:
                        self.delete_pod(pod["metadata"]["namespace"], pod["metadata"]["name"], uid)
                    continue
                worker = PodWorker(self, pod)
                self._workers[uid] = worker
                worker.start()
            if worker is not None and deleting:
                grace = pod["metadata"].get("deletionGracePeriodSeconds")
                if grace is None:
                    grace = pod["spec"].get("terminationGracePeriodSeconds", 30)
                worker.request_delete(int(grace))
        for uid, worker in list(self._workers.items()):
            if uid not in seen:
                worker.request_delete(grace=2)  # removed without a grace period (force delete)
            if not worker.is_alive():
                del self._workers[uid]
                self._finished.add(uid)

    def _heartbeat(self) -> None:
        if time.monotonic() - self._last_lease >= 5:
            self._renew_lease()
        if time.monotonic() - self._last_status >= 10:
            path = f"/api/v1/nodes/{self.name}/status"
            self._call(
                "PATCH", path, {"status": {"conditions": self._conditions()}}, ok=(200,), headers=MERGE_PATCH
            )
            self._last_status = time.monotonic()

    def _renew_lease(self) -> None:
        path = "/apis/coordination.k8s.io/v1/namespaces/kube-node-lease/leases"
        spec = {
            "holderIdentity": self.name,
            "leaseDurationSeconds": LEASE_SECONDS,
            "renewTime": now_rfc3339(micro=True),
        }
        status, _ = self.plane.request("PATCH", f"{path}/{self.name}", {"spec": spec}, MERGE_PATCH)
        if status == 404:
            lease = {
                "apiVersion": "coordination.k8s.io/v1",
                "kind": "Lease",
                "metadata": {"name": self.name},
                "spec": spec,
            }
            self._call("POST", path, lease, ok=(201,))
        self._last_lease = time.monotonic()

    def _conditions(self) -> list[dict[str, str]]:
        now = now_rfc3339()

        def item(kind: str, status: str, reason: str) -> dict[str, str]:
            return {
                "type": kind,
                "status": status,
                "reason": reason,
                "lastHeartbeatTime": now,
                "lastTransitionTime": now,
            }

        return [
            item("Ready", "True", "KubeletReady"),
            item("MemoryPressure", "False", "KubeletHasSufficientMemory"),
            item("DiskPressure", "False", "KubeletHasNoDiskPressure"),
            item("PIDPressure", "False", "KubeletHasSufficientPID"),
        ]

    def _ready(self) -> bool:
        status, body = self.plane.request("GET", f"/api/v1/nodes/{self.name}")
        conditions = body.get("status", {}).get("conditions") or [] if status == 200 else []
        return any(c.get("type") == "Ready" and c.get("status") == "True" for c in conditions)

    def _call(
        self, method: str, path: str, body: Any, ok: tuple[int, ...], headers: Mapping[str, str] | None = None
    ) -> Any:
        status, answer = self.plane.request(method, path, body, headers)
        if status not in ok:
            raise ControlPlaneError(f"{method} {path}: HTTP {status}: {json.dumps(answer)[:500]}")
        return answer

    @staticmethod
    def _check(status: int, body: Any, what: str) -> None:
        if status >= 300:
            raise ControlPlaneError(f"{what}: HTTP {status}: {json.dumps(body)[:500]}")

    def log_path(self, pod: Mapping[str, Any], container: str) -> Path:
        meta = pod["metadata"]
        return self.log_dir / f"{meta['namespace']}_{meta['name']}_{container}.log"

    def record(self, message: str, error: bool = False) -> None:
        """Note an event or an error for the test (a repeat of the last one is not noted again)."""
        target = self.errors if error else self.events
        if not target or target[-1] != message:
            target.append(message)

    def record_crash(self, pod: Mapping[str, Any]) -> None:
        meta = pod["metadata"]
        self.errors.append(
            f"pod worker {meta['namespace']}/{meta['name']} crashed:\n{traceback.format_exc()}"
        )
