"""A real Kubernetes control plane for tests: etcd, kube-apiserver, kube-controller-manager, kube-scheduler
and kwok (a fake node whose pods become Running), all on free ports on 127.0.0.1.

The binaries come from tests/k8s/build-control-plane.sh. Security is the same shape as a real cluster's,
scaled down: TLS with a throwaway CA, RBAC authorization, a random bearer token for an admin user in
``system:masters`` and a service-account signing key. etcd speaks plain HTTP, but only on loopback.
"""

from __future__ import annotations

import json
import os
import secrets
import shutil
import socket
import ssl
import subprocess
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import IO, Any

from redis_topologies import free_ports

from k8s.pki import Pki, generate_pki

HERE = Path(__file__).parent
VERSIONS_FILE = HERE / "versions.env"
BUILD_SCRIPT = HERE / "build-control-plane.sh"
BINARIES = ("etcd", "kube-apiserver", "kube-controller-manager", "kube-scheduler", "kwok")
FAKE_NODE = "kwok-node-0"
# kwok only manages nodes carrying this annotation, so it never touches anything else.
KWOK_NODE_ANNOTATION = ("kwok.x-k8s.io/node", "fake")


class ControlPlaneError(RuntimeError):
    """A component failed to start or to become ready; the message carries the tail of its log."""


def read_versions(path: Path = VERSIONS_FILE) -> dict[str, str]:
    """The KEY=VALUE pairs of versions.env (the build script sources the same file)."""
    versions: dict[str, str] = {}
    for raw in path.read_text().splitlines():
        line = raw.strip()
        if line and not line.startswith("#"):
            key, _, value = line.partition("=")
            versions[key.strip()] = value.strip()
    return versions


def default_bin_dir(environ: Mapping[str, str] = os.environ) -> Path:
    """Where build-control-plane.sh puts the binaries for the versions in versions.env."""
    cache = environ.get("JOBQUEUE_K8S_CACHE") or str(Path.home() / ".cache" / "jobqueue-k8s")
    return Path(cache) / read_versions()["KUBERNETES_VERSION"] / "bin"


def kubectl_binary(bin_dir: Path) -> Path | None:
    """The kubectl the build script made for this release, else the one on PATH, else None.

    Name and category resolution happen in kubectl, not in the API server, so tests of what users type
    need the real binary."""
    built = bin_dir / "kubectl"
    if os.access(built, os.X_OK):
        return built
    found = shutil.which("kubectl")
    return Path(found) if found else None


def missing_binaries(bin_dir: Path) -> list[str]:
    """Names of the control-plane binaries not (yet) built into ``bin_dir``."""
    missing = [name for name in BINARIES if not os.access(bin_dir / name, os.X_OK)]
    if not (bin_dir / "kwok-stages.yaml").is_file():
        missing.append("kwok-stages.yaml")
    return missing


def free_port() -> int:
    """A TCP port free on 127.0.0.1 right now (the OS picks it)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def wait_until(check: Callable[[], bool], timeout: float, what: str, interval: float = 0.2) -> None:
    """Poll ``check`` until it returns True; raise ControlPlaneError naming ``what`` on timeout."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if check():
            return
        time.sleep(interval)
    raise ControlPlaneError(f"timed out after {timeout:.0f}s waiting for {what}")


class Component:
    """One control-plane process with its own log file."""

    def __init__(self, name: str, argv: list[str], log_dir: Path) -> None:
        self.name = name
        self.log_path = log_dir / f"{name}.log"
        self._log: IO[bytes] = self.log_path.open("ab")
        self.process = subprocess.Popen(
            argv, stdout=self._log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL
        )

    def alive(self) -> bool:
        """True while the process runs."""
        return self.process.poll() is None

    def log_tail(self, lines: int = 30) -> str:
        """The last lines of the component's log, for error messages."""
        text = self.log_path.read_text(errors="replace").splitlines()
        return "\n".join(text[-lines:])

    def stop(self, timeout: float = 15) -> None:
        """SIGTERM, then SIGKILL if it has not exited within ``timeout`` seconds."""
        if self.alive():
            self.process.terminate()
            try:
                self.process.wait(timeout)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout)
        self._log.close()


