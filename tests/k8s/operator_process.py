"""The real operator in a subprocess for end-to-end tests: ``python -m jobqueue_operator`` watching one
namespace with a short reconcile interval, its log in a file, liveness and metrics on free ports."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import urllib.request
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from pathlib import Path

from jq_testing import SUPPORT, worker_env
from kubernetes import client as k8s_client
from redis_topologies import free_ports

from jobqueue import Settings
from k8s.control_plane import ControlPlane, wait_until
from k8s.operator_rbac import operator_kubeconfig, remove_cluster_rbac


class OperatorProcess:
    """``python -m jobqueue_operator`` watching one namespace, with a log file and a liveness URL."""

    def __init__(
        self,
        kubeconfig: Path,
        namespace: str,
        settings: Settings,
        log_path: Path,
        extra_args: Sequence[str] = (),
        extra_env: Mapping[str, str] | None = None,
        fault: str | None = None,
    ) -> None:
        """``fault``: a JQ_FAULT spec (tests/support/jq_faulty.py) injected into the operator process."""
        self.metrics_port, live_port = free_ports(2)
        self.liveness = f"http://127.0.0.1:{live_port}/healthz"
        self.log_path = log_path
        self._log = log_path.open("ab")
        env = {
            **os.environ,
            **worker_env(settings),
            "KUBECONFIG": str(kubeconfig),
            "JOBQUEUE_OPERATOR_RETRY_DELAY_SECONDS": "1",
            **(extra_env or {}),
            **({"JQ_FAULT": fault} if fault else {}),
        }
        runner = [str(SUPPORT / "jq_faulty.py")] if fault else ["-m"]
        self.process = subprocess.Popen(
            [
                sys.executable, *runner, "jobqueue_operator", "--namespace", namespace, "--interval", "1",
                "--metrics-port", str(self.metrics_port), "--liveness", self.liveness, "--log-format", "text",
                *extra_args,
            ],
            env=env, stdout=self._log, stderr=subprocess.STDOUT, start_new_session=True,
        )  # fmt: skip

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def healthy(self) -> bool:
        if self.process.poll() is not None:
            raise AssertionError(f"operator exited with {self.process.returncode}:\n{self.log()[-3000:]}")
        try:
            with urllib.request.urlopen(self.liveness, timeout=2) as resp:
                return bool(resp.status == 200)
        except OSError:
            return False

    def metrics(self) -> str:
        with urllib.request.urlopen(f"http://127.0.0.1:{self.metrics_port}/metrics", timeout=5) as resp:
            return str(resp.read().decode())

    def _samples(self, name: str, labels: dict[str, str]) -> list[float]:
        """Values of the samples of ``name`` that carry ``labels`` (whatever their other labels)."""
        values = []
        for line in self.metrics().splitlines():
            sample, _, value = line.rpartition(" ")
            if (sample.startswith(name + "{") or sample == name) and all(
                f'{key}="{val}"' in sample for key, val in labels.items()
            ):
                values.append(float(value))
        return values

    def metric(self, name: str, **labels: str) -> float:
        """The value of one sample of the operator's metrics (0 when it was never recorded)."""
        return next(iter(self._samples(name, labels)), 0.0)

    def metric_total(self, name: str, **labels: str) -> float:
        """The sum of every sample of ``name`` carrying ``labels`` (whatever its other labels)."""
        return sum(self._samples(name, labels))

    def kill(self) -> None:
        """SIGKILL the operator: no goodbye to its peers, as when its node dies."""
        os.killpg(self.process.pid, signal.SIGKILL)
        self.process.wait(10)

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(20)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(5)
        self._log.close()


@contextmanager
def running_operator(
    control_plane: ControlPlane,
    kube_api: k8s_client.ApiClient,
    namespace: str,
    settings: Settings,
    tmp_path: Path,
) -> Iterator[OperatorProcess]:
    """The real operator in a subprocess, watching ``namespace`` on ``settings``' Redis, up and healthy.
    Least privilege: it runs with exactly the RBAC docs/operator.md lists."""
    kubeconfig = operator_kubeconfig(
        kube_api, namespace, control_plane.kubeconfig, tmp_path / "operator.kubeconfig"
    )
    proc = OperatorProcess(kubeconfig, namespace, settings, tmp_path / "operator.log")
    try:
        wait_until(proc.healthy, 60, "the operator's liveness endpoint")
        yield proc
    finally:
        proc.stop()
        remove_cluster_rbac(kube_api, namespace)
