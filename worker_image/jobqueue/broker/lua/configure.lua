--[[ configure: change a queue's live flow-control configuration atomically.
KEYS[1] config hash   KEYS[2] rate-limit state (GCRA)   KEYS[3] wake list
ARGV[1] '1' to reset the rate-limit state (forget every start counted so far)
ARGV[2] '1' to wake idle workers (resume, raised limits: they start at once instead of at their recheck)
ARGV[3] n = how many fields to delete, ARGV[4 .. 3+n] those fields, then field, value pairs to set
Returns the config hash after the change, as a flat field/value list (HGETALL). ]]
local n = tonumber(ARGV[3])
if n > 0 then
  local fields = {}
  for i = 4, 3 + n do
    fields[#fields + 1] = ARGV[i]
  end
  redis.call('HDEL', KEYS[1], unpack(fields))
end
if #ARGV > 3 + n then
  local pairs = {}
  for i = 4 + n, #ARGV do
    pairs[#pairs + 1] = ARGV[i]
  end
  redis.call('HSET', KEYS[1], unpack(pairs))
end
if ARGV[1] == '1' then
  redis.call('DEL', KEYS[2])
end
if ARGV[2] == '1' and redis.call('LLEN', KEYS[3]) == 0 then
  redis.call('LPUSH', KEYS[3], '1')
end
return redis.call('HGETALL', KEYS[1])
