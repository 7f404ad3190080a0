"""Property-based fuzzing of every operation in the API's OpenAPI schema (schemathesis, real Redis).

Each operation gets valid and invalid inputs generated from its schema. Whatever comes in, the API must
answer without a 5xx, with the status codes, content type and body its schema declares, and with a JSON
``{"error", "message"}`` body on every 4xx. Bounded for CI: few examples per operation, derandomized, no
example database (Hypothesis still caches source constants in ./.hypothesis/, which it git-ignores itself).
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from typing import Any

import pytest
import schemathesis
from fastapi import FastAPI
from hypothesis import HealthCheck, Phase
from hypothesis import settings as hypothesis_settings
from pydantic import SecretStr
from schemathesis.checks import not_a_server_error
from schemathesis.python import asgi
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from jobqueue import Settings
from jobqueue_api import create_app
from jobqueue_api.settings import ApiSettings

pytestmark = pytest.mark.timeout(180)

ADMIN = {"Authorization": "Bearer fuzz-admin-key"}
# Small on purpose: the body limit is part of what the fuzzer should hit.
MAX_BODY = 10_000
# Per operation and test. CI keeps the default small; JOBQUEUE_FUZZ_EXAMPLES=200 for a deeper local hunt.
EXAMPLES = int(os.environ.get("JOBQUEUE_FUZZ_EXAMPLES", "12"))

# Deterministic and bounded: the same inputs on every run, no example database, and no "explain" phase
# (its extra calls add time without changing whether a failure is found).
FUZZ_SETTINGS = hypothesis_settings(
    max_examples=EXAMPLES,
    # JOBQUEUE_FUZZ_RANDOM=1 draws new inputs each run (local hunts); CI always sends the same ones.
    derandomize=os.environ.get("JOBQUEUE_FUZZ_RANDOM") != "1",
    database=None,
    deadline=None,
    phases=[Phase.explicit, Phase.generate, Phase.shrink],
    suppress_health_check=list(HealthCheck),
)


def json_error_body(ctx: schemathesis.CheckContext, response: schemathesis.Response, case: Any) -> None:
    """Every 4xx is a JSON object naming the error code and a message a person can read."""
    if not 400 <= response.status_code < 500:
        return
    try:
        body = json.loads(response.text)
    except ValueError as exc:
        raise AssertionError(f"{response.status_code} with a non-JSON body: {response.text[:200]!r}") from exc
    assert isinstance(body, dict), f"{response.status_code} body is not an object: {body!r}"
    assert isinstance(body.get("error"), str), f"{response.status_code} body has no 'error' code: {body!r}"
    assert isinstance(body.get("message"), str), f"{response.status_code} body has no 'message': {body!r}"
    if response.status_code in (400, 413, 422):
        assert body.get("field"), f"{response.status_code} without the field it is about: {body!r}"


def api_answers_json(ctx: schemathesis.CheckContext, response: schemathesis.Response, case: Any) -> None:
    """Every /api answer with a body is JSON, whatever the schema declares for it."""
    if not case.operation.path.startswith("/api/") or response.status_code == 204:
        return
    content_type = response.headers.get("content-type", [""])[0]
    assert content_type.startswith("application/json"), f"{response.status_code} as {content_type!r}"


CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_schema_conformance,
    json_error_body,
    api_answers_json,
]


@pytest.fixture
def fuzz_app(settings: Settings, database_url: str) -> FastAPI:
    # A real, migrated PostgreSQL too: the record routes (search, history, analytics) are fuzzed for real,
    # not answered 503 "not configured".
    with_record = settings.model_copy(update={"database_url": SecretStr(database_url)})
    return create_app(
        with_record, ApiSettings(keys=SecretStr("fuzz-admin-key:admin"), max_body_bytes=MAX_BODY)
    )


@pytest.fixture
def session(fuzz_app: FastAPI) -> Iterator[asgi.ASGIClient]:
    # One in-process client for the whole run: one event loop, so the app's Redis pool is reused.
    with asgi.get_client(fuzz_app) as client:
        # The record pool connects in a background thread that draws from the global `random` (psycopg's
        # connection attempts); were that to overlap a Hypothesis draw, Hypothesis would flag the case as
        # a strategy using `random` (seen once requests without a key are refused faster, by middleware).
        fuzz_app.state.record.pool.wait(timeout=30)
        yield client


def _schema_app() -> FastAPI:
    # The schema is read at import time, before any fixture exists; create_app connects lazily, so this
    # app never touches Redis. Requests go to the fixture's app (real Redis) through ``session``.
    # (schemathesis.pytest.from_fixture would be the natural fit but fails on pytest 9.)
    return create_app(
        Settings(redis_url=SecretStr("redis://127.0.0.1:9/0")),
        ApiSettings(keys=SecretStr("fuzz-admin-key:admin"), max_body_bytes=MAX_BODY),
    )


schema = schemathesis.openapi.from_asgi("/openapi.json", _schema_app())


@schema.parametrize()
@FUZZ_SETTINGS
def test_fuzz_with_admin_key(case: schemathesis.Case, session: asgi.ASGIClient) -> None:
    case.call_and_validate(session=session, headers=ADMIN, checks=CHECKS)


@schema.parametrize()
@hypothesis_settings(FUZZ_SETTINGS, max_examples=max(3, EXAMPLES // 4))
def test_fuzz_without_a_key_is_refused(case: schemathesis.Case, session: asgi.ASGIClient) -> None:
    # No Authorization header is sent (the schema declares none; the bearer scheme is not a parameter).
    response = case.call_and_validate(session=session, checks=CHECKS)
    if not case.operation.path.startswith("/api/"):
        return
    if case.method.upper() != case.operation.method.upper():
        # Schemathesis also probes methods the path does not have: routing answers 405 before auth, or
        # the path matches another route (GET /api/v1/tasks/batch is GET /api/v1/tasks/{task_id}): 401.
        assert response.status_code in (401, 405), f"{case.method} {case.formatted_path}: {response.text}"
        return
    # Only what is refused before any route code runs may answer something else: an oversized body (the
    # middleware) and a body that is not JSON at all (FastAPI parses it before the auth dependency).
    if response.status_code == 413 or (response.status_code == 422 and response.json()["field"] == "body"):
        return
    assert response.status_code == 401, f"{case.method} {case.formatted_path}: {response.text}"
