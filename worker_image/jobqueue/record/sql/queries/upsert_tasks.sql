-- Merge one folded delta per task (COPied into staged_tasks first) into tasks. Spec fields are set
-- once; state fields follow the newest event (stream position), so a batch committed late by a slower
-- recorder never rolls a task back; counters add up (each event is folded exactly once: only newly inserted events reach this statement).
INSERT INTO tasks AS t (
    id, queue, name, priority, args, kwargs, parents, max_retries, timeout, soft_timeout, enqueued_at, eta,
    status, worker, started_at, completed_at, duration_ms, result, error, traceback, cancel_reason,
    dead_letter_reason, attempts, retries, lost_leases, replays, stream, enqueued_entry_ms, enqueued_entry_seq,
    enqueued_data, last_event_ms, last_event_seq)
SELECT d.id, d.queue, d.name, d.priority, d.args::jsonb, d.kwargs::jsonb, d.parents::jsonb, d.max_retries,
       d.timeout, d.soft_timeout,
       timestamptz 'epoch' + d.enqueued_at_ms * interval '1 millisecond',
       timestamptz 'epoch' + d.eta_ms * interval '1 millisecond',
       d.status, d.worker,
       timestamptz 'epoch' + d.started_at_ms * interval '1 millisecond',
       timestamptz 'epoch' + d.completed_at_ms * interval '1 millisecond',
       d.duration_ms, d.result::jsonb, d.error, d.traceback, d.cancel_reason, d.dead_letter_reason,
       d.attempts, d.retries, d.lost_leases, d.replays, d.stream, d.enqueued_entry_ms, d.enqueued_entry_seq,
       d.enqueued_data::jsonb, d.last_event_ms, d.last_event_seq
