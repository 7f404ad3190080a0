"""What users type, through the real kubectl binary against the test control plane: a resource name is
never swallowed by a category. kubectl expands categories before resource names, so when the category was
`jobqueue` (JobQueue's singular) `kubectl get jobqueue emails` failed and `kubectl delete jobqueue --all`
deleted every WorkerPool and RecurringTask of the namespace with it."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from k8s.control_plane import ControlPlane, default_bin_dir, kubectl_binary

pytestmark = [pytest.mark.timeout(300), pytest.mark.usefixtures("jobqueue_crds")]

EXAMPLES = Path(__file__).resolve().parents[3] / "crds" / "examples"
CATEGORY = "jobqueue-all"


@pytest.fixture
def kubectl(kube_control_plane: ControlPlane, tmp_path: Path) -> list[str]:
    binary = kubectl_binary(default_bin_dir())
    if binary is None:
        pytest.skip(
            "no kubectl: run tests/k8s/build-control-plane.sh (it builds kubectl of the same release)"
        )
    # A private discovery cache: a cached resource list from an earlier server on the same port would
    # hide the categories these CRDs declare now.
    return [str(binary), f"--kubeconfig={kube_control_plane.kubeconfig}", f"--cache-dir={tmp_path / 'cache'}"]


def run(kubectl: list[str], *args: str) -> str:
    done = subprocess.run([*kubectl, *args], capture_output=True, text=True, timeout=60, check=False)
    assert done.returncode == 0, f"kubectl {' '.join(args)}: {done.stderr}"
    return done.stdout


def names(kubectl: list[str], namespace: str, what: str) -> set[str]:
    return set(run(kubectl, "-n", namespace, "get", what, "-o", "name").split())


@pytest.fixture
def one_of_each(kubectl: list[str], kube_namespace: str) -> str:
    """The three examples applied with `kubectl apply -n` (the way the README has users do it)."""
    for path in sorted(EXAMPLES.glob("*.yaml")):
        run(kubectl, "-n", kube_namespace, "apply", "-f", str(path))
    return kube_namespace


def test_get_by_kind_name_shows_that_resource_alone(kubectl: list[str], one_of_each: str) -> None:
    assert names(kubectl, one_of_each, "jobqueue") == {"jobqueue.jobqueue.dev/emails"}
    assert run(kubectl, "-n", one_of_each, "get", "jobqueue", "emails", "-o", "name").split() == [
        "jobqueue.jobqueue.dev/emails"
    ]
    assert names(kubectl, one_of_each, "jq") == {"jobqueue.jobqueue.dev/emails"}


def test_category_lists_all_three_kinds(kubectl: list[str], one_of_each: str) -> None:
    assert names(kubectl, one_of_each, CATEGORY) == {
        "jobqueue.jobqueue.dev/emails",
        "workerpool.jobqueue.dev/email-workers",
        "recurringtask.jobqueue.dev/daily-digest",
    }


def test_delete_all_jobqueues_leaves_pools_and_schedules(kubectl: list[str], one_of_each: str) -> None:
    run(kubectl, "-n", one_of_each, "delete", "jobqueue", "--all", "--wait=true")
    assert names(kubectl, one_of_each, "jobqueues") == set()
    assert names(kubectl, one_of_each, "workerpools") == {"workerpool.jobqueue.dev/email-workers"}
    assert names(kubectl, one_of_each, "recurringtasks") == {"recurringtask.jobqueue.dev/daily-digest"}
