-- 0005: stream entries the record could not store (a value PostgreSQL refuses, written by an older
-- producer or by hand) are parked here with the reason, instead of stalling the recorder on them for
-- ever. The recorder bisects a batch that fails for a non-transient reason down to these entries;
-- everything else of the batch is recorded as usual. See docs/guarantees.md ("Payloads").
CREATE TABLE record_rejects (
    stream       text        NOT NULL,
    entry_ms     bigint      NOT NULL,
    entry_seq    bigint      NOT NULL,
    task_id      text,                 -- NULL for a schedule-run entry
    reason       text        NOT NULL, -- the error that refused the entry
    -- the entry's fields as ASCII JSON (NUL and lone surrogates as \u escapes): text, not jsonb, which
    -- is exactly what refused them
    fields       text        NOT NULL,
    rejected_at  timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (stream, entry_ms, entry_seq)
);
