-- Record a batch of schedule-run events. (schedule, fire_time) is the scheduler's claim key, so each
-- fire time has exactly one outcome: a replayed entry (crash before XACK, claimed by another recorder)
-- finds its row and is skipped. Returns the rows inserted now.
INSERT INTO schedule_runs (schedule, fire_time, task_id, status, detail, missed, replaced_task_id, handled_at)
SELECT r.schedule, timestamptz 'epoch' + r.fire_ms * interval '1 millisecond', r.task_id, r.status,
       r.detail, r.missed, r.replaced_task_id, timestamptz 'epoch' + r.ts_ms * interval '1 millisecond'
FROM unnest(
    %(schedule)b::text[], %(fire_ms)b::bigint[], %(task_id)b::text[], %(status)b::text[],
    %(detail)b::text[], %(missed)b::integer[], %(replaced_task_id)b::text[], %(ts_ms)b::bigint[]
) AS r(schedule, fire_ms, task_id, status, detail, missed, replaced_task_id, ts_ms)
ORDER BY r.schedule, r.fire_ms
ON CONFLICT (schedule, fire_time) DO NOTHING
RETURNING schedule
