-- 0001: the durable record. Written only by the recorder (from the Redis event stream) and by
-- rollup / retention jobs; read by the API. Forward-only: later changes go in new numbered files.

-- One row per task: its spec (from the 'enqueued' event) and its latest state.
CREATE TABLE tasks (
    id                 text PRIMARY KEY,
    queue              text NOT NULL,
    name               text,            -- NULL only when the 'enqueued' event was never recorded
    priority           text,
    status             text,            -- TaskStatus value; NULL as long as no status event was recorded
    args               jsonb,
    kwargs             jsonb,
    result             jsonb,
    error              text,            -- last error ("Type: message")
    traceback          text,
    attempts           integer NOT NULL DEFAULT 0,
    max_retries        integer,
    retries            integer NOT NULL DEFAULT 0,   -- every retry recorded, including before a reset replay
    lost_leases        integer NOT NULL DEFAULT 0,
    replays            integer NOT NULL DEFAULT 0,
    parents            jsonb,
    worker             text,
    cancel_reason      text,
    dead_letter_reason text,
    timeout            double precision,
    soft_timeout       double precision,
    enqueued_at        timestamptz,
    eta                timestamptz,
    started_at         timestamptz,     -- start of the last attempt
    completed_at       timestamptz,
    duration_ms        bigint,          -- run time of the last finished attempt
    -- Stream position of the newest event applied: an older event recorded late never overwrites the
    -- state a newer one set (several recorders may commit batches of one stream out of order).
    last_event_ms      bigint NOT NULL,
    last_event_seq     bigint NOT NULL,
    recorded_at        timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX tasks_enqueued_at ON tasks (enqueued_at);
CREATE INDEX tasks_completed_at ON tasks (completed_at);
CREATE INDEX tasks_status_enqueued_at ON tasks (status, enqueued_at);
CREATE INDEX tasks_name_enqueued_at ON tasks (name, enqueued_at);

-- Every transition, exactly once: the stream entry (stream key + entry id) is the idempotency key.
CREATE TABLE task_events (
    stream       text NOT NULL,
    entry_ms     bigint NOT NULL,
    entry_seq    bigint NOT NULL,
    task_id      text NOT NULL,
    queue        text NOT NULL,
    event        text NOT NULL,
    ts           timestamptz NOT NULL,     -- Redis server clock
    attempt      integer,                  -- fencing token of the attempt, when the event has one
    worker       text,
    error        text,
    duration_ms  bigint,
    data         jsonb NOT NULL DEFAULT '{}'::jsonb,   -- remaining event fields (reason, backoff_ms, ...)
    recorded_at  timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (stream, entry_ms, entry_seq)
);
CREATE INDEX task_events_task ON task_events (task_id, entry_ms, entry_seq);
CREATE INDEX task_events_ts ON task_events (ts);

-- One row per time a task was dead-lettered (a replayed task may die again).
CREATE TABLE dead_letters (
    task_id      text NOT NULL,
    dead_at      timestamptz NOT NULL,
    queue        text NOT NULL,
    name         text,
    status       text NOT NULL,            -- FAILED or TIMEOUT
    reason       text,
    error        text,
    attempt      integer,
    replayed_at  timestamptz,
    purged_at    timestamptz,
    PRIMARY KEY (task_id, dead_at)
);
CREATE INDEX dead_letters_dead_at ON dead_letters (dead_at);
CREATE INDEX dead_letters_queue_dead_at ON dead_letters (queue, dead_at);

-- Last known state of each worker, snapshotted from the heartbeats in Redis.
CREATE TABLE workers (
    id                 text PRIMARY KEY,
    host               text,
    pid                integer,
    queues             text[],
    concurrency        integer,
    status             text,
    processed          bigint,
    started_at         timestamptz,
    last_heartbeat_at  timestamptz NOT NULL,
    first_seen_at      timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX workers_last_heartbeat_at ON workers (last_heartbeat_at);

-- One row per cron fire (the claim key of the scheduler is (schedule, fire_time)).
CREATE TABLE schedule_runs (
    schedule     text NOT NULL,
    fire_time    timestamptz NOT NULL,
    task_id      text,
    status       text NOT NULL,            -- fired, skipped, missed
    detail       text,
    recorded_at  timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (schedule, fire_time)
);
CREATE INDEX schedule_runs_fire_time ON schedule_runs (fire_time);

-- Metric aggregates per (bucket, queue, task name); recomputed whole from the raw rows, so a rollup is
-- idempotent and may run in several processes. Kept longer than the raw rows.
CREATE TABLE metrics_hourly (
    bucket          timestamptz NOT NULL,
    queue           text NOT NULL,
    name            text NOT NULL,
    enqueued        bigint NOT NULL,
    succeeded       bigint NOT NULL,
    failed          bigint NOT NULL,
    cancelled       bigint NOT NULL,
    retried         bigint NOT NULL,
    duration_count  bigint NOT NULL,
    duration_avg_ms double precision,
    duration_p50_ms double precision,
    duration_p95_ms double precision,
    duration_p99_ms double precision,
    duration_max_ms double precision,
    computed_at     timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (bucket, queue, name)
);
CREATE TABLE metrics_daily (LIKE metrics_hourly INCLUDING ALL);
