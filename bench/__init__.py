"""The benchmark harness: jobqueue side by side with peer queues on one dedicated Redis server.

Run with ``python -m bench`` (or ``make bench``); see docs/benchmarks.md for what it measures and how.
The orchestrator runs in the project's venv; peer queues live in their own venv (bench/.venv-peers) and
are driven through subprocesses, so their dependencies never enter the project's dependency set.
"""