FROM staged_tasks_v2 d
ORDER BY d.id
ON CONFLICT (id) DO UPDATE SET
    name = COALESCE(EXCLUDED.name, t.name),
    priority = COALESCE(EXCLUDED.priority, t.priority),
    args = COALESCE(EXCLUDED.args, t.args),
    kwargs = COALESCE(EXCLUDED.kwargs, t.kwargs),
    parents = COALESCE(EXCLUDED.parents, t.parents),
    max_retries = COALESCE(EXCLUDED.max_retries, t.max_retries),
    timeout = COALESCE(EXCLUDED.timeout, t.timeout),
    soft_timeout = COALESCE(EXCLUDED.soft_timeout, t.soft_timeout),
    enqueued_at = COALESCE(EXCLUDED.enqueued_at, t.enqueued_at),
    stream = COALESCE(EXCLUDED.stream, t.stream),
    -- Set by an 'enqueued' event recorded now (never a replay: those are skipped before folding). One
    -- the row stood for before was written to task_events first (preserve_task_row_events.sql).
    enqueued_entry_ms = COALESCE(EXCLUDED.enqueued_entry_ms, t.enqueued_entry_ms),
    enqueued_entry_seq = COALESCE(EXCLUDED.enqueued_entry_seq, t.enqueued_entry_seq),
    enqueued_data = COALESCE(EXCLUDED.enqueued_data, t.enqueued_data),
    status = CASE WHEN (EXCLUDED.last_event_ms, EXCLUDED.last_event_seq) > (t.last_event_ms, t.last_event_seq)
        THEN COALESCE(EXCLUDED.status, t.status) ELSE COALESCE(t.status, EXCLUDED.status) END,
    eta = CASE WHEN (EXCLUDED.last_event_ms, EXCLUDED.last_event_seq) > (t.last_event_ms, t.last_event_seq)
        THEN COALESCE(EXCLUDED.eta, t.eta) ELSE COALESCE(t.eta, EXCLUDED.eta) END,
    worker = CASE WHEN (EXCLUDED.last_event_ms, EXCLUDED.last_event_seq) > (t.last_event_ms, t.last_event_seq)
        THEN COALESCE(EXCLUDED.worker, t.worker) ELSE COALESCE(t.worker, EXCLUDED.worker) END,
    started_at = CASE WHEN (EXCLUDED.last_event_ms, EXCLUDED.last_event_seq) > (t.last_event_ms, t.last_event_seq)
        THEN COALESCE(EXCLUDED.started_at, t.started_at) ELSE COALESCE(t.started_at, EXCLUDED.started_at) END,
    error = CASE WHEN (EXCLUDED.last_event_ms, EXCLUDED.last_event_seq) > (t.last_event_ms, t.last_event_seq)
        THEN COALESCE(EXCLUDED.error, t.error) ELSE COALESCE(t.error, EXCLUDED.error) END,
    traceback = CASE WHEN (EXCLUDED.last_event_ms, EXCLUDED.last_event_seq) > (t.last_event_ms, t.last_event_seq)
        THEN COALESCE(EXCLUDED.traceback, t.traceback) ELSE COALESCE(t.traceback, EXCLUDED.traceback) END,
    cancel_reason = CASE WHEN (EXCLUDED.last_event_ms, EXCLUDED.last_event_seq) > (t.last_event_ms, t.last_event_seq)
        THEN COALESCE(EXCLUDED.cancel_reason, t.cancel_reason)
        ELSE COALESCE(t.cancel_reason, EXCLUDED.cancel_reason) END,
    -- A replay starts the task over: a newer delta that contains one replaces the outcome outright.
    completed_at = CASE
        WHEN (EXCLUDED.last_event_ms, EXCLUDED.last_event_seq) > (t.last_event_ms, t.last_event_seq)
            AND EXCLUDED.replays > 0 THEN EXCLUDED.completed_at
        WHEN (EXCLUDED.last_event_ms, EXCLUDED.last_event_seq) > (t.last_event_ms, t.last_event_seq)
            THEN COALESCE(EXCLUDED.completed_at, t.completed_at)
        ELSE COALESCE(t.completed_at, EXCLUDED.completed_at) END,
    duration_ms = CASE
        WHEN (EXCLUDED.last_event_ms, EXCLUDED.last_event_seq) > (t.last_event_ms, t.last_event_seq)
            AND EXCLUDED.replays > 0 THEN EXCLUDED.duration_ms
        WHEN (EXCLUDED.last_event_ms, EXCLUDED.last_event_seq) > (t.last_event_ms, t.last_event_seq)
            THEN COALESCE(EXCLUDED.duration_ms, t.duration_ms)
        ELSE COALESCE(t.duration_ms, EXCLUDED.duration_ms) END,
    result = CASE
        WHEN (EXCLUDED.last_event_ms, EXCLUDED.last_event_seq) > (t.last_event_ms, t.last_event_seq)
            AND EXCLUDED.replays > 0 THEN EXCLUDED.result
        WHEN (EXCLUDED.last_event_ms, EXCLUDED.last_event_seq) > (t.last_event_ms, t.last_event_seq)
            THEN COALESCE(EXCLUDED.result, t.result)
        ELSE COALESCE(t.result, EXCLUDED.result) END,
    dead_letter_reason = CASE
        WHEN (EXCLUDED.last_event_ms, EXCLUDED.last_event_seq) > (t.last_event_ms, t.last_event_seq)
            AND EXCLUDED.replays > 0 THEN EXCLUDED.dead_letter_reason
        WHEN (EXCLUDED.last_event_ms, EXCLUDED.last_event_seq) > (t.last_event_ms, t.last_event_seq)
            THEN COALESCE(EXCLUDED.dead_letter_reason, t.dead_letter_reason)
        ELSE COALESCE(t.dead_letter_reason, EXCLUDED.dead_letter_reason) END,
    attempts = GREATEST(t.attempts, EXCLUDED.attempts),
    retries = t.retries + EXCLUDED.retries,
    lost_leases = t.lost_leases + EXCLUDED.lost_leases,
    replays = t.replays + EXCLUDED.replays,
    last_event_ms = GREATEST(t.last_event_ms, EXCLUDED.last_event_ms),
    last_event_seq = CASE WHEN (EXCLUDED.last_event_ms, EXCLUDED.last_event_seq) > (t.last_event_ms, t.last_event_seq)
        THEN EXCLUDED.last_event_seq ELSE t.last_event_seq END,
    recorded_at = now()
-- The direct path (direct = true) only merges into rows older than the delta and not finished with success:
-- any other row is left alone, which the recorder sees in the row count and retries by the exact path.
WHERE NOT %(direct)s
   OR (t.status IS DISTINCT FROM 'SUCCESS'
       AND (EXCLUDED.last_event_ms, EXCLUDED.last_event_seq) > (t.last_event_ms, t.last_event_seq))
