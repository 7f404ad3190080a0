-- Stored aggregates of {table} in [since, until), optionally for one queue and/or task name.
SELECT bucket, queue, name, enqueued, succeeded, failed, cancelled, retried, duration_count,
       duration_avg_ms, duration_p50_ms, duration_p95_ms, duration_p99_ms, duration_max_ms
FROM {table}
WHERE bucket >= %(since)s AND bucket < %(until)s
  AND (%(queue)s::text IS NULL OR queue = %(queue)s::text)
  AND (%(name)s::text IS NULL OR name = %(name)s::text)
ORDER BY bucket, queue, name
