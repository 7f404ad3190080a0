"""Pure checks of the CRD YAML in crds/: the shapes the API server insists on, and every example CR and
every default valid against the OpenAPI schema. CEL rules are exercised against a real API server in
tests/integration/operator/test_crds.py."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import jsonschema
import pytest
import yaml

CRDS = Path(__file__).resolve().parents[3] / "crds"
KINDS = {"JobQueue": "jq", "WorkerPool": "wp", "RecurringTask": "rt"}


def load(path: Path) -> dict[str, Any]:
    doc = yaml.safe_load(path.read_text())
    assert isinstance(doc, dict)
    return doc


def crd_files() -> list[Path]:
    return sorted(CRDS.glob("*.yaml"))


def crd_by_kind() -> dict[str, dict[str, Any]]:
    return {load(p)["spec"]["names"]["kind"]: load(p) for p in crd_files()}


def schema_of(crd: dict[str, Any]) -> dict[str, Any]:
    (version,) = crd["spec"]["versions"]
    schema = version["schema"]["openAPIV3Schema"]
    assert isinstance(schema, dict)
    return schema


def walk(node: dict[str, Any], path: str = "") -> list[tuple[str, dict[str, Any]]]:
    """Every schema node with a readable path."""
    found = [(path or ".", node)]
    for name, child in (node.get("properties") or {}).items():
        found += walk(child, f"{path}.{name}")
    if isinstance(node.get("items"), dict):
        found += walk(node["items"], f"{path}[]")
    if isinstance(node.get("additionalProperties"), dict):
        found += walk(node["additionalProperties"], f"{path}{{}}")
    return found


def validator(crd: dict[str, Any]) -> jsonschema.protocols.Validator:
    # OpenAPI v3.0 schemas are a subset of draft 4; the x-kubernetes-* keywords are ignored here.
    return jsonschema.Draft4Validator(schema_of(crd))


def test_one_crd_per_kind_with_names_short_names_and_category() -> None:
    crds = crd_by_kind()
    assert set(crds) == set(KINDS)
    for kind, short in KINDS.items():
        crd = crds[kind]
        names = crd["spec"]["names"]
        assert crd["apiVersion"] == "apiextensions.k8s.io/v1"
        assert crd["spec"]["group"] == "jobqueue.dev"
        assert crd["metadata"]["name"] == f"{names['plural']}.jobqueue.dev"
        assert names["shortNames"] == [short]
        assert names["categories"] == ["jobqueue-all"]
        (version,) = crd["spec"]["versions"]
        assert (version["name"], version["served"], version["storage"]) == ("v1alpha1", True, True)


def test_no_category_is_also_a_resource_name() -> None:
    # kubectl expands a category before it looks for a resource of that name: with the category `jobqueue`
    # (JobQueue's singular), `kubectl get jobqueue NAME` failed and `kubectl delete jobqueue --all` deleted
    # every WorkerPool and RecurringTask of the namespace as well.
    every_crd = [
        load(p) for p in sorted(CRDS.rglob("*.yaml")) if load(p).get("kind") == "CustomResourceDefinition"
    ]
    resource_names: set[str] = {"all"}  # kubectl's built-in category, never ours to reuse
    categories: set[str] = set()
    for crd in every_crd:
        names = crd["spec"]["names"]
        resource_names |= {names["kind"].lower(), names["plural"], names.get("singular", "")}
        resource_names |= set(names.get("shortNames", []))
        categories |= set(names.get("categories", []))
    assert len(every_crd) >= len(KINDS)
    assert categories, "the jobqueue kinds share a category"
    assert categories.isdisjoint(resource_names), categories & resource_names


@pytest.mark.parametrize("kind", sorted(KINDS))
def test_status_subresource_with_conditions_and_observed_generation(kind: str) -> None:
    crd = crd_by_kind()[kind]
    (version,) = crd["spec"]["versions"]
    assert version["subresources"]["status"] == {}
    status = schema_of(crd)["properties"]["status"]["properties"]
    assert status["observedGeneration"]["type"] == "integer"
    conditions = status["conditions"]
    assert conditions["x-kubernetes-list-map-keys"] == ["type"]
    required = {"type", "status", "lastTransitionTime", "reason", "message"}
    assert set(conditions["items"]["required"]) == required


def test_workerpool_scale_subresource_points_at_existing_fields() -> None:
    crd = crd_by_kind()["WorkerPool"]
    (version,) = crd["spec"]["versions"]
    scale = version["subresources"]["scale"]
    assert scale == {
        "specReplicasPath": ".spec.replicas",
        "statusReplicasPath": ".status.replicas",
        "labelSelectorPath": ".status.selector",
    }
    props = schema_of(crd)["properties"]
    assert props["spec"]["properties"]["replicas"]["type"] == "integer"
    assert props["status"]["properties"]["replicas"]["type"] == "integer"
    assert props["status"]["properties"]["selector"]["type"] == "string"


@pytest.mark.parametrize("kind", sorted(KINDS))
def test_schema_is_structural(kind: str) -> None:
    """The API server rejects a CRD whose schema nodes lack a type (unless explicitly untyped)."""
    schema = schema_of(crd_by_kind()[kind])
    jsonschema.Draft4Validator.check_schema(schema)
    for path, node in walk(schema):
        untyped = node.get("x-kubernetes-preserve-unknown-fields") or node.get("x-kubernetes-int-or-string")
        assert "type" in node or untyped, f"{kind} schema node {path} has no type"


# What a CRD's structural schema may use; anything else is a typo or a YAML slip (e.g. an unquoted comma
# in a flow mapping turning half a description into a key).
SCHEMA_KEYWORDS = {
    "type", "format", "description", "default", "enum", "properties", "required", "items",
    "additionalProperties", "minimum", "maximum", "minLength", "maxLength", "minItems", "maxItems",
    "pattern", "anyOf", "x-kubernetes-validations", "x-kubernetes-preserve-unknown-fields",
    "x-kubernetes-int-or-string", "x-kubernetes-list-type", "x-kubernetes-list-map-keys",
}  # fmt: skip


@pytest.mark.parametrize("kind", sorted(KINDS))
def test_schema_uses_only_known_keywords(kind: str) -> None:
    for path, node in walk(schema_of(crd_by_kind()[kind])):
        unknown = set(node) - SCHEMA_KEYWORDS
        assert not unknown, f"{kind} schema node {path} has unknown keys {unknown}"


@pytest.mark.parametrize("kind", sorted(KINDS))
def test_every_default_is_valid_for_its_field(kind: str) -> None:
    schema = schema_of(crd_by_kind()[kind])
    defaults = [(path, node) for path, node in walk(schema) if "default" in node]
    assert defaults, "every kind defaults some fields"
    for path, node in defaults:
        errors = list(jsonschema.Draft4Validator(node).iter_errors(node["default"]))
        assert not errors, f"{kind} default at {path}: {errors[0].message}"


def with_defaults(node: dict[str, Any], value: Any) -> Any:
    """``value`` with the schema's nested defaults filled in, as the API server does."""
    if not isinstance(value, dict):
        return value
    filled = dict(value)
    for name, child in (node.get("properties") or {}).items():
        if name not in filled and "default" in child:
            filled[name] = child["default"]
        if name in filled:
            filled[name] = with_defaults(child, filled[name])
    return filled


