"""One pod on the docker node (tests/k8s/docker_node.py): its containers' lives, probes and status, in a
thread of its own, as a kubelet's pod worker."""

from __future__ import annotations

import datetime
import json
import re
import socket
import ssl
import subprocess
import threading
import time
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from typing import IO, TYPE_CHECKING, Any

from k8s.docker_pod import (
    POD_IP,
    ImageMissingError,
    PodConfigError,
    command_line,
    condition,
    container_env,
    container_port,
    host_entries,
    pod_phase,
    resource_flags,
    security_flags,
    service_env,
)
from k8s.docker_volumes import make_volumes

if TYPE_CHECKING:
    from k8s.docker_node import DockerNode

TICK_SECONDS = 0.5
MAX_BACKOFF_SECONDS = 30.0


def now() -> str:
    return datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


@dataclass
class Probe:
    """Progress of one readiness or liveness probe."""

    spec: dict[str, Any]
    next_at: float = 0.0
    successes: int = 0
    failures: int = 0


@dataclass
class ContainerRun:
    """One container of the pod across its restarts."""

    spec: dict[str, Any]
    init: bool
    image_id: str = ""
    image_user: str = ""
    flags: list[str] = field(default_factory=list)
    trailing: list[str] = field(default_factory=list)
    docker_name: str = ""
    process: subprocess.Popen[bytes] | None = None
    log: IO[bytes] | None = None
    started_at: str = ""
    state: dict[str, Any] = field(default_factory=lambda: {"waiting": {"reason": "ContainerCreating"}})
    last_state: dict[str, Any] = field(default_factory=dict)
    restart_count: int = 0
    restart_at: float | None = None
    exit_code: int | None = None  # the final exit, once it will not be restarted
    ready: bool = False
    readiness: Probe | None = None
    liveness: Probe | None = None

    @property
    def name(self) -> str:
        return str(self.spec["name"])

    @property
    def running(self) -> bool:
        return self.process is not None and self.process.poll() is None


