--[[ recover: give expired leases back to the queue (or dead-letter tasks that lose them too often).
Idempotent: a second run finds nothing expired, and tasks already recovered are no longer leased.
KEYS[1] lease zset  KEYS[2] ready high  KEYS[3] ready medium  KEYS[4] ready low
KEYS[5] dead letter zset  KEYS[6] event stream  KEYS[7] stats hash  KEYS[8] wake list
KEYS[9] queue config hash (its max_lost_leases field, when set, overrides ARGV[3] for this queue)
KEYS[10] the queue's recovery counts hash (keys.QueueKeys.recoveries): 'w:<worker>' = leases recovered from
         that worker, 't:<worker>' = when (ms) the last one was, 'last_at' = the last recovery of the queue,
         'total' = leases recovered on the queue (kept when old workers' counts are trimmed, see ARGV[9]).
         Counted here, in the script that recovers, so the count is exact whoever reaps (scheduler,
         worker, operator, supervisor) and however many reap at once.
KEYS[11] the held set of the worker named in ARGV[5] (keys.QueueKeys.held; only read when it is named)
ARGV[1] task key prefix (ids are found inside the script; keys share the queue's hash tag)
ARGV[2] max leases recovered per call     ARGV[3] max lost leases before a task is poison (process default)
ARGV[4] event stream max length           ARGV[5] worker id: '' = every expired lease, else every lease
        held by that worker whatever its expiry (the worker is known dead)
ARGV[6] completion channel prefix          ARGV[7] max history entries kept on the task (as fail.lua's)
ARGV[8] result TTL in seconds for a cancelled record
ARGV[9] most workers KEYS[10] keeps counts for: past it, the counts of the workers recovered from
        longest ago are dropped (down to three quarters of it, so the trim's full read of the hash comes
        once per quarter of it new workers), else a fleet whose pods churn grows the hash without end
A task whose cancel was requested (cancel.lua set cancel_requested while it ran) is not run again: its
lost lease ends it CANCELLED, as its worker would have, so a cancel survives the death of that worker.
Returns {requeued, dead_lettered, left, cancelled}: left = ids still in the worker's held set (call again
while > 0); always 0 for the expiry reaper, whose next call finds the next expired leases.
Cost: the expiry reaper reads the lease zset by score (O(log n + k)); a named worker's leases come from
its held set, never from the queue's whole lease zset, so recovering one worker costs what it held.
The expiry reaper leaves recovered ids in their worker's held set (its key would have to be built here):
every reader of a held set checks each id against the task hash and the lease zset, and the set expires.
Workflows: a dead-lettered or cancelled task cancels its PENDING descendants; its dedup key may be released. ]]
--@include _common
--@include _workflow
local now = jq_now()
local prefix = ARGV[1]
local limit = tonumber(ARGV[2])
local by_worker = ARGV[5] ~= ''
local ids
if by_worker then
  ids = redis.call('SPOP', KEYS[11], limit)
else
  ids = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', now, 'LIMIT', 0, limit)
end
local ready = {high = KEYS[2], medium = KEYS[3], low = KEYS[4]}
local max_lost = tonumber(ARGV[3])
if #ids > 0 and KEYS[9] then
  max_lost = tonumber(redis.call('HGET', KEYS[9], 'max_lost_leases') or '') or max_lost
end
local requeued, dead, cancelled = 0, 0, 0
-- worker id -> leases recovered from it in this call, written to KEYS[10] once per worker at the end
local recovered_from = {}
for _, id in ipairs(ids) do
  local key = prefix .. id
  local f = redis.call('HMGET', key, 'status', 'priority', 'worker', 'lost_leases', 'attempts', 'history',
    'watched', 'children_key', 'cancel_requested')
  -- A held-set id is only a hint: it must still be leased (in the zset) to that same worker.
  local mine = not by_worker or (f[3] == ARGV[5] and redis.call('ZSCORE', KEYS[1], id))
  if mine then
    redis.call('ZREM', KEYS[1], id)
    if f[1] == 'RUNNING' then
      local lost = redis.call('HINCRBY', key, 'lost_leases', 1)
      local err = 'LeaseLost: worker ' .. (f[3] or '?') .. ' stopped renewing its lease'
      local history = cjson.decode(f[6] or '[]')
      history[#history + 1] = {attempt = tonumber(f[5]), error = err, traceback = cjson.null,
        backoff_seconds = cjson.null, at = now / 1000}
      -- Bounded like fail.lua's: with a high max_lost_leases a task could otherwise grow it without end.
      local keep = tonumber(ARGV[7]) or #history
      while #history > keep do
        table.remove(history, 1)
      end
      redis.call('HSET', key, 'history', cjson.encode(history), 'error', err)
      if f[9] then
        redis.call('HSET', key, 'status', 'CANCELLED', 'completed_at', now)
        redis.call('HDEL', key, 'cancel_requested', 'worker')
        redis.call('EXPIRE', key, tonumber(ARGV[8]))
        redis.call('HINCRBY', KEYS[7], 'cancelled', 1)
        redis.call('XADD', KEYS[6], 'MAXLEN', '~', ARGV[4], '*', 'id', id, 'event', 'cancelled', 'ts', now,
          'token', f[5] or '', 'error', err)
        if f[7] then redis.call('PUBLISH', ARGV[6] .. id, 'CANCELLED') end
        jq_release_unique(key, id)
        jq_cancel_descendants(key, f[8], now, ARGV[4])
        cancelled = cancelled + 1
      elseif lost > max_lost then
        redis.call('HSET', key, 'status', 'FAILED', 'dead_letter_reason', 'lease_lost_too_often',
          'completed_at', now)
        redis.call('ZADD', KEYS[5], now, id)
        redis.call('HINCRBY', KEYS[7], 'dead_lettered', 1)
        redis.call('XADD', KEYS[6], 'MAXLEN', '~', ARGV[4], '*', 'id', id, 'event', 'dead_lettered',
          'ts', now, 'status', 'FAILED', 'reason', 'lease_lost_too_often', 'error', err)
        if f[7] then redis.call('PUBLISH', ARGV[6] .. id, 'FAILED') end
        -- workflows / dedup (lua/_workflow.lua); the child list key was stored by enqueue.lua
        jq_release_unique(key, id)
        jq_cancel_descendants(key, f[8], now, ARGV[4])
        dead = dead + 1
      else
        redis.call('HSET', key, 'status', 'QUEUED', 'ready_at', now)
        redis.call('HDEL', key, 'worker')
        -- Front of the list: this task has already waited its turn once.
        redis.call('LPUSH', ready[f[2]] or KEYS[3], id)
        redis.call('XADD', KEYS[6], 'MAXLEN', '~', ARGV[4], '*', 'id', id, 'event', 'lease_lost', 'ts', now,
          'worker', f[3] or '', 'lost_leases', lost)
        requeued = requeued + 1
      end
      redis.call('HINCRBY', KEYS[7], 'lost_leases', 1)
      local owner = f[3] or ''
      recovered_from[owner] = (recovered_from[owner] or 0) + 1
    end
  end
end
if requeued > 0 then
  jq_wake(KEYS[8])
end
-- The queue's own count, 'total', is kept apart from the per-worker ones, which are trimmed below. A hash
-- written before 'total' existed starts it from the per-worker counts it holds.
local recovered = 0
for _, n in pairs(recovered_from) do recovered = recovered + n end
if recovered > 0 and redis.call('HEXISTS', KEYS[10], 'total') == 0 then
  local fields = redis.call('HGETALL', KEYS[10])
  for i = 1, #fields, 2 do
    if string.sub(fields[i], 1, 2) == 'w:' then recovered = recovered + (tonumber(fields[i + 1]) or 0) end
  end
end
if recovered > 0 then redis.call('HINCRBY', KEYS[10], 'total', recovered) end
-- Hash fields carry the worker ids (fields, not keys: nothing is built for Cluster routing).
-- The stamps go out in chunks: unpack() of more values than Lua's C stack holds (~8000) would fail.
local stamps = {}
for owner, n in pairs(recovered_from) do
  redis.call('HINCRBY', KEYS[10], 'w:' .. owner, n)
  stamps[#stamps + 1] = 't:' .. owner
  stamps[#stamps + 1] = now
  if #stamps >= 1000 then
    redis.call('HSET', KEYS[10], unpack(stamps))
    stamps = {}
  end
end
if next(recovered_from) then
  redis.call('HSET', KEYS[10], 'last_at', now, unpack(stamps))
end
local keep_workers = tonumber(ARGV[9])
if next(recovered_from) and keep_workers and redis.call('HLEN', KEYS[10]) > 2 * keep_workers + 2 then
  local fields = redis.call('HGETALL', KEYS[10])
  local when = {}
  for i = 1, #fields, 2 do
    if string.sub(fields[i], 1, 2) == 't:' then
      when[#when + 1] = {string.sub(fields[i], 3), tonumber(fields[i + 1]) or 0}
    end
  end
  table.sort(when, function(a, b) return a[2] < b[2] end)
  local drop = {}
  for i = 1, #when - math.floor(keep_workers * 3 / 4) do
    drop[#drop + 1] = 'w:' .. when[i][1]
    drop[#drop + 1] = 't:' .. when[i][1]
    if #drop >= 1000 then
      redis.call('HDEL', KEYS[10], unpack(drop))
      drop = {}
    end
  end
  if #drop > 0 then redis.call('HDEL', KEYS[10], unpack(drop)) end
end
local left = 0
if by_worker then
  left = redis.call('SCARD', KEYS[11])
end
return {requeued, dead, left, cancelled}
