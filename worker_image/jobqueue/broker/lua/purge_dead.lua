--[[ purge_dead: delete up to N dead-lettered tasks (oldest first), their records included.
KEYS[1] dead letter zset  KEYS[2] event stream
ARGV[1] task key prefix (ids found inside the script share the queue's hash tag)
ARGV[2] max tasks per call   ARGV[3] event stream max length
Returns the number purged; call again until it returns 0. ]]
--@include _common
local ids = redis.call('ZRANGE', KEYS[1], 0, tonumber(ARGV[2]) - 1)
local now = jq_now()
for _, id in ipairs(ids) do
  redis.call('ZREM', KEYS[1], id)
  -- A workflow parent's child list goes with it (its key was stored on the hash by enqueue.lua).
  local children = redis.call('HGET', ARGV[1] .. id, 'children_key')
  if children then
    redis.call('DEL', children)
  end
  redis.call('DEL', ARGV[1] .. id)
  redis.call('XADD', KEYS[2], 'MAXLEN', '~', ARGV[3], '*', 'id', id, 'event', 'purged', 'ts', now)
end
return #ids
