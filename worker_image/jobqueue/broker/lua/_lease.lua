-- Leasing one task to a worker, shared by fetch.lua and _handoff.lua (--@include _lease), so a task handed
-- to a parked worker by enqueue carries exactly the lease a fetch would have given it.
-- Lease one ready id if it is still QUEUED: set the fencing token (the attempt number), status RUNNING,
-- the worker and started_at, and append the 'started' event. The caller adds the id to the lease zset.
-- Returns the 15 reply values of the task (id, token, name, args, kwargs, priority, timeout,
-- soft_timeout, max_retries, retries, enqueued_at, lost_leases, result_ttl, queue_wait_ms, headers), or
-- nil and
-- whether the task hash is missing (any other status, CANCELLED, ..., is a stale entry to drop).
local function jq_lease(key, id, worker, now, events_key, events_max)
  local f = redis.call('HMGET', key, 'status', 'name', 'args', 'kwargs', 'priority', 'timeout',
    'soft_timeout', 'max_retries', 'retries', 'enqueued_at', 'lost_leases', 'result_ttl', 'attempts',
    'eta', 'ready_at', 'headers')
  if f[1] ~= 'QUEUED' then
    return nil, f[1] == false
  end
  -- The fencing token is the attempt number: read above, so one write sets it with the rest.
  local token = (tonumber(f[13]) or 0) + 1
  redis.call('HSET', key, 'attempts', token, 'status', 'RUNNING', 'worker', worker, 'started_at', now)
  redis.call('XADD', events_key, 'MAXLEN', '~', events_max, '*', 'id', id, 'event', 'started', 'ts', now,
    'token', token, 'worker', worker)
  local record = {id, token}
  for i = 2, 12 do
    record[#record + 1] = f[i] or ''
  end
  -- Queue wait on the Redis clock: since the task last became ready (enqueue, eta, hand-back, retry).
  local ready_since = math.max(tonumber(f[10]) or 0, tonumber(f[14]) or 0, tonumber(f[15]) or 0)
  record[#record + 1] = ready_since > 0 and math.max(0, now - ready_since) or ''
  record[#record + 1] = f[16] or ''
  return record, false
end
