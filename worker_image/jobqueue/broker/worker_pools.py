"""Worker pools of the local backend (``jobqueue up``) in Redis: the API writes pool specs here, the local
supervisor reads them every tick, runs the workers, and writes back what it observed.

Keys (all under the hash tag ``{:pools}``, see GlobalKeys): a hash of name -> spec JSON, a hash of
name -> status JSON, and one bounded event list per pool. A spec change and the event saying so are one
MULTI/EXEC; a change that depends on the current spec (patch, scale) WATCHes the specs hash, so two
concurrent admins never lose each other's change (the loser retries on the fresh spec).
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import redis

from jobqueue.broker.client import Client
from jobqueue.broker.redis_io import translate_errors
from jobqueue.errors import InvalidTransition, PoolExists, PoolNotFound, ValidationError
from jobqueue.pools import PoolEvent, PoolSpec, spec_from_json

log = logging.getLogger(__name__)

# Per pool: enough history to explain the last hours of scaling, bounded so a flapping pool cannot grow
# Redis. The list of a deleted pool expires after a day (its name may be reused; events then continue).
MAX_EVENTS = 200
DELETED_EVENTS_TTL_SECONDS = 86_400
_WATCH_ATTEMPTS = 20


@dataclass(frozen=True)
class PoolStatus:
    """What the local supervisor last saw of a pool."""

    uid: str
    observed_generation: int
    replicas: int  # worker processes serving (not draining)
    ready: int  # of those, the ones heartbeating
    draining: int
    workers: tuple[str, ...]
    updated_at: float

    def to_json(self) -> str:
        """JSON form as stored."""
        return json.dumps(
            {
                "uid": self.uid,
                "observed_generation": self.observed_generation,
                "replicas": self.replicas,
                "ready": self.ready,
                "draining": self.draining,
                "workers": list(self.workers),
                "updated_at": self.updated_at,
            }
        )

    @classmethod
    def from_json(cls, text: str) -> PoolStatus | None:
        """Parse a stored status; None when unreadable (treated as never observed)."""
        try:
            d = json.loads(text)
            return cls(
                str(d["uid"]),
                int(d["observed_generation"]),
                int(d["replicas"]),
                int(d["ready"]),
                int(d["draining"]),
                tuple(str(w) for w in d["workers"]),
                float(d["updated_at"]),
            )
        except (ValueError, KeyError, TypeError):
            return None


class PoolStore:
    """Typed access to the pool keys through a :class:`Client`'s connection."""

    def __init__(self, client: Client) -> None:
        self.redis: redis.Redis = client.redis
        self.keys = client.global_keys

    def _event(self, pipe: Any, name: str, kind: str, message: str) -> None:
        key = self.keys.pool_events(name)
        pipe.lpush(key, PoolEvent(time.time(), kind, message).to_json())
        pipe.ltrim(key, 0, MAX_EVENTS - 1)
        pipe.persist(key)

    def create(self, spec: PoolSpec) -> PoolSpec:
        """Store a new pool; PoolExists if the name is taken (nothing is written then)."""
        with translate_errors():
            # HSETNX decides alone; the event follows only for the caller that created the pool.
            if not self.redis.hsetnx(self.keys.pools, spec.name, spec.to_json()):
                raise PoolExists(spec.name)
            pipe = self.redis.pipeline(transaction=True)
            self._event(pipe, spec.name, "Created", _describe(spec))
            pipe.execute()
        return spec

    def get(self, name: str) -> PoolSpec:
        """The pool's spec; PoolNotFound if there is none."""
        with translate_errors():
            text = self.redis.hget(self.keys.pools, name)
        if text is None:
            raise PoolNotFound(name)
        return _parse(name, str(text))

    def all(self) -> list[PoolSpec]:
        """Every readable pool, by name (an unreadable spec is logged and left out: one hand-edited entry
        must not hide or stop every other pool; GET of its name says what is wrong)."""
        with translate_errors():
            raw = self.redis.hgetall(self.keys.pools)
        specs = []
        for name, text in sorted(raw.items()):
            try:
                specs.append(_parse(str(name), str(text)))
            except ValidationError as exc:
                log.warning("skipping worker pool %r: %s", name, exc)
        return specs

    def update(self, name: str, change: Callable[[PoolSpec], PoolSpec], kind: str, message: str) -> PoolSpec:
        """Apply ``change`` to the current spec atomically (WATCH); PoolNotFound if there is none.

        ``change`` may raise ValidationError: then nothing is written."""
        with translate_errors():
            for _ in range(_WATCH_ATTEMPTS):
                with self.redis.pipeline(transaction=True) as pipe:
                    try:
                        pipe.watch(self.keys.pools)
                        text = pipe.hget(self.keys.pools, name)
                        if text is None:
                            raise PoolNotFound(name)
                        new = change(_parse(name, str(text)))
                        pipe.multi()
                        pipe.hset(self.keys.pools, name, new.to_json())
                        self._event(pipe, name, kind, message)
                        pipe.execute()
                        return new
                    except redis.WatchError:
                        continue
        raise InvalidTransition(f"pool {name!r} changed too often concurrently; try again")

    def delete(self, name: str) -> None:
        """Remove the pool's spec (the supervisor then drains its workers); PoolNotFound if none."""
        with translate_errors():
            if not self.redis.hdel(self.keys.pools, name):
                raise PoolNotFound(name)
            pipe = self.redis.pipeline(transaction=True)
            self._event(pipe, name, "Deleting", "pool deleted; its workers drain and exit")
            pipe.expire(self.keys.pool_events(name), DELETED_EVENTS_TTL_SECONDS)
            pipe.execute()

    def record_event(self, name: str, kind: str, message: str) -> None:
        """Append one event to a pool's history (the supervisor's scale-ups, drains, replacements)."""
        with translate_errors():
            pipe = self.redis.pipeline(transaction=True)
            self._event(pipe, name, kind, message)
            pipe.execute()

    def events(self, name: str, limit: int = MAX_EVENTS) -> list[PoolEvent]:
        """The pool's events, newest first."""
        with translate_errors():
            raw = self.redis.lrange(self.keys.pool_events(name), 0, max(0, limit - 1))
        return [PoolEvent.from_json(str(t)) for t in raw]

    def write_status(self, name: str, status: PoolStatus) -> None:
        """Store what the supervisor observed of one pool."""
        with translate_errors():
            self.redis.hset(self.keys.pools_status, name, status.to_json())

    def clear_status(self, name: str) -> None:
        """Forget a pool's status (its last worker is gone)."""
        with translate_errors():
            self.redis.hdel(self.keys.pools_status, name)

    def statuses(self) -> dict[str, PoolStatus]:
        """Every pool's last observed status."""
        with translate_errors():
            raw = self.redis.hgetall(self.keys.pools_status)
        parsed = {str(n): PoolStatus.from_json(str(t)) for n, t in raw.items()}
        return {n: s for n, s in parsed.items() if s is not None}


def _parse(name: str, text: str) -> PoolSpec:
    try:
        return spec_from_json(text)
    except ValidationError as exc:
        # Edited by hand or written by another version: say which pool, not which field of a request.
        raise ValidationError("name", f"pool {name!r} has an unreadable spec ({exc}); delete it") from exc


def _describe(spec: PoolSpec) -> str:
    scaling = (
        f"autoscaling {spec.autoscaling.min_replicas}..{spec.autoscaling.max_replicas}"
        if spec.autoscaling.enabled
        else f"{spec.replicas} replicas"
    )
    return f"queues {','.join(spec.queues)}, concurrency {spec.concurrency}, {scaling}"
