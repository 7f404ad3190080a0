--[[ enqueue: create one task, ready now, delayed, or PENDING on its parents; deduplicated if unique.
KEYS[1] task hash          KEYS[2] ready list of the task's priority
KEYS[3] delayed zset       KEYS[4] wake list (marker for idle workers)
KEYS[5] event stream       KEYS[6] stats hash
KEYS[7] parked workers hash  KEYS[8] ready high  KEYS[9] ready medium  KEYS[10] ready low
KEYS[11] lease zset         KEYS[12] rate-limit state   KEYS[13] queue config hash  (7-13: the hand-off)
KEYS[14] dedup key, only when ARGV[5] > 0 (same queue, so same slot)
KEYS[15] this enqueue's folded record (keys.QueueKeys.folded), only when ARGV[5] > 0: written when the
        enqueue is folded into a live task (holder id, dedup key, time), for the duplicate lookup
KEYS[#KEYS - 2P] this task's own child list (keys.QueueKeys.children; not touched here: stored in its
        dep_keys, so a cascade reaching this task can walk on to its children)
KEYS[last 2P .. last P + 1] the parents' task hashes, in the order of the parent ids in ARGV (P = ARGV[10])
KEYS[last P] the parents' child lists, in the same order: this task's hash key is appended to each
ARGV[1] task id            ARGV[2] due time in unix ms (0 = ready now)
ARGV[3] countdown in ms (added to server time; 0 = none)
ARGV[4] event stream max length (approximate)
ARGV[5] dedup key TTL in seconds (0 = not unique)
ARGV[6] '1' to release the dedup key once the task completes (re-execution allowed), else '0'
ARGV[7] task key prefix of the queue (a dedup key holds its holder's task hash key, which starts with it)
ARGV[8] completion channel of this task (stored for a dependency-failed cancel)
ARGV[9] pass_result: '' | 'first' (first arg = the parent's result) | 'list' (first arg = all results)
ARGV[10] P, the number of parents     ARGV[11 .. 10+P] parent task ids
ARGV[11+P ..] field, value pairs of the task hash (name, args, kwargs, priority, ...)
Returns {1, status, id} when created, {0, status, id} when a task with this id already exists (idempotent),
{2, status, holder id, this enqueue's id} when a unique task with the same signature is still live
(no task enqueued; only the folded record KEYS[15] written, for as long as the dedup key lives),
{-1, 'missing_parent', parent id} when a parent does not exist (nothing written).
Time is the Redis server clock (TIME), never a client clock, except an absolute eta given by the user. ]]
--@include _common
--@include _workflow
--@include _handoff
local existing = redis.call('HGET', KEYS[1], 'status')
if existing then
  return {0, existing, ARGV[1]}
end
local now = jq_now()
local unique_ttl = tonumber(ARGV[5])
local nparents = tonumber(ARGV[10])
local first_field = 11 + nparents
local parent_keys_from = #KEYS - 2 * nparents + 1
local parent_lists_from = #KEYS - nparents + 1
local own_children = KEYS[#KEYS - 2 * nparents]

-- Parents must exist before anything is written (checked first so a rejected call changes nothing).
for i = 1, nparents do
  if redis.call('EXISTS', KEYS[parent_keys_from + i - 1]) == 0 then
    return {-1, 'missing_parent', ARGV[10 + i]}
  end
end

-- Deduplication: the dedup key holds the task hash key of the live task with this signature (a key made
-- by the Python key module, so the holder's hash is read without building its key here). A dedup key
-- written before this layout holds the bare id: only then is the holder's key prefix .. id.
if unique_ttl > 0 then
  if not redis.call('SET', KEYS[14], KEYS[1], 'NX', 'EX', unique_ttl) then
    local holder_key = redis.call('GET', KEYS[14])
    local holder = holder_key
    if string.sub(holder_key, 1, #ARGV[7]) == ARGV[7] then
      holder = string.sub(holder_key, #ARGV[7] + 1)
    else
      holder_key = ARGV[7] .. holder_key
    end
    local held = redis.call('HGET', holder_key, 'status')
    local finished = held == 'SUCCESS' or held == 'FAILED' or held == 'TIMEOUT' or held == 'CANCELLED'
      or held == 'EXPIRED'
    -- A holder whose record is gone cannot be returned; a finished one is replaced only if re-execution
    -- is allowed (its release on completion was the normal path; this covers a key set before that).
    if held and not (finished and ARGV[6] == '1') then
      redis.call('HINCRBY', KEYS[6], 'deduplicated', 1)
      redis.call('HSET', KEYS[15], 'holder', holder, 'unique_key', KEYS[14], 'at', now)
      redis.call('EXPIRE', KEYS[15], unique_ttl)
      return {2, held, holder, ARGV[1]}
    end
    redis.call('SET', KEYS[14], KEYS[1], 'EX', unique_ttl)
  end
end

local due = tonumber(ARGV[2])
local countdown = tonumber(ARGV[3])
if countdown > 0 then
  due = now + countdown
end
local fields = {}
for i = first_field, #ARGV do
  fields[#fields + 1] = ARGV[i]
end
-- The caller's fields (the task spec); what follows is internal bookkeeping the event need not carry.
local spec_count = #fields
if unique_ttl > 0 then
  fields[#fields + 1] = 'unique_key'
  fields[#fields + 1] = KEYS[14]
  fields[#fields + 1] = 'unique_rerun'
  fields[#fields + 1] = ARGV[6]
end

-- Dependencies: count the parents that have not succeeded yet; register this task on each of them.
local waiting, failed_parent = 0, false
if nparents > 0 then
  for i = 1, nparents do
    local pkey = KEYS[parent_keys_from + i - 1]
    local pid = ARGV[10 + i]
    local plist = KEYS[parent_lists_from + i - 1]
    local p = redis.call('HMGET', pkey, 'status', 'result')
    if p[1] == 'SUCCESS' then
      if ARGV[9] ~= '' then
        fields[#fields + 1] = 'presult:' .. pid
        fields[#fields + 1] = p[2] or 'null'
      end
    elseif p[1] == 'FAILED' or p[1] == 'TIMEOUT' or p[1] == 'CANCELLED' or p[1] == 'EXPIRED' then
      failed_parent = true
    else
      waiting = waiting + 1
    end
    -- One RPUSH per child: registering the n-th child costs what the first did (the parent's JSON child
    -- list this replaces was rewritten whole each time: O(n^2) for a fan-out of n).
    redis.call('RPUSH', plist, KEYS[1])
    redis.call('HSET', pkey, 'children_key', plist)
    if p[1] ~= 'PENDING' and p[1] ~= 'QUEUED' and p[1] ~= 'DELAYED' and p[1] ~= 'RUNNING'
        and p[1] ~= 'RETRYING' then
      -- A finished parent's hash expires: its child list must not outlive it.
      local ttl = redis.call('PTTL', pkey)
      if ttl > 0 then redis.call('PEXPIRE', plist, ttl) end
    end
  end
  fields[#fields + 1] = 'pending_parents'
  fields[#fields + 1] = waiting
  fields[#fields + 1] = 'pass_result'
  fields[#fields + 1] = ARGV[9]
  fields[#fields + 1] = 'dep_keys'
  fields[#fields + 1] = cjson.encode({id = ARGV[1], ready = KEYS[2], delayed = KEYS[3], wake = KEYS[4],
    events = KEYS[5], stats = KEYS[6], done = ARGV[8], children = own_children})
end

local status
if failed_parent then
  status = 'CANCELLED'
elseif waiting > 0 then
  status = 'PENDING'
elseif due > now then
  status = 'DELAYED'
else
  status = 'QUEUED'
end
-- Lean layout (as enqueue_many.lua): attempts, retries and lost_leases start absent (= 0) and eta is
-- written only when the task is due later (absent = none); every reader treats absence as the default.
if due > now then
  redis.call('HSET', KEYS[1], 'status', status, 'enqueued_at', now, 'eta', due, unpack(fields))
else
  redis.call('HSET', KEYS[1], 'status', status, 'enqueued_at', now, unpack(fields))
end
if nparents > 0 and waiting == 0 and not failed_parent then
  -- Every parent had already succeeded: the results they left are passed now, not at their ack.
  jq_splice_results(KEYS[1], ARGV[9])
end
if status == 'QUEUED' then
  -- Queued (or handed to a parked worker) below, after its 'enqueued' event: 'started' must follow it.
elseif status == 'DELAYED' then
  local first = redis.call('ZRANGE', KEYS[3], 0, 0, 'WITHSCORES')
  redis.call('ZADD', KEYS[3], due, ARGV[1])
  -- Wake idle workers only if this task is due before anything they already wait for.
  if (first[2] == nil or tonumber(first[2]) > due) and redis.call('LLEN', KEYS[4]) == 0 then
    redis.call('LPUSH', KEYS[4], '1')
  end
elseif status == 'CANCELLED' then
  -- A parent already failed or was cancelled: the task is born cancelled, as it would have been had it
  -- been submitted a moment earlier.
  redis.call('HSET', KEYS[1], 'cancel_reason', 'dependency_failed', 'completed_at', now)
  redis.call('EXPIRE', KEYS[1], tonumber(redis.call('HGET', KEYS[1], 'result_ttl')) or 86400)
  if unique_ttl > 0 and ARGV[6] == '1' then
    redis.call('DEL', KEYS[14])
  end
  redis.call('HINCRBY', KEYS[6], 'cancelled', 1)
end
redis.call('HINCRBY', KEYS[6], 'enqueued', 1)
-- The event carries the whole spec (name, queue, priority, args, ...) so the recorder never has to read
-- the task hash, which may have expired or changed by the time the event is recorded. Its eta is the due
-- time asked for (even one already past), absent when none was (as enqueue_many.lua writes it).
if due ~= 0 then
  redis.call('XADD', KEYS[5], 'MAXLEN', '~', ARGV[4], '*', 'id', ARGV[1], 'event', 'enqueued', 'ts', now,
    'status', status, 'eta', due, unpack(fields, 1, spec_count))
else
  redis.call('XADD', KEYS[5], 'MAXLEN', '~', ARGV[4], '*', 'id', ARGV[1], 'event', 'enqueued', 'ts', now,
    'status', status, unpack(fields, 1, spec_count))
end
-- A parked worker takes it at once, leased (_handoff.lua); else it queues and idle workers are woken.
local handoff_keys = {parked = KEYS[7], high = KEYS[8], medium = KEYS[9], low = KEYS[10],
  delayed = KEYS[3], leases = KEYS[11], rate = KEYS[12], config = KEYS[13], events = KEYS[5], stats = KEYS[6]}
if status == 'QUEUED' and not jq_handoff(handoff_keys, KEYS[1], ARGV[1], now, ARGV[4]) then
  redis.call('RPUSH', KEYS[2], ARGV[1])
  jq_wake(KEYS[4])
end
return {1, status, ARGV[1]}
