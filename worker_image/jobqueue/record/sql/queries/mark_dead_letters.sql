-- Replays and purges close the dead letters that preceded them.
UPDATE dead_letters dl
SET replayed_at = CASE WHEN u.event = 'replayed' THEN COALESCE(dl.replayed_at, u.at) ELSE dl.replayed_at END,
    purged_at = CASE WHEN u.event = 'purged' THEN COALESCE(dl.purged_at, u.at) ELSE dl.purged_at END
FROM (
    SELECT task_id, event, timestamptz 'epoch' + ts_ms * interval '1 millisecond' AS at
    FROM unnest(%(task_id)b::text[], %(event)b::text[], %(ts_ms)b::bigint[]) AS x(task_id, event, ts_ms)
) AS u
WHERE dl.task_id = u.task_id AND dl.dead_at <= u.at
