-- Retention: each statement deletes at most %(batch)s rows older than %(cutoff)s and is run in its own
-- short transaction until it deletes fewer, so no table is locked for long. Sections are named.

-- name: task_events
DELETE FROM task_events WHERE ctid = ANY(ARRAY(
    SELECT ctid FROM task_events WHERE ts < %(cutoff)s LIMIT %(batch)s))

-- name: tasks
-- Only finished tasks (or rows that never got a status): a task still waiting keeps its record.
DELETE FROM tasks WHERE ctid = ANY(ARRAY(
    SELECT ctid FROM tasks
    WHERE (status IN ('SUCCESS', 'FAILED', 'TIMEOUT', 'CANCELLED', 'EXPIRED') AND completed_at < %(cutoff)s)
       OR (status IS NULL AND recorded_at < %(cutoff)s)
    LIMIT %(batch)s))

-- name: dead_letters
DELETE FROM dead_letters WHERE ctid = ANY(ARRAY(
    SELECT ctid FROM dead_letters WHERE dead_at < %(cutoff)s LIMIT %(batch)s))

-- name: workers
DELETE FROM workers WHERE ctid = ANY(ARRAY(
    SELECT ctid FROM workers WHERE last_heartbeat_at < %(cutoff)s LIMIT %(batch)s))

-- name: schedule_runs
DELETE FROM schedule_runs WHERE ctid = ANY(ARRAY(
    SELECT ctid FROM schedule_runs WHERE fire_time < %(cutoff)s LIMIT %(batch)s))

-- name: metrics_hourly
DELETE FROM metrics_hourly WHERE ctid = ANY(ARRAY(
    SELECT ctid FROM metrics_hourly WHERE bucket < %(cutoff)s LIMIT %(batch)s))

-- name: metrics_daily
DELETE FROM metrics_daily WHERE ctid = ANY(ARRAY(
    SELECT ctid FROM metrics_daily WHERE bucket < %(cutoff)s LIMIT %(batch)s))
