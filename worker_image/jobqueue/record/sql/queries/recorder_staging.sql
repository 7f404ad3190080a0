-- Per-connection staging tables of the recorder: a batch is COPied in (binary), then merged into the
-- real tables with one statement each. Emptied at every commit; created once per connection.
-- (staged_tasks_v2: migration 0004 added columns; a new name, so no connection keeps an old shape.)
CREATE TEMP TABLE IF NOT EXISTS staged_events (
    stream text, entry_ms bigint, entry_seq bigint, task_id text, queue text, event text, ts_ms bigint,
    attempt integer, worker text, error text, duration_ms bigint, data text
) ON COMMIT DELETE ROWS;
CREATE TEMP TABLE IF NOT EXISTS staged_tasks_v2 (
    id text, queue text, name text, priority text, args text, kwargs text, parents text,
    max_retries integer, timeout float8, soft_timeout float8, enqueued_at_ms bigint, eta_ms bigint,
    status text, worker text, started_at_ms bigint, completed_at_ms bigint, duration_ms bigint,
    result text, error text, traceback text, cancel_reason text, dead_letter_reason text,
    attempts integer, retries integer, lost_leases integer, replays integer, stream text,
    enqueued_entry_ms bigint, enqueued_entry_seq bigint, enqueued_data text,
    last_event_ms bigint, last_event_seq bigint
) ON COMMIT DELETE ROWS;
