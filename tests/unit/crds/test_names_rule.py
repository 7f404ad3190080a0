"""One rule for queue names, backoff names and retry defaults: the CRDs in crds/ (and so the chart's copies),
the operator's spec models, the REST schemas and the core state the same thing. Each check reads the YAML
and the Python rule and fails when they differ, so neither can change alone."""

from __future__ import annotations

import re
import typing
from pathlib import Path
from typing import Any

import pydantic
import pytest
import yaml

from jobqueue.errors import ValidationError
from jobqueue.flow_control import RetryDefaults
from jobqueue.keys import QUEUE_NAME_MAX_LENGTH, QUEUE_NAME_PATTERN, RESERVED_QUEUE_NAMES, validate_queue_name
from jobqueue.retry import BACKOFF_NAMES, RetryPolicy
from jobqueue.settings import Settings
from jobqueue_api.routes.queue_config import RetryDefaultsBody
from jobqueue_operator.spec import (
    LEGACY_BACKOFF_NAMES,
    Backoff,
    BackoffName,
    JobQueueSpec,
    RecurringTaskSpec,
    RetriesSpec,
    WorkerPoolSpec,
    configured_queue,
)

CRDS = Path(__file__).resolve().parents[3] / "crds"

# Names a user could type, and hostile ones: every rule must answer each the same way.
SAMPLES = [
    "default",
    "emails",
    "Emails_V2",
    "a",
    "-",
    "_lead",
    "a" * 64,
    "a" * 65,
    "",
    "emails.v2",
    "with space",
    "default\n",
    "nul\x00",
    "lone\ud800",
    "émails",
    "a:b",
    "{tag}",
    "q,r",
    "schedules",
    "Schedules",
    "9" * 10_000,
]


def spec_schema(kind_file: str) -> dict[str, Any]:
    crd = yaml.safe_load((CRDS / kind_file).read_text())
    (version,) = crd["spec"]["versions"]
    schema: dict[str, Any] = version["schema"]["openAPIV3Schema"]
    return schema


def queue_name_nodes() -> dict[str, dict[str, Any]]:
    """Every CRD schema node that holds a queue name."""
    jobqueue = spec_schema("jobqueue.dev_jobqueues.yaml")["properties"]["spec"]["properties"]
    pool = spec_schema("jobqueue.dev_workerpools.yaml")["properties"]["spec"]["properties"]
    recurring = spec_schema("jobqueue.dev_recurringtasks.yaml")["properties"]["spec"]["properties"]
    return {
        "JobQueue.spec.queueName": jobqueue["queueName"],
        "WorkerPool.spec.queues[]": pool["queues"]["items"]
        | {"x-kubernetes-validations": pool["queues"]["x-kubernetes-validations"]},
        "RecurringTask.spec.queue": recurring["queue"],
    }


def reserved_in(rules: list[dict[str, str]]) -> set[str]:
    """The names the CEL rules list as reserved (``x in ['a', 'b']``)."""
    found: set[str] = set()
    for rule in rules:
        for listed in re.findall(r"in \[([^\]]*)\]", rule["rule"]):
            found |= set(re.findall(r"'([^']*)'", listed))
    return found


def crd_accepts(node: dict[str, Any], name: str) -> bool:
    # RE2 (the API server's engine) anchors `$` at the very end; Python's `$` also matches before a final
    # newline, so the test asks for \Z to judge the pattern the way the API server does.
    pattern = node["pattern"].removesuffix("$") + r"\Z"
    fits = node.get("minLength", 0) <= len(name) <= node["maxLength"]
    return (
        fits
        and re.match(pattern, name) is not None
        and name not in reserved_in(node["x-kubernetes-validations"])
    )


def python_accepts(name: str) -> bool:
    try:
        validate_queue_name(name)
    except ValidationError:
        return False
    return True


@pytest.mark.parametrize("where", sorted(queue_name_nodes()))
def test_every_crd_queue_name_states_the_brokers_rule(where: str) -> None:
    node = queue_name_nodes()[where]
    assert node["pattern"] == QUEUE_NAME_PATTERN
    assert node["maxLength"] == QUEUE_NAME_MAX_LENGTH
    assert reserved_in(node["x-kubernetes-validations"]) == RESERVED_QUEUE_NAMES
    disagree = [name for name in SAMPLES if crd_accepts(node, name) != python_accepts(name)]
    assert disagree == []


def test_jobqueue_metadata_name_rule_is_the_brokers_rule_unless_spec_queue_name_is_set() -> None:
    (rule,) = spec_schema("jobqueue.dev_jobqueues.yaml")["x-kubernetes-validations"]
    assert rule["rule"].startswith("has(self.spec.queueName) ||")
    assert f"self.metadata.name.matches('{QUEUE_NAME_PATTERN}')" in rule["rule"]
    assert reserved_in([rule]) == RESERVED_QUEUE_NAMES


