"""The operator's least-privilege RBAC (docs/operator.md, "RBAC the operator needs"), applied in a test
namespace: the end-to-end tests run the operator with a token of this service account, so a verb missing
here fails them, exactly as it would in a cluster."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from kubernetes import client as k8s_client

SERVICE_ACCOUNT = "jobqueue-operator"

RULES: list[dict[str, Any]] = [
    {
        "apiGroups": ["jobqueue.dev"],
        "resources": ["jobqueues", "workerpools", "recurringtasks"],
        "verbs": ["get", "list", "watch", "patch"],
    },
    {
        "apiGroups": ["jobqueue.dev"],
        "resources": ["jobqueues/status", "workerpools/status", "recurringtasks/status"],
        "verbs": ["get", "patch"],
    },
    # Owner references with blockOwnerDeletion need this where OwnerReferencesPermissionEnforcement is on.
    {"apiGroups": ["jobqueue.dev"], "resources": ["workerpools/finalizers"], "verbs": ["update"]},
    {"apiGroups": ["apps"], "resources": ["deployments"], "verbs": ["get", "create", "patch"]},
    {"apiGroups": ["apps"], "resources": ["deployments/scale"], "verbs": ["patch"]},
    {"apiGroups": ["policy"], "resources": ["poddisruptionbudgets"], "verbs": ["create", "patch", "delete"]},
    {"apiGroups": [""], "resources": ["pods"], "verbs": ["list", "patch", "delete"]},
    {"apiGroups": [""], "resources": ["events"], "verbs": ["create"]},
]

# kopf observes CRDs and namespaces at cluster scope even when it serves named namespaces only (it
# retries forever without them, handling nothing).
CLUSTER_RULES: list[dict[str, Any]] = [
    {
        "apiGroups": ["apiextensions.k8s.io"],
        "resources": ["customresourcedefinitions"],
        "verbs": ["list", "watch"],
    },
    {"apiGroups": [""], "resources": ["namespaces"], "verbs": ["list", "watch"]},
]


def peering_rules(peering: str) -> list[dict[str, Any]]:
    """What peered replicas need besides RULES: watch the KopfPeering objects of the namespace, and read
    and patch (their keep-alives) the one they share."""
    return [
        {"apiGroups": ["kopf.dev"], "resources": ["kopfpeerings"], "verbs": ["list", "watch"]},
        {
            "apiGroups": ["kopf.dev"],
            "resources": ["kopfpeerings"],
            "resourceNames": [peering],
            "verbs": ["get", "patch"],
        },
    ]


def operator_kubeconfig(
    api: k8s_client.ApiClient,
    namespace: str,
    admin_kubeconfig: Path,
    path: Path,
    peering: str | None = None,
) -> Path:
    """Create the operator's ServiceAccount, Role and RoleBinding in ``namespace`` and write a kubeconfig
    that authenticates with a short-lived token of that ServiceAccount (with ``peering``, the Role also
    has :func:`peering_rules`)."""
    core = k8s_client.CoreV1Api(api)
    rbac = k8s_client.RbacAuthorizationV1Api(api)
    core.create_namespaced_service_account(namespace, {"metadata": {"name": SERVICE_ACCOUNT}})
    rules = RULES + (peering_rules(peering) if peering else [])
    rbac.create_namespaced_role(namespace, {"metadata": {"name": SERVICE_ACCOUNT}, "rules": rules})
    rbac.create_namespaced_role_binding(
        namespace,
        {
            "metadata": {"name": SERVICE_ACCOUNT},
            "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": SERVICE_ACCOUNT},
            "subjects": [{"kind": "ServiceAccount", "name": SERVICE_ACCOUNT, "namespace": namespace}],
        },
    )
    # Cluster-scoped, so named after the namespace; remove_cluster_rbac deletes them.
    rbac.create_cluster_role({"metadata": {"name": f"{SERVICE_ACCOUNT}-{namespace}"}, "rules": CLUSTER_RULES})
    rbac.create_cluster_role_binding(
        {
            "metadata": {"name": f"{SERVICE_ACCOUNT}-{namespace}"},
            "roleRef": {
                "apiGroup": "rbac.authorization.k8s.io",
                "kind": "ClusterRole",
                "name": f"{SERVICE_ACCOUNT}-{namespace}",
            },
            "subjects": [{"kind": "ServiceAccount", "name": SERVICE_ACCOUNT, "namespace": namespace}],
        }
    )
    token = core.create_namespaced_service_account_token(
        SERVICE_ACCOUNT, namespace, {"spec": {"expirationSeconds": 3600}}
    ).status.token
    config = json.loads(admin_kubeconfig.read_text())
    config["users"] = [{"name": "admin", "user": {"token": token}}]
    path.write_text(json.dumps(config))
    path.chmod(0o600)
    return path


def remove_cluster_rbac(api: k8s_client.ApiClient, namespace: str) -> None:
    """Delete the cluster-scoped objects :func:`operator_kubeconfig` created (the rest goes with the
    namespace)."""
    rbac = k8s_client.RbacAuthorizationV1Api(api)
    rbac.delete_cluster_role_binding(f"{SERVICE_ACCOUNT}-{namespace}")
    rbac.delete_cluster_role(f"{SERVICE_ACCOUNT}-{namespace}")
