-- 0003: cheaper task_events for the recorder (measured with bench/recorder_cost.py, see docs/record.md).
-- Each event row used to maintain three btrees: the (stream, entry id) primary key, (task_id, entry id)
-- for a task's history and (ts) for windows, rollups and retention. Now:
--   * one btree, the primary key (task_id, entry_ms, entry_seq, stream): a stream entry belongs to exactly
--     one task, so it is as unique as (stream, entry id) and stays the idempotency key of the recorder,
--     and its prefix serves a task's history in stream order. Task ids are '<queue>.<uuid7>', so new
--     keys land near each other (time ordered) rather than all over the index;
--   * a BRIN index on ts: events arrive in roughly time order, so block ranges summarise it well, it
--     costs next to nothing per insert, and the ts range scans (window_stats, rollup, retention) use it.
-- Rebuilding the key takes a lock on task_events for the time of one index build (run it in a quiet
-- moment on a large record; recorders wait, nothing is lost: events stay in Redis until recorded).
ALTER TABLE task_events DROP CONSTRAINT task_events_pkey;
ALTER TABLE task_events ADD CONSTRAINT task_events_pkey PRIMARY KEY (task_id, entry_ms, entry_seq, stream);
DROP INDEX task_events_task;
DROP INDEX task_events_ts;
CREATE INDEX task_events_ts ON task_events USING brin (ts);
