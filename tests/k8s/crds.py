"""Applying the project's CRDs (crds/) to the test control plane, shared by every suite that needs the
WorkerPool, JobQueue and RecurringTask kinds (operator integration tests, the web UI's pool tests)."""

from __future__ import annotations

from pathlib import Path

import yaml
from kubernetes import client as k8s_client
from kubernetes.client.rest import ApiException

from k8s.control_plane import wait_until

CRDS = Path(__file__).resolve().parents[2] / "crds"


def established(api: k8s_client.ApiextensionsV1Api, name: str) -> bool:
    """The CRD is served: Established and its names accepted."""
    crd = api.read_custom_resource_definition(name)
    conditions = {c.type: c.status for c in (crd.status.conditions or [])}
    return conditions.get("Established") == "True" and conditions.get("NamesAccepted") == "True"


def apply_crds(kube_api: k8s_client.ApiClient, paths: list[Path]) -> list[str]:
    """Apply CRDs (replacing older copies) and wait until each is Established."""
    api = k8s_client.ApiextensionsV1Api(kube_api)
    names = []
    for path in paths:
        body = yaml.safe_load(path.read_text())
        name = body["metadata"]["name"]
        try:
            api.create_custom_resource_definition(body)
        except ApiException as exc:
            if exc.status != 409:
                raise
            body["metadata"]["resourceVersion"] = api.read_custom_resource_definition(
                name
            ).metadata.resource_version
            api.replace_custom_resource_definition(name, body)
        names.append(name)
    for name in names:
        wait_until(lambda name=name: established(api, name), 60, f"CRD {name} to be Established")
    return names