class PodWorker:
    """Runs one pod until it is deleted, then removes it from the API."""

    def __init__(self, node: DockerNode, pod: dict[str, Any]) -> None:
        meta = pod["metadata"]
        self.thread = threading.Thread(
            target=self._run, name=f"pod-{meta['namespace']}/{meta['name']}", daemon=True
        )
        self.node, self.pod = node, pod
        self.namespace, self.pod_name, self.uid = meta["namespace"], meta["name"], meta["uid"]
        self.policy = pod["spec"].get("restartPolicy", "Always")
        self.runs = [ContainerRun(c, True) for c in pod["spec"].get("initContainers") or []]
        self.runs += [ContainerRun(c, False) for c in pod["spec"]["containers"]]
        self.start_time = now()
        self.init_failed = False
        self._deleted = threading.Event()
        self._grace = 30
        self._published: str = ""
        self._transitions: dict[str, tuple[str, str]] = {}

    def request_delete(self, grace: int) -> None:
        """The pod is being deleted: stop its containers with this grace period, then remove it."""
        if not self._deleted.is_set():
            self._grace = max(0, grace)
            self._deleted.set()

    # -- the pod's life -----------------------------------------------------------------------------------

    def start(self) -> None:
        self.thread.start()

    def join(self, timeout: float) -> None:
        self.thread.join(timeout)

    def is_alive(self) -> bool:
        return self.thread.is_alive()

    def _run(self) -> None:
        try:
            self._live()
        except Exception:
            self.node.record_crash(self.pod)
        finally:
            self._stop_containers(self._grace)
            try:
                self._publish(final=True)
                self.node.delete_pod(self.namespace, self.pod_name, self.uid)
            except Exception as exc:
                self.node.record(f"{self.namespace}/{self.pod_name}: final delete: {exc!r}", error=True)

    def _live(self) -> None:
        while not self._prepare():
            if self._deleted.wait(1):
                return
        for run in self.runs:
            if run.init:
                self._run_init(run)
                if self._deleted.is_set() or self.init_failed:
                    break
        if not self._deleted.is_set() and not self.init_failed:
            for run in self.runs:
                if not run.init:
                    self._start(run)
        while not self._deleted.is_set():
            self._tick()
            self._publish()
            self._deleted.wait(TICK_SECONDS)

    def _prepare(self) -> bool:
        """Volumes, environment and `docker run` flags of every container; False (status says why) while a
        reference is missing, like a kubelet's CreateContainerConfigError."""
        ns = self.namespace
        try:

            def secrets(name: str) -> dict[str, str] | None:
                return self.node.lookup_secret(ns, name)

            def config_maps(name: str) -> dict[str, str] | None:
                return self.node.lookup_config_map(ns, name)

            def token(account: str, audience: str, seconds: int) -> str:
                return self.node.request_token(self.pod, account, audience, seconds)

            volumes = make_volumes(self.pod, self.node.work_dir / self.uid, secrets, config_maps, token)
            services = self.node.services()
            service_vars = service_env(services, ns, self.node.api_server)
            hosts = [flag for entry in host_entries(services, ns, self.pod) for flag in ("--add-host", entry)]
            for run in self.runs:
                run.image_id, run.image_user = self._inspect_image(run.spec["image"])
                env = container_env(self.pod, run.spec, secrets, config_maps, service_vars)
                entrypoint, run.trailing = command_line(run.spec, env)
                mounts = []
                for mount in run.spec.get("volumeMounts") or []:
                    if mount["name"] not in volumes:
                        raise PodConfigError(f"volume {mount['name']} is not defined")
                    host_dir, read_only = volumes[mount["name"]]
                    source = host_dir / mount["subPath"] if mount.get("subPath") else host_dir
                    ro = read_only or bool(mount.get("readOnly"))
                    mounts += ["-v", f"{source}:{mount['mountPath']}{':ro' if ro else ''}"]
                env_flags = [flag for key, value in env.items() for flag in ("-e", f"{key}={value}")]
                workdir = ["--workdir", run.spec["workingDir"]] if run.spec.get("workingDir") else []
                run.flags = [
                    *security_flags(self.pod, run.spec, run.image_user), *resource_flags(run.spec),
                    *env_flags, *mounts, *hosts, *workdir, *entrypoint,
                ]  # fmt: skip
                run.readiness = Probe(run.spec["readinessProbe"]) if "readinessProbe" in run.spec else None
                run.liveness = Probe(run.spec["livenessProbe"]) if "livenessProbe" in run.spec else None
        except PodConfigError as exc:
            missing_image = isinstance(exc, ImageMissingError)
            reason = "ErrImageNeverPull" if missing_image else "CreateContainerConfigError"
            for run in self.runs:
                run.state = {"waiting": {"reason": reason, "message": str(exc)}}
            self._publish()
            return False
        return True

    @staticmethod
    def _inspect_image(image: str) -> tuple[str, str]:
        out = subprocess.run(
            ["docker", "image", "inspect", "--format", "{{.Id}} {{.Config.User}}", image],
            capture_output=True, text=True, check=False, timeout=60,
        )  # fmt: skip
        if out.returncode != 0:
            raise ImageMissingError(f'image "{image}" is not in the local Docker engine (no pulls here)')
        image_id, _, user = out.stdout.strip().partition(" ")
        return image_id, user

    def _run_init(self, run: ContainerRun) -> None:
        """One init container to completion: restarted after a failure unless restartPolicy is Never."""
        while not self._deleted.is_set():
            self._tick()  # notes an exit first, so an exited container is never started over unnoticed
            if run.exit_code is not None:
                self.init_failed = run.exit_code != 0
                return
            if run.process is None and (run.restart_at is None or time.monotonic() >= run.restart_at):
                self._start(run)
            self._publish()
            self._deleted.wait(TICK_SECONDS)

    # -- containers ---------------------------------------------------------------------------------------

    def _start(self, run: ContainerRun) -> None:
        raw = f"k8s_{run.name}_{self.pod_name}_{self.namespace}_{self.uid[:8]}_{run.restart_count}"
        run.docker_name = re.sub(r"[^a-zA-Z0-9_.-]", "-", raw)
        run.log = self.node.log_path(self.pod, run.name).open("ab")
        run.log.write(f"--- docker node: start #{run.restart_count} of {run.name} ({now()}) ---\n".encode())
        run.log.flush()
        argv = [
            "docker", "run", "--rm", "--name", run.docker_name, "--network", "host",
            "--label", f"jobqueue.test/docker-node={self.node.name}",
            "--label", f"io.kubernetes.pod.uid={self.uid}",
            *run.flags, run.spec["image"], *run.trailing,
        ]  # fmt: skip
        run.process = subprocess.Popen(
            argv, stdout=run.log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL
        )
        run.started_at = now()
        run.state = {"running": {"startedAt": run.started_at}}
        run.restart_at = None
        run.ready = False
        for probe in (run.readiness, run.liveness):
            if probe is not None:
                probe.next_at = time.monotonic() + int(probe.spec.get("initialDelaySeconds", 0))
                probe.successes = probe.failures = 0

    def _tick(self) -> None:
        for run in self.runs:
            if run.process is not None and run.process.poll() is not None:
                self._exited(run)
            if run.restart_at is not None and time.monotonic() >= run.restart_at and not run.init:
                self._start(run)
            if run.running:
                self._probe(run)

    def _exited(self, run: ContainerRun) -> None:
        assert run.process is not None
        code = run.process.returncode
        run.process = None
        if run.log is not None:
            run.log.write(f"--- docker node: {run.name} exited with {code} ({now()}) ---\n".encode())
            run.log.close()
            run.log = None
        reason = "Completed" if code == 0 else ("StartError" if code == 125 else "Error")
        terminated = {
            "exitCode": code, "reason": reason, "startedAt": run.started_at, "finishedAt": now(),
            "containerID": f"docker://{run.docker_name}",
        }  # fmt: skip
        run.ready = False
        restart = self.policy == "Always" or (self.policy == "OnFailure" and code != 0)
        if run.init:
            restart = self.policy != "Never" and code != 0
        if restart and not self._deleted.is_set():
            backoff = min(MAX_BACKOFF_SECONDS, 2.0**run.restart_count)
            run.last_state = {"terminated": terminated}
            run.state = {
                "waiting": {"reason": "CrashLoopBackOff", "message": f"back-off {backoff:.0f}s restarting"}
            }
            run.restart_count += 1
            run.restart_at = time.monotonic() + backoff
        else:
            run.state = {"terminated": terminated}
            run.exit_code = code

    def _probe(self, run: ContainerRun) -> None:
        for kind, probe in (("readiness", run.readiness), ("liveness", run.liveness)):
            if probe is None or time.monotonic() < probe.next_at:
                continue
            spec = probe.spec
            probe.next_at = time.monotonic() + int(spec.get("periodSeconds", 10))
            ok, detail = self._check(run, spec)
            if ok:
                probe.successes, probe.failures = probe.successes + 1, 0
            else:
                probe.successes, probe.failures = 0, probe.failures + 1
            if kind == "readiness":
                if probe.successes >= int(spec.get("successThreshold", 1)):
                    run.ready = True
                elif probe.failures >= int(spec.get("failureThreshold", 3)):
                    run.ready = False
            elif probe.failures >= int(spec.get("failureThreshold", 3)):
                self.node.record(
                    f"{self.namespace}/{self.pod_name}/{run.name}: liveness probe failed: {detail}; restart"
                )
                self._stop_container(run, int(self.pod["spec"].get("terminationGracePeriodSeconds", 30)))
                probe.failures = 0
        if run.readiness is None:
            run.ready = True

    def _check(self, run: ContainerRun, spec: dict[str, Any]) -> tuple[bool, str]:
        timeout = float(spec.get("timeoutSeconds", 1))
        try:
            if "httpGet" in spec:
                get = spec["httpGet"]
                scheme = str(get.get("scheme", "HTTP")).lower()
                port = container_port(run.spec, get["port"])
                url = f"{scheme}://{get.get('host', POD_IP)}:{port}{get.get('path', '/')}"
                request = urllib.request.Request(
                    url, headers={h["name"]: h["value"] for h in get.get("httpHeaders") or []}
                )
                context = ssl._create_unverified_context() if scheme == "https" else None
                with urllib.request.urlopen(request, timeout=timeout, context=context) as resp:
                    return 200 <= resp.status < 400, f"HTTP {resp.status}"
            if "tcpSocket" in spec:
                port = container_port(run.spec, spec["tcpSocket"]["port"])
                with socket.create_connection((POD_IP, port), timeout=timeout):
                    return True, "connected"
            if "exec" in spec:
                argv = ["docker", "exec", run.docker_name, *spec["exec"]["command"]]
                done = subprocess.run(argv, capture_output=True, text=True, check=False, timeout=timeout + 10)
                return (
                    done.returncode == 0,
                    f"exit {done.returncode}: {done.stdout[-200:]}{done.stderr[-200:]}",
                )
        except urllib.error.HTTPError as exc:
            return False, f"HTTP {exc.code}"
        except (OSError, subprocess.TimeoutExpired) as exc:
            return False, repr(exc)
        return False, f"unsupported probe {sorted(spec)}"

    def _stop_container(self, run: ContainerRun, grace: int) -> None:
        if run.process is None:
            return
        subprocess.run(
            ["docker", "stop", "-t", str(grace), run.docker_name],
            capture_output=True, check=False, timeout=grace + 60,
        )  # fmt: skip
        try:
            run.process.wait(15)
        except subprocess.TimeoutExpired:
            run.process.kill()
            run.process.wait(15)
        subprocess.run(["docker", "rm", "-f", run.docker_name], capture_output=True, check=False, timeout=60)

    def _stop_containers(self, grace: int) -> None:
        """Every running container at once: SIGTERM, ``grace`` seconds, SIGKILL (docker stop)."""
        threads = [
            threading.Thread(target=self._stop_container, args=(run, grace))
            for run in self.runs
            if run.process is not None
        ]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(grace + 90)
        for run in self.runs:
            if run.process is not None:
                self._exited(run)
            run.restart_at = None

    # -- status -------------------------------------------------------------------------------------------

    def _publish(self, final: bool = False) -> None:
        inits = [r for r in self.runs if r.init]
        mains = [r for r in self.runs if not r.init]
        initialized = all(r.exit_code == 0 for r in inits)
        started = any(r.started_at for r in mains)
        if final:
            codes = [r.exit_code if r.exit_code is not None else 137 for r in mains if r.started_at]
            phase = ("Succeeded" if all(c == 0 for c in codes) else "Failed") if started else "Failed"
        elif not started and not self.init_failed:
            phase = "Pending"
        else:
            phase = pod_phase(self.policy, [r.exit_code for r in mains], self.init_failed)
        ready = phase == "Running" and all(r.ready and r.running for r in mains)
        scheduled = [c for c in self.pod["status"].get("conditions") or [] if c["type"] == "PodScheduled"]
        conditions = [
            *scheduled,
            self._condition("PodReadyToStartContainers", True),
            self._condition("Initialized", initialized, "ContainersNotInitialized"),
            self._condition("ContainersReady", ready, "ContainersNotReady"),
            self._condition("Ready", ready, "ContainersNotReady"),
        ]
        status: dict[str, Any] = {
            "phase": phase,
            "conditions": conditions,
            "hostIP": POD_IP, "hostIPs": [{"ip": POD_IP}], "podIP": POD_IP, "podIPs": [{"ip": POD_IP}],
            "startTime": self.start_time,
            "containerStatuses": [self._container_status(r) for r in mains],
        }  # fmt: skip
        if inits:
            status["initContainerStatuses"] = [self._container_status(r) for r in inits]
        encoded = json.dumps(status, sort_keys=True)
        if encoded != self._published:
            self.node.patch_pod_status(self.namespace, self.pod_name, status)
            self._published = encoded

    def _condition(self, kind: str, ok: bool, reason: str = "") -> dict[str, Any]:
        value = "True" if ok else "False"
        previous = self._transitions.get(kind)
        if previous is None or previous[0] != value:
            self._transitions[kind] = (value, now())
        return condition(kind, ok, self._transitions[kind][1], reason)

    def _container_status(self, run: ContainerRun) -> dict[str, Any]:
        status: dict[str, Any] = {
            "name": run.name, "image": run.spec["image"], "imageID": f"docker://{run.image_id}",
            "ready": run.ready and run.running, "started": run.running, "restartCount": run.restart_count,
            "state": run.state, "lastState": run.last_state,
        }  # fmt: skip
        if run.docker_name:
            status["containerID"] = f"docker://{run.docker_name}"
        return status
