"""A real Kubernetes node for the test control plane: the kubelet of the control plane's release driving a
private containerd through CRI (opt-in: JOBQUEUE_TEST_NODE=kubelet, see tests/k8s/README.md).

Everything runs on this machine and is stopped by :meth:`KubeletNode.stop`:

- containerd (Debian's package) with its root, state, sockets and network namespaces under a temporary
  directory, the overlayfs snapshotter, runc through the v2 shim, cgroupfs cgroups (the machine has
  cgroup v1, and no systemd to be a cgroup driver);
- images imported from the local Docker engine (tests/k8s/node-images.sh): nothing is pulled, pods use
  ``imagePullPolicy: Never`` or ``IfNotPresent``; the sandbox image is tests/k8s/pause.c built here;
- networking: a ``ptp`` CNI network (a veth pair per pod, host-local addresses in POD_CIDR, no bridge,
  no masquerading), so a pod without hostNetwork gets an address reachable from this machine only.
  Services have no ClusterIP routing (no kube-proxy) and no DNS (no cluster DNS); pods that must reach
  the API server or the test's Redis/PostgreSQL on 127.0.0.1 use ``hostNetwork: true``;
- the kubelet: registered as :attr:`name` with a NoSchedule taint and a label (:attr:`toleration`,
  :attr:`node_selector`, the same contract as k8s/docker_node.py), authenticated with the admin token,
  serving only on 127.0.0.1, container logs under ``<work_dir>/pod-logs``.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

from redis_topologies import free_ports

from k8s.control_plane import Component, ControlPlane, ControlPlaneError, wait_until

HERE = Path(__file__).parent
NODE_IMAGES = HERE / "node-images.sh"
NODE_LABEL = "jobqueue.test/kubelet-node"
PAUSE_IMAGE = "jobqueue.test/pause:3.10"
POD_CIDR = "10.88.0.0/16"
CNI_BIN_DIR = Path("/usr/lib/cni")  # Debian's containernetworking-plugins
CGROUP_V1 = Path("/sys/fs/cgroup")
REQUIRED_COMMANDS = ("containerd", "containerd-shim-runc-v2", "runc", "ctr", "docker", "gcc")


def node_requirements(bin_dir: Path) -> list[str]:
    """What is missing on this machine to start a kubelet node (empty when it can start)."""
    missing = [f"{name} (not on PATH)" for name in REQUIRED_COMMANDS if shutil.which(name) is None]
    if not (CNI_BIN_DIR / "ptp").is_file():
        missing.append(f"the CNI plugins in {CNI_BIN_DIR} (apt-get install containernetworking-plugins)")
    if not os.access(bin_dir / "kubelet", os.X_OK):
        missing.append(f"kubelet in {bin_dir} (tests/k8s/build-control-plane.sh --with-kubelet)")
    if os.geteuid() != 0:
        missing.append("root (the kubelet and containerd mount filesystems and make cgroups)")
    return missing


def containerd_config(base: Path) -> str:
    """containerd's TOML: everything under ``base``, the CRI plugin with our sandbox image and CNI."""
    return f"""version = 2
root = "{base}/containerd/root"
state = "{base}/containerd/state"
[grpc]
  address = "{base}/containerd.sock"
[ttrpc]
  address = "{base}/containerd.sock.ttrpc"
[debug]
  address = "{base}/containerd-debug.sock"
[plugins."io.containerd.grpc.v1.cri"]
  sandbox_image = "{PAUSE_IMAGE}"
  stream_server_address = "127.0.0.1"
  stream_server_port = "0"
  # Network namespaces under the state directory, not /var/run/netns, so stop() can unmount them all.
  netns_mounts_under_state_dir = true
  # The sandbox has no CAP_SYS_RESOURCE, so lowering oom_score_adj fails ("echo -998 >
  # /proc/self/oom_score_adj: Permission denied"); runc then dies with "can't get final child's PID from
  # pipe: EOF". Restricted, the kubelet's negative scores (sandboxes -998, Guaranteed pods -997) become
  # containerd's own (0); positive scores (Burstable, BestEffort) are kept.
  restrict_oom_score_adj = true
  [plugins."io.containerd.grpc.v1.cri".containerd]
    snapshotter = "overlayfs"
    default_runtime_name = "runc"
    [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc]
      runtime_type = "io.containerd.runc.v2"
      [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc.options]
        SystemdCgroup = false
  [plugins."io.containerd.grpc.v1.cri".cni]
    bin_dir = "{CNI_BIN_DIR}"
    conf_dir = "{base}/cni"
"""


