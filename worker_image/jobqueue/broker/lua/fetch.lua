--[[ fetch: promote due delayed tasks, then lease up to N ready tasks in one call.
Flow control is decided here, atomically for every worker: pause, max in-flight and the rate limit.
KEYS[1] ready high   KEYS[2] ready medium   KEYS[3] ready low
KEYS[4] delayed zset KEYS[5] lease zset     KEYS[6] wake list
KEYS[7] config hash  KEYS[8] event stream   KEYS[9] stats hash
KEYS[10] rate-limit state (GCRA hash: tat, interval)
KEYS[11] parked workers hash   KEYS[12] this worker's inbox list (both only read when ARGV[7] is given)
KEYS[13] this worker's held set (the ids it holds leases on: keys.QueueKeys.held)
KEYS[14] KEYS[15] KEYS[16] rate-limit states of the high, medium and low levels' own limits
ARGV[1] max tasks    ARGV[2] worker id      ARGV[3] lease duration ms
ARGV[4] task key prefix (task keys share the queue's hash tag, so they live on the same cluster slot;
        the ids are only known inside the script, hence the prefix rather than KEYS)
ARGV[5] event stream max length            ARGV[6] max delayed tasks promoted per call
ARGV[7] parking (see _handoff.lua): '' or absent = none (a call that only leases or promotes); otherwise
        the worker first leaves the parked hash and takes what was handed to its inbox (already leased to
        it, returned first), and, if > 0 and the call ends with nothing to run and nothing to wait for
        (count 0, wait_ms -1), parks again for ARGV[7] ms with capacity ARGV[1] (0 = only unpark)
ARGV[8] completion channel prefix of the queue (keys.QueueKeys.done_channel_prefix): a task that expires
        here is published to whoever waits on it, as any final transition is
Expiry: a task past its expires_at (or its queue's expires_ms after enqueue) ends EXPIRED here instead of
being leased (_lease.lua); it is not counted against the batch, the rate limit or max in-flight.
Returns {wait_ms, next_due_ms, count, then per task 15 values:
         id, token, name, args, kwargs, priority, timeout, soft_timeout, max_retries, retries,
         enqueued_at, lost_leases, result_ttl, queue_wait_ms, headers}
queue_wait_ms: now minus when the task last became ready (the latest of enqueued_at, eta and ready_at,
which release / recover / a workflow release set), '' if unknown.
wait_ms: -1 when tasks were handed out or none are ready; otherwise how long flow control says to wait
(-2 = paused, -3 = max in-flight reached); with nothing handed out while a level's own rate limit holds
back its waiting tasks, the shortest such wait. next_due_ms: milliseconds until the earliest delayed task
is due, or -1. With ARGV[1] = 0 the call only promotes (the scheduler calls promote.lua instead).
Flow control: _flow.lua (shared with the hand-off); priority_policy ('strict' | 'weighted') and weights
(JSON [h, m, l]) are read here. ]]
--@include _common
--@include _flow
--@include _lease
--@include _handoff
--@include _promote
local now = jq_now()
local prefix = ARGV[4]
local ready = {high = KEYS[1], medium = KEYS[2], low = KEYS[3]}
local out = {-1, -1, 0}
local handed = 0 -- tasks taken from the inbox: leased to this worker by enqueue's hand-off
local park_ms = tonumber(ARGV[7] or '')

-- 0. Leave the parked hash first (no hand-off after this call unless it parks again), then take what was
-- handed off meanwhile: those tasks are already leased to this worker and counted as started.
if park_ms then
  redis.call('HDEL', KEYS[11], ARGV[2])
  local records = redis.call('LPOP', KEYS[12], 1000)
  for _, encoded in ipairs(records or {}) do
    local record = cjson.decode(encoded)
    -- Still this worker's lease? A record left by an earlier process with the same worker id (a restarted
    -- pod) whose lease was recovered meanwhile is dropped, not run a second time.
    local f = redis.call('HMGET', prefix .. record[1], 'status', 'attempts', 'worker')
    if f[1] == 'RUNNING' and tonumber(f[2]) == tonumber(record[2]) and f[3] == ARGV[2] then
      for i = 1, 15 do
        out[#out + 1] = record[i]
      end
      handed = handed + 1
    end
  end
  out[3] = handed
end

-- 1. Promote due delayed tasks (bounded per call, O(log n + k)).
local _, next_due = jq_promote(KEYS[4], ready, function(id) return prefix .. id end, now, tonumber(ARGV[6]))
out[2] = next_due

-- 2. Flow control.
local cfg = jq_flow_config(KEYS[7])
-- Tasks taken from the inbox already hold some of the slots asked for.
local requested = math.max(0, tonumber(ARGV[1]) - handed)
local want, wait, gcra = jq_flow_allowance(cfg, KEYS[5], KEYS[10], now, requested)
if want == 0 and wait ~= -1 then
  out[1] = wait
  return out
end

-- Per-priority limits: a level whose own limit is reached is passed over like an empty one, so lower
-- levels still start (strict and weighted alike).
local level_keys = {high = KEYS[14], medium = KEYS[15], low = KEYS[16]}
local level_allowed, level_wait, level_gcra = jq_level_allowances(KEYS[7], level_keys, now, want)
local level_count = {high = 0, medium = 0, low = 0}
local function room(level)
  local allowed = level_allowed[level]
  if allowed == nil then return want end
  return allowed - level_count[level]
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
local count = 0
local lease_until = now + tonumber(ARGV[3])
local leases = {} -- ZADD arguments (score, id, ...), written in one call at the end
local held = {} -- the same ids, for this worker's held set (SADD in one call at the end)

-- Lease one popped id if it is still QUEUED; any other status (CANCELLED, ...) is a stale entry and
-- dropping it is the cleanup.
-- n counts the tasks expired by this call: at most EXPIRE_LIMIT, so a backlog that all expired at once is
-- ended over several calls (bounded work per call) rather than in one long script.
local EXPIRE_LIMIT = 1000
local expiry = {queue_ms = tonumber(cfg[12]), stats = KEYS[9], done_prefix = ARGV[8] or '', n = 0}
local function lease(id, level)
  local record, missing = jq_lease(prefix .. id, id, ARGV[2], now, KEYS[8], ARGV[5], expiry)
  if record then
    leases[#leases + 1] = lease_until
    leases[#leases + 1] = id
    held[#held + 1] = id
    count = count + 1
    level_count[level] = level_count[level] + 1
    for i = 1, 15 do
      out[#out + 1] = record[i]
    end
  elseif missing then
    -- A ready entry without a task hash can only come from outside jobqueue: count it and drop it.
    redis.call('HINCRBY', KEYS[9], 'orphan_entries', 1)
  end
end

-- A level found empty is not popped again in this call.
local empty = {}
if weights then
  -- One slot at a time so the weighted policy applies per task, not per batch.
  local exhausted = false
  while count < want and not exhausted and expiry.n < EXPIRE_LIMIT do
    local slot = cursor % total
    cursor = cursor + 1
    local order
    if slot < weights[1] then order = {'high', 'medium', 'low'}
    elseif slot < weights[1] + weights[2] then order = {'medium', 'high', 'low'}
    else order = {'low', 'medium', 'high'} end
    local id, from = nil, nil
    for _, level in ipairs(order) do
      if not empty[level] and room(level) > 0 then
        id = redis.call('LPOP', ready[level])
        if id then
          from = level
          break
        end
        empty[level] = true
      end
    end
    if not id then
      exhausted = true
      -- The slot that found nothing is not consumed: the rotation resumes there next time.
      cursor = cursor - 1
    else
      lease(id, from)
    end
  end
else
  -- Strict: pop as many as still wanted from the highest non-empty level in one LPOP.
  for _, level in ipairs({'high', 'medium', 'low'}) do
    while count < want and not empty[level] and room(level) > 0 and expiry.n < EXPIRE_LIMIT do
      local asked = math.min(want - count, room(level))
      local ids = redis.call('LPOP', ready[level], asked)
      if not ids or #ids < asked then
        empty[level] = true
      end
      for _, id in ipairs(ids or {}) do
        lease(id, level)
      end
    end
  end
end
for from = 1, #leases, 1000 do
  redis.call('ZADD', KEYS[5], unpack(leases, from, math.min(from + 999, #leases)))
end
if #held > 0 then
  for from = 1, #held, 1000 do
    redis.call('SADD', KEYS[13], unpack(held, from, math.min(from + 999, #held)))
  end
  -- Outlives every lease this worker holds (they expire at most one lease duration from now); the
  -- worker's heartbeat extends it. Once it has gone, the expiry reaper has those leases anyway.
  redis.call('PEXPIRE', KEYS[13], 2 * tonumber(ARGV[3]))
end
if weights then
  redis.call('HSET', KEYS[7], 'weighted_cursor', cursor % total)
end
out[3] = handed + count
jq_flow_commit(KEYS[10], gcra, count, now)
for _, level in ipairs({'high', 'medium', 'low'}) do
  jq_flow_commit(level_keys[level], level_gcra[level], level_count[level], now)
end
-- Nothing started while a level's own limit holds back its waiting tasks: the worker sleeps until the
-- first of them may start (and does not park: that task is not handed off, it waits for this fetch).
if handed + count == 0 then
  for _, level in ipairs({'high', 'medium', 'low'}) do
    if level_allowed[level] == 0 and redis.call('LLEN', ready[level]) > 0
        and (out[1] == -1 or level_wait[level] < out[1]) then
      out[1] = level_wait[level]
    end
  end
end
if count > 0 then
  redis.call('HINCRBY', KEYS[9], 'started', count)
end
-- More work waiting (or just promoted): pass the wake-up on so another idle worker starts too; not when
-- flow control cut this batch short, since the next worker would only be told to wait.
if count == requested and redis.call('LLEN', KEYS[6]) == 0 and (redis.call('LLEN', KEYS[1]) > 0
      or redis.call('LLEN', KEYS[2]) > 0 or redis.call('LLEN', KEYS[3]) > 0) then
  redis.call('LPUSH', KEYS[6], '1')
elseif expiry.n >= EXPIRE_LIMIT and redis.call('LLEN', KEYS[6]) == 0 then
  -- Stopped at the expiry bound with ready tasks possibly left: a worker comes back for them at once.
  redis.call('LPUSH', KEYS[6], '1')
end
-- Nothing to run and nothing flow control holds back: park, so the next task enqueued is handed here.
if park_ms and park_ms > 0 and handed + count == 0 and requested > 0 and out[1] == -1 then
  redis.call('HSET', KEYS[11], ARGV[2], jq_parked_entry(now + park_ms, ARGV[3], requested, KEYS[12], KEYS[13]))
end
return out