class ControlPlane:
    """Start with :meth:`start`, use :attr:`kubeconfig` (or :meth:`request`), end with :meth:`stop`."""

    def __init__(self, bin_dir: Path, work_dir: Path, startup_timeout: float = 180) -> None:
        self.bin_dir = bin_dir
        self.work_dir = work_dir
        self.startup_timeout = startup_timeout
        self.token = secrets.token_urlsafe(32)
        self.kubeconfig = work_dir / "kubeconfig"
        self.node_name = FAKE_NODE
        self.components: list[Component] = []
        self._pki: Pki | None = None
        self._apiserver_port = 0

    # -- public surface -------------------------------------------------------------------------------

    @property
    def server(self) -> str:
        """The API server's URL."""
        return f"https://127.0.0.1:{self._apiserver_port}"

    @property
    def ca_file(self) -> Path:
        """The CA that signed the API server's certificate."""
        assert self._pki is not None, "start() first"
        return self._pki.ca_cert

    def request(
        self, method: str, path: str, body: Any = None, headers: Mapping[str, str] | None = None
    ) -> tuple[int, Any]:
        """One authenticated API call; returns the HTTP status and the decoded JSON body (or text)."""
        data = None if body is None else json.dumps(body).encode()
        req = urllib.request.Request(self.server + path, data=data, method=method)
        req.add_header("Authorization", f"Bearer {self.token}")
        req.add_header("Content-Type", "application/json")
        for name, value in (headers or {}).items():
            req.add_header(name, value)
        context = ssl.create_default_context(cafile=str(self.ca_file))
        try:
            with urllib.request.urlopen(req, context=context, timeout=10) as resp:
                status, raw = resp.status, resp.read()
        except urllib.error.HTTPError as exc:
            with exc:  # an HTTPError holds the open connection
                status, raw = exc.code, exc.read()
        try:
            return status, json.loads(raw)
        except ValueError:
            return status, raw.decode(errors="replace")

    def start(self) -> ControlPlane:
        """Start every component in dependency order and wait until the fake node is Ready."""
        try:
            self._start()
        except BaseException:
            self.stop()
            raise
        return self

    def stop(self) -> None:
        """Stop the components, newest first (kwok before the API server before etcd)."""
        for component in reversed(self.components):
            component.stop()
        self.components.clear()

    # -- start-up -------------------------------------------------------------------------------------

    def _start(self) -> None:
        self._pki = pki = generate_pki(self.work_dir / "pki")
        tokens = self.work_dir / "tokens.csv"
        tokens.write_text(f'{self.token},jobqueue-test-admin,jobqueue-test-admin,"system:masters"\n')
        tokens.chmod(0o600)
        # Every port at once: one at a time, a port handed out but not yet bound could come back again.
        ports = free_ports(6)
        self._apiserver_port, etcd_port, etcd_peer_port, kcm_port, scheduler_port, kwok_port = ports
        self._write_kubeconfig()

        etcd_url = f"http://127.0.0.1:{etcd_port}"
        peer_url = f"http://127.0.0.1:{etcd_peer_port}"
        etcd = self._spawn(
            "etcd",
            f"--data-dir={self.work_dir / 'etcd'}",
            "--name=test",
            f"--listen-client-urls={etcd_url}",
            f"--advertise-client-urls={etcd_url}",
            f"--listen-peer-urls={peer_url}",
            f"--initial-advertise-peer-urls={peer_url}",
            f"--initial-cluster=test={peer_url}",
            # Test data is thrown away: skipping fsync makes every write several times faster.
            "--unsafe-no-fsync",
            "--log-level=warn",
        )
        self._wait_http(etcd, f"{etcd_url}/health", None)

        apiserver = self._spawn(
            "kube-apiserver",
            f"--etcd-servers={etcd_url}",
            "--bind-address=127.0.0.1",
            "--advertise-address=127.0.0.1",
            f"--secure-port={self._apiserver_port}",
            f"--tls-cert-file={pki.serving_cert}",
            f"--tls-private-key-file={pki.serving_key}",
            f"--client-ca-file={pki.ca_cert}",
            f"--token-auth-file={tokens}",
            "--authorization-mode=RBAC",
            f"--service-account-issuer={self.server}",
            f"--service-account-key-file={pki.service_account_public_key}",
            f"--service-account-signing-key-file={pki.service_account_key}",
            "--service-cluster-ip-range=10.96.0.0/16",
            # The "kubernetes" Service cannot point at a loopback address; nothing here needs it.
            "--endpoint-reconciler-type=none",
            f"--cert-dir={self.work_dir / 'apiserver-certs'}",
        )
        self._wait_http(apiserver, f"{self.server}/readyz", pki.ca_cert)

        common = [
            f"--kubeconfig={self.kubeconfig}",
            f"--authentication-kubeconfig={self.kubeconfig}",
            f"--authorization-kubeconfig={self.kubeconfig}",
            "--bind-address=127.0.0.1",
            f"--tls-cert-file={pki.serving_cert}",
            f"--tls-private-key-file={pki.serving_key}",
            "--leader-elect=false",
        ]
        controller_manager = self._spawn(
            "kube-controller-manager",
            *common,
            f"--secure-port={kcm_port}",
            f"--service-account-private-key-file={pki.service_account_key}",
            f"--root-ca-file={pki.ca_cert}",
            f"--cluster-signing-cert-file={pki.ca_cert}",
            f"--cluster-signing-key-file={pki.ca_key}",
        )
        scheduler = self._spawn("kube-scheduler", *common, f"--secure-port={scheduler_port}")
        self._wait_http(controller_manager, f"https://127.0.0.1:{kcm_port}/healthz", pki.ca_cert)
        self._wait_http(scheduler, f"https://127.0.0.1:{scheduler_port}/healthz", pki.ca_cert)

        key, value = KWOK_NODE_ANNOTATION
        kwok = self._spawn(
            "kwok",
            f"--kubeconfig={self.kubeconfig}",
            # The release's stage definitions, written next to the binary by the build script.
            f"--config={self.bin_dir / 'kwok-stages.yaml'}",
            "--manage-all-nodes=false",
            f"--manage-nodes-with-annotation-selector={key}={value}",
            "--cidr=10.244.0.0/16",
            "--node-ip=10.244.0.1",
            f"--server-address=127.0.0.1:{kwok_port}",
        )
        self._wait_http(kwok, f"http://127.0.0.1:{kwok_port}/healthz", None)
        self._create_fake_node()
        wait_until(self._node_ready, self.startup_timeout, f"node {self.node_name} to become Ready")

    def _spawn(self, name: str, *args: str) -> Component:
        component = Component(name, [str(self.bin_dir / name), *args], self.work_dir)
        self.components.append(component)
        return component

    def _wait_http(self, component: Component, url: str, ca_file: Path | None) -> None:
        context = ssl.create_default_context(cafile=str(ca_file)) if ca_file else None

        def ready() -> bool:
            if not component.alive():
                raise ControlPlaneError(f"{component.name} exited:\n{component.log_tail()}")
            req = urllib.request.Request(url)
            if ca_file:
                req.add_header("Authorization", f"Bearer {self.token}")
            try:
                with urllib.request.urlopen(req, context=context, timeout=5) as resp:
                    return bool(resp.status == 200)
            except (OSError, urllib.error.URLError):
                return False

        try:
            wait_until(ready, self.startup_timeout, f"{component.name} at {url}", interval=0.5)
        except ControlPlaneError as exc:
            raise ControlPlaneError(f"{exc}\n--- {component.name} log ---\n{component.log_tail()}") from None

    def _write_kubeconfig(self) -> None:
        # JSON is valid YAML, and every Kubernetes client reads it.
        config = {
            "apiVersion": "v1",
            "kind": "Config",
            "clusters": [
                {
                    "name": "test",
                    "cluster": {"server": self.server, "certificate-authority": str(self.ca_file)},
                }
            ],
            "users": [{"name": "admin", "user": {"token": self.token}}],
            "contexts": [{"name": "test", "context": {"cluster": "test", "user": "admin"}}],
            "current-context": "test",
        }
        self.kubeconfig.write_text(json.dumps(config, indent=2))
        self.kubeconfig.chmod(0o600)

    def _create_fake_node(self) -> None:
        key, value = KWOK_NODE_ANNOTATION
        node = {
            "apiVersion": "v1",
            "kind": "Node",
            "metadata": {
                "name": self.node_name,
                "annotations": {key: value, "node.alpha.kubernetes.io/ttl": "0"},
                "labels": {
                    "type": "kwok",
                    "kubernetes.io/hostname": self.node_name,
                    "kubernetes.io/os": "linux",
                },
            },
            # Roomy, so scheduling never fails for lack of capacity in tests.
            "status": {
                "allocatable": {"cpu": "64", "memory": "256Gi", "pods": "500"},
                "capacity": {"cpu": "64", "memory": "256Gi", "pods": "500"},
            },
        }
        status, body = self.request("POST", "/api/v1/nodes", node)
        if status not in (201, 409):
            raise ControlPlaneError(f"creating node {self.node_name}: HTTP {status}: {body}")

    def _node_ready(self) -> bool:
        status, body = self.request("GET", f"/api/v1/nodes/{self.node_name}")
        if status != 200:
            return False
        conditions = body.get("status", {}).get("conditions") or []
        return any(c.get("type") == "Ready" and c.get("status") == "True" for c in conditions)
