"""A test-only kubelet stand-in: kwok makes pods Running but runs nothing, so for every Running pod of a
WorkerPool this starts a real ``jobqueue worker`` process with the pod's arguments and POD_NAME = the pod's
name, and sends it SIGTERM when the pod is deleted (what a kubelet does, minus the grace-period SIGKILL,
which the tests do not need: the worker's own --grace bounds its drain).
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO

from jq_testing import worker_env
from kubernetes import client as k8s_client

from jobqueue import Settings


@dataclass
class RunningWorker:
    """The worker process of one pod."""

    pod: str
    process: subprocess.Popen[bytes]
    log: IO[bytes]
    started_at: float = field(default_factory=time.monotonic)
    # Whether the worker process was still running when its pod was deleted (None: the pod still exists).
    alive_at_deletion: bool | None = None


class PodRunner:
    """Poll the pods matching ``selector`` in ``namespace``; start and stop workers to match."""

    def __init__(
        self,
        api: k8s_client.ApiClient,
        namespace: str,
        selector: str,
        settings: Settings,
        log_dir: Path,
        poll_seconds: float = 0.25,
    ) -> None:
        self.core = k8s_client.CoreV1Api(api)
        self.namespace = namespace
        self.selector = selector
        self.settings = settings
        self.log_dir = log_dir
        self.poll_seconds = poll_seconds
        self.workers: dict[str, RunningWorker] = {}
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, name="pod-runner", daemon=True)
        self.errors: list[str] = []

    def start(self) -> PodRunner:
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stop watching; SIGTERM every worker still running, SIGKILL after 15 s."""
        self._stop.set()
        self._thread.join(10)
        with self._lock:
            workers = list(self.workers.values())
        for w in workers:
            if w.process.poll() is None:
                os.killpg(w.process.pid, signal.SIGTERM)
        deadline = time.monotonic() + 15
        for w in workers:
            try:
                w.process.wait(max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                os.killpg(w.process.pid, signal.SIGKILL)
                w.process.wait(5)
            w.log.close()

    def worker(self, pod: str) -> RunningWorker:
        with self._lock:
            return self.workers[pod]

    def pod_of_pid(self, pid: int) -> str | None:
        """The pod whose worker (or one of its pool processes) has this pid; thread pools share it."""
        with self._lock:
            return next((w.pod for w in self.workers.values() if w.process.pid == pid), None)

    def alive(self) -> list[str]:
        with self._lock:
            return sorted(p for p, w in self.workers.items() if w.process.poll() is None)

    def _loop(self) -> None:
        while not self._stop.is_set():
            try:
                self._sync()
            except Exception as exc:  # keep watching through API hiccups; the test sees the errors
                self.errors.append(repr(exc))
            self._stop.wait(self.poll_seconds)

    def _sync(self) -> None:
        pods = self.core.list_namespaced_pod(self.namespace, label_selector=self.selector).items
        live = {}
        for pod in pods:
            if pod.metadata.deletion_timestamp is None and pod.status.phase == "Running":
                live[pod.metadata.name] = pod
        with self._lock:
            known = dict(self.workers)
        for name, pod in live.items():
            if name not in known:
                self._start_worker(name, pod.spec.containers[0].args)
        for name, w in known.items():
            if name not in live and w.alive_at_deletion is None:
                w.alive_at_deletion = w.process.poll() is None
                if w.alive_at_deletion:
                    os.killpg(w.process.pid, signal.SIGTERM)

    def _start_worker(self, pod: str, args: list[str]) -> None:
        env = {**os.environ, **worker_env(self.settings), "POD_NAME": pod}
        log = (self.log_dir / f"{pod}.log").open("ab")
        process = subprocess.Popen(
            [sys.executable, "-m", "jobqueue", *args],
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        with self._lock:
            self.workers[pod] = RunningWorker(pod, process, log)
