-- Recompute whole buckets of {table} from the raw events in [start, end) (bucket-aligned by the caller):
-- idempotent, so it may run again, late, or in several recorders. Only run it over windows whose raw
-- events are still retained, or the buckets would be overwritten with partial counts.
INSERT INTO {table} AS m (bucket, queue, name, enqueued, succeeded, failed, cancelled, retried,
                          duration_count, duration_avg_ms, duration_p50_ms, duration_p95_ms,
                          duration_p99_ms, duration_max_ms, computed_at)
SELECT date_trunc(%(unit)s, e.ts, 'UTC'), e.queue, COALESCE(t.name, ''),
       count(*) FILTER (WHERE e.event = 'enqueued'),
       count(*) FILTER (WHERE e.event = 'succeeded'),
       count(*) FILTER (WHERE e.event = 'dead_lettered'),
       count(*) FILTER (WHERE e.event = 'cancelled'),
       count(*) FILTER (WHERE e.event = 'retrying'),
       count(e.duration_ms) FILTER (WHERE e.event IN ('succeeded', 'dead_lettered')),
       avg(e.duration_ms) FILTER (WHERE e.event IN ('succeeded', 'dead_lettered'))::float8,
       percentile_cont(0.5) WITHIN GROUP (ORDER BY e.duration_ms)
           FILTER (WHERE e.event IN ('succeeded', 'dead_lettered')),
       percentile_cont(0.95) WITHIN GROUP (ORDER BY e.duration_ms)
           FILTER (WHERE e.event IN ('succeeded', 'dead_lettered')),
       percentile_cont(0.99) WITHIN GROUP (ORDER BY e.duration_ms)
           FILTER (WHERE e.event IN ('succeeded', 'dead_lettered')),
       max(e.duration_ms) FILTER (WHERE e.event IN ('succeeded', 'dead_lettered'))::float8,
       now()
FROM task_event_log e
LEFT JOIN tasks t ON t.id = e.task_id
WHERE e.ts >= %(start)s AND e.ts < %(end)s
GROUP BY 1, 2, 3
ON CONFLICT (bucket, queue, name) DO UPDATE SET
    enqueued = EXCLUDED.enqueued, succeeded = EXCLUDED.succeeded, failed = EXCLUDED.failed,
    cancelled = EXCLUDED.cancelled, retried = EXCLUDED.retried, duration_count = EXCLUDED.duration_count,
    duration_avg_ms = EXCLUDED.duration_avg_ms, duration_p50_ms = EXCLUDED.duration_p50_ms,
    duration_p95_ms = EXCLUDED.duration_p95_ms, duration_p99_ms = EXCLUDED.duration_p99_ms,
    duration_max_ms = EXCLUDED.duration_max_ms, computed_at = EXCLUDED.computed_at
