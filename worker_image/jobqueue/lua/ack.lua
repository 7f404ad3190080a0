--[[ ack: a leased task succeeded. Fenced: accepted only from the current lease holder.
KEYS[1] task hash   KEYS[2] lease zset   KEYS[3] event stream   KEYS[4] stats hash   KEYS[5] wake list
KEYS[6] queue config hash
ARGV[1] task id     ARGV[2] fencing token (attempt number of the lease)
ARGV[3] result as JSON                   ARGV[4] result TTL in seconds
ARGV[5] event stream max length          ARGV[6] completion channel (published only if someone waits)
Returns 1 when recorded, 0 when the token is stale or the task is no longer running (nothing changed).
Workflows: children whose last parent this was are queued; a unique task's dedup key may be released. ]]
--@include _workflow
local f = redis.call('HMGET', KEYS[1], 'status', 'attempts', 'started_at', 'watched')
if f[1] ~= 'RUNNING' or f[2] ~= ARGV[2] then
  return 0
end
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
redis.call('ZREM', KEYS[2], ARGV[1])
redis.call('HSET', KEYS[1], 'status', 'SUCCESS', 'result', ARGV[3], 'completed_at', now)
redis.call('HDEL', KEYS[1], 'cancel_requested')
redis.call('EXPIRE', KEYS[1], tonumber(ARGV[4]))
redis.call('HINCRBY', KEYS[4], 'succeeded', 1)
redis.call('XADD', KEYS[3], 'MAXLEN', '~', ARGV[5], '*', 'id', ARGV[1], 'event', 'succeeded', 'ts', now,
  'token', ARGV[2], 'duration_ms', now - (tonumber(f[3]) or now), 'result', ARGV[3])
if f[4] then
  redis.call('PUBLISH', ARGV[6], 'SUCCESS')
end
-- workflows / dedup (lua/_workflow.lua)
jq_release_unique(KEYS[1], ARGV[1])
jq_release_children(KEYS[1], ARGV[1], ARGV[3], now, ARGV[5])
-- A freed slot matters only to workers held back by a max in-flight limit.
if (tonumber(redis.call('HGET', KEYS[6], 'max_in_flight') or '0') or 0) > 0 and redis.call('LLEN', KEYS[5]) == 0 then
  redis.call('LPUSH', KEYS[5], '1')
end
return 1
