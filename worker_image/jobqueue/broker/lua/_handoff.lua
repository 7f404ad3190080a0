-- Hand-off: enqueue gives a task that is ready now straight to a parked worker (--@include _handoff; needs
-- _flow and _lease, which it includes). A worker that found its queue empty parks: fetch.lua registers it
-- in the queue's parked hash (worker id -> jq_parked_entry below) and the worker blocks on its own inbox
-- list. Handing off leases the task exactly as fetch.lua would (same fencing token, lease, held set,
-- started event, counters, flow control) and pushes its fetch record into that inbox, so the worker's
-- blocking pop returns a leased task: no fetch round trip between enqueue and start.
-- Only when nothing waits ahead of the task (every ready list empty, no due delayed task): otherwise the
-- task queues as usual and priorities and FIFO order are those of fetch.
-- A parked worker that died keeps its entry until it expires (the worker refreshes it at least every idle
-- re-check); a task handed to it in that window is recovered when its lease expires, like any lease of a
-- dead worker, and its inbox expires with the lease.
-- Keys: the queue's keys come in the caller's KEYS (``hk`` below). The parked worker is only chosen here,
-- so its inbox and held set cannot be in KEYS: fetch.lua, which had them in its KEYS, stores them in the
-- worker's parked entry. No key is assembled from strings in this file.
--@include _flow
--@include _lease

-- A parked entry: "<expires ms> <lease ms> <capacity> <inbox key length> <inbox key><held set key>". The
-- length makes any bytes in a key (a worker id with spaces) unambiguous.
local function jq_parked_entry(expires, lease_ms, capacity, inbox, held)
  return expires .. ' ' .. lease_ms .. ' ' .. capacity .. ' ' .. #inbox .. ' ' .. inbox .. held
end

-- The fields of a parked entry as numbers and keys, or nil when it is malformed (or of an earlier layout).
local function jq_parse_parked(entry)
  local expires, lease_ms, capacity, n, from = string.match(entry or '', '^(%d+) (%d+) (%d+) (%d+) ()')
  if not expires then
    return nil
  end
  n = tonumber(n)
  local inbox, held = string.sub(entry, from, from + n - 1), string.sub(entry, from + n)
  if #inbox ~= n or held == '' then
    return nil
  end
  return tonumber(expires), tonumber(lease_ms), tonumber(capacity), inbox, held
end

-- Try to hand task ``id`` (just written QUEUED, not yet in a ready list) to a parked worker. Returns true
-- when it was leased and pushed to a worker's inbox (the caller then neither queues it nor wakes anyone).
-- ``hk``: the queue's keys {parked, high, medium, low, delayed, leases, rate, config, events, stats}.
local function jq_handoff(hk, task_key, id, now, events_max)
  -- The busy path has nobody parked: one command and out. A random parked worker spreads hand-offs; its
  -- entry comes in the same reply (field, value), not in an HGET of its own.
  local picked = redis.call('HRANDFIELD', hk.parked, 1, 'WITHVALUES')
  if #picked == 0 then
    return false
  end
  -- Redis deletes a list when its last element goes: one EXISTS tells whether any ready list holds a task
  -- (three LLENs did; each redis.call costs several microseconds on the task's path when Redis was idle).
  if redis.call('EXISTS', hk.high, hk.medium, hk.low) > 0 then
    return false
  end
  local first_delayed = redis.call('ZRANGE', hk.delayed, 0, 0, 'WITHSCORES')
  if first_delayed[2] and tonumber(first_delayed[2]) <= now then
    return false
  end
  -- An expired or malformed entry is dropped and another worker tried.
  local worker = picked[1]
  local expires, lease_ms, capacity, inbox, held
  for _ = 1, 3 do
    local e, lms, cap, ib, hs = jq_parse_parked(picked[2])
    if e and e > now and cap > 0 then
      expires, lease_ms, capacity, inbox, held = e, lms, cap, ib, hs
      break
    end
    redis.call('HDEL', hk.parked, worker)
    picked = redis.call('HRANDFIELD', hk.parked, 1, 'WITHVALUES')
    if #picked == 0 then
      return false
    end
    worker = picked[1]
  end
  if not lease_ms then
    return false
  end
  local cfg = jq_flow_config(hk.config)
  -- A queue with per-priority limits queues the task instead: the level's limit state is not among the
  -- caller's KEYS, and the fetch that takes it applies every limit.
  if jq_has_level_limits(cfg) then
    return false
  end
  local allowed, _, gcra = jq_flow_allowance(cfg, hk.leases, hk.rate, now, 1)
  if allowed < 1 then
    return false
  end
  local record = jq_lease(task_key, id, worker, now, hk.events, events_max)
  if not record then
    return false
  end
  redis.call('ZADD', hk.leases, now + lease_ms, id)
  -- The worker's held set, as fetch.lua keeps it for what it leases.
  redis.call('SADD', held, id)
  redis.call('PEXPIRE', held, 2 * lease_ms)
  jq_flow_commit(hk.rate, gcra, 1, now)
  redis.call('HINCRBY', hk.stats, 'started', 1)
  redis.call('HINCRBY', hk.stats, 'handed_off', 1)
  -- The worker stays parked while it has capacity left; it learns how much from the record.
  capacity = capacity - 1
  if capacity > 0 then
    redis.call('HSET', hk.parked, worker, jq_parked_entry(expires, lease_ms, capacity, inbox, held))
  else
    redis.call('HDEL', hk.parked, worker)
  end
  record[#record + 1] = capacity
  redis.call('RPUSH', inbox, cjson.encode(record))
  redis.call('PEXPIRE', inbox, lease_ms)
  return true
end
