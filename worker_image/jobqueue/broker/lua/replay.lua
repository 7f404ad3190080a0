--[[ replay: move a dead-lettered task back to its ready list.
KEYS[1] task hash   KEYS[2] dead letter zset   KEYS[3] ready list of the task's priority
KEYS[4] wake list   KEYS[5] event stream
ARGV[1] task id     ARGV[2] '1' to reset the retry and lost-lease counters   ARGV[3] event stream max length
Returns 1 when replayed, 0 when the task is not in the dead letter queue. ]]
if not redis.call('ZSCORE', KEYS[2], ARGV[1]) then
  return 0
end
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
redis.call('ZREM', KEYS[2], ARGV[1])
redis.call('HSET', KEYS[1], 'status', 'QUEUED')
redis.call('HDEL', KEYS[1], 'dead_letter_reason', 'completed_at', 'worker', 'result')
if ARGV[2] == '1' then
  redis.call('HSET', KEYS[1], 'retries', 0, 'lost_leases', 0)
end
redis.call('RPUSH', KEYS[3], ARGV[1])
if redis.call('LLEN', KEYS[4]) == 0 then
  redis.call('LPUSH', KEYS[4], '1')
end
redis.call('XADD', KEYS[5], 'MAXLEN', '~', ARGV[3], '*', 'id', ARGV[1], 'event', 'replayed', 'ts', now,
  'reset', ARGV[2])
return 1