@pytest.mark.parametrize("kind", sorted(KINDS))
def test_object_defaults_checked_by_cel_are_complete(kind: str) -> None:
    """The API server runs CEL rules on an object's default as written, without the nested defaults,
    so such a default must already hold every defaulted field."""
    schema = schema_of(crd_by_kind()[kind])
    for path, node in walk(schema):
        if "default" in node and node.get("x-kubernetes-validations"):
            assert with_defaults(node, node["default"]) == node["default"], (
                f"{kind} default at {path} is partial"
            )


@pytest.mark.parametrize("kind", sorted(KINDS))
def test_every_cel_rule_has_a_message(kind: str) -> None:
    schema = schema_of(crd_by_kind()[kind])
    rules = [rule for _, node in walk(schema) for rule in node.get("x-kubernetes-validations", [])]
    assert rules
    for rule in rules:
        assert rule.get("message"), f"{kind}: rule {rule['rule']!r} would fail with an unreadable error"


@pytest.mark.parametrize("kind", sorted(KINDS))
def test_printer_columns_point_at_schema_fields(kind: str) -> None:
    crd = crd_by_kind()[kind]
    (version,) = crd["spec"]["versions"]
    paths = {path for path, _ in walk(schema_of(crd))}
    for column in version["additionalPrinterColumns"]:
        json_path = column["jsonPath"].split("[?", 1)[0]
        if json_path.startswith(".metadata."):
            continue
        assert json_path in paths, f"{kind} column {column['name']} reads missing field {json_path}"


