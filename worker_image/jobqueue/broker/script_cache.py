"""Keeping Redis' script cache in step with the scripts jobqueue sends by EVALSHA.

Redis forgets every script when it restarts, on ``SCRIPT FLUSH``, and on a failover to a replica (since
Redis 7 a ``SCRIPT LOAD`` is neither replicated nor persisted). A call that meets ``NOSCRIPT`` did not run,
but the calls pipelined after it in the same exchange did: re-running it afterwards would put it after
them (a unique or dependent task behind the plain tasks enqueued after it on the same ready list).
Redis offers no way to stop a pipeline at its first error, so the fix is at the cause, in two parts:

1. Every connection loads the scripts before its first command: ``on_connect`` (redis-py runs it after
   AUTH / SELECT on every connect and reconnect, for Sentinel, Cluster nodes and plain clients alike)
   asks ``SCRIPT EXISTS`` for every script in the same round trip as the handshake's end, and loads the
   missing ones in one MULTI/EXEC, so no other client sees the cache half-loaded. A restart, a failover
   or a new Cluster primary all reach a client as a new connection, so the normal case never meets
   NOSCRIPT and pays nothing per call; each new connection pays one round trip.
2. ``NOSCRIPT`` that still happens (``SCRIPT FLUSH`` under a live connection, a proxy that switched
   servers) loads every script again (never one at a time: a half-loaded cache is what lets a later call
   of an exchange run while an earlier one fails) and re-runs only the calls ``rerun_plan`` allows: a
   call is re-run unless a later call of its exchange that shares a key with it already ran (every key a
   script touches is in its KEYS, so calls with disjoint keys commute). The others end with
   ScriptCacheLost in their place: they did not run, and running them now would reorder the exchange.
"""

from __future__ import annotations

import functools
import hashlib
import logging
import math
from collections.abc import Sequence
from typing import Any

from redis.exceptions import NoScriptError, ResponseError

from jobqueue.broker.scripts import SCRIPT_NAMES, ScriptCall, script_source
from jobqueue.errors import ScriptCacheLost

log = logging.getLogger(__name__)


@functools.cache
def script_sha(name: str) -> str:
    """SHA1 of a script, as Redis computes it for EVALSHA (cached: scripts never change at run time)."""
    return hashlib.sha1(script_source(name).encode(), usedforsecurity=False).hexdigest()


# Redis closes the connection of a client that has not authenticated yet when it sends a command of more
# than 10 arguments ("Protocol error: unauthenticated multibulk length"). SCRIPT EXISTS goes in commands
# of at most 10 arguments, pipelined (still one round trip), so a client without the password meets
# Redis' own NOAUTH ("Authentication required.") rather than a closed connection.
_UNAUTHENTICATED_MAX_ARGS = 10


def _exists_commands() -> list[tuple[str, ...]]:
    shas = [script_sha(name) for name in SCRIPT_NAMES]
    per_command = _UNAUTHENTICATED_MAX_ARGS - 2
    return [("SCRIPT", "EXISTS", *shas[i : i + per_command]) for i in range(0, len(shas), per_command)]


def _load_commands(names: Sequence[str]) -> list[tuple[str, ...]]:
    # One MULTI/EXEC: the cache goes from missing these scripts to holding all of them in one step.
    return [("MULTI",), *(("SCRIPT", "LOAD", script_source(name)) for name in names), ("EXEC",)]


def _missing_names(exists_reply: Any) -> list[str]:
    return [name for name, known in zip(SCRIPT_NAMES, exists_reply, strict=True) if not int(known)]


def is_noscript(reply: Any) -> bool:
    """Whether a reply is Redis' NOSCRIPT (redis-py's parser gives NoScriptError; a raw hiredis read may
    give a ResponseError whose message starts with the code)."""
    return isinstance(reply, NoScriptError) or (
        isinstance(reply, ResponseError) and str(reply).startswith("NOSCRIPT")
    )


def read_replies(connection: Any, count: int) -> list[Any]:
    """``count`` replies, error replies in place, so the connection stays in step."""
    replies: list[Any] = []
    for _ in range(count):
        try:
            replies.append(connection.read_response())
        except ResponseError as exc:
            replies.append(exc)
    return replies


def load_on_connection(connection: Any) -> None:
    """Make sure the server behind a just-opened redis-py connection knows every script. A server that
    refuses SCRIPT (an ACL without it) is left alone: the NOSCRIPT fallback still loads on demand."""
    checks = _exists_commands()
    connection.send_packed_command(connection.pack_commands(checks), check_health=False)
    replies = read_replies(connection, len(checks))
    refused = next((r for r in replies if isinstance(r, ResponseError)), None)
    if refused is not None:
        log.debug("cannot check the script cache on connect: %s", refused)
        return
    missing = _missing_names([known for reply in replies for known in reply])
    if missing:
        commands = _load_commands(missing)
        connection.send_packed_command(connection.pack_commands(commands), check_health=False)
        outcome = read_replies(connection, len(commands))[-1]
        if isinstance(outcome, ResponseError):
            log.warning("could not load the scripts on connect: %s", outcome)


