-- Snapshot of worker heartbeats from Redis; a newer heartbeat wins.
INSERT INTO workers AS w (id, host, pid, queues, concurrency, status, processed, started_at, last_heartbeat_at)
SELECT x.id, x.host, x.pid, string_to_array(x.queues, ','), x.concurrency, x.status, x.processed,
       to_timestamp(x.started_at), to_timestamp(x.heartbeat_at)
FROM unnest(%(id)b::text[], %(host)b::text[], %(pid)b::integer[], %(queues)b::text[],
            %(concurrency)b::integer[], %(status)b::text[], %(processed)b::bigint[],
            %(started_at)b::float8[], %(heartbeat_at)b::float8[])
     AS x(id, host, pid, queues, concurrency, status, processed, started_at, heartbeat_at)
ORDER BY x.id
ON CONFLICT (id) DO UPDATE SET
    host = EXCLUDED.host, pid = EXCLUDED.pid, queues = EXCLUDED.queues,
    concurrency = EXCLUDED.concurrency, status = EXCLUDED.status, processed = EXCLUDED.processed,
    started_at = EXCLUDED.started_at, last_heartbeat_at = EXCLUDED.last_heartbeat_at
WHERE EXCLUDED.last_heartbeat_at >= w.last_heartbeat_at
