--[[ watch: mark a task as awaited, so its final transition publishes on its completion channel.
The waiter subscribes first and calls this second, so a completion between the two is never missed:
either the status returned here is already final, or the publish reaches the subscription.
KEYS[1] task hash
Returns the task's status, or false when no task exists (nothing is written then). ]]
local status = redis.call('HGET', KEYS[1], 'status')
if status then
  redis.call('HSET', KEYS[1], 'watched', '1')
end
return status
