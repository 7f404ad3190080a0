-- One dead letter row per 'dead_lettered' event; the task name comes from the (already upserted) task.
INSERT INTO dead_letters (task_id, dead_at, queue, name, status, reason, error, attempt)
SELECT d.task_id, timestamptz 'epoch' + d.ts_ms * interval '1 millisecond', d.queue, t.name, d.status,
       d.reason, d.error, d.attempt
FROM unnest(%(task_id)b::text[], %(ts_ms)b::bigint[], %(queue)b::text[], %(status)b::text[],
            %(reason)b::text[], %(error)b::text[], %(attempt)b::integer[])
     AS d(task_id, ts_ms, queue, status, reason, error, attempt)
LEFT JOIN tasks t ON t.id = d.task_id
ON CONFLICT (task_id, dead_at) DO NOTHING
