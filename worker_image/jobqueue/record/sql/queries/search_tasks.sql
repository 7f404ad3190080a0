-- Task search. Every filter is optional (NULL = no filter); {time_column} and {order_column} are
-- identifiers chosen from a fixed list in queries.py, never user text.
SELECT id, queue, name, priority, status, args, kwargs, result, error, traceback, attempts, max_retries,
       retries, lost_leases, replays, worker, cancel_reason, dead_letter_reason, enqueued_at, eta,
       started_at, completed_at, duration_ms
FROM tasks
WHERE (%(statuses)s::text[] IS NULL OR status = ANY(%(statuses)s::text[]))
  AND (%(name)s::text IS NULL OR name = %(name)s::text)
  AND (%(queue)s::text IS NULL OR queue = %(queue)s::text)
  AND (%(since)s::timestamptz IS NULL OR {time_column} >= %(since)s::timestamptz)
  AND (%(until)s::timestamptz IS NULL OR {time_column} < %(until)s::timestamptz)
  AND (%(error_pattern)s::text IS NULL OR error ILIKE %(error_pattern)s::text)
ORDER BY {order_column} {direction} NULLS LAST, id {direction}
LIMIT %(limit)s OFFSET %(offset)s
