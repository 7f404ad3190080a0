-- Every recorded transition of one task, in stream order.
SELECT event, ts, attempt, worker, error, duration_ms, data
FROM task_event_log
WHERE task_id = %(id)s
ORDER BY entry_ms, entry_seq
