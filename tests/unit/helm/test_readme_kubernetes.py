"""README's "On Kubernetes" commands are the ones `make e2e-kind` runs, and they fit the chart and the
examples: the images they build are the chart's defaults and what the example WorkerPool names, and the
examples go to the namespace and Secret the chart makes."""

from __future__ import annotations

import re
import shlex
from pathlib import Path
from typing import Any

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[3]
README = ROOT / "README.md"
RUN_SH = ROOT / "tests" / "e2e" / "kind" / "run.sh"
CHART = ROOT / "helm" / "jobqueue"

pytestmark = pytest.mark.timeout(30)


def readme_commands() -> list[str]:
    text = README.read_text()
    section = text[text.index("## On Kubernetes") :]
    section = section[: section.index("\n## ", 1)]
    (block,) = re.findall(r"```sh\n(.*?)```", section, flags=re.DOTALL)
    return commands(block)


def run_sh_commands() -> list[str]:
    text = RUN_SH.read_text()
    return commands(text[text.index("# BEGIN README\n") + 15 : text.index("# END README")])


def commands(block: str) -> list[str]:
    """Shell lines with continuations joined, comments and blank lines dropped."""
    joined = block.replace("\\\n", " ")
    lines = [line for line in joined.splitlines() if line.strip() and not line.startswith("#")]
    return [" ".join(line.split()) for line in lines]


def argv(prefix: str) -> list[str]:
    (line,) = [c for c in readme_commands() if c.startswith(prefix)]
    return shlex.split(line)


def test_readme_and_e2e_kind_run_the_same_commands() -> None:
    assert readme_commands(), "README has a Kubernetes command block"
    assert readme_commands() == run_sh_commands()


def built_images() -> set[str]:
    tags = set()
    for line in readme_commands():
        words = shlex.split(line)
        if words[:2] == ["docker", "build"]:
            tags.add(words[words.index("-t") + 1])
    return tags


def test_the_images_built_are_loaded_and_are_the_charts_defaults() -> None:
    loaded = set(argv("kind load docker-image")[5:])
    assert loaded == built_images()
    chart = yaml.safe_load((CHART / "Chart.yaml").read_text())
    values = yaml.safe_load((CHART / "values.yaml").read_text())
    version = chart["appVersion"]
    for image in (values["image"], values["operator"]["image"]):
        assert image["tag"] in ("", version)  # "" = the appVersion
        assert f"{image['repository']}:{version}" in loaded
    install = argv("helm install")
    sets = dict(install[i + 1].split("=", 1) for i, word in enumerate(install) if word == "--set")
    assert sets.get("image.repository", values["image"]["repository"]) == values["image"]["repository"]
    operator_repository = values["operator"]["image"]["repository"]
    assert sets.get("operator.image.repository", operator_repository) == operator_repository


def examples() -> list[dict[str, Any]]:
    return [yaml.safe_load(p.read_text()) for p in sorted((ROOT / "crds" / "examples").glob("*.yaml"))]


def test_examples_go_where_the_operator_watches_and_use_what_exists() -> None:
    install = argv("helm install")
    release, namespace = install[2], install[install.index("--namespace") + 1]
    apply = argv("kubectl apply")
    assert apply[apply.index("-n") + 1] == namespace
    assert apply[apply.index("-f") + 1] == "crds/examples/"
    assert all("namespace" not in doc["metadata"] for doc in examples())  # -n decides
    (pool,) = [doc for doc in examples() if doc["kind"] == "WorkerPool"]
    assert pool["spec"]["image"] in built_images()
    # The chart's connection Secret is <fullname>-connection; release "jobqueue" has the fullname "jobqueue".
    assert release == "jobqueue"
    assert pool["spec"]["connectionSecretName"] == f"{release}-connection"
    rollout = argv("kubectl -n jobqueue rollout")
    assert rollout[-3] == f"deployment/{pool['metadata']['name']}"


def test_quickstart_dockerfile_builds_on_the_worker_image() -> None:
    dockerfile = (ROOT / "examples" / "quickstart" / "Dockerfile").read_text()
    worker = next(tag for tag in built_images() if tag.startswith("jobqueue-worker:"))
    assert f"ARG WORKER_IMAGE={worker}\n" in dockerfile
    assert dockerfile.rstrip().endswith("USER 10001:10001")
