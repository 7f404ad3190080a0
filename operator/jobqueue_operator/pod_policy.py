"""What a WorkerPool's ``podTemplate`` may ask for: Pod Security "restricted" unless the chart allows more.

Whoever may create a WorkerPool gets pods run by the operator's ServiceAccount's hand, so without this
policy they could run any pod: host namespaces or paths, privileged containers, another ServiceAccount's
identity, or any Secret of the namespace mounted into a sidecar. ``pod_template_violations`` is pure; the
WorkerPool handler refuses a spec with violations (condition + event, no Deployment).
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

# The one capability Pod Security "restricted" lets a container add.
_RESTRICTED_CAPABILITIES = frozenset({"NET_BIND_SERVICE"})
_CONTAINER_LISTS = ("initContainers", "containers", "ephemeralContainers")


@dataclass(frozen=True)
class PodPolicy:
    """What the chart lets WorkerPools have beyond "restricted" (each off unless the chart says so)."""

    allow_host_namespaces: bool = False  # hostNetwork, hostPID, hostIPC, hostPort
    allow_host_path: bool = False  # hostPath volumes
    allow_privileged: bool = False  # privileged, allowPrivilegeEscalation, added capabilities, Unconfined
    allow_root: bool = False  # runAsUser 0 / runAsNonRoot false
    # ServiceAccounts a pool may run as (none: the namespace default, chosen by Kubernetes).
    service_accounts: frozenset[str] = frozenset()
    # Secrets a pool may name as connectionSecretName, or mount / reference in its podTemplate.
    secrets: frozenset[str] = frozenset({"jobqueue-connection"})


def _mapping(value: object) -> Mapping[str, Any]:
    return value if isinstance(value, Mapping) else {}


def _items(value: object) -> Sequence[Any]:
    return value if isinstance(value, list) else []


def _security_context_violations(where: str, context: Mapping[str, Any], policy: PodPolicy) -> Iterator[str]:
    if not policy.allow_privileged:
        if context.get("privileged") is True:
            yield f"{where}.privileged is true"
        if context.get("allowPrivilegeEscalation") is True:
            yield f"{where}.allowPrivilegeEscalation is true"
        added = {str(c) for c in _items(_mapping(context.get("capabilities")).get("add"))}
        if added - _RESTRICTED_CAPABILITIES:
            yield f"{where}.capabilities.add has {sorted(added - _RESTRICTED_CAPABILITIES)}"
        if _mapping(context.get("seccompProfile")).get("type") == "Unconfined":
            yield f"{where}.seccompProfile is Unconfined"
        if context.get("procMount") not in (None, "Default"):
            yield f"{where}.procMount is {context.get('procMount')!r}"
    if not policy.allow_root:
        if context.get("runAsUser") == 0:
            yield f"{where}.runAsUser is 0 (root)"
        if context.get("runAsNonRoot") is False:
            yield f"{where}.runAsNonRoot is false"


def _secret_references(pod_spec: Mapping[str, Any]) -> Iterator[tuple[str, object]]:
    for i, item in enumerate(_items(pod_spec.get("volumes"))):
        volume = _mapping(item)
        if "secret" in volume:
            yield f"volumes[{i}].secret", _mapping(volume["secret"]).get("secretName")
        for j, source in enumerate(_items(_mapping(volume.get("projected")).get("sources"))):
            if "secret" in _mapping(source):
                yield f"volumes[{i}].projected.sources[{j}].secret", _mapping(source["secret"]).get("name")
    for kind in _CONTAINER_LISTS:
        for i, item in enumerate(_items(pod_spec.get(kind))):
            container = _mapping(item)
            for j, env in enumerate(_items(container.get("env"))):
                ref = _mapping(_mapping(_mapping(env).get("valueFrom")).get("secretKeyRef"))
                if ref:
                    yield f"{kind}[{i}].env[{j}].valueFrom.secretKeyRef", ref.get("name")
            for j, source in enumerate(_items(container.get("envFrom"))):
                ref = _mapping(_mapping(source).get("secretRef"))
                if ref:
                    yield f"{kind}[{i}].envFrom[{j}].secretRef", ref.get("name")


def pod_template_violations(
    pod_spec: Mapping[str, Any], connection_secret_name: str, policy: PodPolicy
) -> list[str]:
    """Each thing in a WorkerPool's ``podTemplate.spec`` (and its connection Secret) that ``policy``
    refuses, as "podTemplate.spec.<path> ..." (empty: allowed)."""
    found: list[str] = []
    if connection_secret_name not in policy.secrets:
        found.append(f"connectionSecretName {connection_secret_name!r} is not one the chart allows")
    if not policy.allow_host_namespaces:
        found += [f"{key} is true" for key in ("hostNetwork", "hostPID", "hostIPC") if pod_spec.get(key)]
    account = pod_spec.get("serviceAccountName") or pod_spec.get("serviceAccount")
    if account is not None and account not in policy.service_accounts:
        found.append(f"serviceAccountName {account!r} is not on the chart's allow-list")
    if not policy.allow_host_path:
        for i, volume in enumerate(_items(pod_spec.get("volumes"))):
            if "hostPath" in _mapping(volume):
                found.append(f"volumes[{i}].hostPath is not allowed")
    pod_context = _mapping(pod_spec.get("securityContext"))
    found += _security_context_violations("securityContext", pod_context, policy)
    for kind in _CONTAINER_LISTS:
        for i, item in enumerate(_items(pod_spec.get(kind))):
            container = _mapping(item)
            where = f"{kind}[{i}]"
            context = _mapping(container.get("securityContext"))
            found += _security_context_violations(f"{where}.securityContext", context, policy)
            if not policy.allow_host_namespaces:
                for j, port in enumerate(_items(container.get("ports"))):
                    if _mapping(port).get("hostPort"):
                        found.append(f"{where}.ports[{j}].hostPort is set")
    for where, name in _secret_references(pod_spec):
        if name not in policy.secrets:
            found.append(f"{where} names Secret {name!r}, not one the chart allows")
    return [f"podTemplate.spec.{v}" if not v.startswith("connectionSecretName") else v for v in found]
