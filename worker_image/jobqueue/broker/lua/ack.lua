--[[ ack: leased tasks of one queue succeeded, one or many per call. Fenced: each is accepted only from the
current lease holder. A worker acks a whole batch of outcomes in one call, so the per-call cost (script
invocation, clock, counters, config) is paid once per batch, not once per task.
KEYS[1] lease zset   KEYS[2] event stream   KEYS[3] stats hash   KEYS[4] wake list   KEYS[5] queue config hash
KEYS[5 + i] task hash of task i (i = 1 .. N, in the order of the tasks in ARGV)
ARGV[1] event stream max length
ARGV[2] largest result (bytes) an event carries; a larger one is kept in the task hash only and its
        event says 'result_omitted' = its size (the stream outlives the result's TTL, and a copy of every
        large result in it would double what results cost Redis)
ARGV[3 ..] per task 5 values: task id, fencing token (attempt number of the lease), result as JSON,
           result TTL in seconds, completion channel (published only if someone waits)
Returns, per task, 1 when recorded, 0 when the token is stale or the task is no longer running (nothing
changed for it); a single task (N = 1) gets the number itself, as every other transition returns.
Workflows: children whose last parent this was are queued; a unique task's dedup key may be released. ]]
--@include _workflow
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local maxlen = ARGV[1]
local event_result_max = tonumber(ARGV[2])
local n = (#ARGV - 2) / 5
local results, acked = {}, {}
for i = 1, n do
  local a = 3 + (i - 1) * 5
  local key, id, token, result = KEYS[5 + i], ARGV[a], ARGV[a + 1], ARGV[a + 2]
  -- One read for every decision below: fencing, duration, waiters, cancel flag, dedup and children.
  local f = redis.call('HMGET', key, 'status', 'attempts', 'started_at', 'watched', 'cancel_requested',
    'unique_key', 'child_keys')
  if f[1] ~= 'RUNNING' or f[2] ~= token then
    results[i] = 0
  else
    results[i] = 1
    acked[#acked + 1] = id
    redis.call('HSET', key, 'status', 'SUCCESS', 'result', result, 'completed_at', now)
    if f[5] then
      redis.call('HDEL', key, 'cancel_requested')
    end
    redis.call('EXPIRE', key, tonumber(ARGV[a + 3]))
    local result_field, result_value = 'result', result
    if #result > event_result_max then
      result_field, result_value = 'result_omitted', #result
    end
    redis.call('XADD', KEYS[2], 'MAXLEN', '~', maxlen, '*', 'id', id, 'event', 'succeeded', 'ts', now,
      'token', token, 'duration_ms', now - (tonumber(f[3]) or now), result_field, result_value)
    if f[4] then
      redis.call('PUBLISH', ARGV[a + 4], 'SUCCESS')
    end
    -- workflows / dedup (lua/_workflow.lua), only for tasks that have any
    if f[6] then
      jq_release_unique(key, id)
    end
    if f[7] then
      jq_release_children(key, id, result, now, maxlen)
    end
  end
end
if #acked > 0 then
  -- Variadic in slices: unpack's arguments live on the Lua stack, which is bounded.
  for from = 1, #acked, 500 do
    redis.call('ZREM', KEYS[1], unpack(acked, from, math.min(from + 499, #acked)))
  end
  redis.call('HINCRBY', KEYS[3], 'succeeded', #acked)
  -- A freed slot matters only to workers held back by a max in-flight limit.
  if (tonumber(redis.call('HGET', KEYS[5], 'max_in_flight') or '0') or 0) > 0
      and redis.call('LLEN', KEYS[4]) == 0 then
    redis.call('LPUSH', KEYS[4], '1')
  end
end
if n == 1 then
  return results[1]
end
return results
