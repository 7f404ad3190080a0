-- Direct path of the recorder: is any of these tasks recorded as succeeded already? A task succeeds
-- once, and its 'succeeded' event has no task_events row (0004), so its row is what refuses a replay.
SELECT 1 FROM tasks WHERE id = ANY(%(ids)s::text[]) AND status = 'SUCCESS' LIMIT 1
