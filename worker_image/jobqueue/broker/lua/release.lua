--[[ release: hand an unfinished lease back to the front of its ready list (graceful shutdown).
KEYS[1] task hash   KEYS[2] lease zset   KEYS[3] ready list of the task's priority
KEYS[4] wake list   KEYS[5] event stream KEYS[6] the releasing worker's held set (keys.QueueKeys.held)
ARGV[1] task id     ARGV[2] fencing token   ARGV[3] event stream max length
Returns {code} (_fence.lua): 4 = handed back; stale, with nothing changed: -1 lease lost, -2 fenced by a
newer attempt, -3 unknown task. The attempt counter is not rolled back: the next lease gets a fresh,
larger token, so the releasing worker can never complete the task afterwards. ]]
--@include _common
--@include _fence
local f = redis.call('HMGET', KEYS[1], 'status', 'attempts')
local stale = jq_fence(f[1], f[2], ARGV[2])
if stale ~= 0 then
  return {stale}
end
local now = jq_now()
redis.call('ZREM', KEYS[2], ARGV[1])
redis.call('SREM', KEYS[6], ARGV[1])
redis.call('HSET', KEYS[1], 'status', 'QUEUED', 'ready_at', now)
redis.call('HDEL', KEYS[1], 'worker')
redis.call('LPUSH', KEYS[3], ARGV[1])
jq_wake(KEYS[4])
redis.call('XADD', KEYS[5], 'MAXLEN', '~', ARGV[3], '*', 'id', ARGV[1], 'event', 'released', 'ts', now,
  'token', ARGV[2])
return {JQ_RELEASED}
