--[[ release: hand an unfinished lease back to the front of its ready list (graceful shutdown).
KEYS[1] task hash   KEYS[2] lease zset   KEYS[3] ready list of the task's priority
KEYS[4] wake list   KEYS[5] event stream
ARGV[1] task id     ARGV[2] fencing token   ARGV[3] event stream max length
Returns 1 when handed back, 0 when the token is stale. The attempt counter is not rolled back: the next
lease gets a fresh, larger token, so the releasing worker can never complete the task afterwards. ]]
local f = redis.call('HMGET', KEYS[1], 'status', 'attempts')
if f[1] ~= 'RUNNING' or f[2] ~= ARGV[2] then
  return 0
end
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
redis.call('ZREM', KEYS[2], ARGV[1])
redis.call('HSET', KEYS[1], 'status', 'QUEUED', 'ready_at', now)
redis.call('HDEL', KEYS[1], 'worker')
redis.call('LPUSH', KEYS[3], ARGV[1])
if redis.call('LLEN', KEYS[4]) == 0 then
  redis.call('LPUSH', KEYS[4], '1')
end
redis.call('XADD', KEYS[5], 'MAXLEN', '~', ARGV[3], '*', 'id', ARGV[1], 'event', 'released', 'ts', now,
  'token', ARGV[2])
return 1
