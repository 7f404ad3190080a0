-- 0002: schedule runs are written by the recorder from the schedule event stream (one entry per claimed
-- fire, or per group of missed fires). Status is now one of fired, skipped, missed, failed.
ALTER TABLE schedule_runs
    -- status 'missed': how many consecutive fire times, from fire_time on, this row stands for
    ADD COLUMN missed           integer,
    -- Replace policy: the previous task this fire cancelled
    ADD COLUMN replaced_task_id text,
    -- when a scheduler handled the fire (Redis clock); fire_time is when it was due
    ADD COLUMN handled_at       timestamptz;
