--[[ enqueue: create one task, ready now or delayed.
KEYS[1] task hash          KEYS[2] ready list of the task's priority
KEYS[3] delayed zset       KEYS[4] wake list (marker for idle workers)
KEYS[5] event stream       KEYS[6] stats hash
ARGV[1] task id            ARGV[2] due time in unix ms (0 = ready now)
ARGV[3] countdown in ms (added to server time; 0 = none)
ARGV[4] event stream max length (approximate)
ARGV[5..] field, value pairs of the task hash (name, args, kwargs, priority, ...)
Returns {1, status} when created, {0, status} when a task with this id already exists (idempotent).
Time is the Redis server clock (TIME), never a client clock, except an absolute eta given by the user. ]]
local existing = redis.call('HGET', KEYS[1], 'status')
if existing then
  return {0, existing}
end
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local due = tonumber(ARGV[2])
local countdown = tonumber(ARGV[3])
if countdown > 0 then
  due = now + countdown
end
local fields = {}
for i = 5, #ARGV do
  fields[#fields + 1] = ARGV[i]
end
local status
if due > now then
  status = 'DELAYED'
else
  status = 'QUEUED'
  due = 0
end
redis.call('HSET', KEYS[1], 'status', status, 'enqueued_at', now, 'eta', due, 'attempts', 0,
  'retries', 0, 'lost_leases', 0, unpack(fields))
if status == 'QUEUED' then
  redis.call('RPUSH', KEYS[2], ARGV[1])
  if redis.call('LLEN', KEYS[4]) == 0 then
    redis.call('LPUSH', KEYS[4], '1')
  end
else
  local first = redis.call('ZRANGE', KEYS[3], 0, 0, 'WITHSCORES')
  redis.call('ZADD', KEYS[3], due, ARGV[1])
  -- Wake idle workers only if this task is due before anything they already wait for.
  if (first[2] == nil or tonumber(first[2]) > due) and redis.call('LLEN', KEYS[4]) == 0 then
    redis.call('LPUSH', KEYS[4], '1')
  end
end
redis.call('HINCRBY', KEYS[6], 'enqueued', 1)
-- The event carries the whole spec (name, queue, priority, args, ...) so the recorder never has to read
-- the task hash, which may have expired or changed by the time the event is recorded.
redis.call('XADD', KEYS[5], 'MAXLEN', '~', ARGV[4], '*', 'id', ARGV[1], 'event', 'enqueued', 'ts', now,
  'status', status, 'eta', due, unpack(fields))
return {1, status}
