"""Every Redis key and channel name jobqueue uses, built in one place.

Keys of a queue share the hash tag ``{queue}`` so a queue lives on one Redis Cluster slot and every
script touches a single slot. Task ids carry their queue (``<queue>.<uuid7 hex>``), so any task key can be
derived from the id alone.
"""

from __future__ import annotations

import os
import re
import time
from dataclasses import dataclass

from jobqueue.errors import ValidationError
from jobqueue.models import Priority

# The one queue name rule (docs/configuration.md, "Names"): the REST schemas, the CLI and the CRDs state the
# same pattern, length and reserved names (tests/unit/crds/test_names_rule.py compares them). Letters,
# digits, '_' and '-' only, because a name sits inside Redis keys and hash tags, task ids (split at '.')
# and worker arguments (split at ',').
QUEUE_NAME_MAX_LENGTH = 64
# Anchored for JSON Schema / pydantic patterns, whose ``$`` is the end of the text (no newline).
QUEUE_NAME_PATTERN = rf"^[A-Za-z0-9_-]{{1,{QUEUE_NAME_MAX_LENGTH}}}$"
# Matched with fullmatch: Python's ``$`` would also accept a trailing newline ("default\n").
QUEUE_NAME = re.compile(QUEUE_NAME_PATTERN[1:-1])
_ID_SUFFIX = re.compile(r"[0-9a-f]{32}")
# Hash tags jobqueue uses for keys that belong to no queue: a queue of that name would share their keys
# (a queue "schedules" had its events written to the schedule-run stream, where the recorder dropped
# them). Reserved rather than moved, so existing deployments keep their schedules.
RESERVED_QUEUE_NAMES = frozenset({"schedules"})


def validate_queue_name(queue: str) -> str:
    """Return ``queue`` if it is a valid queue name, else raise ValidationError('queue')."""
    if not isinstance(queue, str) or not QUEUE_NAME.fullmatch(queue):
        raise ValidationError("queue", f"{queue!r} must be 1-64 characters of letters, digits, '_' or '-'")
    if queue in RESERVED_QUEUE_NAMES:
        raise ValidationError("queue", f"{queue!r} is reserved for jobqueue's own keys; choose another name")
    return queue


# The UUID variant nibble (0b10xx) for each hex digit whose two low bits are random.
_VARIANT_NIBBLE = {d: "89ab"[int(d, 16) & 3] for d in "0123456789abcdef"}