def cni_config(base: Path) -> dict[str, Any]:
    """A point-to-point network: no bridge and no NAT, so nothing a pod sends leaves this machine."""
    return {
        "cniVersion": "0.4.0",
        "name": "jobqueue-test",
        "plugins": [
            {
                "type": "ptp",
                "ipMasq": False,
                "ipam": {
                    "type": "host-local",
                    "ranges": [[{"subnet": POD_CIDR}]],
                    "routes": [],
                    # Address leases live with the node, not in /var/lib/cni.
                    "dataDir": f"{base}/cni-leases",
                },
            },
            {"type": "portmap", "capabilities": {"portMappings": True}, "snat": False},
        ],
    }


def cgroup_hierarchies(unified: bool = False) -> list[Path]:
    """The mounted cgroup v1 hierarchies (the kubelet uses v1 on this hybrid layout), and with
    ``unified`` the v2 one too, where runc mirrors the cgroup paths it makes."""
    return sorted(
        path
        for path in CGROUP_V1.iterdir()
        if (unified or path.name != "unified") and (path / "cgroup.procs").is_file()
    )


def make_cgroup_root(name: str) -> None:
    """``/<name>`` in every hierarchy: the node's pods live below it, apart from any other kubelet's."""
    for hierarchy in cgroup_hierarchies():
        path = hierarchy / name
        path.mkdir(exist_ok=True)
        # A new cpuset is empty, and no task can join an empty one: start from the parent's.
        for knob in ("cpuset.cpus", "cpuset.mems"):
            if (hierarchy / knob).is_file():
                (path / knob).write_text((hierarchy / knob).read_text())


def remove_cgroup_root(name: str) -> list[str]:
    """Remove ``/<name>`` everywhere, deepest first; the directories that would not go (still in use)."""
    left = []
    for hierarchy in cgroup_hierarchies(unified=True):
        root = hierarchy / name
        if not root.is_dir():
            continue
        below = sorted((p for p in root.rglob("*") if p.is_dir()), key=lambda p: len(p.parts), reverse=True)
        for path in [*below, root]:
            try:
                path.rmdir()
            except OSError as exc:
                left.append(f"{path}: {exc}")
    return left


def kubelet_config(name: str, base: Path, log_dir: Path, port: int, healthz_port: int) -> dict[str, Any]:
    """The KubeletConfiguration of the test node."""
    return {
        "apiVersion": "kubelet.config.k8s.io/v1beta1",
        "kind": "KubeletConfiguration",
        "containerRuntimeEndpoint": f"unix://{base}/containerd.sock",
        # cgroup v1 here and no systemd: the kubelet and containerd must both use cgroupfs.
        "cgroupDriver": "cgroupfs",
        "cgroupRoot": f"/{name}",
        "failSwapOn": False,
        # The kubelet's own default, -999, needs CAP_SYS_RESOURCE, which this machine does not grant.
        "oomScoreAdj": 0,
        "address": "127.0.0.1",
        "port": port,
        "readOnlyPort": 0,
        "healthzBindAddress": "127.0.0.1",
        "healthzPort": healthz_port,
        # Only the test's own processes reach 127.0.0.1; the API server never calls back (no logs/exec).
        "authentication": {"anonymous": {"enabled": False}, "webhook": {"enabled": False}},
        "authorization": {"mode": "AlwaysAllow"},
        "registerWithTaints": [{"key": NODE_LABEL, "value": name, "effect": "NoSchedule"}],
        "podLogsDir": str(log_dir),
        # The imported images cannot be pulled again: never garbage-collect them. The machine's disk is
        # shared and often over 50% full, so eviction thresholds are minimal.
        "imageGCHighThresholdPercent": 100,
        "imageGCLowThresholdPercent": 99,
        "evictionHard": {"memory.available": "50Mi", "nodefs.available": "1%", "imagefs.available": "1%"},
        "maxPods": 50,
        "serializeImagePulls": False,
        "resolvConf": "/etc/resolv.conf",
        # Faster status for tests (defaults: 10 s updates, 5 min reports).
        "nodeStatusUpdateFrequency": "2s",
        "nodeStatusReportFrequency": "10s",
        "syncFrequency": "5s",
    }


