-- Where each event stream has been recorded up to: the id of the last entry whose effect is committed,
-- written in the same transaction as the rows of the batch that reached it (docs/record.md).
-- consumed: entries the position has passed since the stream's start (read, or trimmed before being
-- read); NULL when unknown (a position carried over from the consumer group with entries pending).
CREATE TABLE record_positions (
    stream     text PRIMARY KEY,
    entry_ms   bigint NOT NULL,
    entry_seq  bigint NOT NULL,
    consumed   bigint,
    updated_at timestamptz NOT NULL DEFAULT now()
);
