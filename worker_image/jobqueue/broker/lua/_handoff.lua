-- Hand-off: enqueue gives a task that is ready now straight to a parked worker (--@include _handoff; needs
-- _flow and _lease, which it includes). A worker that found its queue empty parks: fetch.lua registers it
-- in the queue's parked hash (worker id -> "<expires ms> <lease ms> <capacity>") and the worker blocks on
-- its own inbox list. Handing off leases the task exactly as fetch.lua would (same fencing token, lease,
-- started event, counters, flow control) and pushes its fetch record into that inbox, so the worker's
-- blocking pop returns a leased task: no fetch round trip between enqueue and start.
-- Only when nothing waits ahead of the task (every ready list empty, no due delayed task): otherwise the
-- task queues as usual and priorities and FIFO order are those of fetch.
-- A parked worker that died keeps its entry until it expires (the worker refreshes it at least every idle
-- re-check); a task handed to it in that window is recovered when its lease expires, like any lease of a
-- dead worker, and its inbox expires with the lease.
--@include _flow
--@include _lease

-- The keys of a queue share one base (keys.QueueKeys); the wake list is "<base>:wake". The parked worker
-- is only known inside the script, hence keys derived from the base (all in the queue's hash slot).
local function jq_queue_key(wake_key, name)
  return string.sub(wake_key, 1, -6) .. ':' .. name
end

-- Try to hand task ``id`` (just written QUEUED, not yet in a ready list) to a parked worker. Returns true
-- when it was leased and pushed to a worker's inbox (the caller then neither queues it nor wakes anyone).
local function jq_handoff(wake_key, task_key, id, now, events_max)
  local parked = jq_queue_key(wake_key, 'parked')
  -- The busy path has nobody parked: one command and out.
  local worker = redis.call('HRANDFIELD', parked)
  if not worker then
    return false
  end
  if redis.call('LLEN', jq_queue_key(wake_key, 'ready:high')) > 0
      or redis.call('LLEN', jq_queue_key(wake_key, 'ready:medium')) > 0
      or redis.call('LLEN', jq_queue_key(wake_key, 'ready:low')) > 0 then
    return false
  end
  local first_delayed = redis.call('ZRANGE', jq_queue_key(wake_key, 'delayed'), 0, 0, 'WITHSCORES')
  if first_delayed[2] and tonumber(first_delayed[2]) <= now then
    return false
  end
  -- A random parked worker spreads hand-offs; an expired or malformed entry is dropped and another tried.
  local lease_ms, capacity
  for _ = 1, 3 do
    local entry = redis.call('HGET', parked, worker)
    local expires, lms, cap = string.match(entry or '', '^(%d+) (%d+) (%d+)$')
    if expires and tonumber(expires) > now and tonumber(cap) > 0 then
      lease_ms, capacity = tonumber(lms), tonumber(cap)
      break
    end
    redis.call('HDEL', parked, worker)
    worker = redis.call('HRANDFIELD', parked)
    if not worker then
      return false
    end
  end
  if not lease_ms then
    return false
  end
  local leases, rate = jq_queue_key(wake_key, 'leases'), jq_queue_key(wake_key, 'rate')
  local allowed, _, gcra = jq_flow_allowance(jq_flow_config(jq_queue_key(wake_key, 'config')), leases, rate,
    now, 1)
  if allowed < 1 then
    return false
  end
  local record = jq_lease(task_key, id, worker, now, jq_queue_key(wake_key, 'events'), events_max)
  if not record then
    return false
  end
  redis.call('ZADD', leases, now + lease_ms, id)
  jq_flow_commit(rate, gcra, 1, now)
  local stats = jq_queue_key(wake_key, 'stats')
  redis.call('HINCRBY', stats, 'started', 1)
  redis.call('HINCRBY', stats, 'handed_off', 1)
  -- The worker stays parked while it has capacity left; it learns how much from the record.
  capacity = capacity - 1
  if capacity > 0 then
    redis.call('HSET', parked, worker, string.match(redis.call('HGET', parked, worker), '^%d+ %d+ ')
      .. capacity)
  else
    redis.call('HDEL', parked, worker)
  end
  record[#record + 1] = capacity
  -- The worker's held set (keys.QueueKeys.held), as fetch.lua keeps it for what it leases.
  local held = jq_queue_key(wake_key, 'held:' .. worker)
  redis.call('SADD', held, id)
  redis.call('PEXPIRE', held, 2 * lease_ms)
  local inbox = jq_queue_key(wake_key, 'inbox:' .. worker)
  redis.call('RPUSH', inbox, cjson.encode(record))
  redis.call('PEXPIRE', inbox, lease_ms)
  return true
end
