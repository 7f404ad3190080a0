SELECT d.task_id, d.dead_at, d.queue, d.name, d.status, d.reason, d.error, d.attempt, d.replayed_at,
       d.purged_at
FROM dead_letters d
WHERE (%(queue)s::text IS NULL OR d.queue = %(queue)s::text)
  AND (%(name)s::text IS NULL OR d.name = %(name)s::text)
  AND (%(reason)s::text IS NULL OR d.reason = %(reason)s::text)
  AND (%(since)s::timestamptz IS NULL OR d.dead_at >= %(since)s::timestamptz)
  AND (%(until)s::timestamptz IS NULL OR d.dead_at < %(until)s::timestamptz)
  AND (%(error_pattern)s::text IS NULL OR d.error ILIKE %(error_pattern)s::text)
  AND (%(include_closed)s OR (d.replayed_at IS NULL AND d.purged_at IS NULL))
ORDER BY d.dead_at DESC, d.task_id
LIMIT %(limit)s OFFSET %(offset)s
