--[[ cancel: remove a waiting task atomically, or flag a running one.
KEYS[1] task hash   KEYS[2] ready list of the task's priority   KEYS[3] delayed zset
KEYS[4] event stream KEYS[5] stats hash  KEYS[6] the task's child list (keys.QueueKeys.children)
ARGV[1] task id     ARGV[2] reason   ARGV[3] 'force' or 'graceful'   ARGV[4] event stream max length
ARGV[5] completion channel           ARGV[6] cancel notice channel (workers subscribe)
ARGV[7] result TTL in seconds for the cancelled record
Returns {outcome, status}: outcome 'cancelled' (was waiting, now CANCELLED), 'requested' (running, flag
set), 'finished' (already terminal, nothing changed), 'missing'.
Workflows: a cancelled waiting task cancels its PENDING descendants (dependency_failed); a running one
does so when its worker reports the cancel (fail.lua). ]]
--@include _common
--@include _workflow
local f = redis.call('HMGET', KEYS[1], 'status', 'watched')
local status = f[1]
if not status then
  return {'missing', ''}
end
local now = jq_now()
if status == 'QUEUED' or status == 'DELAYED' or status == 'RETRYING' or status == 'PENDING' then
  if status == 'QUEUED' then
    -- O(n) in the list length, but only on cancel, never on the per-task hot path.
    redis.call('LREM', KEYS[2], 1, ARGV[1])
  else
    redis.call('ZREM', KEYS[3], ARGV[1])
  end
  redis.call('HSET', KEYS[1], 'status', 'CANCELLED', 'cancel_reason', ARGV[2], 'completed_at', now)
  redis.call('EXPIRE', KEYS[1], tonumber(ARGV[7]))
  redis.call('HINCRBY', KEYS[5], 'cancelled', 1)
  redis.call('XADD', KEYS[4], 'MAXLEN', '~', ARGV[4], '*', 'id', ARGV[1], 'event', 'cancelled', 'ts', now,
    'reason', ARGV[2])
  if f[2] then redis.call('PUBLISH', ARGV[5], 'CANCELLED') end
  -- workflows / dedup (lua/_workflow.lua)
  jq_release_unique(KEYS[1], ARGV[1])
  jq_cancel_descendants(KEYS[1], KEYS[6], now, ARGV[4])
  redis.call('EXPIRE', KEYS[6], tonumber(ARGV[7]))
  return {'cancelled', 'CANCELLED'}
end
if status == 'RUNNING' then
  redis.call('HSET', KEYS[1], 'cancel_requested', ARGV[3], 'cancel_reason', ARGV[2])
  redis.call('XADD', KEYS[4], 'MAXLEN', '~', ARGV[4], '*', 'id', ARGV[1], 'event', 'cancel_requested',
    'ts', now, 'reason', ARGV[2], 'mode', ARGV[3])
  redis.call('PUBLISH', ARGV[6], ARGV[1] .. ' ' .. ARGV[3])
  return {'requested', status}
end
return {'finished', status}
