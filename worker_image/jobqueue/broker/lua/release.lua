--[[ release: hand an unfinished lease back to the front of its ready list (graceful shutdown).
KEYS[1] task hash   KEYS[2] lease zset   KEYS[3] ready list of the task's priority
KEYS[4] wake list   KEYS[5] event stream KEYS[6] the releasing worker's held set (keys.QueueKeys.held)
KEYS[7] stats hash  KEYS[8] the task's child list (keys.QueueKeys.children; for a cancelled task only)
ARGV[1] task id     ARGV[2] fencing token   ARGV[3] event stream max length
ARGV[4] completion channel (published only if someone waits)   ARGV[5] result TTL in seconds for a
        cancelled record
A task whose cancel was requested (cancel.lua set cancel_requested while it ran) is not handed back to run
again: it ends CANCELLED, as recover.lua ends it when its worker dies, so a cancel survives a shutdown.
Returns {code} (_fence.lua): 4 = handed back, 3 = finished (cancelled); stale, with nothing changed: -1 lease
lost, -2 fenced by a newer attempt, -3 unknown task. The attempt counter is not rolled back: the next lease
gets a fresh, larger token, so the releasing worker can never complete the task afterwards. ]]
--@include _common
--@include _fence
--@include _workflow
local f = redis.call('HMGET', KEYS[1], 'status', 'attempts', 'cancel_requested', 'watched')
local stale = jq_fence(f[1], f[2], ARGV[2])
if stale ~= 0 then
  return {stale}
end
local now = jq_now()
redis.call('ZREM', KEYS[2], ARGV[1])
redis.call('SREM', KEYS[6], ARGV[1])
if f[3] then
  redis.call('HSET', KEYS[1], 'status', 'CANCELLED', 'completed_at', now)
  redis.call('HDEL', KEYS[1], 'cancel_requested', 'worker')
  redis.call('EXPIRE', KEYS[1], tonumber(ARGV[5]))
  redis.call('HINCRBY', KEYS[7], 'cancelled', 1)
  redis.call('XADD', KEYS[5], 'MAXLEN', '~', ARGV[3], '*', 'id', ARGV[1], 'event', 'cancelled', 'ts', now,
    'token', ARGV[2])
  if f[4] then redis.call('PUBLISH', ARGV[4], 'CANCELLED') end
  -- workflows / dedup (lua/_workflow.lua)
  jq_release_unique(KEYS[1], ARGV[1])
  jq_cancel_descendants(KEYS[1], KEYS[8], now, ARGV[3])
  redis.call('EXPIRE', KEYS[8], tonumber(ARGV[5]))
  return {JQ_FINISHED}
end
redis.call('HSET', KEYS[1], 'status', 'QUEUED', 'ready_at', now)
redis.call('HDEL', KEYS[1], 'worker')
redis.call('LPUSH', KEYS[3], ARGV[1])
jq_wake(KEYS[4])
redis.call('XADD', KEYS[5], 'MAXLEN', '~', ARGV[3], '*', 'id', ARGV[1], 'event', 'released', 'ts', now,
  'token', ARGV[2])
return {JQ_RELEASED}
