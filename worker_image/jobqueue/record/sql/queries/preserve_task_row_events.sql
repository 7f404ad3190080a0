-- Before task deltas are merged (COPied into staged_tasks_v2 first): 'enqueued' and 'succeeded' events
-- that a task row stands for (0004) get task_events rows of their own when the row will not stand for
-- them after the merge, so task_event_log loses nothing:
--   * the row's 'enqueued', when the delta brings another one;
--   * the row's 'succeeded', when the delta brings a newer event;
--   * the delta's 'succeeded', when the row already holds a newer event.
-- That only happens when one task id has two runs (the enqueue script accepts an id again once its hash
-- expired from Redis), possibly recorded out of order; in the common case this finds nothing. Run by
-- the exact path only (the direct path's upsert refuses such rows). Rows are locked in id order, as the
-- upsert locks them, so what is preserved is what the upsert then changes.
INSERT INTO task_events
    (stream, entry_ms, entry_seq, task_id, queue, event, ts, attempt, duration_ms, data)
SELECT r.stream, r.entry_ms, r.entry_seq, c.id, c.queue, r.event, r.ts, r.attempt, r.duration_ms, r.data
FROM (
    SELECT t.id, t.queue, t.stream, t.enqueued_entry_ms, t.enqueued_entry_seq, t.enqueued_at,
           t.enqueued_data, t.status, t.last_event_ms, t.last_event_seq, t.completed_at, t.attempts,
           t.duration_ms,
           s.stream AS s_stream, s.enqueued_entry_ms AS s_enqueued_ms, s.enqueued_entry_seq AS s_enqueued_seq,
           s.status AS s_status, s.last_event_ms AS s_last_ms, s.last_event_seq AS s_last_seq,
           s.completed_at_ms AS s_completed_at_ms, s.attempts AS s_attempts, s.duration_ms AS s_duration_ms
    -- One index lookup per delta (LATERAL): the staging table has no statistics, and a hash join
    -- would read the whole of tasks for every batch.
    FROM staged_tasks_v2 s CROSS JOIN LATERAL (SELECT * FROM tasks WHERE tasks.id = s.id) t
    WHERE (t.enqueued_entry_ms IS NOT NULL AND s.enqueued_entry_ms IS NOT NULL
           AND (s.enqueued_entry_ms, s.enqueued_entry_seq) <> (t.enqueued_entry_ms, t.enqueued_entry_seq))
       OR (t.status = 'SUCCESS' AND t.stream IS NOT NULL
           AND (s.last_event_ms, s.last_event_seq) > (t.last_event_ms, t.last_event_seq))
       OR (s.status = 'SUCCESS' AND (t.last_event_ms, t.last_event_seq) > (s.last_event_ms, s.last_event_seq))
    ORDER BY t.id
    FOR UPDATE OF t
) c
CROSS JOIN LATERAL (
    SELECT c.stream, c.enqueued_entry_ms AS entry_ms, c.enqueued_entry_seq AS entry_seq,
           'enqueued' AS event, c.enqueued_at AS ts, NULL::integer AS attempt, NULL::bigint AS duration_ms,
           COALESCE(c.enqueued_data, '{}'::jsonb) AS data
    WHERE c.enqueued_entry_ms IS NOT NULL AND c.s_enqueued_ms IS NOT NULL
      AND (c.s_enqueued_ms, c.s_enqueued_seq) <> (c.enqueued_entry_ms, c.enqueued_entry_seq)
    UNION ALL
    SELECT c.stream, c.last_event_ms, c.last_event_seq, 'succeeded', c.completed_at, c.attempts,
           c.duration_ms, '{}'::jsonb
    WHERE c.status = 'SUCCESS' AND c.stream IS NOT NULL
      AND (c.s_last_ms, c.s_last_seq) > (c.last_event_ms, c.last_event_seq)
    UNION ALL
    SELECT c.s_stream, c.s_last_ms, c.s_last_seq, 'succeeded',
           timestamptz 'epoch' + c.s_completed_at_ms * interval '1 millisecond', c.s_attempts,
           c.s_duration_ms, '{}'::jsonb
    WHERE c.s_status = 'SUCCESS' AND (c.last_event_ms, c.last_event_seq) > (c.s_last_ms, c.s_last_seq)
) r
ON CONFLICT DO NOTHING
