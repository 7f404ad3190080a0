-- Record a batch of stream entries (COPied into staged_events first); entries already recorded (a
-- replay after a crash, or another recorder that claimed the same entries) are skipped. Returns the
-- entries that were NOT inserted now (usually none): every other entry is folded into the tasks table,
-- so nothing is ever applied twice, and the common case sends no rows back.
WITH inserted AS (
INSERT INTO task_events
    (stream, entry_ms, entry_seq, task_id, queue, event, ts, attempt, worker, error, duration_ms, data)
SELECT e.stream, e.entry_ms, e.entry_seq, e.task_id, e.queue, e.event,
       timestamptz 'epoch' + e.ts_ms * interval '1 millisecond',
       e.attempt, e.worker, e.error, e.duration_ms, e.data::jsonb
FROM staged_events e
-- A stable insertion order: concurrent recorders then wait on each other instead of deadlocking.
ORDER BY e.task_id, e.entry_ms, e.entry_seq, e.stream
ON CONFLICT (task_id, entry_ms, entry_seq, stream) DO NOTHING
RETURNING stream, entry_ms, entry_seq
)
SELECT s.stream, s.entry_ms, s.entry_seq
FROM staged_events s
WHERE NOT EXISTS (
    SELECT 1 FROM inserted i
    WHERE i.stream = s.stream AND i.entry_ms = s.entry_ms AND i.entry_seq = s.entry_seq
)