def new_task_id(queue: str) -> str:
    """A time-ordered id (UUIDv7 layout: 48-bit ms timestamp, then 74 random bits) prefixed by its queue."""
    ms = (time.time_ns() // 1_000_000) & 0xFFFF_FFFF_FFFF
    # Built as text, not as one 128-bit integer (a quarter faster): 3 random hex digits (rand_a, 12 bits),
    # the variant nibble carrying 2 random bits, then 15 random hex digits (60 bits).
    rand = os.urandom(10).hex()
    return f"{queue}.{ms:012x}7{rand[:3]}{_VARIANT_NIBBLE[rand[3]]}{rand[4:19]}"


def new_task_ids(queues: list[str]) -> list[str]:
    """``new_task_id`` of each queue, for a batch: one clock read and one ``os.urandom`` for all (a system
    call per id was ~0.7 µs of a batch enqueue's ~11 µs of client work per task)."""
    ms = f"{(time.time_ns() // 1_000_000) & 0xFFFF_FFFF_FFFF:012x}"
    rand = os.urandom(10 * len(queues)).hex()
    nibble = _VARIANT_NIBBLE
    return [
        f"{queue}.{ms}7{rand[i : i + 3]}{nibble[rand[i + 3]]}{rand[i + 4 : i + 19]}"
        for i, queue in zip(range(0, 20 * len(queues), 20), queues, strict=True)
    ]


def queue_of(task_id: str) -> str:
    """The queue a task id belongs to; ValidationError('task_id') for anything that is not a task id."""
    if not isinstance(task_id, str):
        raise ValidationError("task_id", "must be a string")
    queue, sep, suffix = task_id.rpartition(".")
    if not sep or not QUEUE_NAME.fullmatch(queue) or not _ID_SUFFIX.fullmatch(suffix):
        raise ValidationError("task_id", f"{task_id!r} is not a jobqueue task id")
    return queue


@dataclass(frozen=True)
class QueueKeys:
    """The keys of one queue."""

    prefix: str
    queue: str

    @property
    def _base(self) -> str:
        return f"{self.prefix}:{{{self.queue}}}"

    def ready(self, priority: Priority | str) -> str:
        """FIFO list of ready task ids at one priority level."""
        return f"{self._base}:ready:{Priority(priority).value}"

    @property
    def ready_all(self) -> tuple[str, str, str]:
        """Ready lists in strict order: high, medium, low."""
        return (self.ready(Priority.HIGH), self.ready(Priority.MEDIUM), self.ready(Priority.LOW))

    @property
    def delayed(self) -> str:
        """Sorted set of delayed / retrying task ids scored by due time (ms)."""
        return f"{self._base}:delayed"

    @property
    def leases(self) -> str:
        """Sorted set of leased task ids scored by lease expiry (ms)."""
        return f"{self._base}:leases"

    @property
    def dead(self) -> str:
        """Sorted set of dead-lettered task ids scored by the time they died (ms)."""
        return f"{self._base}:dead"

    @property
    def wake(self) -> str:
        """Marker list idle workers block on; holds at most one element."""
        return f"{self._base}:wake"

    @property
    def parked(self) -> str:
        """Hash of parked (idle, blocked on their inbox) workers: id -> their entry (expiry, lease, capacity,
        inbox and held set keys; lua/_handoff.lua); enqueue hands ready tasks to them directly."""
        return f"{self._base}:parked"

    def inbox(self, worker_id: str) -> str:
        """List a parked worker blocks on; enqueue pushes tasks already leased to it (lua/_handoff.lua)."""
        return f"{self._base}:inbox:{worker_id}"

    def held(self, worker_id: str) -> str:
        """Set of the task ids leased to one worker: the index that recovers a dead worker's leases
        without reading every lease of the queue. Maintained by the lease scripts (fetch, hand-off, ack,
        fail, release, heartbeat, recover); an id may outlive its lease there (the expiry reaper leaves
        it), so every reader checks the task hash, and the set expires a while after the worker's last
        fetch or heartbeat."""
        return f"{self._base}:held:{worker_id}"

    def children(self, task_id: str) -> str:
        """List of the task hash keys of a task's children (workflow dependents), one RPUSH per child
        registered: a parent's child list is never rewritten. Lives as long as the task hash."""
        return f"{self._base}:children:{task_id}"

    @property
    def recoveries(self) -> str:
        """Hash of recovered-lease counts, written by recover.lua only: ``w:<worker id>`` = leases
        recovered from that worker, ``t:<worker id>`` = time (ms) of its last one, ``last_at`` = the
        queue's last recovery (read by broker/worker_monitor.py)."""
        return f"{self._base}:recoveries"

    @property
    def config(self) -> str:
        """Hash of live queue configuration (paused, rate limit, max in-flight, priority policy)."""
        return f"{self._base}:config"

    @property
    def stats(self) -> str:
        """Hash of monotonically increasing counters."""
        return f"{self._base}:stats"

    @property
    def events(self) -> str:
        """Stream of task transitions, read by the recorder."""
        return f"{self._base}:events"

    @property
    def task_metrics(self) -> str:
        """Hash of run time and queue wait histogram counts, summed over every worker (task_metrics.py)."""
        return f"{self._base}:metrics"

    def task_metrics_applied(self, writer: str) -> str:
        """The last flush sequence number one worker process added to the metrics hash (expires)."""
        return f"{self._base}:metrics:applied:{writer}"

    @property
    def rate(self) -> str:
        """Rate-limit state (GCRA theoretical arrival time)."""
        return f"{self._base}:rate"

    def priority_rate(self, priority: str) -> str:
        """Rate-limit state (GCRA) of one priority level's own limit, beside the queue's."""
        return f"{self._base}:rate:{priority}"

    @property
    def priority_rates(self) -> tuple[str, str, str]:
        """The three priority levels' rate-limit states, high, medium, low (fetch.lua's KEYS order)."""
        return (self.priority_rate("high"), self.priority_rate("medium"), self.priority_rate("low"))

    @property
    def task_prefix(self) -> str:
        """Prefix of task hash keys; scripts that discover ids append the id to it."""
        return f"{self._base}:t:"

    def unique(self, digest: str) -> str:
        """Dedup key of a unique task's signature; holds the id of the live task with that signature."""
        return f"{self._base}:unique:{digest}"

    def folded(self, task_id: str) -> str:
        """Record of a unique enqueue that was folded into a live task with the same signature: the id
        that enqueue was given, holding the holder's id and the dedup key (lives as long as that key)."""
        return f"{self._base}:folded:{task_id}"

    def task(self, task_id: str) -> str:
        """Hash holding one task's spec, state and result."""
        return f"{self.task_prefix}{task_id}"

    def done_channel(self, task_id: str) -> str:
        """Pub/sub channel a task's final transition is published on (only when someone waits)."""
        return f"{self._base}:done:{task_id}"

    @property
    def done_channel_prefix(self) -> str:
        """Prefix of completion channels, for scripts that discover ids."""
        return f"{self._base}:done:"

    @property
    def cancel_channel(self) -> str:
        """Pub/sub channel on which running-task cancel requests are announced to workers."""
        return f"{self._base}:cancel"


@dataclass(frozen=True)
class GlobalKeys:
    """Keys that are not tied to one queue."""

    prefix: str

    @property
    def queues(self) -> str:
        """Set of known queue names."""
        return f"{self.prefix}:queues"

    @property
    def workers(self) -> str:
        """Sorted set of worker ids scored by their last heartbeat (unix ms)."""
        return f"{self.prefix}:workers"

    def worker(self, worker_id: str) -> str:
        """Hash describing one worker (status, host, pid, queues, in-flight task ids)."""
        return f"{self.prefix}:worker:{worker_id}"

    def worker_control(self, worker_id: str) -> str:
        """Hash of instructions to one worker (e.g. drain), set by the operator or supervisor."""
        return f"{self.prefix}:worker:{worker_id}:control"

    @property
    def record_rejects(self) -> str:
        """Counter of stream entries the recorders parked in PostgreSQL's record_rejects (never reset)."""
        return f"{self.prefix}:recorder:rejected"

    @property
    def record_positions(self) -> str:
        """Hash: event stream -> "<entry id> <entries consumed>", the position the recorders committed in
        PostgreSQL (mirrored after each batch, read by /metrics for the recorder lag)."""
        return f"{self.prefix}:recorder:positions"

    # Schedule keys share the hash tag {schedules}: the claim script touches several of them at once.
    @property
    def schedules(self) -> str:
        """Hash of schedule name -> schedule definition (JSON)."""
        return f"{self.prefix}:{{schedules}}:specs"

    @property
    def schedules_due(self) -> str:
        """Sorted set of active (not paused) schedule names scored by their next fire time (unix ms)."""
        return f"{self.prefix}:{{schedules}}:due"

    def schedule_state(self, name: str) -> str:
        """Hash of one schedule's run state (paused, last fire, last task id, fired / missed / skipped)."""
        return f"{self.prefix}:{{schedules}}:state:{name}"

    @property
    def schedule_events(self) -> str:
        """Stream of schedule runs (fired, skipped, missed, failed), read by the recorder."""
        return f"{self.prefix}:{{schedules}}:events"

    def schedule_claim(self, name: str, fire_ms: int) -> str:
        """Claim of one fire time of one schedule (SET NX with expiry): whoever sets it fires."""
        return f"{self.prefix}:{{schedules}}:claim:{name}:{fire_ms}"

    # Pool keys share the hash tag {:pools}: a queue name cannot contain ':', so no queue shares the slot
    # prefix or the keys, and the pool writes that touch the specs and an event list stay on one slot.
    @property
    def pools(self) -> str:
        """Hash of worker pool name -> pool spec (JSON), written by the API, read by the local supervisor."""
        return f"{self.prefix}:{{:pools}}:specs"

    @property
    def pools_status(self) -> str:
        """Hash of worker pool name -> observed status (JSON), written by the local supervisor."""
        return f"{self.prefix}:{{:pools}}:status"

    def pool_events(self, name: str) -> str:
        """List of one pool's events (JSON, newest first, bounded)."""
        return f"{self.prefix}:{{:pools}}:events:{name}"


def keys_for_task(prefix: str, task_id: str) -> QueueKeys:
    """The keys of the queue a task id belongs to."""
    return QueueKeys(prefix, queue_of(task_id))
