--[[ task_metrics: add one worker's run time and queue wait histogram deltas to a queue's metrics hash.
Atomic, so a scrape never sees a histogram whose buckets disagree with its count, and at most once per
flush: a worker re-sends a flush whose reply it never got under the same sequence number.
KEYS[1] the queue's metrics hash
KEYS[2] the last sequence number applied for this worker process (jobqueue/keys.py)
ARGV[1] the flush's sequence number (increasing per worker process)
ARGV[2] seconds KEYS[2] is kept
ARGV[3] N, the number of integer increments; ARGV[4 .. 3+2N] field, integer pairs (bucket and count
        fields); then field, float pairs (sum fields)
Returns the number of fields incremented, 0 for a flush already applied. Field names are documented in
jobqueue/broker/task_metrics.py. ]]
local seq = tonumber(ARGV[1])
local applied = tonumber(redis.call('GET', KEYS[2]) or '0')
if seq <= applied then
  return 0
end
redis.call('SET', KEYS[2], ARGV[1], 'EX', ARGV[2])
local n = tonumber(ARGV[3])
local last_int = 3 + 2 * n
for i = 4, last_int, 2 do
  redis.call('HINCRBY', KEYS[1], ARGV[i], ARGV[i + 1])
end
for i = last_int + 1, #ARGV, 2 do
  redis.call('HINCRBYFLOAT', KEYS[1], ARGV[i], ARGV[i + 1])
end
return (#ARGV - 3) / 2
