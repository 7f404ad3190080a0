--[[ progress: store a running task's latest progress on its hash, fenced.
KEYS[1] task hash
ARGV[1] fencing token (the attempt that reports)   ARGV[2] progress JSON (jobqueue/progress.py, with "at")
Returns 1 when stored, 0 when the attempt no longer holds the task (finished, recovered and run by another
worker, cancelled): a stalled worker's late report must not overwrite the new owner's progress.
Not a state transition (status untouched) and not an event: progress changes too often for the event
stream, and only the latest value is ever shown. ]]
--@include _fence
local f = redis.call('HMGET', KEYS[1], 'status', 'attempts')
if jq_fence(f[1], tonumber(f[2]), tonumber(ARGV[1])) ~= 0 then
  return 0
end
redis.call('HSET', KEYS[1], 'progress', ARGV[2])
return 1
