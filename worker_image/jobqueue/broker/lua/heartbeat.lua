--[[ heartbeat: renew every lease a worker holds in one queue, and report cancel requests.
KEYS[1] lease zset   KEYS[2..] task hashes, one per held task, in the order of the ids in ARGV
ARGV[1] worker id    ARGV[2] lease duration ms   ARGV[3..] id, token pairs
Returns {lost_ids..., '', cancel pairs (id, mode)...}: lost = the lease is no longer this worker's
(expired and recovered, or finished elsewhere); mode = 'graceful' or 'force'. ]]
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local lease_until = now + tonumber(ARGV[2])
local lost, cancels = {}, {}
for i = 2, #KEYS do
  local id = ARGV[1 + (i - 1) * 2]
  local token = ARGV[2 + (i - 1) * 2]
  local f = redis.call('HMGET', KEYS[i], 'status', 'attempts', 'worker', 'cancel_requested')
  if f[1] == 'RUNNING' and f[2] == token and f[3] == ARGV[1] then
    redis.call('ZADD', KEYS[1], 'XX', lease_until, id)
    if f[4] then
      cancels[#cancels + 1] = id
      cancels[#cancels + 1] = f[4]
    end
  else
    lost[#lost + 1] = id
  end
end
lost[#lost + 1] = ''
for _, v in ipairs(cancels) do
  lost[#lost + 1] = v
end
return lost
