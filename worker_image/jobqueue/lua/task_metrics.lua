--[[ task_metrics: add one worker's run time and queue wait histogram deltas to a queue's metrics hash.
Atomic, so a scrape never sees a histogram whose buckets disagree with its count.
KEYS[1] the queue's metrics hash
ARGV[1] N, the number of integer increments; ARGV[2 .. 1+2N] field, integer pairs (bucket and count
        fields); then field, float pairs (sum fields)
Returns the number of fields incremented. Field names are documented in jobqueue/task_metrics.py. ]]
local n = tonumber(ARGV[1])
local last_int = 1 + 2 * n
for i = 2, last_int, 2 do
  redis.call('HINCRBY', KEYS[1], ARGV[i], ARGV[i + 1])
end
for i = last_int + 1, #ARGV, 2 do
  redis.call('HINCRBYFLOAT', KEYS[1], ARGV[i], ARGV[i + 1])
end
return (#ARGV - 1) / 2
