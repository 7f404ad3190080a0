"""The jobqueue CRDs, applied once per session to the real test control plane."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml
from kubernetes import client as k8s_client
from kubernetes.client.rest import ApiException

from k8s.control_plane import wait_until

CRDS = Path(__file__).resolve().parents[3] / "crds"


def established(api: k8s_client.ApiextensionsV1Api, name: str) -> bool:
    crd = api.read_custom_resource_definition(name)
    conditions = {c.type: c.status for c in (crd.status.conditions or [])}
    return conditions.get("Established") == "True" and conditions.get("NamesAccepted") == "True"


@pytest.fixture(scope="session")
def jobqueue_crds(kube_api: k8s_client.ApiClient) -> list[str]:
    """Apply every CRD in crds/ (replacing an older copy) and wait until each is Established."""
    api = k8s_client.ApiextensionsV1Api(kube_api)
    names = []
    for path in sorted(CRDS.glob("*.yaml")):
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