class KubeletNode:
    """Start with :meth:`start`; pods tolerating :attr:`toleration` and selecting :attr:`node_selector`
    run here under the real kubelet; :meth:`stop` deletes them, stops everything and removes the Node."""

    def __init__(self, plane: ControlPlane, work_dir: Path, images: tuple[str, ...] = ()) -> None:
        self.plane = plane
        self.name = f"kubelet-node-{uuid.uuid4().hex[:6]}"
        self.work_dir = work_dir
        self.log_dir = work_dir / "pod-logs"
        self.images = images
        # Unix socket paths are limited to 108 bytes; pytest's temporary paths can be longer.
        self.base = Path(tempfile.mkdtemp(prefix="jq-node-", dir="/tmp"))
        self.socket = self.base / "containerd.sock"
        self.components: list[Component] = []
        self.leftover_cgroups: list[str] = []
        self.leftover_containers: list[str] = []

    @property
    def toleration(self) -> dict[str, str]:
        return {"key": NODE_LABEL, "operator": "Equal", "value": self.name, "effect": "NoSchedule"}

    @property
    def node_selector(self) -> dict[str, str]:
        return {NODE_LABEL: self.name}

    def start(self, timeout: float = 180) -> KubeletNode:
        """Start containerd, import the images, start the kubelet and wait until the Node is Ready."""
        try:
            self._start(timeout)
        except BaseException:
            self.stop()
            raise
        return self

    def _start(self, timeout: float) -> None:
        self.work_dir.mkdir(parents=True, exist_ok=True)
        self.log_dir.mkdir(parents=True, exist_ok=True)
        make_cgroup_root(self.name)
        (self.base / "cni").mkdir()
        (self.base / "cni" / "10-jobqueue-test.conflist").write_text(json.dumps(cni_config(self.base)))
        config = self.work_dir / "containerd.toml"
        config.write_text(containerd_config(self.base))
        containerd = Component("containerd", ["containerd", "--config", str(config)], self.work_dir)
        self.components.append(containerd)
        wait_until(lambda: self._ctr_answers(containerd), 60, "containerd to answer on its socket")
        imported = subprocess.run(
            ["bash", str(NODE_IMAGES), str(self.socket), *self.images],
            capture_output=True, text=True, check=False, timeout=600,
        )  # fmt: skip
        if imported.returncode != 0:
            raise ControlPlaneError(f"importing images into containerd: {imported.stderr[-2000:]}")

        config_file = self.work_dir / "kubelet.json"
        config_file.write_text(json.dumps(kubelet_config(self.name, self.base, self.log_dir, *free_ports(2))))
        kubelet = Component(
            "kubelet",
            [
                str(self.plane.bin_dir / "kubelet"),
                f"--config={config_file}",
                f"--kubeconfig={self.plane.kubeconfig}",
                f"--hostname-override={self.name}",
                f"--node-labels={NODE_LABEL}={self.name},type=kubelet",
                f"--root-dir={self.base / 'kubelet'}",
                f"--cert-dir={self.base / 'kubelet-pki'}",
                "--v=2",
            ],
            self.work_dir,
        )
        self.components.append(kubelet)

        def ready() -> bool:
            if not kubelet.alive():
                raise ControlPlaneError(f"kubelet exited:\n{kubelet.log_tail(60)}")
            return self.ready()

        try:
            wait_until(ready, timeout, f"node {self.name} to become Ready", interval=1)
        except ControlPlaneError as exc:
            raise ControlPlaneError(f"{exc}\n--- kubelet log ---\n{kubelet.log_tail(60)}") from None

    def ready(self) -> bool:
        """True while the Node's Ready condition is True."""
        status, body = self.plane.request("GET", f"/api/v1/nodes/{self.name}")
        conditions = (body.get("status", {}).get("conditions") or []) if status == 200 else []
        return any(c.get("type") == "Ready" and c.get("status") == "True" for c in conditions)

    def _ctr(self, *args: str, timeout: float = 30) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            ["ctr", "--address", str(self.socket), "--namespace", "k8s.io", *args],
            capture_output=True, text=True, check=False, timeout=timeout,
        )  # fmt: skip

    def _ctr_answers(self, containerd: Component) -> bool:
        if not containerd.alive():
            raise ControlPlaneError(f"containerd exited:\n{containerd.log_tail()}")
        return self._ctr("version").returncode == 0

    def containers(self) -> list[str]:
        """IDs of the containers (sandboxes included) containerd has running for this node."""
        if not self.socket.exists():
            return []
        out = self._ctr("tasks", "ls", "--quiet").stdout.split()
        return [task for task in out if task]

    def log_tails(self, lines: int = 40) -> str:
        """The last lines of every container log (<ns>_<pod>_<uid>/<container>/<n>.log) and component log."""
        parts = []
        for path in sorted(self.log_dir.glob("*/*/*.log")):
            text = path.read_text(errors="replace").splitlines()
            parts.append(f"--- {path.relative_to(self.log_dir)} ---\n" + "\n".join(text[-lines:]))
        for component in self.components:
            parts.append(f"--- {component.name} ---\n{component.log_tail(lines)}")
        return "\n".join(parts)

    def stop(self) -> None:
        """Delete this node's pods (the kubelet stops their containers), then stop the kubelet and
        containerd, kill any container left, unmount what they mounted and delete the Node."""
        kubelet = next((c for c in self.components if c.name == "kubelet"), None)
        if kubelet is not None and kubelet.alive():
            self._delete_pods()
        for component in reversed(self.components):
            if component.name == "containerd" and component.alive():
                self.leftover_containers = self.containers()
                self._kill_leftovers()
            component.stop()
        self.components.clear()
        self._unmount_all()
        shutil.rmtree(self.base, ignore_errors=True)
        self.leftover_cgroups = remove_cgroup_root(self.name)
        self.plane.request(
            "DELETE", f"/apis/coordination.k8s.io/v1/namespaces/kube-node-lease/leases/{self.name}"
        )
        self.plane.request("DELETE", f"/api/v1/nodes/{self.name}")

    def _pods(self) -> list[dict[str, Any]]:
        status, body = self.plane.request("GET", f"/api/v1/pods?fieldSelector=spec.nodeName%3D{self.name}")
        return list(body.get("items") or []) if status == 200 else []

    def _delete_pods(self, timeout: float = 60) -> None:
        for pod in self._pods():
            meta = pod["metadata"]
            path = f"/api/v1/namespaces/{meta['namespace']}/pods/{meta['name']}"
            self.plane.request("DELETE", path, {"kind": "DeleteOptions", "gracePeriodSeconds": 2})
        deadline = time.monotonic() + timeout
        while self._pods() and time.monotonic() < deadline:
            time.sleep(0.5)

    def _kill_leftovers(self) -> None:
        # The v2 shims outlive containerd by design: every task must go before containerd does.
        for task in self.containers():
            self._ctr("tasks", "kill", "--signal", "SIGKILL", task)
        wait_until(lambda: not self.containers(), 30, "the node's containers to exit")
        for container in self._ctr("containers", "ls", "--quiet").stdout.split():
            self._ctr("tasks", "delete", container)
            self._ctr("containers", "delete", container)

    def _unmount_all(self) -> None:
        # Overlay rootfs, tmpfs volumes of secrets and tokens, network namespaces: deepest first.
        mounts = [
            line.split()[1]
            for line in Path("/proc/self/mounts").read_text().splitlines()
            if line.split()[1].startswith(f"{self.base}/")
        ]
        for mount in sorted(mounts, key=len, reverse=True):
            subprocess.run(["umount", "-l", mount], capture_output=True, check=False)
