"""The API's RBAC for the "kubernetes" pools backend (the chart's api Role when api.manageWorkerPools is
on): the tests run the API's backend with a token of this ServiceAccount, so a verb missing here fails
them as it would in a cluster."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from kubernetes import client as k8s_client

SERVICE_ACCOUNT = "jobqueue-api"

RULES: list[dict[str, Any]] = [
    {
        "apiGroups": ["jobqueue.dev"],
        "resources": ["workerpools"],
        "verbs": ["get", "list", "create", "patch", "delete"],
    },
    # GET /api/v1/worker-pools/{name}/events reads the events the operator records on the WorkerPool.
    {"apiGroups": [""], "resources": ["events"], "verbs": ["list"]},
]


def api_kubeconfig(api: k8s_client.ApiClient, namespace: str, admin_kubeconfig: Path, path: Path) -> Path:
    """Create the API's ServiceAccount, Role and RoleBinding in ``namespace``; write a kubeconfig that
    authenticates with a short-lived token of that ServiceAccount."""
    core = k8s_client.CoreV1Api(api)
    rbac = k8s_client.RbacAuthorizationV1Api(api)
    core.create_namespaced_service_account(namespace, {"metadata": {"name": SERVICE_ACCOUNT}})
    rbac.create_namespaced_role(namespace, {"metadata": {"name": SERVICE_ACCOUNT}, "rules": RULES})
    rbac.create_namespaced_role_binding(
        namespace,
        {
            "metadata": {"name": SERVICE_ACCOUNT},
            "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": SERVICE_ACCOUNT},
            "subjects": [{"kind": "ServiceAccount", "name": SERVICE_ACCOUNT, "namespace": namespace}],
        },
    )
    token = core.create_namespaced_service_account_token(
        SERVICE_ACCOUNT, namespace, {"spec": {"expirationSeconds": 3600}}
    ).status.token
    config = json.loads(admin_kubeconfig.read_text())
    config["users"] = [{"name": "admin", "user": {"token": token}}]
    path.write_text(json.dumps(config))
    path.chmod(0o600)
    return path
