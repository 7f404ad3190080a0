"""The worker, the process pool and the recorder are each assembled from parts (mixins, each in its own
module) that declare what they use from one another with stubs raising NotImplementedError. Which
definition wins depends on the order of the bases: a stub that won would surface only when a worker drains
or a child is replaced. Every method of an assembled class must be a real one."""

from __future__ import annotations

import ast
import inspect
import textwrap

import pytest

from jobqueue.record.recorder import Recorder
from jobqueue.worker.process_pool import ProcessPool
from jobqueue.worker.runtime import Worker

pytestmark = pytest.mark.timeout(30)


def _is_stub(function: object) -> bool:
    tree = ast.parse(textwrap.dedent(inspect.getsource(function)))  # type: ignore[arg-type]
    [definition] = tree.body
    assert isinstance(definition, ast.FunctionDef)
    body = [s for s in definition.body if not (isinstance(s, ast.Expr) and isinstance(s.value, ast.Constant))]
    return (
        len(body) == 1
        and isinstance(body[0], ast.Raise)
        and isinstance(body[0].exc, ast.Name)
        and body[0].exc.id == "NotImplementedError"
    )


@pytest.mark.parametrize("assembled", [Worker, ProcessPool, Recorder], ids=lambda c: c.__name__)
def test_no_stub_of_a_part_is_what_the_assembled_class_runs(assembled: type) -> None:
    stubs = [
        f"{name} ({getattr(assembled, name).__qualname__})"
        for name in dir(assembled)
        if inspect.isfunction(getattr(assembled, name)) and _is_stub(getattr(assembled, name))
    ]
    assert stubs == []


def test_the_check_finds_a_stub_that_wins() -> None:
    class Part:
        def release(self) -> None:
            raise NotImplementedError  # the other part

    class Other:
        def release(self) -> None:
            print("released")

    class WrongOrder(Part, Other):
        pass

    assert _is_stub(WrongOrder.release)
    assert not _is_stub(Other.release)
