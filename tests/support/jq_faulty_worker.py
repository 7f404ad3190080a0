"""``python jq_faulty_worker.py <jobqueue worker args>``: a real ``jobqueue worker`` with a fault injected.

``JQ_FAULT=module:Class.method[:times]`` replaces that method with one that raises RuntimeError
("injected fault") the first ``times`` calls (every call if omitted) and then calls the original: the
fault-injection tests of the supervised loops (tests/integration/jobqueue/test_loop_supervision.py).
"""

from __future__ import annotations

import functools
import importlib
import os
import sys
import threading
from collections.abc import Callable
from typing import Any


def inject(spec: str) -> None:
    """Patch the method named by ``spec`` (see the module docstring)."""
    target, _, times = spec.partition(":")[2].partition(":")
    module = importlib.import_module(spec.partition(":")[0])
    owner_name, _, method_name = target.partition(".")
    owner = getattr(module, owner_name)
    original: Callable[..., Any] = getattr(owner, method_name)
    left = [int(times)] if times else None
    lock = threading.Lock()

    @functools.wraps(original)
    def faulty(*args: Any, **kwargs: Any) -> Any:
        with lock:
            fail = left is None or left[0] > 0
            if left is not None and left[0] > 0:
                left[0] -= 1
        if fail:
            raise RuntimeError(f"injected fault in {target}")
        return original(*args, **kwargs)

    setattr(owner, method_name, faulty)


if __name__ == "__main__":
    inject(os.environ["JQ_FAULT"])
    from jobqueue.cli.main import main

    sys.exit(main(["worker", *sys.argv[1:]]))