async def load_on_connection_async(connection: Any) -> None:
    """The asyncio twin of ``load_on_connection``."""
    checks = _exists_commands()
    await connection.send_packed_command(connection.pack_commands(checks), check_health=False)
    exists: list[Any] = []
    refused: ResponseError | None = None
    for _ in checks:
        try:
            exists += await connection.read_response()
        except ResponseError as exc:
            refused = exc
    if refused is not None:
        log.debug("cannot check the script cache on connect: %s", refused)
        return
    missing = _missing_names(exists)
    if missing:
        commands = _load_commands(missing)
        await connection.send_packed_command(connection.pack_commands(commands), check_health=False)
        failure: ResponseError | None = None
        for _ in commands:
            try:
                await connection.read_response()
            except ResponseError as exc:
                failure = exc
        if failure is not None:
            log.warning("could not load the scripts on connect: %s", failure)


def _connect_hook(connection_class: type[Any]) -> str:
    # redis-py 5.3+ runs on_connect_check_health on every connect (on_connect only wraps it); older
    # releases run on_connect itself.
    return "on_connect_check_health" if hasattr(connection_class, "on_connect_check_health") else "on_connect"


def _no_health_check_yet(connection: Any) -> None:
    """Hold the connection's health check off during its handshake. redis-py before 5.3 checks health
    (PING) before the handshake's own commands: on a server that wants a password the client lacks, the
    PING fails with NOAUTH, its retry reconnects, and the reconnect's handshake checks health again, until
    RecursionError. Any reply read sets the next check from now, so this lasts only while none is."""
    connection.next_health_check = math.inf


def _health_check_due(connection: Any) -> None:
    if connection.next_health_check == math.inf:
        connection.next_health_check = 0  # no reply was read: check at the next use, as before


@functools.cache
def with_script_loading(connection_class: type[Any]) -> type[Any]:
    """A subclass of a redis-py (sync) connection class whose every connect loads the scripts."""
    hook = _connect_hook(connection_class)
    handshake = getattr(connection_class, hook)

    def on_connect(self: Any, *args: Any, **kwargs: Any) -> None:
        _no_health_check_yet(self)
        try:
            handshake(self, *args, **kwargs)
            load_on_connection(self)
        finally:
            _health_check_due(self)

    return type(f"ScriptLoading{connection_class.__name__}", (connection_class,), {hook: on_connect})


@functools.cache
def with_script_loading_async(connection_class: type[Any]) -> type[Any]:
    """The asyncio twin of ``with_script_loading``."""
    hook = _connect_hook(connection_class)
    handshake = getattr(connection_class, hook)

    async def on_connect(self: Any, *args: Any, **kwargs: Any) -> None:
        _no_health_check_yet(self)
        try:
            await handshake(self, *args, **kwargs)
            await load_on_connection_async(self)
        finally:
            _health_check_due(self)

    return type(f"ScriptLoading{connection_class.__name__}", (connection_class,), {hook: on_connect})


def script_load_commands() -> list[tuple[str, ...]]:
    """A SCRIPT LOAD of every script: what a NOSCRIPT fallback sends, in one MULTI/EXEC where it can."""
    return [("SCRIPT", "LOAD", script_source(name)) for name in SCRIPT_NAMES]


def rerun_plan(calls: Sequence[ScriptCall], replies: Sequence[Any]) -> tuple[list[int], list[int]]:
    """Which calls that met NOSCRIPT to re-run (in this order) and which to end with ScriptCacheLost.

    A NOSCRIPT call did not run. Re-running it is safe unless a later call of the same exchange that
    shares a key with it did run (it would now come after that call), or a call it shares a key with
    is itself ended (it may depend on that call's effect: a child on its parent)."""
    last_ran: dict[str, int] = {}
    for index, (call, reply) in enumerate(zip(calls, replies, strict=True)):
        if not is_noscript(reply):
            for key in call.keys:
                last_ran[key] = index
    rerun: list[int] = []
    ended: list[int] = []
    ended_keys: set[str] = set()
    for index, (call, reply) in enumerate(zip(calls, replies, strict=True)):
        if not is_noscript(reply):
            continue
        if any(last_ran.get(key, -1) > index or key in ended_keys for key in call.keys):
            ended.append(index)
            ended_keys.update(call.keys)
        else:
            rerun.append(index)
    return rerun, ended


def plan_reruns(calls: Sequence[ScriptCall], replies: list[Any]) -> list[int]:
    """``rerun_plan`` applied: the calls that may not be re-run get ScriptCacheLost in their place in
    ``replies``; the indices of those to re-run (in order) are returned."""
    rerun, ended = rerun_plan(calls, replies)
    for index in ended:
        replies[index] = ScriptCacheLost(calls[index].script)
    return rerun
