SELECT id, queue, name, priority, status, args, kwargs, result, error, traceback, attempts, max_retries,
       retries, lost_leases, replays, worker, cancel_reason, dead_letter_reason, enqueued_at, eta,
       started_at, completed_at, duration_ms
FROM tasks
WHERE id = %(id)s
