-- Exact path of the recorder: which of the events kept on task rows (0004) were folded before. The
-- 'enqueued' event is the only one that sets enqueued_at; a task succeeds once.
SELECT id, enqueued_at IS NOT NULL, status = 'SUCCESS'
FROM tasks
WHERE id = ANY(%(ids)s::text[])
