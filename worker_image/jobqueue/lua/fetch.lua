--[[ fetch: promote due delayed tasks, then lease up to N ready tasks in one call.
Flow control is decided here, atomically for every worker: pause, max in-flight and the rate limit.
KEYS[1] ready high   KEYS[2] ready medium   KEYS[3] ready low
KEYS[4] delayed zset KEYS[5] lease zset     KEYS[6] wake list
KEYS[7] config hash  KEYS[8] event stream   KEYS[9] stats hash
KEYS[10] rate-limit state (GCRA hash: tat, interval)
ARGV[1] max tasks    ARGV[2] worker id      ARGV[3] lease duration ms
ARGV[4] task key prefix (task keys share the queue's hash tag, so they live on the same cluster slot;
        the ids are only known inside the script, hence the prefix rather than KEYS)
ARGV[5] event stream max length            ARGV[6] max delayed tasks promoted per call
Returns {wait_ms, next_due_ms, count, then per task 14 values:
         id, token, name, args, kwargs, priority, timeout, soft_timeout, max_retries, retries,
         enqueued_at, lost_leases, result_ttl, queue_wait_ms}
queue_wait_ms: now minus when the task last became ready (the latest of enqueued_at, eta and ready_at,
which release / recover / a workflow release set), '' if unknown.
wait_ms: -1 when tasks were handed out or none are ready; otherwise how long flow control says to wait
(-2 = paused, -3 = max in-flight reached). next_due_ms: milliseconds until the earliest delayed task
is due, or -1. With ARGV[1] = 0 the call only promotes (the scheduler does that).
Config fields read (written by configure.lua): paused, max_in_flight, rate_limit, rate_period_ms,
rate_burst, rate_enabled ('0' = off), priority_policy ('strict' | 'weighted'), weights (JSON [h, m, l]). ]]
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local prefix = ARGV[4]
local ready = {high = KEYS[1], medium = KEYS[2], low = KEYS[3]}

-- 1. Promote due delayed tasks (bounded per call, O(log n + k)).
local due = redis.call('ZRANGEBYSCORE', KEYS[4], '-inf', now, 'LIMIT', 0, tonumber(ARGV[6]))
for _, id in ipairs(due) do
  local key = prefix .. id
  local st = redis.call('HMGET', key, 'status', 'priority')
  redis.call('ZREM', KEYS[4], id)
  if st[1] == 'DELAYED' or st[1] == 'RETRYING' then
    redis.call('HSET', key, 'status', 'QUEUED')
    redis.call('RPUSH', ready[st[2]] or KEYS[2], id)
  end
end
local next_due = -1
local first = redis.call('ZRANGE', KEYS[4], 0, 0, 'WITHSCORES')
if first[2] then
  next_due = math.max(0, tonumber(first[2]) - now)
end

-- 2. Flow control.
local cfg = redis.call('HMGET', KEYS[7], 'paused', 'max_in_flight', 'rate_limit', 'rate_period_ms',
  'rate_burst', 'priority_policy', 'weights', 'rate_enabled')
if cfg[1] == '1' then
  return {-2, next_due, 0}
end
local requested = tonumber(ARGV[1])
local want = requested
local max_in_flight = tonumber(cfg[2] or '0') or 0
if max_in_flight > 0 then
  local room = max_in_flight - redis.call('ZCARD', KEYS[5])
  if room <= 0 then
    return {-3, next_due, 0}
  end
  if room < want then want = room end
end
-- Rate limit as GCRA: the state hash holds one "theoretical arrival time" (tat) and the interval it was
-- counted in; burst tasks may start at once, then one per interval. Tokens are only consumed for tasks
-- actually handed out (below).
local limit = tonumber(cfg[3] or '0') or 0
if cfg[8] == '0' then limit = 0 end
local interval, tat, tolerance = 0, 0, 0
if limit > 0 then
  local period = tonumber(cfg[4] or '') or 1000
  if period <= 0 then period = 1000 end
  interval = period / limit
  local burst = tonumber(cfg[5] or '1') or 1
  if burst < 1 then burst = 1 end
  tolerance = (burst - 1) * interval
  local state = redis.pcall('HMGET', KEYS[10], 'tat', 'interval')
  if state.err then
    -- State left by an older version as a plain string: drop it (at worst one burst more is allowed).
    redis.call('DEL', KEYS[10])
    state = {false, false}
  end
  tat = tonumber(state[1] or '0') or 0
  local counted_in = tonumber(state[2] or '0') or 0
  -- The debt ahead of now is a number of starts: when the limit changed since it was counted, re-express
  -- it in the new interval, so a new limit takes effect at once (an old 1/min debt must not hold back a
  -- new 100/s limit for a minute) while the starts already made still count.
  if counted_in > 0 and counted_in ~= interval and tat > now then
    tat = now + (tat - now) * interval / counted_in
    -- Persist at once: re-expressing the old timestamp on every call would keep it from draining.
    redis.call('HSET', KEYS[10], 'tat', tat, 'interval', interval)
    redis.call('PEXPIRE', KEYS[10], math.ceil(tat - now) + 1000)
  end
  if tat < now then tat = now end
  -- The epsilon absorbs floating error of fractional intervals (e.g. 60000 / 7 ms).
  local allowed = math.floor((tolerance - (tat - now)) / interval + 1e-9) + 1
  if allowed <= 0 then
    return {math.max(1, math.ceil(tat - tolerance - now)), next_due, 0}
  end
  if allowed < want then want = allowed end
