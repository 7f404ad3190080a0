"""One adapter per system: how to run its worker at its default and at a tuned setting for this machine."""

from __future__ import annotations

from bench.adapters.arq_adapter import ADAPTER as ARQ
from bench.adapters.base import Adapter
from bench.adapters.celery_adapter import ADAPTER as CELERY
from bench.adapters.dramatiq_adapter import ADAPTER as DRAMATIQ
from bench.adapters.huey_adapter import ADAPTER as HUEY
from bench.adapters.jobqueue_adapter import ADAPTER as JOBQUEUE
from bench.adapters.rq_adapter import ADAPTER as RQ
from bench.adapters.taskiq_adapter import ADAPTER as TASKIQ

ADAPTERS: dict[str, Adapter] = {a.name: a for a in (JOBQUEUE, RQ, DRAMATIQ, HUEY, ARQ, CELERY, TASKIQ)}

__all__ = ["ADAPTERS", "Adapter"]
