"""Worker ids and the pods they belong to (pure).

A worker's id names it in Redis: heartbeats, leases, drain requests. In Kubernetes the id is how the
operator finds a worker's pod, so the id must name its pod.

- ``jobqueue worker`` (one process, the default) uses its base id as it is: ``$POD_NAME`` in a pod.
- ``jobqueue worker --processes N`` (N > 1) runs N worker processes; process ``i`` (0 .. N-1) is
  ``<base>_<i>``, e.g. ``billing-7d9f8-x2k4q_0``.

'_' cannot occur in a Kubernetes pod name (an RFC 1123 subdomain: lower-case letters, digits, '-' and
'.'), so the pod part of an id parses back unambiguously, even for a lease holder whose heartbeat is gone
and whose pod's process count is unknown: everything before the last ``_<digits>`` is the pod.
"""

from __future__ import annotations

from collections.abc import Iterable

SEPARATOR = "_"


def process_worker_id(base: str, index: int, processes: int) -> str:
    """The id of worker process ``index`` of ``processes`` started under ``base`` (the pod name).

    One process keeps ``base`` itself, exactly the id a worker had before ``--processes`` existed.
    """
    if processes < 1 or not 0 <= index < processes:
        raise ValueError(f"process index {index} out of range for {processes} process(es)")
    return base if processes == 1 else f"{base}{SEPARATOR}{index}"


def pod_worker_ids(pod: str, processes: int) -> list[str]:
    """Every worker id a pod running ``processes`` worker processes heartbeats under."""
    return [process_worker_id(pod, index, processes) for index in range(processes)]


def pod_of(worker_id: str) -> str:
    """The pod (base id) a worker id belongs to: ``pod_3`` -> ``pod``; an id without a process suffix is
    its own pod."""
    base, separator, index = worker_id.rpartition(SEPARATOR)
    if separator and base and index.isdigit():
        return base
    return worker_id


def group_by_pod(worker_ids: Iterable[str]) -> dict[str, list[str]]:
    """Worker ids grouped by :func:`pod_of`, each group sorted."""
    groups: dict[str, list[str]] = {}
    for worker_id in worker_ids:
        groups.setdefault(pod_of(worker_id), []).append(worker_id)
    return {pod: sorted(ids) for pod, ids in groups.items()}
