"""The recorder's read-ahead: while it writes one batch to PostgreSQL, the next XREAD is already on its
way (the catch-up overlap, docs/record.md "Catch-up").

Only while the recorder is behind (its last read came back full): then there certainly is a next batch,
and the profile of a catch-up showed its time spent in series, about 40% waiting on PostgreSQL, 15% on
Redis round trips and 45% in Python. The next read (its round trip, and parsing its reply) now runs in
a helper thread while the main thread waits on the COMMIT, which releases the GIL.

The read starts from the positions the batch being written leads to. It is used only if every stream's
committed position turned out to be exactly that (the batch committed, the streams still owned);
otherwise it is dropped and the recorder reads again from the committed positions.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any

from jobqueue.record.events import Entry, entries_from_reply
from jobqueue.record.positions import Position

Read = Callable[[Mapping[str, str], int], Any]


class ReadAhead:
    """At most one XREAD in flight, sent by a helper thread (started on first use)."""

    def __init__(self) -> None:
        # No reference to the recorder is kept (the read is passed with each start): a recorder dropped
        # without close() is then freed at once, and its PostgreSQL session (its locks) with it.
        self._executor: ThreadPoolExecutor | None = None
        self._future: Future[tuple[Any, list[Entry]]] | None = None
        self._after: dict[str, str] = {}

    def start(self, read: Read, after: Mapping[str, str], count: int) -> None:
        """Send ``read`` (an XREAD of up to ``count`` entries per stream after the ``after`` ids)."""
        if self._executor is None:
            self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="recorder-read-ahead")
        self._after = dict(after)
        self._future = self._executor.submit(_read_and_parse, read, self._after, count)

    def take(self, committed: Mapping[str, Position]) -> tuple[Any, list[Entry]] | None:
        """The read-ahead's (reply, entries) if every stream it read is still owned and was read from
        its committed position; None otherwise (then the caller reads again from the committed
        positions), or if none was sent. A failed read raises here (the recorder's step retries)."""
        future, self._future = self._future, None
        if future is None:
            return None
        reply, entries = future.result()
        if all(s in committed and committed[s].entry_id == after for s, after in self._after.items()):
            return reply, entries
        return None

    def discard(self) -> None:
        """Forget the read in flight (its reply is not used)."""
        future, self._future = self._future, None
        if future is not None:
            future.cancel()

    def close(self) -> None:
        """Stop the helper thread (after the read in flight, if any)."""
        self.discard()
        if self._executor is not None:
            self._executor.shutdown(wait=True, cancel_futures=True)
            self._executor = None


def _read_and_parse(read: Read, after: Mapping[str, str], count: int) -> tuple[Any, list[Entry]]:
    reply = read(after, count)
    return reply, entries_from_reply(reply)
