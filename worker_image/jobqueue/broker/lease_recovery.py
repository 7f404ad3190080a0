"""The typed wrapper of ``lua/recover.lua``: leases whose holder is gone (expired, or held by a worker known
dead) go back to the front of their queue, or to the dead letters as poison after too many losses.

Its own module because several callers share it and none owns it: the client's
``recover_expired_leases`` (the scheduler, and the operator for a dead worker's leases) and every worker's
heartbeat loop (its own queues' expired leases, so a deployment without a scheduler still recovers).
"""

from __future__ import annotations

from jobqueue.broker.scripts import ScriptCall
from jobqueue.keys import QueueKeys
from jobqueue.settings import Settings

# Per queue, the recover script keeps leases-recovered counts for this many workers, most recent first.
RECOVERY_WORKERS_KEPT = 1000


def build_recover(settings: Settings, queue: str, worker_id: str = "", limit: int = 1000) -> ScriptCall:
    """The recover script call: expired leases of a queue, or the leases of a worker known dead (read
    from its held set, up to ``limit`` per call). Reply: [requeued, dead_lettered, left, cancelled],
    left = ids of that worker still to look at (call again while > 0). Every recovered lease is counted
    in the queue's recoveries hash, per worker, by the script itself."""
    keys = QueueKeys(settings.key_prefix, queue)
    held = (keys.held(worker_id),) if worker_id else ()
    return ScriptCall(
        "recover",
        (
            keys.leases,
            *keys.ready_all,
            keys.dead,
            keys.events,
            keys.stats,
            keys.wake,
            keys.config,
            keys.recoveries,
            *held,
        ),
        (
            keys.task_prefix,
            limit,
            settings.max_lost_leases,
            settings.events_max_length,
            worker_id,
            keys.done_channel_prefix,
            settings.retry_history_max,
            settings.result_ttl_seconds,
            RECOVERY_WORKERS_KEPT,
        ),
    )
