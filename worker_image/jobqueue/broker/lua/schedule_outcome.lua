--[[ schedule_outcome: what a claimed fire did, written to the schedule's run state and appended to the
schedule event stream (the recorder turns each entry into one schedule_runs row), atomically.
KEYS[1] the schedule's state hash   KEYS[2] schedule event stream
ARGV[1] schedule name   ARGV[2] fire time ms
ARGV[3] outcome: 'fired' (its task was enqueued), 'skipped' (Forbid: the previous task is still running)
        or 'failed' (the task could not be enqueued; ARGV[6] says why)
ARGV[4] task id of the fire ('' when none)   ARGV[5] task the fire cancelled (Replace policy; '' = none)
ARGV[6] detail ('' = none)   ARGV[7] event stream max length
Returns 1. ]]
--@include _common
local now = jq_now()
local outcome = ARGV[3]
if outcome == 'fired' then
  redis.call('HSET', KEYS[1], 'last_fire_at', ARGV[2], 'last_task_id', ARGV[4])
  redis.call('HINCRBY', KEYS[1], 'fired', 1)
elseif outcome == 'skipped' then
  redis.call('HINCRBY', KEYS[1], 'skipped', 1)
  redis.call('HSET', KEYS[1], 'last_skipped_at', ARGV[2])
elseif outcome ~= 'failed' then
  return redis.error_reply('unknown outcome ' .. outcome)
end
local entry = {'schedule', ARGV[1], 'status', outcome, 'fire', ARGV[2], 'ts', now}
if ARGV[4] ~= '' then
  table.insert(entry, 'task_id')
  table.insert(entry, ARGV[4])
end
if ARGV[5] ~= '' then
  table.insert(entry, 'replaced')
  table.insert(entry, ARGV[5])
end
if ARGV[6] ~= '' then
  table.insert(entry, 'detail')
  table.insert(entry, ARGV[6])
end
redis.call('XADD', KEYS[2], 'MAXLEN', '~', ARGV[7], '*', unpack(entry))
return 1
