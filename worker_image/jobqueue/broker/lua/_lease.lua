-- Leasing one task to a worker, shared by fetch.lua and _handoff.lua (--@include _lease), so a task handed
-- to a parked worker by enqueue carries exactly the lease a fetch would have given it.
-- Lease one ready id if it is still QUEUED: set the fencing token (the attempt number), status RUNNING,
-- the worker and started_at, and append the 'started' event. The caller adds the id to the lease zset.
-- Returns the 15 reply values of the task (id, token, name, args, kwargs, priority, timeout,
-- soft_timeout, max_retries, retries, enqueued_at, lost_leases, result_ttl, queue_wait_ms, headers), or
-- nil and
-- whether the task hash is missing (any other status, CANCELLED, ..., is a stale entry to drop).
--
-- Expiry is decided here, the one place every start goes through, so an expired task never reaches user
-- code: a task whose expires_at (its own, absolute, unix ms) has passed, or which waited longer than its
-- queue's expires_ms since it was enqueued, ends EXPIRED instead of RUNNING. ``exp`` = {queue_ms, stats,
-- done_prefix} does that (fetch.lua); nil (the hand-off) leaves an expired task QUEUED and reports it
-- (third value true) so the caller queues it and the next fetch ends it with all the bookkeeping.
--@include _workflow
local function jq_expire(key, id, f, now, exp, events_key, events_max)
  local ttl = tonumber(f[12]) or 86400
  redis.call('HSET', key, 'status', 'EXPIRED', 'completed_at', now)
  redis.call('HDEL', key, 'worker')
  redis.call('EXPIRE', key, ttl)
  redis.call('HINCRBY', exp.stats, 'expired', 1)
  exp.n = exp.n + 1
  redis.call('XADD', events_key, 'MAXLEN', '~', events_max, '*', 'id', id, 'event', 'expired', 'ts', now)
  if f[17] then redis.call('PUBLISH', exp.done_prefix .. id, 'EXPIRED') end
  jq_release_unique(key, id)
  -- It will never succeed: its PENDING descendants are cancelled as a failed parent's are. The child list
  -- key was stored on this hash by the enqueue that registered a child (data, not built here).
  local children = f[18]
  jq_cancel_descendants(key, children, now, events_max)
  if children then redis.call('EXPIRE', children, ttl) end
end

local function jq_lease(key, id, worker, now, events_key, events_max, exp)
  local f = redis.call('HMGET', key, 'status', 'name', 'args', 'kwargs', 'priority', 'timeout',
    'soft_timeout', 'max_retries', 'retries', 'enqueued_at', 'lost_leases', 'result_ttl', 'attempts',
    'eta', 'ready_at', 'expires_at', 'watched', 'children_key',
    'headers')
  if f[1] ~= 'QUEUED' then
    return nil, f[1] == false
  end
  local expires_at = tonumber(f[16])
  if not expires_at and exp and exp.queue_ms and tonumber(f[10]) then
    expires_at = tonumber(f[10]) + exp.queue_ms
  end
  if expires_at and now >= expires_at then
    if exp then
      jq_expire(key, id, f, now, exp, events_key, events_max)
    end
    return nil, false, true
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
  record[#record + 1] = f[19] or ''
  return record, false
end