def test_each_kind_has_one_example_that_validates() -> None:
    crds = crd_by_kind()
    examples = [load(p) for p in sorted((CRDS / "examples").glob("*.yaml"))]
    assert sorted(e["kind"] for e in examples) == sorted(KINDS)
    for example in examples:
        assert example["apiVersion"] == "jobqueue.dev/v1alpha1"
        errors = list(validator(crds[example["kind"]]).iter_errors(example))
        assert not errors, f"{example['kind']} example: {errors[0].message} at {list(errors[0].path)}"


def test_schema_rejects_what_it_should() -> None:
    """A sanity check that validation is not vacuous: wrong types and enums fail."""
    crds = crd_by_kind()
    bad_pool = {"spec": {"queues": [], "image": "x", "app": "m:app", "poolKind": "fork"}}
    messages = [e.message for e in validator(crds["WorkerPool"]).iter_errors(bad_pool)]
    assert any("fork" in m for m in messages)
    assert any("[]" in m for m in messages)
    bad_task = {"spec": {"schedule": "@daily", "task": "t", "concurrencyPolicy": "Sometimes"}}
    assert not validator(crds["RecurringTask"]).is_valid(bad_task)


def cel_patterns(node: dict[str, Any]) -> list[re.Pattern[str]]:
    """The regular expressions of a node's `self.matches('...')` rules (RE2 and Python agree on them)."""
    found = []
    for rule in node.get("x-kubernetes-validations", []):
        for literal in re.findall(r"self\.matches\('((?:[^'\\]|\\.)*)'\)", rule["rule"]):
            found.append(re.compile(literal.encode().decode("unicode_escape")))
    return found


def accepted_by_rule(node: dict[str, Any], value: str) -> bool:
    return any(p.search(value) for p in cel_patterns(node))


def recurring_task_field(name: str) -> dict[str, Any]:
    field = schema_of(crd_by_kind()["RecurringTask"])["properties"]["spec"]["properties"][name]
    assert isinstance(field, dict)
    return field


@pytest.mark.parametrize(
    ("schedule", "accepted"),
    [
        ("*/5 * * * *", True),
        ("30 7 * * 1-5", True),
        ("0 0 1 JAN,JUL MON-FRI", True),
        ("0 9\t* * *", True),
        ("@hourly", True),
        ("@daily", True),
        ("every day", False),
        ("* * * *", False),
        ("* * * * * *", False),
        ("@fortnightly", False),
        ("", False),
    ],
)
def test_schedule_shape_rule(schedule: str, accepted: bool) -> None:
    assert accepted_by_rule(recurring_task_field("schedule"), schedule) is accepted


@pytest.mark.parametrize(
    ("zone", "accepted"),
    [
        ("UTC", True),
        ("Japan", True),
        ("Europe/Berlin", True),
        ("America/Argentina/Buenos_Aires", True),
        ("Etc/GMT+5", True),
        ("Berlin time", False),
        ("/Europe/Berlin", False),
        ("Europe//Berlin", False),
        ("+05:00", False),
    ],
)
def test_time_zone_shape_rule(zone: str, accepted: bool) -> None:
    assert accepted_by_rule(recurring_task_field("timeZone"), zone) is accepted


@pytest.mark.parametrize("crd", crd_files(), ids=lambda p: p.name)
def test_the_chart_ships_the_same_crds(crd: Path) -> None:
    # helm installs helm/jobqueue/crds/; kubectl users apply crds/: one edited without the other drifts.
    chart_copy = CRDS.parent / "helm" / "jobqueue" / "crds" / crd.name
    assert chart_copy.read_bytes() == crd.read_bytes(), f"copy {crd} to {chart_copy}"
