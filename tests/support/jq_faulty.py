"""``python jq_faulty.py <module> <args>``: ``python -m <module> <args>`` with a fault injected first.

``JQ_FAULT=module:attribute[:times]`` replaces that function (``Class.method`` or a module-level
``function``) with one that raises RuntimeError ("injected fault in ...") on the first ``times`` calls
(every call if omitted) and calls the original after that. Used by the fault-injection tests of the
supervised loops (tests/integration/jobqueue/test_loop_supervision.py, the operator's timers).
"""

from __future__ import annotations

import functools
import importlib
import os
import runpy
import sys
import threading
from collections.abc import Callable
from typing import Any


def inject(spec: str) -> None:
    """Patch the function named by ``spec`` (see the module docstring)."""
    module_name, _, rest = spec.partition(":")
    target, _, times = rest.partition(":")
    owner: Any = importlib.import_module(module_name)
    *path, name = target.split(".")
    for part in path:
        owner = getattr(owner, part)
    original: Callable[..., Any] = getattr(owner, name)
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

    setattr(owner, name, faulty)


if __name__ == "__main__":
    inject(os.environ["JQ_FAULT"])
    module = sys.argv[1]
    sys.argv = [module, *sys.argv[2:]]
    runpy.run_module(module, run_name="__main__", alter_sys=True)
