--[[ queue_state: read one queue's live counts for dashboards (the queue listing, /metrics); writes nothing.
One call instead of ten commands per queue: a scrape of 10,000 queues sent 110,000 commands, and packing,
sending and parsing them was most of its time. Every key is the queue's own (one Cluster slot).
KEYS[1] ready high   KEYS[2] ready medium   KEYS[3] ready low
KEYS[4] delayed zset KEYS[5] lease zset     KEYS[6] dead-letter zset   KEYS[7] stats hash
ARGV[1] '1' to return the stats hash too, anything else not to
Returns {ready high, ready medium, ready low, delayed, leased, dead, head id of the high, medium and low
ready lists (false when empty), the stats hash as a flat field, value list (empty unless asked)}. ]]
local out = {
  redis.call('LLEN', KEYS[1]),
  redis.call('LLEN', KEYS[2]),
  redis.call('LLEN', KEYS[3]),
  redis.call('ZCARD', KEYS[4]),
  redis.call('ZCARD', KEYS[5]),
  redis.call('ZCARD', KEYS[6]),
  redis.call('LINDEX', KEYS[1], 0),
  redis.call('LINDEX', KEYS[2], 0),
  redis.call('LINDEX', KEYS[3], 0),
}
if ARGV[1] == '1' then
  out[10] = redis.call('HGETALL', KEYS[7])
else
  out[10] = {}
end
return out
