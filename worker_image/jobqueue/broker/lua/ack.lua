--[[ ack: leased tasks of one queue succeeded, one or many per call. Fenced: each is accepted only from the
current lease holder. A worker acks a whole batch of outcomes in one call, so the per-call cost (script
invocation, clock, counters, config) is paid once per batch, not once per task.
KEYS[1] lease zset   KEYS[2] event stream   KEYS[3] stats hash   KEYS[4] wake list   KEYS[5] queue config hash
KEYS[6] the acking worker's held set (keys.QueueKeys.held)
KEYS[6 + i] task hash of task i (i = 1 .. N, in the order of the tasks in ARGV)
KEYS[6 + N + i] child list of task i (keys.QueueKeys.children; read only when the task has children)
KEYS[6 + 2N + 1 .. 6 + 2N + 4] this queue's ready lists (high, medium, low) and delayed set: not read by
        position; declared because a released child of this queue is queued on one of them (its keys
        are stored as data on the child, _workflow.lua), so a single-queue workflow touches only KEYS
ARGV[1] event stream max length
ARGV[2] largest result (bytes) an event carries; a larger one is kept in the task hash only and its
        event says 'result_omitted' = its size (the stream outlives the result's TTL, and a copy of every
        large result in it would double what results cost Redis)
ARGV[3 ..] per task 5 values: task id, fencing token (attempt number of the lease), result as JSON,
           result TTL in seconds, completion channel (published only if someone waits)
Returns a list of one code per task, in order (_fence.lua): 1 = recorded; -1 lease lost, -2 fenced by a
newer attempt, -3 unknown task (nothing changed for a task with a negative code).
Workflows: children whose last parent this was are queued; a unique task's dedup key may be released. ]]
--@include _common
--@include _fence
--@include _workflow
local now = jq_now()
local maxlen = ARGV[1]
local event_result_max = tonumber(ARGV[2])
local n = (#ARGV - 2) / 5
local results, acked = {}, {}
for i = 1, n do
  local a = 3 + (i - 1) * 5
  local key, id, token, result = KEYS[6 + i], ARGV[a], ARGV[a + 1], ARGV[a + 2]
  -- One read for every decision below: fencing, duration, waiters, cancel flag, dedup and children.
  local f = redis.call('HMGET', key, 'status', 'attempts', 'started_at', 'watched', 'cancel_requested',
    'unique_key', 'children_key', 'child_keys')
  local stale = jq_fence(f[1], f[2], token)
  if stale ~= 0 then
    results[i] = stale
  else
    results[i] = JQ_SUCCEEDED
    acked[#acked + 1] = id
    local ttl = tonumber(ARGV[a + 3])
    redis.call('HSET', key, 'status', 'SUCCESS', 'result', result, 'completed_at', now)
    if f[5] then
      redis.call('HDEL', key, 'cancel_requested')
    end
    redis.call('EXPIRE', key, ttl)
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
    if f[7] or f[8] then
      local children = KEYS[6 + n + i]
      jq_release_children(key, children, id, result, now, maxlen)
      redis.call('EXPIRE', children, ttl)
    end
  end
end
if #acked > 0 then
  -- Variadic in slices: unpack's arguments live on the Lua stack, which is bounded.
  for from = 1, #acked, 500 do
    local slice = {unpack(acked, from, math.min(from + 499, #acked))}
    redis.call('ZREM', KEYS[1], unpack(slice))
    redis.call('SREM', KEYS[6], unpack(slice))
  end
  redis.call('HINCRBY', KEYS[3], 'succeeded', #acked)
  -- A freed slot matters only to workers held back by a max in-flight limit.
  if (tonumber(redis.call('HGET', KEYS[5], 'max_in_flight') or '0') or 0) > 0 then
    jq_wake(KEYS[4])
  end
end
return results
