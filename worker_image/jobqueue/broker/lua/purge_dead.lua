--[[ purge_dead: delete up to N dead-lettered tasks (oldest first), their records included.
KEYS[1] dead letter zset  KEYS[2] event stream
ARGV[1] task key prefix (ids found inside the script share the queue's hash tag)
ARGV[2] max tasks per call   ARGV[3] event stream max length
Returns the number purged; call again until it returns 0. ]]
local ids = redis.call('ZRANGE', KEYS[1], 0, tonumber(ARGV[2]) - 1)
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
for _, id in ipairs(ids) do
  redis.call('ZREM', KEYS[1], id)
  redis.call('DEL', ARGV[1] .. id)
  redis.call('XADD', KEYS[2], 'MAXLEN', '~', ARGV[3], '*', 'id', id, 'event', 'purged', 'ts', now)
end
return #ids
