"""What the docker node (tests/k8s/docker_node.py) runs for a Pod, decided without I/O: the environment a
kubelet would give a container, its security settings as `docker run` flags, Service names as host
entries, and the status fields it reports. Pods are the API server's JSON (dicts), as read.

Host networking shapes the rest: every container runs with ``--network host``, so a Pod's IP is
127.0.0.1, a Service name resolves (through ``--add-host``) to 127.0.0.1, and a Service is reachable only
where its port equals the container port it targets.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

POD_IP = "127.0.0.1"
SERVICE_ACCOUNT_DIR = "/var/run/secrets/kubernetes.io/serviceaccount"
# Lookups the node does for a pod: a Secret's decoded data or a ConfigMap's data, None when missing.
Lookup = Callable[[str], Mapping[str, str] | None]
_EXPANSION = re.compile(r"\$\$|\$\(([A-Za-z_][A-Za-z0-9_.-]*)\)")
_FIELD_MAP = re.compile(r"^metadata\.(labels|annotations)\['(.+)'\]$")
_ENV_NAME = re.compile(r"^[-._a-zA-Z][-._a-zA-Z0-9]*$")
_QUANTITY = re.compile(r"^([0-9.]+)([a-zA-Z]*)$")
_SUFFIXES = {
    "": 1, "k": 10**3, "M": 10**6, "G": 10**9, "T": 10**12,
    "Ki": 2**10, "Mi": 2**20, "Gi": 2**30, "Ti": 2**40, "m": 10**-3,
}  # fmt: skip


class PodConfigError(Exception):
    """What a kubelet reports as CreateContainerConfigError: a missing Secret or ConfigMap, an unsupported
    field, a security setting the image breaks. The node retries while the pod exists."""


class ImageMissingError(PodConfigError):
    """The image is not in the local engine, which the node never pulls into (ErrImageNeverPull)."""


@dataclass(frozen=True)
class Service:
    """The parts of a Service the node needs: where it lives and its ports (name, port, protocol)."""

    namespace: str
    name: str
    ports: tuple[tuple[str, int, str], ...]


@dataclass(frozen=True)
class ApiServer:
    """The test API server as pods reach it (the `kubernetes` Service of a real cluster)."""

    host: str
    port: int


def quantity(value: str | int | float) -> float:
    """A Kubernetes quantity ("256Mi", "100m", "2") as a plain number."""
    match = _QUANTITY.match(str(value))
    if not match or match.group(2) not in _SUFFIXES:
        raise PodConfigError(f"unsupported quantity {value!r}")
    return float(match.group(1)) * _SUFFIXES[match.group(2)]


def expand(value: str, env: Mapping[str, str]) -> str:
    """Kubernetes' $(VAR) expansion: defined names are replaced, undefined ones kept, $$ escapes."""

    def replace(match: re.Match[str]) -> str:
        if match.group(0) == "$$":
            return "$"
        name = match.group(1)
        return env.get(name, match.group(0))

    return _EXPANSION.sub(replace, value)


def field_value(pod: Mapping[str, Any], path: str) -> str:
    """A downward-API fieldRef of the pod (the paths a kubelet supports for env and volumes)."""
    meta, spec = pod["metadata"], pod["spec"]
    simple = {
        "metadata.name": meta["name"],
        "metadata.namespace": meta["namespace"],
        "metadata.uid": meta["uid"],
        "spec.nodeName": spec.get("nodeName", ""),
        "spec.serviceAccountName": spec.get("serviceAccountName", ""),
        "status.hostIP": POD_IP,
        "status.hostIPs": POD_IP,
        "status.podIP": POD_IP,
        "status.podIPs": POD_IP,
    }
    if path in simple:
        return str(simple[path])
    mapped = _FIELD_MAP.match(path)
    if mapped:
        return str((meta.get(mapped.group(1)) or {}).get(mapped.group(2), ""))
    raise PodConfigError(f"unsupported fieldRef {path!r}")