end

-- 3. Lease.
local weights, total, cursor = nil, 0, 0
if cfg[6] == 'weighted' then
  -- Weighted (opt-in): a deterministic rotation over the weights (e.g. 6:3:1) picks the level tried first
  -- for each slot, so low priority gets its share under a flood of high; empty levels fall through.
  -- Malformed weights (written by hand) fall back to strict rather than failing every fetch.
  local ok, decoded = pcall(cjson.decode, cfg[7] or '[6,3,1]')
  if ok and type(decoded) == 'table' and tonumber(decoded[1]) and tonumber(decoded[2])
      and tonumber(decoded[3]) then
    weights = {tonumber(decoded[1]), tonumber(decoded[2]), tonumber(decoded[3])}
    total = weights[1] + weights[2] + weights[3]
    if total <= 0 or weights[1] < 0 or weights[2] < 0 or weights[3] < 0 then weights = nil end
  end
  if weights then
    cursor = tonumber(redis.call('HGET', KEYS[7], 'weighted_cursor') or '0') or 0
  end
end
local out = {-1, next_due, 0}
local count = 0
local lease_until = now + tonumber(ARGV[3])
local leases = {} -- ZADD arguments (score, id, ...), written in one call at the end

-- Lease one popped id if it is still QUEUED; any other status (CANCELLED, ...) is a stale entry and
-- dropping it is the cleanup.
local function lease(id)
  local key = prefix .. id
  local f = redis.call('HMGET', key, 'status', 'name', 'args', 'kwargs', 'priority', 'timeout',
    'soft_timeout', 'max_retries', 'retries', 'enqueued_at', 'lost_leases', 'result_ttl', 'attempts',
    'eta', 'ready_at')
  if f[1] == 'QUEUED' then
    -- The fencing token is the attempt number: read above, so one write sets it with the rest.
    local token = (tonumber(f[13]) or 0) + 1
    redis.call('HSET', key, 'attempts', token, 'status', 'RUNNING', 'worker', ARGV[2], 'started_at', now)
    leases[#leases + 1] = lease_until
    leases[#leases + 1] = id
    redis.call('XADD', KEYS[8], 'MAXLEN', '~', ARGV[5], '*', 'id', id, 'event', 'started', 'ts', now,
      'token', token, 'worker', ARGV[2])
    count = count + 1
    out[#out + 1] = id
    out[#out + 1] = token
    for i = 2, 12 do
      out[#out + 1] = f[i] or ''
    end
    -- Queue wait on the Redis clock: since the task last became ready (enqueue, eta, hand-back, retry).
    local ready_since = math.max(tonumber(f[10]) or 0, tonumber(f[14]) or 0, tonumber(f[15]) or 0)
    out[#out + 1] = ready_since > 0 and math.max(0, now - ready_since) or ''
  elseif f[1] == false then
    -- A ready entry without a task hash can only come from outside jobqueue: count it and drop it.
    redis.call('HINCRBY', KEYS[9], 'orphan_entries', 1)
  end
end

-- A level found empty is not popped again in this call.
local empty = {}
if weights then
  -- One slot at a time so the weighted policy applies per task, not per batch.
  local exhausted = false
  while count < want and not exhausted do
    local slot = cursor % total
    cursor = cursor + 1
    local order
    if slot < weights[1] then order = {'high', 'medium', 'low'}
    elseif slot < weights[1] + weights[2] then order = {'medium', 'high', 'low'}
    else order = {'low', 'medium', 'high'} end
    local id = nil
    for _, level in ipairs(order) do
      if not empty[level] then
        id = redis.call('LPOP', ready[level])
        if id then break end
        empty[level] = true
      end
    end
    if not id then
      exhausted = true
      -- The slot that found nothing is not consumed: the rotation resumes there next time.
      cursor = cursor - 1
    else
      lease(id)
    end
  end
else
  -- Strict: pop as many as still wanted from the highest non-empty level in one LPOP.
  for _, level in ipairs({'high', 'medium', 'low'}) do
    while count < want and not empty[level] do
      local asked = want - count
      local ids = redis.call('LPOP', ready[level], asked)
      if not ids or #ids < asked then
        empty[level] = true
      end
      for _, id in ipairs(ids or {}) do
        lease(id)
      end
    end
  end
end
for from = 1, #leases, 1000 do
  redis.call('ZADD', KEYS[5], unpack(leases, from, math.min(from + 999, #leases)))
end
if weights then
  redis.call('HSET', KEYS[7], 'weighted_cursor', cursor % total)
end
out[3] = count
if limit > 0 and count > 0 then
  redis.call('HSET', KEYS[10], 'tat', tat + count * interval, 'interval', interval)
  redis.call('PEXPIRE', KEYS[10], math.ceil(tat + count * interval - now) + 1000)
end
if count > 0 then
  redis.call('HINCRBY', KEYS[9], 'started', count)
end
-- More work waiting (or just promoted): pass the wake-up on so another idle worker starts too; not when
-- flow control cut this batch short, since the next worker would only be told to wait.
if count == requested and redis.call('LLEN', KEYS[6]) == 0 and (redis.call('LLEN', KEYS[1]) > 0
      or redis.call('LLEN', KEYS[2]) > 0 or redis.call('LLEN', KEYS[3]) > 0) then
  redis.call('LPUSH', KEYS[6], '1')
end
return out
