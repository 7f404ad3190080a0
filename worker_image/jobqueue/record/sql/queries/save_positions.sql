-- Advance stream positions, never back (whatever the order in which transactions commit).
-- consumed is the stream's running total, as the recorder that owns the stream counts it.
INSERT INTO record_positions AS p (stream, entry_ms, entry_seq, consumed)
SELECT * FROM unnest(%(stream)s::text[], %(entry_ms)s::int8[], %(entry_seq)s::int8[], %(consumed)s::int8[])
ON CONFLICT (stream) DO UPDATE
SET entry_ms = excluded.entry_ms, entry_seq = excluded.entry_seq, consumed = excluded.consumed,
    updated_at = now()
WHERE (p.entry_ms, p.entry_seq) < (excluded.entry_ms, excluded.entry_seq)
