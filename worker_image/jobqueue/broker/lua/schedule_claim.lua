--[[ schedule_claim: claim one fire time of a schedule, so that of any number of schedulers exactly one
handles it, and advance the schedule past it.
KEYS[1] due zset (name -> next fire ms)   KEYS[2] the schedule's state hash
KEYS[3] claim key of (schedule, fire time)   KEYS[4] schedule event stream (recorded as schedule runs)
ARGV[1] schedule name   ARGV[2] fire time ms   ARGV[3] the schedule's next fire time ms after this claim
ARGV[4] claim expiry ms ARGV[5] claimer id
ARGV[6] missed fires covered by this claim (0 = a claim to run the fire; n > 0 = n missed fires, skipped)
ARGV[7] event stream max length
Returns 1 when claimed (the caller handles the fire), 0 when someone else did, the schedule already moved
past this fire time, or it is paused or deleted (absent from the due zset).
The due score only moves forward (ZADD GT), so a scheduler working from a stale read can never claim a fire
time again, even after its claim key expired. ]]
local score = redis.call('ZSCORE', KEYS[1], ARGV[1])
if not score or tonumber(score) > tonumber(ARGV[2]) then
  return 0
end
if not redis.call('SET', KEYS[3], ARGV[5], 'NX', 'PX', ARGV[4]) then
  return 0
end
redis.call('ZADD', KEYS[1], 'GT', ARGV[3], ARGV[1])
local missed = tonumber(ARGV[6])
if missed > 0 then
  redis.call('HINCRBY', KEYS[2], 'missed', missed)
  redis.call('HSET', KEYS[2], 'last_missed_at', ARGV[2])
  -- A claimed fire's outcome is recorded by schedule_outcome; a missed group has no other step.
  local t = redis.call('TIME')
  redis.call('XADD', KEYS[4], 'MAXLEN', '~', ARGV[7], '*', 'schedule', ARGV[1], 'status', 'missed',
    'fire', ARGV[2], 'ts', tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000), 'missed', missed)
end
return 1
