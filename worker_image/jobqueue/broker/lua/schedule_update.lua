--[[ schedule_update: create / change, pause, resume or delete a recurring schedule atomically.
KEYS[1] schedules hash (name -> definition JSON)   KEYS[2] due zset (name -> next fire ms)
KEYS[3] the schedule's state hash
ARGV[1] op: 'put' | 'pause' | 'resume' | 'delete' | 'cleanup'   ARGV[2] schedule name
ARGV[3] definition JSON (put)   ARGV[4] next fire time in unix ms (put, resume)
ARGV[5] put only: '1' paused, '0' active, '' keep the current paused state
Returns 1 when done; 0 when the schedule does not exist (pause, resume, delete) or still exists (cleanup).
A paused schedule is absent from the due zset, so schedulers never look at it. ]]
local op, name = ARGV[1], ARGV[2]
if op == 'put' then
  redis.call('HSET', KEYS[1], name, ARGV[3])
  local paused = ARGV[5]
  if paused == '' then
    paused = redis.call('HGET', KEYS[3], 'paused') or '0'
  end
  if paused == '1' then
    redis.call('HSET', KEYS[3], 'paused', '1')
    redis.call('ZREM', KEYS[2], name)
  else
    redis.call('HDEL', KEYS[3], 'paused')
    redis.call('ZADD', KEYS[2], ARGV[4], name)
  end
  return 1
end
if op == 'cleanup' then
  -- A due entry whose definition is gone (deleted between a scheduler's read and now).
  if redis.call('HEXISTS', KEYS[1], name) == 0 then
    redis.call('ZREM', KEYS[2], name)
    return 1
  end
  return 0
end
if redis.call('HEXISTS', KEYS[1], name) == 0 then
  return 0
end
if op == 'pause' then
  redis.call('HSET', KEYS[3], 'paused', '1')
  redis.call('ZREM', KEYS[2], name)
elseif op == 'resume' then
  redis.call('HDEL', KEYS[3], 'paused')
  redis.call('ZADD', KEYS[2], ARGV[4], name)
elseif op == 'delete' then
  redis.call('HDEL', KEYS[1], name)
  redis.call('ZREM', KEYS[2], name)
  redis.call('DEL', KEYS[3])
else
  return redis.error_reply('unknown op ' .. op)
end
return 1
