-- 0004: 'enqueued' and 'succeeded' events are kept on the task row instead of in task_events rows
-- (measured with bench/recorder_cost.py, see docs/record.md, "What the record costs").
-- A task's row already holds everything those two events say: the 'enqueued' event is the task's spec
-- and enqueue time, and 'succeeded' is terminal (only a dead-lettered task can be replayed), so its time,
-- attempt and duration are the row's final completed_at, attempts and duration_ms, at the row's newest
-- stream position. What the row lacked is added here: the stream, the 'enqueued' entry's position and
-- its remaining fields (the 'data' of its event row). Every other event (started, retrying,
-- dead_lettered, cancelled, lease_lost, ...) keeps its own row.
-- task_event_log is the whole history, real rows and the two kinds rebuilt from the rows, exactly as they
-- were recorded before; history, analytics and rollups read it.
ALTER TABLE tasks
    ADD COLUMN stream             text,    -- the queue's event stream (NULL on rows recorded before 0004)
    ADD COLUMN enqueued_entry_ms  bigint,  -- the 'enqueued' entry's position (NULL: it has an event row,
    ADD COLUMN enqueued_entry_seq bigint,  -- or was never recorded)
    ADD COLUMN enqueued_data      jsonb;   -- its fields that have no column ('data' of the event)

-- Rows recorded before 0004: 'succeeded' events whose task row reproduces them move onto the row (the
-- row's newest position is the 'succeeded' entry's); anything else stays an event row. 'enqueued' rows
-- stay as they are (their task rows have no enqueued_entry_ms, so the log does not rebuild them twice).
WITH moved AS (
    DELETE FROM task_events e
    USING tasks t
    WHERE e.event = 'succeeded' AND t.id = e.task_id AND t.status = 'SUCCESS'
      AND (e.entry_ms, e.entry_seq) = (t.last_event_ms, t.last_event_seq)
    RETURNING e.task_id, e.stream
)
UPDATE tasks t SET stream = moved.stream FROM moved WHERE t.id = moved.task_id;

CREATE VIEW task_event_log AS
SELECT stream, entry_ms, entry_seq, task_id, queue, event, ts, attempt, worker, error, duration_ms, data
FROM task_events
UNION ALL
SELECT t.stream, t.enqueued_entry_ms, t.enqueued_entry_seq, t.id, t.queue, 'enqueued', t.enqueued_at,
       NULL::integer, NULL::text, NULL::text, NULL::bigint, COALESCE(t.enqueued_data, '{}'::jsonb)
FROM tasks t
WHERE t.enqueued_entry_ms IS NOT NULL
UNION ALL
SELECT t.stream, t.last_event_ms, t.last_event_seq, t.id, t.queue, 'succeeded', t.completed_at,
       t.attempts, NULL::text, NULL::text, t.duration_ms, '{}'::jsonb
FROM tasks t
WHERE t.status = 'SUCCESS' AND t.stream IS NOT NULL;