def test_the_operator_parses_queue_names_by_the_same_rule() -> None:
    pool = {"image": "w:1", "app": "tasks:app"}
    recurring = {"schedule": "@hourly", "task": "t"}
    for name in SAMPLES:
        accepted = python_accepts(name)
        for model, spec in (
            (WorkerPoolSpec, pool | {"queues": [name]}),
            (RecurringTaskSpec, recurring | {"queue": name}),
        ):
            try:
                model.model_validate(spec)
            except pydantic.ValidationError:
                assert not accepted, (model.__name__, name)
            else:
                assert accepted, (model.__name__, name)
    named = JobQueueSpec.model_validate({"queueName": "Emails_V2"})
    assert configured_queue(named, "emails-v2") == "Emails_V2"
    assert configured_queue(JobQueueSpec(), "emails") == "emails"
    with pytest.raises(ValidationError, match="reserved"):
        configured_queue(JobQueueSpec(), "schedules")
    with pytest.raises(pydantic.ValidationError, match="reserved"):
        JobQueueSpec.model_validate({"queueName": "schedules"})


def backoff_node() -> dict[str, Any]:
    spec = spec_schema("jobqueue.dev_jobqueues.yaml")["properties"]["spec"]["properties"]
    node: dict[str, Any] = spec["retries"]["properties"]["backoff"]
    return node


def test_backoff_names_are_the_cores_plus_the_released_spellings() -> None:
    strategy = backoff_node()["properties"]["strategy"]
    enum = strategy["enum"]
    assert set(enum) == set(BACKOFF_NAMES) | set(LEGACY_BACKOFF_NAMES)
    assert set(typing.get_args(BackoffName)) == set(enum)
    assert set(LEGACY_BACKOFF_NAMES.values()) <= set(BACKOFF_NAMES)
    assert set(typing.get_args(RetryDefaultsBody.model_fields["backoff"].annotation)) == set(BACKOFF_NAMES)
    # An object written with an old spelling keeps working, as the core's policy of the same meaning.
    for old, core in LEGACY_BACKOFF_NAMES.items():
        parsed = Backoff.model_validate({"strategy": old})
        assert (parsed.policy_name, parsed.deprecated_spelling) == (core, True)
    for name in BACKOFF_NAMES:
        parsed = Backoff.model_validate({"strategy": name})
        assert (parsed.policy_name, parsed.deprecated_spelling) == (name, False)
        RetryPolicy(backoff=parsed.policy_name)  # the core accepts what the operator writes


def test_retry_defaults_are_the_same_everywhere() -> None:
    retries = spec_schema("jobqueue.dev_jobqueues.yaml")["properties"]["spec"]["properties"]["retries"]
    backoff = backoff_node()
    core = RetryPolicy()
    max_retries = Settings.model_fields["default_max_retries"]
    assert max_retries.default == 3 == retries["properties"]["maxRetries"]["default"]
    assert RetriesSpec().max_retries == max_retries.default
    limits = {m.le for m in max_retries.metadata if hasattr(m, "le")}
    rest_limits = {m.le for m in RetryDefaultsBody.model_fields["max_retries"].metadata if hasattr(m, "le")}
    assert limits == rest_limits == {retries["properties"]["maxRetries"]["maximum"]}
    crd_defaults = {key: value["default"] for key, value in backoff["properties"].items()}
    assert backoff["default"] == crd_defaults  # the object default spells out the field defaults
    python = (core.backoff, core.base_seconds, core.max_seconds, core.jitter)
    assert python == ("exponential", 1.0, 300.0, True)
    assert (
        crd_defaults["strategy"],
        crd_defaults["initialSeconds"],
        crd_defaults["maxSeconds"],
        crd_defaults["jitter"],
    ) == python
    operator = Backoff()
    assert (operator.strategy, operator.initial_seconds, operator.max_seconds, operator.jitter) == python
    queue_default = RetryDefaults(max_retries=3)
    assert (
        queue_default.backoff,
        queue_default.base_seconds,
        queue_default.max_seconds,
        queue_default.jitter,
    ) == python
    rest = RetryDefaultsBody(max_retries=3)
    assert (rest.backoff, rest.base_seconds, rest.max_seconds, rest.jitter) == python
    # The hard time limit has no per-queue field in the CRD (docs/operator.md); the process default: 300 s.
    assert Settings.model_fields["default_timeout"].default == 300.0
