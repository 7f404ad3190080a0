-- Promotion of due delayed tasks (--@include _promote), shared by promote.lua (the scheduler) and
-- fetch.lua (a worker promotes what is due before it leases, so a delayed task never waits for the
-- scheduler when a worker is asking anyway).
-- Moves up to ``limit`` due ids from the delayed zset to the ready list of their priority (O(log n + k));
-- an id whose task is no longer DELAYED / RETRYING (cancelled, gone) is only dropped.
-- ``task_key_of`` maps an id to its task hash key. Returns (promoted, next_due_ms): milliseconds until
-- the earliest task still delayed is due, -1 if none.
local function jq_promote(delayed, ready, task_key_of, now, limit)
  local due = redis.call('ZRANGEBYSCORE', delayed, '-inf', now, 'LIMIT', 0, limit)
  local promoted = 0
  for _, id in ipairs(due) do
    local key = task_key_of(id)
    local st = redis.call('HMGET', key, 'status', 'priority')
    redis.call('ZREM', delayed, id)
    if st[1] == 'DELAYED' or st[1] == 'RETRYING' then
      redis.call('HSET', key, 'status', 'QUEUED')
      redis.call('RPUSH', ready[st[2]] or ready.medium, id)
      promoted = promoted + 1
    end
  end
  local next_due = -1
  local first = redis.call('ZRANGE', delayed, 0, 0, 'WITHSCORES')
  if first[2] then
    next_due = math.max(0, tonumber(first[2]) - now)
  end
  return promoted, next_due
end
