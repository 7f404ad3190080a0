"""redis.external: the chart on an external Redis, Sentinel or Cluster. The values examples of
docs/operations.md ("An external Redis, Sentinel or Cluster by values") render as the docs say: no
in-chart Redis, the URL in the connection Secret, the password only by secretKeyRef into every pod (and,
through the operator's settings, into WorkerPool workers); bad values are refused."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
import yaml

from helm.fixtures import CHART, KUBE_VERSION, ROOT, render, run_helm

pytestmark = pytest.mark.timeout(120)
DOCS = ROOT / "docs" / "operations.md"
SECTION = "### An external Redis, Sentinel or Cluster by values"


def doc_examples() -> dict[str, str]:
    """The YAML blocks of the docs section, by the file name in their first comment line."""
    text = DOCS.read_text()
    section = text[text.index(SECTION) :]
    section = section[: section.index("\n### ", len(SECTION))]
    blocks = re.findall(r"```yaml\n(.*?)```", section, flags=re.S)
    assert len(blocks) == 2, "the docs section lost an example"
    return {block.splitlines()[0].removeprefix("# "): block for block in blocks}


def containers(docs: list[dict[str, Any]]) -> dict[str, list[dict[str, Any]]]:
    """Every container (init containers too) of every pod-bearing manifest, by kind/name."""
    found = {}
    for doc in docs:
        spec = doc.get("spec") or {}
        pod = spec.get("template", {}).get("spec") or spec.get("jobTemplate", {}).get("spec", {}).get(
            "template", {}
        ).get("spec")
        if doc["kind"] == "Pod":
            pod = spec
        if pod:
            found[f"{doc['kind']}/{doc['metadata']['name']}"] = [
                *pod.get("initContainers", []),
                *pod["containers"],
            ]
    return found


@pytest.mark.parametrize("example", ["values-redis-cluster.yaml", "values-redis-sentinel.yaml"])
def test_the_docs_examples_use_the_external_redis_everywhere_with_the_password_from_its_secret(
    helm_bin: Path, tmp_path: Path, example: str
) -> None:
    values_file = tmp_path / example
    values_file.write_text(doc_examples()[example])
    external = yaml.safe_load(values_file.read_text())["redis"]["external"]
    key = external.get("passwordSecretKey", "password")
    docs = render(helm_bin, values_file)
    names = {(d["kind"], d["metadata"]["name"]) for d in docs}
    assert ("StatefulSet", "rel-jobqueue-redis") not in names
    assert ("Service", "rel-jobqueue-redis") not in names
    assert ("NetworkPolicy", "rel-jobqueue-redis") not in names
    [secret] = [
        d for d in docs if d["kind"] == "Secret" and d["metadata"]["name"] == "rel-jobqueue-connection"
    ]
    assert secret["stringData"]["JOBQUEUE_REDIS_URL"] == external["url"]
    assert "REDIS_PASSWORD" not in secret["stringData"]
    pods = containers(docs)
    # The API, operator, scheduler, recorder, migration Job and the helm test pod.
    assert {
        "Deployment/rel-jobqueue-api", "Deployment/rel-jobqueue-operator", "Pod/rel-jobqueue-test-submit",
        "Deployment/rel-jobqueue-scheduler", "Deployment/rel-jobqueue-recorder",
    } <= pods.keys()  # fmt: skip
    assert any(name.startswith("Job/") for name in pods)
    for where, group in pods.items():
        for container in group:
            env = {e["name"]: e for e in container.get("env", [])}
            if "JOBQUEUE_REDIS_URL" not in env:
                continue  # not a jobqueue process (e.g. the examples' cleanup hook)
            assert env["JOBQUEUE_REDIS_PASSWORD"] == {
                "name": "JOBQUEUE_REDIS_PASSWORD",
                "valueFrom": {"secretKeyRef": {"name": "redis-auth", "key": key}},
            }, where
            assert "value" not in env["JOBQUEUE_REDIS_URL"], where  # the URL still comes from the Secret
    [operator] = pods["Deployment/rel-jobqueue-operator"]
    operator_env = {e["name"]: e.get("value") for e in operator["env"]}
    assert operator_env["JOBQUEUE_OPERATOR_WORKER_REDIS_PASSWORD_SECRET_NAME"] == "redis-auth"
    assert operator_env["JOBQUEUE_OPERATOR_WORKER_REDIS_PASSWORD_SECRET_KEY"] == key


def test_the_default_keeps_the_in_chart_redis_and_adds_no_password_env(helm_bin: Path) -> None:
    docs = render(helm_bin, None)
    assert ("StatefulSet", "rel-jobqueue-redis") in {(d["kind"], d["metadata"]["name"]) for d in docs}
    for group in containers(docs).values():
        for container in group:
            names = {e["name"] for e in container.get("env", [])}
            assert "JOBQUEUE_REDIS_PASSWORD" not in names
            assert "JOBQUEUE_OPERATOR_WORKER_REDIS_PASSWORD_SECRET_NAME" not in names


def _template(helm_bin: Path, tmp_path: Path, values: dict[str, Any]) -> str:
    """helm template with these values (a file: --set would split a URL's host list at its commas)."""
    path = tmp_path / "values.yaml"
    path.write_text(yaml.safe_dump(values))
    return run_helm(helm_bin, "template", "rel", str(CHART), "--kube-version", KUBE_VERSION, "-f", str(path),
                    check=False)  # fmt: skip


@pytest.mark.parametrize(
    "url",
    [
        "redis+cluster://:hunter2@node-a:6379",  # a password inline
        "redis+sentinel://user:hunter2@s1/mymaster",
        "redis+sentinel://s1,s2/mymaster?sentinel_password=hunter2",
        "http://node-a:6379",  # not a Redis URL form
        "redis+cluster://node a:6379",  # whitespace
        "redis+cluster://node-a\x01:6379",  # a control character
        "redis+cluster://node-a\u2028",  # a line separator
        "redis+cluster://" + "a," * 1100,  # too long
    ],
)
def test_a_url_with_a_password_or_of_no_known_form_is_refused_by_the_schema(
    helm_bin: Path, tmp_path: Path, url: str
) -> None:
    out = _template(helm_bin, tmp_path, {"redis": {"external": {"url": url}}})
    assert "redis.external.url" in out or "/redis/external/url" in out, out[-600:]
    assert "kind: Deployment" not in out


def test_a_bad_secret_name_and_values_that_contradict_each_other_are_refused(
    helm_bin: Path, tmp_path: Path
) -> None:
    external = {"url": "redis+cluster://a,b", "passwordSecretName": "Bad_Name"}
    out = _template(helm_bin, tmp_path, {"redis": {"external": external}})
    assert "passwordSecretName" in out and "kind: Deployment" not in out
    values = {
        "redis": {"external": {"url": "redis+cluster://a,b"}},
        "connection": {"existingSecret": "conn"},
        "postgresql": {"enabled": False},
    }
    out = _template(helm_bin, tmp_path, values)
    assert "put the URL in that Secret" in out and "kind: Deployment" not in out
    # A password for the in-chart Redis would be refused by every pod at start (its URL has one).
    out = _template(helm_bin, tmp_path, {"redis": {"external": {"passwordSecretName": "redis-auth"}}})
    assert "set redis.external.url" in out and "kind: Deployment" not in out
