-- Throughput, outcomes and durations over [start, end), per (queue, task name), per queue (name NULL)
-- and overall (both NULL). Durations are those of the final attempt of tasks that finished in the window
-- (succeeded or dead-lettered); a task whose 'enqueued' event was never recorded has name ''.
WITH e AS (
    SELECT e.queue, COALESCE(t.name, '') AS name, e.event, e.duration_ms
    FROM task_event_log e
    LEFT JOIN tasks t ON t.id = e.task_id
    WHERE e.ts >= %(start)s AND e.ts < %(end)s
      AND (%(queue)s::text IS NULL OR e.queue = %(queue)s::text)
      AND (%(name)s::text IS NULL OR COALESCE(t.name, '') = %(name)s::text)
)
SELECT queue, name,
       count(*) FILTER (WHERE event = 'enqueued') AS enqueued,
       count(*) FILTER (WHERE event = 'succeeded') AS succeeded,
       count(*) FILTER (WHERE event = 'dead_lettered') AS failed,
       count(*) FILTER (WHERE event = 'cancelled') AS cancelled,
       count(*) FILTER (WHERE event = 'retrying') AS retried,
       count(duration_ms) FILTER (WHERE event IN ('succeeded', 'dead_lettered')) AS duration_count,
       avg(duration_ms) FILTER (WHERE event IN ('succeeded', 'dead_lettered'))::float8 AS duration_avg_ms,
       percentile_cont(0.5) WITHIN GROUP (ORDER BY duration_ms)
           FILTER (WHERE event IN ('succeeded', 'dead_lettered')) AS duration_p50_ms,
       percentile_cont(0.95) WITHIN GROUP (ORDER BY duration_ms)
           FILTER (WHERE event IN ('succeeded', 'dead_lettered')) AS duration_p95_ms,
       percentile_cont(0.99) WITHIN GROUP (ORDER BY duration_ms)
           FILTER (WHERE event IN ('succeeded', 'dead_lettered')) AS duration_p99_ms,
       max(duration_ms) FILTER (WHERE event IN ('succeeded', 'dead_lettered'))::float8 AS duration_max_ms
FROM e
GROUP BY GROUPING SETS ((queue, name), (queue), ())
ORDER BY queue NULLS FIRST, name NULLS FIRST
