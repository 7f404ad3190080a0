-- Exact path of the recorder: which of these events kept on task rows (0004) were recorded before: the
-- task row stands for it at its position, or it has a task_events row (recorded before 0004, or written
-- by preserve_task_row_events). Returns those (task id, entry ms, entry seq).
SELECT k.task_id, k.entry_ms, k.entry_seq
FROM unnest(%(task_ids)s::text[], %(events)s::text[], %(entry_ms)s::bigint[], %(entry_seq)s::bigint[],
            %(streams)s::text[]) AS k(task_id, event, entry_ms, entry_seq, stream)
LEFT JOIN tasks t ON t.id = k.task_id
WHERE (k.event = 'enqueued' AND (t.enqueued_entry_ms, t.enqueued_entry_seq) = (k.entry_ms, k.entry_seq))
   OR (k.event = 'succeeded' AND t.status = 'SUCCESS'
       AND (t.last_event_ms, t.last_event_seq) = (k.entry_ms, k.entry_seq))
   OR EXISTS (SELECT 1 FROM task_events e
              WHERE (e.task_id, e.entry_ms, e.entry_seq, e.stream) = (k.task_id, k.entry_ms, k.entry_seq, k.stream))
