-- Record a batch of stream entries; entries already recorded (a replay after a crash, or another
-- recorder that claimed the same entries) are skipped. Returns the entries inserted now: only those are
-- folded into the tasks table, so nothing is ever applied twice.
INSERT INTO task_events
    (stream, entry_ms, entry_seq, task_id, queue, event, ts, attempt, worker, error, duration_ms, data)
SELECT e.stream, e.entry_ms, e.entry_seq, e.task_id, e.queue, e.event,
       timestamptz 'epoch' + e.ts_ms * interval '1 millisecond',
       e.attempt, e.worker, e.error, e.duration_ms, e.data::jsonb
FROM unnest(
    %(stream)b::text[], %(entry_ms)b::bigint[], %(entry_seq)b::bigint[], %(task_id)b::text[],
    %(queue)b::text[], %(event)b::text[], %(ts_ms)b::bigint[], %(attempt)b::integer[], %(worker)b::text[],
    %(error)b::text[], %(duration_ms)b::bigint[], %(data)b::text[]
) AS e(stream, entry_ms, entry_seq, task_id, queue, event, ts_ms, attempt, worker, error, duration_ms, data)
-- A stable insertion order: concurrent recorders then wait on each other instead of deadlocking.
ORDER BY e.stream, e.entry_ms, e.entry_seq
ON CONFLICT (stream, entry_ms, entry_seq) DO NOTHING
RETURNING stream, entry_ms, entry_seq
