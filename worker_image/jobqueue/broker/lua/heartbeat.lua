--[[ heartbeat: renew every lease a worker holds in one queue, and report cancel requests.
KEYS[1] lease zset   KEYS[2] this worker's held set (keys.QueueKeys.held)
KEYS[3..] task hashes, one per held task, in the order of the ids in ARGV
ARGV[1] worker id    ARGV[2] lease duration ms   ARGV[3..] id, token pairs
Returns {lost_ids..., '', cancel pairs (id, mode)...}: lost = the lease is no longer this worker's
(expired and recovered, or finished elsewhere); mode = 'graceful' or 'force'.
The held set is rewritten to what is still held: a lost id leaves it unless this worker holds a newer
attempt of it, a renewed one is (re)added, so leases taken before the set existed are indexed from the
first heartbeat on. ]]
--@include _common
local now = jq_now()
local lease_until = now + tonumber(ARGV[2])
local lost, cancels, renewed, unheld = {}, {}, {}, {}
for i = 3, #KEYS do
  local id = ARGV[1 + (i - 2) * 2]
  local token = ARGV[2 + (i - 2) * 2]
  local f = redis.call('HMGET', KEYS[i], 'status', 'attempts', 'worker', 'cancel_requested')
  if f[1] == 'RUNNING' and f[2] == token and f[3] == ARGV[1] then
    redis.call('ZADD', KEYS[1], 'XX', lease_until, id)
    renewed[#renewed + 1] = id
    if f[4] then
      cancels[#cancels + 1] = id
      cancels[#cancels + 1] = f[4]
    end
  else
    lost[#lost + 1] = id
    -- A stale attempt of a task this worker holds again under a newer token (its lease expired, was
    -- recovered, and the same worker fetched it again while the old attempt still ran) is lost, but the
    -- id must stay in the held set: removing it would hide the live lease from recovery of this worker.
    if not (f[1] == 'RUNNING' and f[3] == ARGV[1]) then
      unheld[#unheld + 1] = id
    end
  end
end
-- Slices: unpack's arguments live on the Lua stack, which is bounded.
for from = 1, #renewed, 500 do
  redis.call('SADD', KEYS[2], unpack(renewed, from, math.min(from + 499, #renewed)))
end
for from = 1, #unheld, 500 do
  redis.call('SREM', KEYS[2], unpack(unheld, from, math.min(from + 499, #unheld)))
end
if #renewed > 0 then
  redis.call('PEXPIRE', KEYS[2], 2 * tonumber(ARGV[2]))
end
lost[#lost + 1] = ''
for _, v in ipairs(cancels) do
  lost[#lost + 1] = v
end
return lost
