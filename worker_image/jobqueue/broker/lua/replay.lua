--[[ replay: move a dead-lettered task back to its ready list.
KEYS[1] task hash   KEYS[2] dead letter zset   KEYS[3] ready list of the task's priority
KEYS[4] wake list   KEYS[5] event stream
ARGV[1] task id     ARGV[2] '1' to reset the retry and lost-lease counters   ARGV[3] event stream max length
Returns 1 when replayed, 0 when the task is not in the dead letter queue. ]]
--@include _common
if not redis.call('ZSCORE', KEYS[2], ARGV[1]) then
  return 0
end
local now = jq_now()
redis.call('ZREM', KEYS[2], ARGV[1])
redis.call('HSET', KEYS[1], 'status', 'QUEUED')
redis.call('HDEL', KEYS[1], 'dead_letter_reason', 'completed_at', 'worker', 'result')
if ARGV[2] == '1' then
  redis.call('HSET', KEYS[1], 'retries', 0, 'lost_leases', 0)
end
redis.call('RPUSH', KEYS[3], ARGV[1])
jq_wake(KEYS[4])
redis.call('XADD', KEYS[5], 'MAXLEN', '~', ARGV[3], '*', 'id', ARGV[1], 'event', 'replayed', 'ts', now,
  'reset', ARGV[2])
return 1