def resource_value(container: Mapping[str, Any], ref: Mapping[str, Any]) -> str:
    """A resourceFieldRef (limits.memory, requests.cpu...) over its divisor, rounded up like a kubelet's."""
    kind, _, name = str(ref["resource"]).partition(".")
    raw = (container.get("resources") or {}).get(kind, {}).get(name)
    if raw is None:
        return "0"
    divisor = quantity(ref.get("divisor", "1"))
    return str(max(1, -int(-quantity(raw) // divisor)))


def service_env(services: Iterable[Service], namespace: str, api: ApiServer) -> dict[str, str]:
    """The Docker-link style variables a kubelet adds for every Service of the pod's namespace
    (enableServiceLinks), plus the `kubernetes` Service's, which in-cluster clients read. The host is
    127.0.0.1, where a Service's pods listen on host networking."""
    env = _link_env(
        "kubernetes", POD_IP if api.host == "127.0.0.1" else api.host, [("https", api.port, "TCP")]
    )
    for service in services:
        if service.namespace == namespace and service.ports:
            env.update(_link_env(service.name, POD_IP, service.ports))
    return env


def _link_env(name: str, host: str, ports: Sequence[tuple[str, int, str]]) -> dict[str, str]:
    prefix = name.upper().replace("-", "_")
    _, first_port, first_proto = ports[0]
    env = {
        f"{prefix}_SERVICE_HOST": host,
        f"{prefix}_SERVICE_PORT": str(first_port),
        f"{prefix}_PORT": f"{first_proto.lower()}://{host}:{first_port}",
    }
    for port_name, port, proto in ports:
        if port_name:
            env[f"{prefix}_SERVICE_PORT_{port_name.upper().replace('-', '_')}"] = str(port)
        link = f"{prefix}_PORT_{port}_{proto.upper()}"
        env.update({
            link: f"{proto.lower()}://{host}:{port}",
            f"{link}_PROTO": proto.lower(),
            f"{link}_PORT": str(port),
            f"{link}_ADDR": host,
        })  # fmt: skip
    return env


def container_env(
    pod: Mapping[str, Any],
    container: Mapping[str, Any],
    secrets: Lookup,
    config_maps: Lookup,
    service_vars: Mapping[str, str],
) -> dict[str, str]:
    """The container's environment as a kubelet builds it: envFrom, then env (later wins), then the
    Service variables for names not already set. A missing non-optional reference is a PodConfigError."""
    env: dict[str, str] = {}
    for source in container.get("envFrom") or []:
        kind, ref = (
            ("secret", source["secretRef"])
            if "secretRef" in source
            else ("configmap", source["configMapRef"])
        )
        data = (secrets if kind == "secret" else config_maps)(ref["name"])
        if data is None:
            if ref.get("optional"):
                continue
            raise PodConfigError(f'{kind} "{ref["name"]}" not found')
        prefix = source.get("prefix", "")
        env.update({prefix + key: value for key, value in data.items() if _ENV_NAME.match(prefix + key)})
    if pod["spec"].get("enableServiceLinks", True):
        lookup_env = {**service_vars, **env}
    else:
        lookup_env = {
            key: value for key, value in service_vars.items() if key.startswith("KUBERNETES_")
        } | env
    for item in container.get("env") or []:
        value = _env_value(pod, container, item, secrets, config_maps, lookup_env)
        if value is not None:
            env[item["name"]] = value
            lookup_env[item["name"]] = value
    return {**{k: v for k, v in lookup_env.items() if k not in env}, **env}


def _env_value(
    pod: Mapping[str, Any],
    container: Mapping[str, Any],
    item: Mapping[str, Any],
    secrets: Lookup,
    config_maps: Lookup,
    env_so_far: Mapping[str, str],
) -> str | None:
    if "valueFrom" not in item:
        return expand(str(item.get("value", "")), env_so_far)
    source = item["valueFrom"]
    if "fieldRef" in source:
        return field_value(pod, source["fieldRef"]["fieldPath"])
    if "resourceFieldRef" in source:
        return resource_value(container, source["resourceFieldRef"])
    kind, ref = (
        ("secret", source["secretKeyRef"])
        if "secretKeyRef" in source
        else ("configmap", source["configMapKeyRef"])
    )
    data = (secrets if kind == "secret" else config_maps)(ref["name"])
    if data is None or ref["key"] not in data:
        if ref.get("optional"):
            return None
        what = f'{kind} "{ref["name"]}"' if data is None else f'key "{ref["key"]}" in {kind} "{ref["name"]}"'
        raise PodConfigError(f"{what} not found")
    return data[ref["key"]]


def host_entries(services: Iterable[Service], namespace: str, pod: Mapping[str, Any]) -> list[str]:
    """``--add-host`` values: every Service's DNS names (the short name only in the pod's own namespace)
    → 127.0.0.1, and the pod's hostAliases."""
    entries: list[str] = []
    for service in services:
        names = [f"{service.name}.{service.namespace}", f"{service.name}.{service.namespace}.svc",
                 f"{service.name}.{service.namespace}.svc.cluster.local"]  # fmt: skip
        if service.namespace == namespace:
            names.insert(0, service.name)
        entries += [f"{name}:{POD_IP}" for name in names]
    for alias in pod["spec"].get("hostAliases") or []:
        entries += [f"{host}:{alias['ip']}" for host in alias.get("hostnames", [])]
    return entries


def image_uid(image_user: str) -> int | None:
    """The numeric uid of an image's USER ("10001", "10001:10001"); None for a name or nothing (root)."""
    user = image_user.partition(":")[0]
    if not user:
        return 0
    return int(user) if user.isdigit() else None


def security_flags(pod: Mapping[str, Any], container: Mapping[str, Any], image_user: str) -> list[str]:
    """`docker run` flags for the pod's and container's securityContext (the container's wins), with the
    kubelet's runAsNonRoot check against the image's USER."""
    pod_ctx = pod["spec"].get("securityContext") or {}
    ctx = {**pod_ctx, **(container.get("securityContext") or {})}
    if ctx.get("privileged"):
        raise PodConfigError("privileged containers are not run by the docker node")
    uid = ctx.get("runAsUser")
    if ctx.get("runAsNonRoot"):
        effective = uid if uid is not None else image_uid(image_user)
        if effective is None:
            raise PodConfigError(
                f"container has runAsNonRoot and image has non-numeric user ({image_user}), "
                "cannot verify user is non-root"
            )
        if effective == 0:
            raise PodConfigError("container's runAsUser breaks non-root policy")
    flags: list[str] = []
    gid = ctx.get("runAsGroup")
    if uid is not None:
        flags += ["--user", f"{uid}:{gid}" if gid is not None else str(uid)]
    for group in [pod_ctx.get("fsGroup"), *(pod_ctx.get("supplementalGroups") or [])]:
        if group is not None:
            flags += ["--group-add", str(group)]
    if ctx.get("readOnlyRootFilesystem"):
        flags.append("--read-only")
    if ctx.get("allowPrivilegeEscalation") is False:
        flags += ["--security-opt", "no-new-privileges"]
    capabilities = ctx.get("capabilities") or {}
    flags += [f"--cap-drop={cap}" for cap in capabilities.get("drop") or []]
    flags += [f"--cap-add={cap}" for cap in capabilities.get("add") or []]
    return flags


def resource_flags(container: Mapping[str, Any]) -> list[str]:
    """Memory and CPU limits as `docker run` flags (an OOM kill shows as exit 137, as on a kubelet)."""
    limits = (container.get("resources") or {}).get("limits") or {}
    flags = []
    if "memory" in limits:
        flags += ["--memory", str(int(quantity(limits["memory"])))]
    if "cpu" in limits:
        flags += ["--cpus", f"{quantity(limits['cpu']):.3f}"]
    return flags


def command_line(container: Mapping[str, Any], env: Mapping[str, str]) -> tuple[list[str], list[str]]:
    """(entrypoint flags, trailing arguments): command replaces the image's ENTRYPOINT, args its CMD, both
    with $(VAR) expansion."""
    command = [expand(part, env) for part in container.get("command") or []]
    args = [expand(part, env) for part in container.get("args") or []]
    if command:
        return ["--entrypoint", command[0]], [*command[1:], *args]
    return [], args


def container_port(container: Mapping[str, Any], port: int | str) -> int:
    """A probe's port: a number, or the name of one of the container's ports."""
    if isinstance(port, int) or str(port).isdigit():
        return int(port)
    for item in container.get("ports") or []:
        if item.get("name") == port:
            return int(item["containerPort"])
    raise PodConfigError(f"container {container['name']} has no port named {port!r}")


def pod_phase(restart_policy: str, exit_codes: Sequence[int | None], init_failed: bool) -> str:
    """Pending / Running / Succeeded / Failed from the containers' last exits (None: running or about to
    be restarted), as a kubelet decides it."""
    if init_failed:
        return "Failed"
    if restart_policy == "Always" or any(code is None for code in exit_codes):
        return "Running"
    if all(code == 0 for code in exit_codes):
        return "Succeeded"
    return "Running" if restart_policy == "OnFailure" else "Failed"


def condition(kind: str, ok: bool, now: str, reason: str = "") -> dict[str, Any]:
    """One pod condition."""
    item: dict[str, Any] = {"type": kind, "status": "True" if ok else "False", "lastTransitionTime": now}
    if reason and not ok:
        item["reason"] = reason
    return item
