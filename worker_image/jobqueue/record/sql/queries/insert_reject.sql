INSERT INTO record_rejects (stream, entry_ms, entry_seq, task_id, reason, fields)
VALUES (%(stream)s, %(entry_ms)s, %(entry_seq)s, %(task_id)s, %(reason)s, %(fields)s)
ON CONFLICT (stream, entry_ms, entry_seq) DO NOTHING
